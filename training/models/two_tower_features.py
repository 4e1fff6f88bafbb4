"""The item content encoder both towers share: one ``hidden``-wide vector per content group.

    items [*] --+-- codes [*, L]  --one embedding table per level (row 0: missing), summed--> [*, hidden]
                +-- text  [*, F]  --linear (or the learned "missing" vector)----------------> [*, hidden]
                +-- categories [*, C] --embedding, mean over the item's buckets (a "missing" row)--> [*, hidden]
                +-- brand [*]     --embedding (row 0: missing)--------------------------------> [*, hidden]
                +-- price [*]     --embedding (row 0: missing)--------------------------------> [*, hidden]
                                                                                stacked: [*, G, hidden]

Each group is a feature group of the item tower (what the SSL views mask) and enters the user tower's
history pooling. An item without a value for a group gets that group's learned "missing" vector, and
ids beyond the content tables read one extra row that has no content at all.

The content tables are buffers kept out of the checkpoint (``persistent=False``): they are data, of
the version the checkpoint's inputs record, and ``set_content`` swaps in a newer catalogue to serve.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from training.config import ContentGroup
from training.data.two_tower_content import ItemContent


class ContentEncoder(nn.Module):
    """Per-group content vectors of items (see the module docstring).

    Args:
        content: The items' content tensors.
        groups: The groups to encode (each must be one ``content`` has).
        hidden: Width of every group's vector.
    """

    text_table: torch.Tensor
    has_text: torch.Tensor
    code_table: torch.Tensor
    category_table: torch.Tensor
    brand_table: torch.Tensor
    price_table: torch.Tensor

    def __init__(self, content: ItemContent, groups: Sequence[ContentGroup], hidden: int) -> None:
        super().__init__()
        self.groups = tuple(ContentGroup(g) for g in groups)
        self.buckets, self.price_buckets = content.buckets, content.price_buckets
        self.code_sizes = content.code_sizes
        self.codes = nn.ModuleList(nn.Embedding(size + 1, hidden) for size in self.code_sizes) if ContentGroup.CODES in self.groups else None
        self.text = nn.Linear(content.text.shape[1], hidden) if ContentGroup.TEXT in self.groups else None
        self.text_missing = nn.Parameter(torch.randn(hidden)) if self.text is not None else None
        # category rows: hashed buckets 1..B, padding 0, and B + 1 for an item with no category at all
        self.category = nn.Embedding(self.buckets + 2, hidden, padding_idx=0) if ContentGroup.CATEGORY in self.groups else None
        self.brand = nn.Embedding(self.buckets + 1, hidden) if ContentGroup.BRAND in self.groups else None
        self.price = nn.Embedding(self.price_buckets + 1, hidden) if ContentGroup.PRICE in self.groups else None
        self.set_content(content)

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    def set_content(self, content: ItemContent) -> None:
        """Serve ``content`` (e.g. a catalogue grown since training; same text width and buckets)."""
        if ContentGroup.TEXT in self.groups and self.text is not None and content.text.shape[1] != self.text.in_features:
            raise ValueError(f"text embeddings of width {content.text.shape[1]}; the encoder was built for {self.text.in_features}")
        device = next(self.parameters()).device if any(True for _ in self.parameters()) else torch.device("cpu")
        levels = len(self.code_sizes)
        codes = content.codes[:, :levels] if content.codes.shape[1] >= levels else torch.cat(
            [content.codes, content.codes.new_full((content.num_items, levels - content.codes.shape[1]), -1)], 1)
        sizes = torch.tensor(self.code_sizes, dtype=torch.long).unsqueeze(0)
        codes = torch.where((codes >= 0) & (codes < sizes), codes + 1, 0)  # 0: missing (also a code the tables never saw)
        categories = content.categories.clamp(max=self.buckets)
        categories = torch.where((categories > 0).any(1, keepdim=True), categories, torch.nn.functional.pad(
            torch.full((content.num_items, 1), self.buckets + 1, dtype=torch.long), (0, categories.shape[1] - 1)))
        tables = {"text_table": content.text.float(), "has_text": content.has_text, "code_table": codes, "category_table": categories,
                  "brand_table": content.brand.clamp(max=self.buckets), "price_table": content.price.clamp(max=self.price_buckets)}
        for name, table in tables.items():
            missing = table[:1].clone()  # the extra last row: no content at all
            if name == "category_table":
                missing[:] = 0
                missing[:, 0] = self.buckets + 1
            else:
                missing.zero_()
            self.register_buffer(name, torch.cat([table, missing]).to(device), persistent=False)
        self.num_items = content.num_items

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """``[*, G, hidden]`` for item ids ``[*]`` (ids at or past the tables: no content)."""
        idx = items.clamp(min=0, max=self.num_items)
        out = []
        for group in self.groups:
            if group is ContentGroup.CODES and self.codes is not None:
                codes = self.code_table[idx]
                out.append(torch.stack([table(codes[..., level]) for level, table in enumerate(self.codes)]).sum(0))
            elif group is ContentGroup.TEXT and self.text is not None and self.text_missing is not None:
                out.append(torch.where(self.has_text[idx].unsqueeze(-1), self.text(self.text_table[idx]), self.text_missing))
            elif group is ContentGroup.CATEGORY and self.category is not None:
                buckets = self.category_table[idx]
                mask = (buckets > 0).unsqueeze(-1)
                out.append((self.category(buckets) * mask).sum(-2) / mask.sum(-2).clamp(min=1))
            elif group is ContentGroup.BRAND and self.brand is not None:
                out.append(self.brand(self.brand_table[idx]))
            elif group is ContentGroup.PRICE and self.price is not None:
                out.append(self.price(self.price_table[idx]))
        return torch.stack(out, dim=-2)


NEIGHBOUR_TEMPERATURE = 0.05  # softmax temperature over the neighbours' cosine similarities


def content_neighbours(text: torch.Tensor, has_text: torch.Tensor, known: torch.Tensor, k: int, max_block: int = 2**24) -> tuple[torch.Tensor, torch.Tensor]:
    """Each item's ``k`` most text-similar items among those with a trained id row (never itself), exact,
    in chunks of at most ``max_block`` similarities, and their weights (a softmax of the cosines).

    An item without a trained id row is served with the weighted mean of these neighbours' id rows: a new
    item starts where the trained items it reads like are. Rows of items without text have weight 0.

    Returns:
        ``([I, k] neighbour ids, [I, k] weights)``; ``k`` is cut to the number of candidates.
    """
    candidates = torch.nonzero(known & has_text).squeeze(1)
    k = min(k, len(candidates) - 1)
    num_items = text.shape[0]
    if k <= 0:
        return torch.zeros(num_items, 0, dtype=torch.long), torch.zeros(num_items, 0)
    unit = torch.nn.functional.normalize(text.float(), dim=1)
    pool = unit[candidates]
    index, weights = [], []
    chunk = max(1, max_block // len(candidates))
    for start in range(0, num_items, chunk):
        rows = torch.arange(start, min(start + chunk, num_items))
        similarity = unit[rows] @ pool.T
        similarity[rows.unsqueeze(1) == candidates.unsqueeze(0)] = -2.0  # never its own neighbour
        top = similarity.topk(k, dim=1)
        index.append(candidates[top.indices])
        weights.append(torch.softmax(top.values / NEIGHBOUR_TEMPERATURE, dim=1) * has_text[rows].unsqueeze(1))
    return torch.cat(index), torch.cat(weights)


class NeighbourIds(nn.Module):
    """Id-embedding rows of items without a trained row, from their content neighbours' rows (``content_neighbours``)."""

    index: torch.Tensor  # [I, k] buffer
    weights: torch.Tensor  # [I, k] buffer

    def __init__(self, index: torch.Tensor, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("weights", weights, persistent=False)

    def available(self, items: torch.Tensor) -> torch.Tensor:
        """``[*]`` bool: the item has neighbours (an id inside the table and text)."""
        inside = items < self.index.shape[0]
        return inside & (self.weights[items.clamp(max=self.index.shape[0] - 1)].sum(-1) > 0)

    def forward(self, table: nn.Embedding, items: torch.Tensor, shift: int = 0) -> torch.Tensor:
        """``[*, hidden]``: the weighted mean of the neighbours' rows of ``table`` (row = id + ``shift``)."""
        idx = items.clamp(max=self.index.shape[0] - 1)
        return (table(self.index[idx] + shift) * self.weights[idx].unsqueeze(-1)).sum(-2)
