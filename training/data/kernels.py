"""Batch-assembly kernels: compiled (numba, ``nogil``) row copies, run on the read-ahead threads and in
the iterating thread without holding the GIL, and a vectorized ragged arange.

``cache=True`` keeps the compiled kernels in ``__pycache__`` beside this module, so a new process
(a DataLoader worker, a torchrun rank) loads them instead of compiling again.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def pad_rows(values: np.ndarray, bounds: np.ndarray, first: int, count: int, out: np.ndarray, at: int) -> None:
    """``out[at + i]`` = row ``first + i``'s values (``values[bounds[r] : bounds[r + 1]]``), left-padded with
    zeros (``out`` is ``[B, width]``)."""
    width = out.shape[1]
    for i in range(count):
        lo, hi = bounds[first + i], bounds[first + i + 1]
        pad = width - (hi - lo)
        line = out[at + i]
        for j in range(pad):  # explicit loops compile to tighter code than numba's slice assignment
            line[j] = 0
        for j in range(hi - lo):
            line[pad + j] = values[lo + j]


@numba.njit(nogil=True, cache=True)
def pad_events(
    bounds: np.ndarray, first: int, count: int, at: int,
    items: np.ndarray, event_types: np.ndarray, timestamps: np.ndarray, weights: np.ndarray,
    out_items: np.ndarray, out_event_types: np.ndarray, out_timestamps: np.ndarray, out_weights: np.ndarray,
) -> None:
    """The ``SEQUENCE_COLUMNS`` of one row group's rows ``first, ..., first + count - 1`` into padded batch
    rows ``at, at + 1, ...`` (one compiled call per group and batch instead of one per column)."""
    pad_rows(items, bounds, first, count, out_items, at)
    pad_rows(event_types, bounds, first, count, out_event_types, at)
    pad_rows(timestamps, bounds, first, count, out_timestamps, at)
    pad_rows(weights, bounds, first, count, out_weights, at)


def pack_rows(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, rows: np.ndarray, shift: int, dtype: type, total: int) -> np.ndarray:
    """Rows ``rows``'s values (``values[starts[r] : starts[r] + counts[r]]``) back to back, plus ``shift``, as ``dtype``."""
    out: np.ndarray = np.empty(total, dtype)
    _pack_rows_into(values, starts, counts, rows, shift, out)
    return out


@numba.njit(nogil=True, cache=True)
def _pack_rows_into(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, rows: np.ndarray, shift: int, out: np.ndarray) -> None:
    at = 0
    for i in range(rows.shape[0]):
        row = rows[i]
        start = starts[row]
        for j in range(counts[row]):
            out[at + j] = values[start + j] + shift
        at += counts[row]


def ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """``[0..l0-1, 0..l1-1, ...]`` for the given lengths, vectorized."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    return np.arange(total, dtype=np.int64) - np.repeat(ends - lengths, lengths)
