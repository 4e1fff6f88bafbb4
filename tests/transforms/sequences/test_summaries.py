"""Summaries of built training data: what the shard manifest records and the asset checks count."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.transforms.sequences.helpers import HOUR, T0, event, interactions
from transforms.cutoffs import Cutoffs
from transforms.sequences import summaries

CUTOFFS = Cutoffs(T0 + 24 * HOUR, T0 + 48 * HOUR)
TRAIN_END_MS, VALID_END_MS = (int(c.timestamp() * 1000) for c in (CUTOFFS.train_end, CUTOFFS.valid_end))
LISTS = pa.list_(pa.int64())


def rows(splits: list[str], histories: list[list[int]], targets: list[list[int]] | None = None) -> pa.Table:
    targets = targets if targets is not None else [[] for _ in splits]
    return pa.table({"split": splits, "timestamps": pa.array(histories, LISTS), "target_timestamps": pa.array(targets, LISTS),
                     "item_ids": pa.array([[1] * len(h) for h in histories], LISTS)})


def test_leaking_rows_temporal() -> None:
    # A train row ending just before train_end is fine, one reaching it leaks; a test row may reach into
    # valid but not to valid_end; an empty history leaks nothing.
    table = rows(["train", "train", "valid", "test", "test", "test"],
                 [[0, TRAIN_END_MS - 1], [TRAIN_END_MS], [TRAIN_END_MS + 5], [VALID_END_MS - 1], [VALID_END_MS], []])
    assert summaries.leaking_rows(table, CUTOFFS) == 3
    assert summaries.leaking_rows(rows([], []), CUTOFFS) == 0


def test_leaking_rows_leave_one_out() -> None:
    # The second row's history holds an event after its first target; a training row has no target.
    table = rows(["valid", "valid", "train"], [[1, 2], [1, 9], [1, 50]], [[3], [5], []])
    assert summaries.leaking_rows(table, None) == 1


def test_first_and_last_elements_with_empty_lists() -> None:
    column = pa.chunked_array([pa.array([[3, 4], []], LISTS), pa.array([[7]], LISTS)])
    assert summaries.last_elements(column).tolist() == [4, np.iinfo(np.int64).min, 7]
    assert summaries.first_elements(column).tolist() == [3, np.iinfo(np.int64).max, 7]


@given(st.lists(st.lists(st.integers(-5, 5), max_size=6), max_size=12))
def test_unordered_rows_matches_a_loop(lists: list[list[int]]) -> None:
    expected = sum(any(b < a for a, b in itertools.pairwise(v)) for v in lists)
    assert summaries.unordered_rows(pa.chunked_array([pa.array(lists, LISTS)])) == expected


def test_vocab_and_id_space() -> None:
    id_maps = pa.table({"entity": ["user", "user", "item"], "external_id": ["a", "b", "x"], "idx": pa.array([0, 4, 2], pa.int64())})
    assert summaries.id_space(id_maps) == {"users": 5, "items": 3}
    split_rows = pa.table({"semantic_ids": pa.array([[[0, 5], [2, 1]], [[1, 0]]], pa.list_(pa.list_(pa.int32())))})
    vocab = summaries.vocab({"users": 5, "items": 3}, True, split_rows)
    assert (vocab["users"], vocab["items"], vocab["semantic_id_levels"], vocab["semantic_id_codebook_sizes"]) == (5, 3, 2, [3, 6])
    assert summaries.vocab({"users": 5, "items": 3}, False, split_rows)["semantic_id_levels"] == 0
    with pytest.raises(ValueError, match="different lengths"):
        summaries.vocab({"users": 1, "items": 1}, True, pa.table({"semantic_ids": pa.array([[[0, 5], [2]]], pa.list_(pa.list_(pa.int32())))}))


def test_length_summary() -> None:
    table = rows(["train", "train", "test"], [[1], [1, 2, 3], [4, 5]])
    assert summaries.length_summary(table) == {"train": {"mean": 2.0, "p50": 2.0, "p95": 2.9, "max": 3},
                                              "test": {"mean": 2.0, "p50": 2.0, "p95": 2.0, "max": 2}}


def test_rows_after_training() -> None:
    ts = pa.array([T0, CUTOFFS.train_end - HOUR, CUTOFFS.train_end, CUTOFFS.valid_end], pa.timestamp("ms", tz="UTC"))
    assert summaries.rows_after_training(ts, CUTOFFS) == 2
    assert summaries.rows_after_training(ts, None) == 0


def test_dangling_edges_and_duplicate_rows() -> None:
    nodes = pa.table({"node_type": ["user", "item", "item"], "node_idx": [0, 0, 0]})
    edges = pa.table({"src_type": ["user", "user"], "src_idx": [0, 1], "dst_type": ["item", "item"], "dst_idx": [0, 0]})
    assert summaries.dangling_edges(nodes, edges) == 1  # user 1 is no node
    assert summaries.duplicate_rows(nodes, ["node_type", "node_idx"]) == 1


def test_k_core_violations() -> None:
    # u1 and u2 share i1 and i2 in the train split (a 2-core); u3's only train event is i1, its other one is
    # in the test split: below k. Leave-one-out counts every event: u3 has two items, but i3 one user.
    events = interactions([event("a", 1, 1, 1), event("b", 1, 2, 2), event("c", 2, 1, 3), event("d", 2, 2, 4),
                           event("e", 3, 1, 5), event("f", 3, 3, 50)])
    assert summaries.k_core_violations(events, 2, CUTOFFS) == 2  # u3 and i3
    assert summaries.k_core_violations(events, 2, None) == 1  # i3
    assert summaries.k_core_violations(events, None, CUTOFFS) == 0
    assert summaries.k_core_violations(events.filter(pa.array([True] * 4 + [False] * 2)), 2, CUTOFFS) == 0


def test_leaking_rows_matches_the_cutoffs_rule() -> None:
    rng = random.Random(3)
    splits = [rng.choice(["train", "valid", "test"]) for _ in range(200)]
    start = int(T0.timestamp() * 1000)  # three days of milliseconds: train, valid, test
    histories = [sorted(rng.randrange(start, VALID_END_MS + 24 * 3600 * 1000) for _ in range(rng.randrange(4))) for _ in splits]
    expected = sum(bool(h) and CUTOFFS.split_of(T0.fromtimestamp(h[-1] / 1000, T0.tzinfo)) not in
                   ({"train"} if s != "test" else {"train", "valid"}) for s, h in zip(splits, histories, strict=True))
    assert summaries.leaking_rows(rows(splits, histories), CUTOFFS) == expected > 0


def test_codebook_sizes_are_the_codebooks_not_the_codes_seen() -> None:
    # 3 quantized levels of 256 codes and a disambiguating level; the rows use only small codes, and one
    # item (not in the rows) holds the largest collision counter.
    ids = pa.table({"item_id": ["a", "b", "c"], "codes": [[1, 2, 3, 0], [1, 2, 3, 1], [9, 9, 9, 4]], "codebook_version": [2, 2, 2]})
    books = pa.table({"version": [1, 2], "levels": [3, 3], "codes_per_level": [64, 256]})
    assert summaries.codebook_sizes(ids, books) == [256, 256, 256, 5]
    assert summaries.codebook_sizes(ids, None) == [10, 10, 10, 5]  # no codebook row: the whole table's largest codes
    rows = pa.table({"semantic_ids": pa.array([[[1, 2, 3, 0], None]], pa.list_(pa.list_(pa.int32())))})
    vocab = summaries.vocab({"items": 3, "users": 1}, True, rows, [256, 256, 256, 5])
    assert vocab["semantic_id_levels"] == 4 and vocab["semantic_id_codebook_sizes"] == [256, 256, 256, 5]
