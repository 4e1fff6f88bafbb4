"""Semantic-ID token strings (``<a_12><b_7><c_201><d_0>``) and the inverse lookup from ID to item."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.semantic_ids.config import LEVEL_LETTERS

_TOKEN = re.compile(r"<([a-z])_(\d+)>")


def format_semantic_id(codes: Sequence[int]) -> str:
    """``(12, 7, 201, 0)`` -> ``"<a_12><b_7><c_201><d_0>"``."""
    return "".join(f"<{LEVEL_LETTERS[i]}_{int(c)}>" for i, c in enumerate(codes))


def parse_semantic_id(text: str) -> tuple[int, ...]:
    """Inverse of :func:`format_semantic_id`; refuses anything that is not a well-formed ID."""
    parts = _TOKEN.findall(text)
    if not parts or "".join(f"<{a}_{b}>" for a, b in parts) != text:
        raise ValueError(f"not a semantic ID: {text!r}")
    letters = "".join(a for a, _ in parts)
    if letters != LEVEL_LETTERS[: len(parts)]:
        raise ValueError(f"semantic ID levels out of order in {text!r}: expected {LEVEL_LETTERS[: len(parts)]}")
    return tuple(int(b) for _, b in parts)


def semantic_id_strings(codes: np.ndarray) -> pa.Array:
    """Token strings for an ``(n, L)`` code matrix, built column-wise in Arrow (no Python loop)."""
    n, length = codes.shape
    if length == 0:
        raise ValueError("a semantic ID needs at least one code")
    pieces: list[pa.Array | str] = []
    for level in range(length):
        pieces += [f"<{LEVEL_LETTERS[level]}_", pc.cast(pa.array(codes[:, level]), pa.string()), ">"]
    return pc.binary_join_element_wise(*pieces, "") if n else pa.array([], pa.string())


def codes_list_array(codes: np.ndarray) -> pa.Array:
    """``(n, L)`` int32 codes as a ``list<int32>`` array (zero-copy offsets)."""
    n, length = codes.shape
    offsets = pa.array(np.arange(0, (n + 1) * length, length, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(codes, np.int32).reshape(-1)))


def codes_matrix(codes: pa.ChunkedArray | pa.Array, length: int) -> np.ndarray:
    """A ``list<int32>`` column with ``length`` codes per row back to an ``(n, length)`` int32 matrix."""
    arr = codes.combine_chunks() if isinstance(codes, pa.ChunkedArray) else codes
    if len(arr) == 0:
        return np.zeros((0, length), np.int32)
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if np.any(lengths != length):
        raise ValueError(f"expected {length} codes per semantic ID, found lengths {sorted(set(lengths.tolist()))}")
    return pc.list_flatten(arr).to_numpy(zero_copy_only=False).astype(np.int32).reshape(-1, length)


class SemanticIdIndex:
    """Inverse lookup: semantic ID (token string or code tuple) -> item id, and prefix search.

    Built from an ``item_semantic_ids`` or ``id_lookup`` table (columns ``item_id``, ``codes``).
    Prefix search uses the lexicographic order of the codes, so it costs two binary searches.
    """

    def __init__(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            raise ValueError("cannot index an empty semantic-ID table")
        length = len(table["codes"][0].as_py())
        codes = codes_matrix(table["codes"], length)
        order = np.lexsort(codes.T[::-1])
        self._codes = codes[order]
        self._items = np.asarray(table["item_id"].to_pylist(), dtype=object)[order]
        self._by_id = {tuple(int(c) for c in row): item for row, item in zip(self._codes.tolist(), self._items, strict=True)}
        if len(self._by_id) != len(self._items):
            raise ValueError("semantic IDs are not unique: the table cannot be inverted")
        self.length = length

    def __len__(self) -> int:
        return len(self._items)

    def item_for(self, semantic_id: str | Sequence[int]) -> str:
        """The item a semantic ID names; KeyError when none does."""
        key = parse_semantic_id(semantic_id) if isinstance(semantic_id, str) else tuple(int(c) for c in semantic_id)
        try:
            return str(self._by_id[key])
        except KeyError:
            raise KeyError(f"no item has semantic ID {format_semantic_id(key)}") from None

    def items_with_prefix(self, prefix: Sequence[int]) -> list[str]:
        """Items whose ID starts with ``prefix`` (in ID order)."""
        p = np.asarray(prefix, dtype=np.int64)
        if len(p) > self.length:
            return []
        lo, hi = 0, len(self._items)
        # Narrow the range one level at a time: within [lo, hi) level ``j`` is sorted.
        for level, code in enumerate(p):
            column = self._codes[lo:hi, level]
            lo, hi = lo + int(np.searchsorted(column, code, "left")), lo + int(np.searchsorted(column, code, "right"))
            if lo == hi:
                return []
        return [str(i) for i in self._items[lo:hi]]
