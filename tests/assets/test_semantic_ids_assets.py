"""The semantic-ID assets across nights: first build, incremental runs, an explicit rebuild, and the
blocking checks that keep a broken table from being written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from assets.resources import CutoffsResource, WarehouseResource
from assets.semantic_ids import CODEBOOKS_KEY, codebooks, item_semantic_ids
from transforms.semantic_ids import SemanticIdIndex, codes_for_catalog, load_codebook
from warehouse.contracts import (
    CORE_ID_MAPS,
    RAW_EVENTS,
    RAW_ITEMS,
    RAW_REVIEWS,
    SEMANTIC_IDS_CODEBOOKS,
    SEMANTIC_IDS_ID_LOOKUP,
    SEMANTIC_IDS_ID_MAPPING,
    SEMANTIC_IDS_ITEM_SEMANTIC_IDS,
    embedding_contract,
)
from warehouse.store import Warehouse

DIM = 8
OP = "__".join(CODEBOOKS_KEY.path)
SMALL = {"levels": 2, "codes_per_level": 4}
TRAIN_END = "2026-03-01T00:00:00+00:00"
LATER = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)


def _embeddings(n: int, seed: int = 0) -> np.ndarray:
    """Four clusters in 8-d, unit rows."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, DIM))
    x = centres[np.arange(n) % 4] + 0.2 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _write_embeddings(store: Warehouse, ids: list[str], x: np.ndarray, model: str = "mini") -> None:
    table = pa.table(
        {
            "item_id": ids,
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM),
            "text_hash": [f"h-{i}" for i in ids],
            "model": [model] * len(ids),
        }
    )
    store.write(embedding_contract("item", DIM), table)


def _write_catalogue(store: Warehouse, available_from: dict[str, dt.datetime | None]) -> None:
    """raw_items with just ids and availability (the other catalogue fields are null)."""
    n = len(available_from)
    columns = {f.name: pa.nulls(n, f.type) for f in RAW_ITEMS.schema}
    columns["item_id"] = pa.array(list(available_from), pa.string())
    columns["available_from"] = pa.array(list(available_from.values()), pa.timestamp("ms", tz="UTC"))
    store.write(RAW_ITEMS, pa.table(columns))


def _run(
    home: Path, raise_on_error: bool = True, catalogue: bool = True, train_end: str | None = TRAIN_END, **config: object
) -> dg.ExecuteInProcessResult:
    """Materialize both assets; ``catalogue``: first list every embedded item as available from the start.

    ``train_end`` goes to the shared ``cutoffs`` resource (None: its default rule over the staged days).
    """
    store = Warehouse(home)
    if catalogue:
        ids = store.read(embedding_contract("item", DIM))["item_id"].to_pylist()
        _write_catalogue(store, dict.fromkeys(ids))
    return dg.materialize(
        [codebooks, item_semantic_ids],
        resources={"warehouse": WarehouseResource(home=str(home)), "cutoffs": CutoffsResource(train_end=train_end, valid_end=train_end)},
        run_config={"ops": {OP: {"config": {**SMALL, **config}}}},
        raise_on_error=raise_on_error,
    )


def _codebook_meta(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    meta = result.asset_materializations_for_node(OP)[0].metadata
    return {k: v.value for k, v in meta.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _ids(store: Warehouse) -> dict[str, str]:
    table = pq.read_table(store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)[0])
    return dict(zip(table["item_id"].to_pylist(), table["semantic_id"].to_pylist(), strict=True))


def test_nightly_runs_keep_ids_and_only_an_explicit_rebuild_changes_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Warehouse(home)
    x = _embeddings(60)
    names = [f"item{i:03d}" for i in range(60)]

    # Night 1: 40 items, first build (version 1).
    _write_embeddings(store, names[:40], x[:40])
    first = _run(home)
    assert all(_checks(first).values())
    night1 = _ids(store)
    assert len(night1) == 40 and len(set(night1.values())) == 40
    codebook_hash = store.manifest(SEMANTIC_IDS_CODEBOOKS)["all"]["content_hash"]

    # Night 2: 20 new items, 5 of them exact copies of existing embeddings (forced collisions).
    x2 = x.copy()
    x2[40:45] = x[:5]
    _write_embeddings(store, names, x2)
    second = _run(home)
    assert all(_checks(second).values())
    night2 = _ids(store)
    assert {k: night2[k] for k in night1} == night1  # nobody's ID moved
    assert len(night2) == 60 and len(set(night2.values())) == 60
    assert store.manifest(SEMANTIC_IDS_CODEBOOKS)["all"]["content_hash"] == codebook_hash  # no retraining
    meta = second.asset_materializations_for_node("semantic_ids__item_semantic_ids")[0].metadata
    assert meta["action"].value == "incremental" and meta["new_items"].value == 20
    assert meta["collided_new_items"].value >= 5

    # Night 3: an explicit rebuild with other settings: version 2, every item remapped, mapping stored.
    rebuilt = _run(home, rebuild=True, seed=7, balanced=True, disambiguation="REASSIGN_LAST", codes_per_level=16)
    assert all(_checks(rebuilt).values())
    stored = store.read(SEMANTIC_IDS_CODEBOOKS)
    assert stored["version"].to_pylist() == [1, 2] and stored["parent_version"].to_pylist() == [None, 1]
    night3 = _ids(store)
    mapping = store.read(SEMANTIC_IDS_ID_MAPPING).to_pylist()
    assert len(mapping) == 60
    assert all((m["from_version"], m["to_version"]) == (1, 2) for m in mapping)
    assert {m["item_id"]: (m["old_semantic_id"], m["new_semantic_id"]) for m in mapping} == {
        i: (night2[i], night3[i]) for i in names
    }
    # The inverse lookup names every item by its current ID.
    index = SemanticIdIndex(store.read(SEMANTIC_IDS_ID_LOOKUP))
    assert all(index.item_for(sid) == item for item, sid in night3.items())
    assert set(store.read(SEMANTIC_IDS_ID_LOOKUP)["codebook_version"].to_pylist()) == {2}
    assert all(sid.count("<") == 2 for sid in night3.values())  # reassign_last: no extra level


def test_a_table_that_would_change_existing_ids_is_not_written_and_the_check_blocks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Warehouse(home)
    x = _embeddings(30)
    names = [f"item{i:03d}" for i in range(30)]
    _write_embeddings(store, names, x)
    _run(home)
    # Someone hand-edits the stored IDs so that two items share one: the next run must refuse it.
    path = store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)[0]
    table = pq.read_table(path)
    broken = table.set_column(1, "semantic_id", pc.if_else(pc.equal(table["item_id"], "item001"), table["semantic_id"][0], table["semantic_id"]))
    pq.write_table(broken, path)
    result = _run(home, raise_on_error=False)
    assert not result.success  # a blocking check failed: the step fails, nothing downstream runs
    assert _checks(result) == {
        "full_ids_unique": False, "existing_ids_unchanged": True, "versions_immutable": True, "codes_alive": True
    }
    assert pq.read_table(path).equals(broken)  # left as it was, not overwritten
    meta = result.asset_materializations_for_node("semantic_ids__item_semantic_ids")[0].metadata
    assert meta["written"].value is False


def test_embeddings_from_another_model_require_a_rebuild(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Warehouse(home)
    names = [f"item{i:03d}" for i in range(20)]
    _write_embeddings(store, names, _embeddings(20), model="mini")
    _run(home)
    _write_embeddings(store, names, _embeddings(20, seed=1), model="bigger")
    with pytest.raises(dg.Failure, match="rebuild: true"):
        _run(home)
    _run(home, rebuild=True)  # the explicit rebuild accepts the new space
    assert set(pq.read_table(store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)[0])["codebook_version"].to_pylist()) == {2}


def test_codebook_trains_only_on_items_available_before_the_cut_off_and_encodes_every_item(tmp_path: Path) -> None:
    """Two worlds share the same 40 early items and differ only in their later (cold-start) items: the
    codebooks must be byte-identical, and every item of each world, later ones included, gets an ID."""
    x = _embeddings(40)
    early = [f"item{i:03d}" for i in range(40)]
    tables = []
    for world, (late, scale) in enumerate([(12, 1.0), (30, 25.0)]):
        home = tmp_path / f"world{world}"
        store = Warehouse(home)
        late_names = [f"new{world}_{i:02d}" for i in range(late)]
        late_x = _embeddings(late, seed=10 + world) * scale  # far from the early items in world 1
        # "ghost" is embedded but not in the catalogue: its availability is unknown, so it is not trained on.
        _write_embeddings(store, [*early, *late_names, "ghost"], np.concatenate([x, late_x, x[:1] * 50]))
        _write_catalogue(store, {**{n: None if i % 2 else dt.datetime(2026, 1, 1, tzinfo=dt.UTC) for i, n in enumerate(early)},
                                 **dict.fromkeys(late_names, LATER)})
        result = _run(home, catalogue=False)
        assert all(_checks(result).values())
        meta = _codebook_meta(result)
        assert meta["train_end"] == TRAIN_END and meta["training_items"] == 40 and meta["trained_items"] == 40
        assert meta["items_after_cutoff"] == late and meta["items_not_in_catalogue"] == 1
        ids = _ids(store)
        assert set(ids) == {*early, *late_names, "ghost"} and len(set(ids.values())) == len(ids)
        tables.append(store.read(SEMANTIC_IDS_CODEBOOKS))
    assert tables[0].equals(tables[1])  # the later items left no trace on the codebook
    assert tables[0]["trained_items"].to_pylist() == [40]
    assert '"train_end": "2026-03-01T00:00:00+00:00"' in tables[0]["config"][0].as_py()


def test_default_cut_off_is_the_shared_default_rule(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Warehouse(home)
    names = [f"item{i:03d}" for i in range(24)]
    _write_embeddings(store, names, _embeddings(24))
    # Events on 1, 2 and 10 March: three days with data, the first 70% (two of them) train, so the cut-off
    # is midnight starting 3 March (the rule every layer uses: the days with data, transforms.cutoffs).
    for day in (1, 2, 10):
        ts = dt.datetime(2026, 3, day, 12, tzinfo=dt.UTC)
        events = {f.name: pa.nulls(1, f.type) for f in RAW_EVENTS.schema}
        events.update(event_id=pa.array([f"e{day}"]), user_id=pa.array(["u"]), event_type=pa.array(["view"]),
                      ts=pa.array([ts], pa.timestamp("ms", tz="UTC")))
        store.write(RAW_EVENTS, pa.table(events), partition=ts.date())
    # 20 items are older than the cut-off; 4 arrive on 8 March, after it (not trained on).
    _write_catalogue(store, {n: dt.datetime(2026, 3, 8 if i >= 20 else 1, tzinfo=dt.UTC) for i, n in enumerate(names)})
    meta = _codebook_meta(_run(home, catalogue=False, train_end=None))
    assert meta["train_end"] == "2026-03-03T00:00:00+00:00"
    assert meta["training_items"] == 20 and meta["items_after_cutoff"] == 4


def test_too_few_items_before_the_cut_off_fail_with_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Warehouse(home)
    names = [f"item{i:03d}" for i in range(20)]
    _write_embeddings(store, names, _embeddings(20))
    _write_catalogue(store, {n: None if i < 3 else LATER for i, n in enumerate(names)})  # 3 early items < 4 codes
    with pytest.raises(dg.Failure, match="only 3 of 20 items are available before the training cut-off"):
        _run(home, catalogue=False, fit_to_catalog=False)
    assert store.read(SEMANTIC_IDS_CODEBOOKS).num_rows == 0  # nothing trained on the later items instead


def test_a_catalog_smaller_than_the_codes_trains_fewer_codes_and_says_so(tmp_path: Path) -> None:
    """By default (fit_to_catalog) a small catalog (Open Bandit's 80 items against 256 codes) trains with
    fewer codes per level, on the items before the cut-off only, instead of failing the whole build."""
    home = tmp_path / "home"
    store = Warehouse(home)
    names = [f"item{i:03d}" for i in range(40)]
    _write_embeddings(store, names, _embeddings(40))
    _write_catalogue(store, {n: None if i < 20 else LATER for i, n in enumerate(names)})  # 20 early items < 32 codes
    result = _run(home, catalogue=False, levels=2, codes_per_level=32)
    book = load_codebook(store.read(SEMANTIC_IDS_CODEBOOKS))
    assert [len(c) for c in book.centroids] == [4, 4]  # codes_for_catalog(20, 32): four items per code at least
    assert codes_for_catalog(20, 32) == 4 and codes_for_catalog(80, 256) == 16 and codes_for_catalog(300, 256) == 256
    meta = result.asset_materializations_for_node(OP)[0].metadata
    assert (meta["codes_per_level"].value, meta["codes_per_level_requested"].value) == (4, 32)
    assert len(_ids(store)) == 40  # every item encoded, the later ones included


def test_without_a_catalogue_or_logs_the_codebook_refuses_to_train(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Warehouse(home)
    _write_embeddings(store, [f"item{i:03d}" for i in range(20)], _embeddings(20))
    with pytest.raises(dg.Failure, match="materialize raw/items, raw/reviews or raw/events first"):
        _run(home, catalogue=False)
    with pytest.raises(dg.Failure, match="materialize raw/events first or set train_end and valid_end"):
        _run(home, train_end=None)


def test_items_described_from_reviews_without_a_catalogue_train_from_their_first_review(tmp_path: Path) -> None:
    """Reviews without metadata (Amazon 2014's 5-core files): the text of 24 items, no raw_items. The 20 first
    reviewed before the cut-off train the codebook; the 4 first reviewed after it are only encoded."""
    home = tmp_path / "home"
    store = Warehouse(home)
    ids = [f"item{i:03d}" for i in range(24)]
    _write_embeddings(store, ids, _embeddings(24))
    when = [dt.datetime(2026, 2, 2, tzinfo=dt.UTC) if i < 20 else LATER for i in range(24)]
    columns = {f.name: pa.nulls(24, f.type) for f in RAW_REVIEWS.schema}
    columns.update(review_id=pa.array([f"r{i}" for i in range(24)]), user_id=pa.array(["u1"] * 24), item_id=pa.array(ids),
                   ts=pa.array(when, pa.timestamp("ms", tz="UTC")), text=pa.array(["words"] * 24))
    store.write(RAW_REVIEWS, pa.table(columns), partition=dt.date(2026, 2, 2))
    # The id map as ingestion writes it with those reviews: each item first seen at its review.
    store.write(CORE_ID_MAPS, pa.table({"entity": ["item"] * 24, "external_id": ids, "idx": list(range(24)),
                                        "first_seen": pa.array(when, pa.timestamp("ms", tz="UTC"))}).cast(CORE_ID_MAPS.schema))
    result = _run(home, catalogue=False)
    assert result.success and all(_checks(result).values())
    meta = _codebook_meta(result)
    assert (meta["training_items"], meta["items_after_cutoff"], meta["items_not_in_catalogue"]) == (20, 4, 0)
    table = pq.read_table(store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)[0])
    assert sorted(table["item_id"].to_pylist()) == ids and set(table["embedding_source"].to_pylist()) == {"text"}


def _write_events(store: Warehouse, histories: dict[str, list[str]], day: int = 2) -> None:
    """One event a minute per user in list order, on ``day`` February (before TRAIN_END)."""
    start = dt.datetime(2026, 2, day, tzinfo=dt.UTC)
    rows = [(u, item, start + dt.timedelta(minutes=i)) for u, items in histories.items() for i, item in enumerate(items)]
    columns = {f.name: pa.nulls(len(rows), f.type) for f in RAW_EVENTS.schema}
    columns.update(
        event_id=pa.array([f"e{k}" for k in range(len(rows))]), user_id=pa.array([r[0] for r in rows]),
        item_id=pa.array([r[1] for r in rows]), event_type=pa.array(["click"] * len(rows)),
        ts=pa.array([r[2] for r in rows], pa.timestamp("ms", tz="UTC")),
    )
    store.write(RAW_EVENTS, pa.table(columns), partition=start.date())


# 24 items in four tastes of six; each user walks through one taste.
TASTES = {f"u{k}": [f"t{k % 4}_{j}" for j in range(6)][k % 3:] + [f"t{k % 4}_{j}" for j in range(6)][: k % 3] for k in range(32)}


def test_an_events_only_dataset_gets_a_semantic_id_for_every_item(tmp_path: Path) -> None:
    """No catalog, no text embeddings: the codebook trains on co-occurrence embeddings of the training window."""
    home = tmp_path / "home"
    store = Warehouse(home)
    _write_events(store, TASTES)
    result = _run(home, catalogue=False)
    assert result.success and all(_checks(result).values())
    table = pq.read_table(store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)[0])
    assert sorted(table["item_id"].to_pylist()) == sorted({i for items in TASTES.values() for i in items})
    assert set(table["embedding_source"].to_pylist()) == {"cooccurrence"}
    assert {len(c) for c in table["codes"].to_pylist()} == {3}  # 2 levels + the disambiguating code
    meta = _codebook_meta(result)
    assert meta["items_without_content_share"] == 1.0 and str(meta["embedding_model"]).startswith("cooccurrence-ppmi-svd@1")


def test_items_without_catalog_text_get_ids_of_the_same_width_marked_by_source(tmp_path: Path) -> None:
    """Text for 20 of 24 logged items plus 4 logged ones without any: all 24 + the 20 get an ID."""
    home = tmp_path / "home"
    store = Warehouse(home)
    logged = sorted({i for items in TASTES.values() for i in items})
    _write_embeddings(store, logged[:20], _embeddings(20))
    _write_events(store, TASTES)
    result = _run(home)
    assert result.success and all(_checks(result).values())
    table = pq.read_table(store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)[0])
    sources = dict(zip(table["item_id"].to_pylist(), table["embedding_source"].to_pylist(), strict=True))
    assert sorted(sources) == logged
    assert [sources[i] for i in logged[20:]] == ["cooccurrence"] * 4 and {sources[i] for i in logged[:20]} == {"text"}
    assert {len(c) for c in table["codes"].to_pylist()} == {3} and len(set(table["semantic_id"].to_pylist())) == 24
    meta = {k: v.value for k, v in result.asset_materializations_for_node("semantic_ids__item_semantic_ids")[0].metadata.items()}
    assert meta["items_without_content_share"] == round(4 / 24, 6)


def test_a_codebook_with_a_later_cut_off_is_refused_for_an_earlier_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Warehouse(home)
    _write_embeddings(store, [f"item{i:03d}" for i in range(20)], _embeddings(20))
    assert _run(home, train_end=LATER.isoformat()).success
    with pytest.raises(dg.Failure, match="later than this run's cut-off"):
        _run(home)  # the backtest's cut-off (TRAIN_END) is before the codebook's
    assert _run(home, train_end=LATER.isoformat()).success  # the same cut-off keeps it
    assert _run(home, rebuild=True).success  # an explicit rebuild trains a version on the earlier one
