"""Semantic IDs for TIGER: an item -> codes table with a disambiguation level, and the trie over it.

An ID table may come from recforge's own semantic-ID tables or from a dataset that brings its own
(``import_codes``: Beauty's LETTER IDs, ``["<a_183>", "<b_70>", "<c_232>", "<d_6>"]``). Either way it
passes the same collision check and gets the same disambiguation level as ours
(``transforms.semantic_ids.disambiguate.extra_level``): items that share all codes are numbered
0, 1, 2, ... in a last level, every other item gets 0, so every full ID names exactly one item.

The trie, one dense table per depth (nodes are the distinct prefixes of that length)::

    allowed[d]  [nodes_d, V_d] bool    which code may follow the prefix
    child[d]    [nodes_d, V_d] int64   the node of the longer prefix (at the last depth: the item), -1 if none

Constrained decoding keeps one node per beam: mask the level's logits with ``allowed[d][node]``,
step to ``child[d][node, code]``; after the last level the node is the item.

To leave items out for one query (its history, under seen-item filtering), ``exhausted`` marks per depth
the nodes every item under which is left out; decoding masks those too, so no beam is spent on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from transforms.semantic_ids.disambiguate import extra_level

_TOKEN = re.compile(r"<([a-z])_(\d+)>")


@dataclass(frozen=True)
class SemanticIdTable:
    """``codes [I, C]`` (row = dense item id), ``sizes [C]`` codes per level, and the collision counts
    found before disambiguation."""

    codes: np.ndarray
    sizes: tuple[int, ...]
    colliding_items: int  # items whose codes (before the extra level) equal another item's
    distinct_before: int  # distinct code tuples before the extra level

    @property
    def levels(self) -> int:
        return self.codes.shape[1]


def disambiguate(codes: np.ndarray, sizes: tuple[int, ...] | None = None) -> SemanticIdTable:
    """Check ``codes [I, C]`` for collisions and append the disambiguation level (always: one ID length)."""
    codes = np.asarray(codes, np.int64)
    if codes.ndim != 2 or (codes < 0).any():
        raise ValueError("semantic IDs must be a [items, levels] array of non-negative codes")
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    colliding = int((counts[inverse.ravel()] > 1).sum())
    full, _ = extra_level(np.zeros((0, codes.shape[1] + 1), np.int32), codes.astype(np.int32))
    extra = full[:, -1].astype(np.int64)
    base = tuple(int(s) for s in sizes) if sizes is not None else tuple(int(c) + 1 for c in codes.max(axis=0))
    table = SemanticIdTable(np.column_stack([codes, extra]), (*base, int(extra.max()) + 1), colliding, len(counts))
    if len(np.unique(table.codes, axis=0)) != len(codes):
        raise AssertionError("disambiguation left two items with one ID")
    return table


def import_codes(mapping: dict[str, list[str]] | dict[str, list[int]], item_index: dict[str, int]) -> SemanticIdTable:
    """A dataset's own IDs, ``{item: codes}`` with codes as integers or ``<letter_code>`` tokens (level = letter),
    over the dense item ids ``item_index`` (every item must have an ID of one length)."""
    rows: list[list[int] | None] = [None] * len(item_index)
    for item, tokens in mapping.items():
        if item not in item_index:
            continue
        parsed = []
        for level, token in enumerate(tokens):
            if isinstance(token, str):
                match = _TOKEN.fullmatch(token)
                if match is None or ord(match.group(1)) - ord("a") != level:
                    raise ValueError(f"item {item}: token {token!r} is not <{chr(ord('a') + level)}_N>")
                parsed.append(int(match.group(2)))
            else:
                parsed.append(int(token))
        rows[item_index[item]] = parsed
    missing = [i for i, r in enumerate(rows) if r is None]
    if missing:
        raise ValueError(f"{len(missing)} items have no semantic ID (e.g. dense id {missing[0]})")
    if len({len(r) for r in rows if r is not None}) != 1:
        raise ValueError("semantic IDs of different lengths")
    return disambiguate(np.asarray(rows, np.int64))


def with_missing(codes: np.ndarray, sizes: tuple[int, ...] | None = None) -> SemanticIdTable:
    """``codes [I, C]`` where rows of -1 are items without an ID (no content, not in any shard row): they get
    a reserved first code (one past the level's codes) and are told apart by the disambiguation level, so the
    trie still has exactly one ID per item."""
    codes = np.array(codes, np.int64)
    missing = (codes < 0).any(axis=1)
    base = tuple(sizes) if sizes is not None else tuple(int(c) + 1 for c in np.where(missing[:, None], 0, codes).max(axis=0))
    if missing.any():
        codes[missing] = 0
        codes[missing, 0] = base[0]
        base = (base[0] + 1, *base[1:])
    return disambiguate(codes, base)


class Trie:
    """The valid IDs of a ``SemanticIdTable`` as dense per-depth tables (module docstring)."""

    def __init__(self, table: SemanticIdTable) -> None:
        codes = table.codes
        items, levels = codes.shape
        width = max(table.sizes)
        self.levels = levels
        self.sizes = table.sizes
        self.child: list[torch.Tensor] = []
        self.item_node: list[torch.Tensor] = []  # per depth, [I]: the node of each item's prefix one code longer
        self.node_items: list[torch.Tensor] = []  # per depth, [nodes_{d+1}]: the items under that node
        node = np.zeros(items, np.int64)  # depth 0: the root
        n_nodes = 1
        for depth in range(levels):
            if depth + 1 < levels:
                _, next_node = np.unique(codes[:, : depth + 1], axis=0, return_inverse=True)
                next_node = next_node.ravel()
                next_count = int(next_node.max()) + 1
            else:
                next_node, next_count = np.arange(items), items
            child = np.full((n_nodes, width), -1, np.int64)
            child[node, codes[:, depth]] = next_node
            self.child.append(torch.from_numpy(child))
            self.item_node.append(torch.from_numpy(next_node))
            self.node_items.append(torch.from_numpy(np.bincount(next_node, minlength=next_count)))
            node, n_nodes = next_node, next_count

    @property
    def allowed(self) -> list[torch.Tensor]:
        """Per depth, ``[nodes_d, V_d]`` bool: which code may follow the prefix (``child >= 0``)."""
        return [child >= 0 for child in self.child]

    def exhausted(self, excluded: torch.Tensor) -> list[torch.Tensor]:
        """Per depth, ``[B, nodes_{d+1}]`` bool: every item under the node is in ``excluded [B, I]``."""
        out = []
        for item_node, node_items in zip(self.item_node, self.node_items, strict=True):
            left_out = torch.zeros(len(excluded), len(node_items), dtype=torch.int64, device=excluded.device)
            left_out.index_add_(1, item_node, excluded.long())
            out.append(left_out >= node_items)
        return out

    def to(self, device: torch.device) -> Trie:
        self.child = [c.to(device) for c in self.child]
        self.item_node = [n.to(device) for n in self.item_node]
        self.node_items = [n.to(device) for n in self.node_items]
        return self


def cooccurrence_ids(data_train_items: torch.Tensor, num_items: int, *, levels: int = 3, codes_per_level: int = 256, dim: int = 32,
                     seed: int = 0) -> SemanticIdTable:
    """recforge's own semantic IDs for a catalogue without text: co-occurrence embeddings of the TRAINING rows
    (``transforms.semantic_ids.cooccurrence``; an id-seeded vector for items that never co-occur), a residual
    k-means codebook, and the disambiguation level.

    Args:
        data_train_items: ``[U, L]`` training rows (ids + 1, 0 = padding): nothing held out is read.
        num_items: Catalogue size.
    """
    import datetime as dt

    import pyarrow as pa

    from transforms.semantic_ids.codebook import quantize, train_codebook
    from transforms.semantic_ids.config import SemanticIdConfig
    from transforms.semantic_ids.cooccurrence import (
        CooccurrenceConfig,
        cooccurrence_embeddings,
        id_hash_vectors,
    )

    rows, cols = (data_train_items > 0).nonzero(as_tuple=True)
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    events = pa.table({"user_id": pa.array(rows.numpy().astype(str)),
                       "item_id": pa.array((data_train_items[rows, cols] - 1).numpy().astype(str)),
                       "ts": pa.array([start + dt.timedelta(seconds=int(c)) for c in cols.numpy()], pa.timestamp("us", tz="UTC"))})
    keys, vectors = cooccurrence_embeddings(events, dt.datetime(2100, 1, 1, tzinfo=dt.UTC), CooccurrenceConfig(dim=dim, seed=seed))
    embeddings = id_hash_vectors([str(i) for i in range(num_items)], vectors.shape[1] if len(keys) else dim, salt="tiger")
    if len(keys):
        embeddings[np.asarray(keys, dtype=np.int64)] = vectors
    config = SemanticIdConfig(levels=levels, codes_per_level=min(codes_per_level, num_items), seed=seed)
    codes = quantize(train_codebook(embeddings, config), embeddings).codes
    return disambiguate(codes, (config.codes_per_level,) * levels)
