"""Matrix factorisation: score(u, i) = <P_u, Q_i> (no biases, as in Rel-MF and MF-DU)."""

from __future__ import annotations

import torch
from torch import nn


class MatrixFactorization(nn.Module):
    """User and item factors, Xavier-uniform initialised (TensorFlow's ``xavier_initializer``, which
    the published Rel-MF and MF-DU code uses)."""

    def __init__(self, num_users: int, num_items: int, dim: int) -> None:
        super().__init__()
        self.users = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_users, dim)))
        self.items = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_items, dim)))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits of the ``[B]`` (user, item) pairs."""
        return (self.users[users] * self.items[items]).sum(-1)

    def scores(self, users: torch.Tensor | None = None) -> torch.Tensor:
        """``[U, I]`` logits of every item for ``users`` (all users when None)."""
        p = self.users if users is None else self.users[users]
        return p @ self.items.T
