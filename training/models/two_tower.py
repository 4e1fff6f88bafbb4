"""Two towers: a user tower over the pooled history (and a hashed user id), an item tower over the
item id and optional content features; both end in L2-normalised ``dim`` vectors.

    history [B, H] (item ids + 1, 0 = pad) --embed--> [B, H, D] --masked mean--> [B, D] --MLP--> u [B, dim]
    item    [B]    (item ids)               --embed--> [B, D]    (+ content [B, F] --linear--> [B, D])
                                                      --MLP--> v [B, dim]

Ids at or above the vocabulary (unseen in training) map to one shared "unknown" row, so a new item is
served from its content features alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(width: int, hidden: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class ItemTower(nn.Module):
    def __init__(self, num_items: int, dim: int, hidden: int, content_dim: int = 0) -> None:
        super().__init__()
        self.num_items = num_items
        self.embed = nn.Embedding(num_items + 1, hidden)  # row num_items: unseen ids
        self.content = nn.Linear(content_dim, hidden) if content_dim else None
        self.mlp = _mlp(hidden, hidden, dim)

    def features(self, items: torch.Tensor, content: torch.Tensor | None = None) -> torch.Tensor:
        """The feature groups before the MLP, ``[B, G, hidden]`` (G = 1 or 2): what SSL masks."""
        groups = [self.embed(items.clamp(max=self.num_items))]
        if self.content is not None and content is not None:
            groups.append(self.content(content))
        return torch.stack(groups, dim=1)

    def forward(self, items: torch.Tensor, content: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, dim]`` normalised item vectors; ``keep`` (broadcast to ``[B, G, hidden]``) masks features (SSL views)."""
        groups = self.features(items, content)
        if keep is not None:
            groups = groups * keep
        return F.normalize(self.mlp(groups.sum(1)), dim=-1)


class UserTower(nn.Module):
    def __init__(self, num_items: int, dim: int, hidden: int, user_buckets: int = 0) -> None:
        super().__init__()
        self.num_items = num_items
        self.history = nn.Embedding(num_items + 2, hidden, padding_idx=0)  # ids + 1; last row: unseen
        self.user = nn.Embedding(user_buckets, hidden) if user_buckets else None
        self.mlp = _mlp(hidden, hidden, dim)

    def forward(self, history: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        mask = history > 0
        embedded = self.history(history.clamp(max=self.num_items + 1))
        pooled = (embedded * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        if self.user is not None and users is not None:
            pooled = pooled + self.user(users % self.user.num_embeddings)
        return F.normalize(self.mlp(pooled), dim=-1)


class TwoTower(nn.Module):
    def __init__(self, num_items: int, dim: int, hidden: int, user_buckets: int = 0, content_dim: int = 0) -> None:
        super().__init__()
        self.user_tower = UserTower(num_items, dim, hidden, user_buckets)
        self.item_tower = ItemTower(num_items, dim, hidden, content_dim)

    def forward(self, history: torch.Tensor, items: torch.Tensor, users: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_tower(history, users), self.item_tower(items)
