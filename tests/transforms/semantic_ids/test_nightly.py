"""One semantic-ID run without Dagster: which items a version trains on, and how stored IDs carry over."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from transforms.semantic_ids import SemanticIdConfig, id_mapping
from transforms.semantic_ids.inputs import (
    ItemEmbeddings,
    SemanticIdInputsError,
    item_embeddings,
    top_categories,
    training_rows,
    with_logged_items,
)
from transforms.semantic_ids.nightly import config_differs, train_next_version, update_semantic_ids

CUTOFF = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
SMALL = SemanticIdConfig(levels=2, codes_per_level=4, train_end=CUTOFF.isoformat())


def _embeddings(ids: list[str], seed: int = 0, model: str = "mini") -> ItemEmbeddings:
    """Four clusters in 4-d, one row per id."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 4))
    x = (centres[np.arange(len(ids)) % 4] + 0.1 * rng.standard_normal((len(ids), 4))).astype(np.float32)
    return ItemEmbeddings(pa.array(ids), x, pa.array([f"h-{i}" for i in ids]), model)


def _catalogue(available_from: dict[str, dt.datetime | None], categories: dict[str, list[str]] | None = None) -> pa.Table:
    return pa.table(
        {
            "item_id": list(available_from),
            "available_from": pa.array(list(available_from.values()), pa.timestamp("ms", tz="UTC")),
            "categories": [(categories or {}).get(i) for i in available_from],
        }
    )


def test_item_embeddings_splits_the_table_and_refuses_mixed_models() -> None:
    table = pa.table(
        {
            "item_id": ["a", "b"],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array([1.0, 0.0, 0.0, 1.0], pa.float32()), 2),
            "text_hash": ["ha", "hb"],
            "model": ["mini", "mini"],
        }
    )
    got = item_embeddings(table)
    assert got.vectors.tolist() == [[1.0, 0.0], [0.0, 1.0]] and got.model == "mini"
    assert got.item_ids.to_pylist() == ["a", "b"] and got.text_hashes.to_pylist() == ["ha", "hb"]
    mixed = table.set_column(3, "model", pa.array(["mini", "large"]))
    with pytest.raises(SemanticIdInputsError, match="mix models"):
        item_embeddings(mixed)


def test_training_rows_counts_unknown_later_and_eligible_items() -> None:
    # a: always available, b: before the cut-off, c: after it, d: not in the catalogue.
    items = _catalogue({"a": None, "b": CUTOFF - dt.timedelta(days=1), "c": LATER})
    rows = training_rows(items, pa.array(["a", "b", "c", "d"]), CUTOFF)
    assert rows.known.tolist() == [True, True, True, False]
    assert rows.unknown_items == 1 and rows.eligible == 2
    assert rows.train_end == CUTOFF.isoformat()


def test_items_described_from_reviews_alone_are_available_from_their_first_logged_time() -> None:
    # a: in the catalogue; r: reviewed before the cut-off, no catalogue row; s: first logged after it; e: in the logs
    # but without text (its co-occurrence vector never trains a text codebook).
    items = _catalogue({"a": None})
    day = dt.timedelta(days=1)
    # The id map as ingestion writes it: each id's first time in any log (r: reviewed 2 and 3 days before the cut-off,
    # an event 5 days before); a user who shares an item's external id is not an item.
    id_map = pa.table({"entity": ["item", "item", "item", "item", "user"], "external_id": ["a", "r", "s", "e", "s"],
                       "idx": [0, 1, 2, 3, 0],
                       "first_seen": pa.array([LATER, CUTOFF - 5 * day, LATER, CUTOFF - day, CUTOFF - 9 * day], pa.timestamp("ms", tz="UTC"))})
    available = with_logged_items(items, id_map, pa.array(["a", "r", "s"]))
    assert dict(zip(available["item_id"].to_pylist(), available["available_from"].to_pylist(), strict=True)) == {
        "a": None, "r": CUTOFF - 5 * day, "s": LATER}
    rows = training_rows(available, pa.array(["a", "e", "r", "s"]), CUTOFF)
    assert rows.known.tolist() == [True, False, True, True] and rows.eligible == 2
    # No catalogue at all (reviews without metadata): the id map alone says when an item arrived.
    alone = with_logged_items(None, id_map, pa.array(["r", "s"]))
    assert sorted(alone["item_id"].to_pylist()) == ["r", "s"]


def test_top_categories_takes_the_first_category_and_none_without_a_catalogue() -> None:
    items = _catalogue({"a": None, "b": None}, {"a": ["tent", "outdoor"]})
    assert top_categories(items, ["b", "a", "z"]) == [None, "tent", None]
    assert top_categories(None, ["a"]) is None


def test_a_version_trains_only_on_items_before_the_cut_off() -> None:
    ids = [f"i{n:02d}" for n in range(24)]
    embeddings = _embeddings(ids)
    # The last four items appear after the cut-off: moving their vectors must not change the codebook.
    items = _catalogue({i: (LATER if n >= 20 else None) for n, i in enumerate(ids)})
    first = train_next_version(embeddings, items, SMALL, CUTOFF, current=None)
    moved = embeddings.vectors.copy()
    moved[20:] += 5.0
    second = train_next_version(dataclasses.replace(embeddings, vectors=moved), items, SMALL, CUTOFF, current=None)
    assert all(np.array_equal(a, b) for a, b in zip(first.codebook.centroids, second.codebook.centroids, strict=True))
    meta = first.to_metadata()
    assert meta["action"] == "trained" and meta["version"] == 1 and meta["parent_version"] is None
    assert (meta["training_items"], meta["items_after_cutoff"], meta["items_not_in_catalogue"], meta["items"]) == (20, 4, 0, 24)
    rebuilt = train_next_version(embeddings, items, SMALL, CUTOFF, current=1).to_metadata()
    assert rebuilt["action"] == "rebuilt" and rebuilt["version"] == 2 and rebuilt["parent_version"] == 1


def test_config_differs_compares_the_cut_off_only_when_one_is_asked_for() -> None:
    ids = [f"i{n:02d}" for n in range(8)]
    codebook = train_next_version(_embeddings(ids), _catalogue(dict.fromkeys(ids)), SMALL, CUTOFF, None).codebook
    assert not config_differs(codebook, SMALL)
    assert not config_differs(codebook, dataclasses.replace(SMALL, train_end=None))  # the cut-off moves with the data
    assert config_differs(codebook, dataclasses.replace(SMALL, train_end=LATER.isoformat()))
    assert config_differs(codebook, dataclasses.replace(SMALL, levels=3))


def test_ids_are_built_then_kept_then_remapped_after_a_rebuild() -> None:
    ids = [f"i{n:02d}" for n in range(12)]
    items = _catalogue(dict.fromkeys([*ids, "new"]))
    v1 = train_next_version(_embeddings(ids), items, SMALL, CUTOFF, None).codebook
    built = update_semantic_ids(v1, _embeddings(ids), None)
    assert (built.action, built.mapping, built.passed) == ("full_build", None, True)

    # Next night: one new item; every existing ID stays exactly as it was.
    grown = update_semantic_ids(v1, _embeddings([*ids, "new"]), built.assignment.table)
    assert grown.action == "incremental" and grown.changed == 0 and grown.duplicates == 0
    assert grown.assignment.new_items == 1 and grown.assignment.kept_items == 12
    kept = dict(zip(grown.assignment.table["item_id"].to_pylist(), grown.assignment.table["semantic_id"].to_pylist(), strict=True))
    assert all(kept[i] == s for i, s in zip(ids, built.assignment.table["semantic_id"].to_pylist(), strict=True))
    assert grown.to_metadata(grown.report())["new_items"] == 1

    v2 = train_next_version(_embeddings(ids, seed=1), items, SMALL, CUTOFF, 1).codebook
    remapped = update_semantic_ids(v2, _embeddings(ids, seed=1), built.assignment.table)
    assert remapped.action == "rebuild"
    assert remapped.mapping is not None
    assert remapped.mapping.equals(id_mapping(built.assignment.table, remapped.assignment.table, 1, 2))


def test_stale_ids_count_items_whose_text_changed_since_they_got_an_id() -> None:
    ids = [f"i{n:02d}" for n in range(8)]
    v1 = train_next_version(_embeddings(ids), _catalogue(dict.fromkeys(ids)), SMALL, CUTOFF, None).codebook
    built = update_semantic_ids(v1, _embeddings(ids), None)
    edited = _embeddings(ids)
    edited = dataclasses.replace(edited, text_hashes=pa.array(["edited", *edited.text_hashes.to_pylist()[1:]]))
    again = update_semantic_ids(v1, edited, built.assignment.table)
    assert again.stale_ids == 1 and again.changed == 0  # the ID is kept all the same


def test_mismatched_model_and_newer_ids_are_refused() -> None:
    ids = [f"i{n:02d}" for n in range(8)]
    v1 = train_next_version(_embeddings(ids), _catalogue(dict.fromkeys(ids)), SMALL, CUTOFF, None).codebook
    with pytest.raises(SemanticIdInputsError, match="rebuild: true"):
        update_semantic_ids(v1, _embeddings(ids, model="large"), None)
    built = update_semantic_ids(v1, _embeddings(ids), None).assignment.table
    newer = built.set_column(built.schema.get_field_index("codebook_version"), "codebook_version", pa.array([2] * 8, built.schema.field("codebook_version").type))
    with pytest.raises(SemanticIdInputsError, match="newer than"):
        update_semantic_ids(v1, _embeddings(ids), newer)
