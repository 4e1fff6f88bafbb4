"""Readers of the files the generative benchmarks use directly, as flat event arrays for
``training.generative.data.leave_one_out``; and the ID table a dataset brings (Beauty's LETTER IDs).

    Beauty (TIGER's split)   Beauty.inter.json {user: [item, ...]} oldest first, no times (position = time)
                             Beauty.index.json {item: ["<a_183>", ...]} published semantic IDs
    MovieLens (ml-100k)      u.data: user \t item \t rating \t unix seconds (every rating is an interaction)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.generative.data import SequenceData, leave_one_out
from training.generative.semantic_ids import SemanticIdTable, import_codes


def load_beauty(folder: Path, *, max_len: int = 50, filter_seen: bool = True) -> tuple[SequenceData, dict[str, int]]:
    """The Beauty split and the dense index of its item keys (the catalogue is every item of the files)."""
    folder = Path(folder)
    sequences = json.loads(next(folder.glob("*.inter.json")).read_text())
    keys = {str(i) for seq in sequences.values() for i in seq}
    index_files = list(folder.glob("*.index.json"))
    if index_files:
        keys |= set(json.loads(index_files[0].read_text()))
    item_index = {key: n for n, key in enumerate(sorted(keys, key=lambda k: (len(k), k)))}
    lengths = np.array([len(seq) for seq in sequences.values()])
    users = np.repeat(np.arange(len(sequences)), lengths)
    items = np.array([item_index[str(i)] for seq in sequences.values() for i in seq], np.int64)
    position = np.arange(len(items)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    data = leave_one_out(users, items, position, max_len=max_len, num_items=len(item_index), filter_seen=filter_seen, dataset="amazon2014-beauty")
    return data, item_index


def beauty_ids(folder: Path, item_index: dict[str, int]) -> SemanticIdTable:
    """Beauty's published (LETTER) semantic IDs, collision-checked and disambiguated."""
    return import_codes(json.loads(next(Path(folder).glob("*.index.json")).read_text()), item_index)


def load_movielens(folder: Path, *, max_len: int = 50, filter_seen: bool = True) -> SequenceData:
    """ml-100k's ratings as interactions in time order (ties: the file's order)."""
    path = next(Path(folder).rglob("u.data"))
    raw = np.loadtxt(path, dtype=np.int64)
    _, items = np.unique(raw[:, 1], return_inverse=True)
    return leave_one_out(raw[:, 0], items.ravel(), raw[:, 3], max_len=max_len, filter_seen=filter_seen, dataset="movielens-100k")
