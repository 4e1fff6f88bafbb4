"""The dataloader's compiled batch-assembly kernels against plain Python loops over the same rows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from training.data.kernels import pack_rows, pad_events, pad_rows, ragged_arange

lengths_lists = st.lists(st.integers(0, 6), min_size=1, max_size=12)


def values_for(lengths: list[int]) -> np.ndarray:
    """Distinct values, so a row copied from the wrong place cannot go unnoticed."""
    return np.arange(100, 100 + sum(lengths), dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(lengths=lengths_lists, data=st.data())
def test_pack_rows_keeps_each_rows_tail_in_the_given_row_order(lengths: list[int], data: st.DataObject) -> None:
    values = values_for(lengths)
    starts_all = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    # Keep each row's last ``kept`` values (what the dataset does with max_len), in a shuffled row order.
    kept = np.array([data.draw(st.integers(0, n)) for n in lengths], np.int64)
    starts = starts_all + np.array(lengths) - kept
    order = np.array(data.draw(st.permutations(range(len(lengths)))), np.int64)
    shift = data.draw(st.integers(0, 2))

    packed = pack_rows(values, starts, kept, order, shift, np.int32, int(kept.sum()))

    expected = [int(v) + shift for r in order for v in values[starts[r] : starts[r] + kept[r]]]
    assert packed.dtype == np.int32 and packed.tolist() == expected


@settings(max_examples=60, deadline=None)
@given(lengths=lengths_lists, width=st.integers(6, 8), data=st.data())
def test_pad_rows_left_pads_each_row_into_its_batch_row(lengths: list[int], width: int, data: st.DataObject) -> None:
    values = values_for(lengths)
    bounds = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    first = data.draw(st.integers(0, len(lengths) - 1))
    count = data.draw(st.integers(0, len(lengths) - first))
    at = data.draw(st.integers(0, 2))
    out = np.full((at + count + 1, width), -1, np.int64)  # -1: rows the kernel must not touch

    pad_rows(values, bounds, first, count, out, at)

    for i in range(count):
        row = values[bounds[first + i] : bounds[first + i + 1]].tolist()
        assert out[at + i].tolist() == [0] * (width - len(row)) + row
    untouched = [r for r in range(len(out)) if not at <= r < at + count]
    assert all(out[r].tolist() == [-1] * width for r in untouched)


def test_pad_events_pads_all_four_columns_alike() -> None:
    # Two rows: the first has 2 events, the second 1; batch width 3.
    bounds = np.array([0, 2, 3], np.int64)
    items, types = np.array([5, 6, 7], np.int32), np.array([1, 2, 3], np.int32)
    stamps, weights = np.array([10, 20, 30], np.int64), np.array([0.5, 1.5, 2.5], np.float32)
    outs = [np.empty((2, 3), a.dtype) for a in (items, types, stamps, weights)]

    pad_events(bounds, 0, 2, 0, items, types, stamps, weights, *outs)

    assert outs[0].tolist() == [[0, 5, 6], [0, 0, 7]]
    assert outs[1].tolist() == [[0, 1, 2], [0, 0, 3]]
    assert outs[2].tolist() == [[0, 10, 20], [0, 0, 30]]
    assert outs[3].tolist() == [[0.0, 0.5, 1.5], [0.0, 0.0, 2.5]]


@given(lengths=st.lists(st.integers(0, 5), max_size=10))
def test_ragged_arange_counts_up_within_each_length(lengths: list[int]) -> None:
    expected = [j for n in lengths for j in range(n)]
    assert ragged_arange(np.array(lengths, np.int64)).tolist() == expected
