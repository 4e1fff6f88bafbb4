"""Two towers: a user tower over the pooled history (and a hashed user id), an item tower over the
item id and the item's content; both end in L2-normalised ``dim`` vectors.

    history [B, H] (item ids + 1, 0 = pad) --id embed + content groups, summed--> [B, H, D]
                                           --masked mean--> [B, D] (+ user id embed) --MLP--> u [B, dim]
    item    [B]    (item ids) --id embed [B, D], content groups [B, G - 1, D] (ContentEncoder), stacked
                              --> [B, G, D] --sum--> --MLP--> v [B, dim]

The content encoder (training/models/two_tower_features.py) is one module shared by both towers: the
history is pooled over the same item representation the item tower sees. Ids the model has no trained
row for (at or past the vocabulary, or not ``known``: no training positive) map to one shared "unseen"
row, so a new item is served from its content; ``id_dropout`` sends a share of the training positives
through that row too, so it and the content learn to carry an item alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.models.two_tower_features import ContentEncoder, NeighbourIds


def _mlp(width: int, hidden: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class ItemTower(nn.Module):
    known: torch.Tensor  # [I] bool buffer: ids with a trained row

    def __init__(self, num_items: int, dim: int, hidden: int, content_dim: int = 0, encoder: ContentEncoder | None = None,
                 id_dropout: float = 0.0) -> None:
        super().__init__()
        self.num_items, self.id_dropout = num_items, id_dropout
        self.embed = nn.Embedding(num_items + 1, hidden)  # row num_items: unseen ids
        self.content = nn.Linear(content_dim, hidden) if content_dim else None
        self.encoder = encoder
        self.neighbours: NeighbourIds | None = None
        self.mlp = _mlp(hidden, hidden, dim)
        self.register_buffer("known", torch.ones(num_items, dtype=torch.bool))

    @property
    def num_groups(self) -> int:
        return 1 + (self.content is not None) + (self.encoder.num_groups if self.encoder is not None else 0)

    def id_embedding(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, hidden]``: an item's own row when trained, else its content neighbours' rows (when set and it
        has text), else the shared unseen row; ``id_dropout`` of the training items take the second way."""
        own = (items < self.num_items) & self.known[items.clamp(max=self.num_items - 1)]
        if self.training and self.id_dropout > 0:
            own = own & (torch.rand(items.shape, device=items.device) >= self.id_dropout)
        out = self.embed(torch.where(own, items, self.num_items))
        if self.neighbours is None:
            return out
        imputed = ~own & self.neighbours.available(items)
        return torch.where(imputed.unsqueeze(-1), self.neighbours(self.embed, items), out)

    def features(self, items: torch.Tensor, content: torch.Tensor | None = None) -> torch.Tensor:
        """The feature groups before the MLP, ``[B, G, hidden]`` (id, projected ``content``, encoder groups): what SSL masks."""
        groups = [self.id_embedding(items)]
        if self.content is not None and content is not None:
            groups.append(self.content(content))
        stacked = torch.stack(groups, dim=1)
        return torch.cat([stacked, self.encoder(items)], dim=1) if self.encoder is not None else stacked

    def forward(self, items: torch.Tensor, content: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, dim]`` normalised item vectors; ``keep`` (broadcast to ``[B, G, hidden]``) masks features (SSL views)."""
        groups = self.features(items, content)
        if keep is not None:
            groups = groups * keep
        return F.normalize(self.mlp(groups.sum(1)), dim=-1)


class UserTower(nn.Module):
    known: torch.Tensor  # [I] bool buffer: ids with a trained row

    def __init__(self, num_items: int, dim: int, hidden: int, user_buckets: int = 0, encoder: ContentEncoder | None = None) -> None:
        super().__init__()
        self.num_items = num_items
        self.history = nn.Embedding(num_items + 2, hidden, padding_idx=0)  # ids + 1; last row: unseen
        self.user = nn.Embedding(user_buckets, hidden) if user_buckets else None
        self.encoder = encoder
        self.neighbours: NeighbourIds | None = None
        self.mlp = _mlp(hidden, hidden, dim)
        self.register_buffer("known", torch.ones(num_items, dtype=torch.bool))

    def forward(self, history: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        mask = history > 0
        items = history - 1
        own = mask & (items < self.num_items) & self.known[items.clamp(min=0, max=self.num_items - 1)]
        embedded = self.history(torch.where(own, history, torch.where(mask, self.num_items + 1, 0)))
        if self.neighbours is not None:
            imputed = mask & ~own & self.neighbours.available(items.clamp(min=0))
            embedded = torch.where(imputed.unsqueeze(-1), self.neighbours(self.history, items.clamp(min=0), shift=1), embedded)
        if self.encoder is not None:  # each distinct history item encoded once
            unique, inverse = items.clamp(min=0).unique(return_inverse=True)
            embedded = embedded + self.encoder(unique).sum(-2)[inverse]
        pooled = (embedded * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        if self.user is not None and users is not None:
            pooled = pooled + self.user(users % self.user.num_embeddings)
        return F.normalize(self.mlp(pooled), dim=-1)


class TwoTower(nn.Module):
    """Both towers; ``encoder`` (shared) adds the items' content, ``id_dropout`` trains the unseen row."""

    def __init__(self, num_items: int, dim: int, hidden: int, user_buckets: int = 0, content_dim: int = 0,
                 encoder: ContentEncoder | None = None, id_dropout: float = 0.0) -> None:
        super().__init__()
        self.user_tower = UserTower(num_items, dim, hidden, user_buckets, encoder)
        self.item_tower = ItemTower(num_items, dim, hidden, content_dim, encoder, id_dropout)

    @property
    def content_groups(self) -> tuple[str, ...]:
        encoder = self.item_tower.encoder
        return tuple(g.value for g in encoder.groups) if encoder is not None else ()

    def set_known(self, known: torch.Tensor) -> None:
        """``[I]`` bool: the ids with a training positive (the others use the unseen row)."""
        for tower in (self.user_tower, self.item_tower):
            tower.known.copy_(known.to(tower.known.device))

    def set_neighbours(self, index: torch.Tensor, weights: torch.Tensor) -> None:
        """Serve items without a trained row from their content neighbours' rows (``content_neighbours``)."""
        device = self.item_tower.known.device
        for tower in (self.user_tower, self.item_tower):
            tower.neighbours = NeighbourIds(index.to(device), weights.to(device)) if index.shape[1] else None

    def forward(self, history: torch.Tensor, items: torch.Tensor, users: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_tower(history, users), self.item_tower(items)
