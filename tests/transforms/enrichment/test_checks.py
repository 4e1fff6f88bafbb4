"""What the enrichment checks flag, on tiny literal tables."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from transforms.enrichment.checks import (
    covers_every_text,
    off_unit_norm,
    profiles_outside_window,
    provenance_complete,
    unexplained_failures,
)
from transforms.enrichment.types import EntityKind, GenerationTask

CUTOFF = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)


def test_provenance_is_incomplete_when_any_row_lacks_a_model() -> None:
    row = {"generator_kind": "extractive", "model": "m", "prompt_version": "v1", "input_hash": "h", "cache_key": "k"}
    assert provenance_complete(pa.Table.from_pylist([row, row]))
    assert not provenance_complete(pa.Table.from_pylist([row, {**row, "model": ""}]))


def test_profiles_from_another_history_or_a_later_cut_off_are_flagged() -> None:
    # ann: as built now; bob: built from an older history; cid: built at a later cut-off.
    tasks = [GenerationTask(EntityKind.USER, u, {}, "h-" + u, CUTOFF) for u in ("ann", "bob", "cid")]
    outputs = pa.Table.from_pylist(
        [
            {"user_id": "ann", "input_hash": "h-ann", "cutoff": CUTOFF},
            {"user_id": "bob", "input_hash": "old", "cutoff": CUTOFF - dt.timedelta(days=1)},
            {"user_id": "cid", "input_hash": "h-cid", "cutoff": CUTOFF + dt.timedelta(days=1)},
        ]
    )
    assert profiles_outside_window(outputs, tasks, CUTOFF) == (["bob"], ["cid"])


def test_failures_that_also_succeeded_or_carry_no_error_are_unexplained() -> None:
    outputs = pa.table({"item_id": ["a", "b"]})
    failures = pa.table({"item_id": ["b", "c", "d"], "error": ["timeout", "", None]})
    assert unexplained_failures(EntityKind.ITEM, failures, outputs) == (["b"], 2)


def test_embedding_checks_count_off_norm_vectors_and_require_the_wanted_order() -> None:
    table = pa.table(
        {
            "item_id": ["a", "b"],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array([0.6, 0.8, 1.0, 1.0], pa.float32()), 2),
            "text_hash": ["ha", "hb"],
        }
    )
    assert off_unit_norm(table) == 1  # b has norm sqrt(2)
    assert off_unit_norm(table.slice(0, 0)) == 0
    assert covers_every_text(EntityKind.ITEM, table, pa.table({"item_id": ["a", "b"], "text_hash": ["ha", "hb"]}))
    assert not covers_every_text(EntityKind.ITEM, table, pa.table({"item_id": ["b", "a"], "text_hash": ["hb", "ha"]}))
