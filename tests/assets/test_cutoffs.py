"""One ``cutoffs`` resource for every layer: labels, user profiles and training sequences share the
training cut-off, and a training row's label weight never comes from outside the labels' train split."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from assets import enrichment
from assets import training_data as td
from assets.core import id_maps
from assets.labels import LabelSettings, debiased_labels, exposure_propensities, position_bias
from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from assets.resources_enrichment import ExtractiveGeneratorResource
from pipelines.ingestion import LOG_TABLES, ingest_table
from sample_world import WorldConfig, generate_world
from transforms import sequences as seq
from transforms.cutoffs import Cutoffs, cutoffs_for_days, default_cutoffs
from transforms.engine import DuckDBEngine, EngineConfig
from transforms.sequences.label_weights import label_weights_within_splits
from warehouse.contracts import (
    CORE_INTERACTIONS,
    ENRICHMENT_USER_PROFILES,
    LABELS_DEBIASED_LABELS,
    RAW_EVENTS,
    RAW_IMPRESSIONS,
)
from warehouse.shards import read_manifest, shard_root
from warehouse.store import Warehouse

START = dt.date(2026, 1, 1)
DAYS = 5
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _one_row(contract: Any, day: dt.date, **values: Any) -> pa.Table:
    columns = {f.name: pa.nulls(1, f.type) for f in contract.schema}
    columns.update({k: pa.array([v], contract.schema.field(k).type) for k, v in values.items()})
    return pa.table(columns).cast(contract.schema)


# --- CutoffsResource.resolve ------------------------------------------------------------------------


def test_resolve_explicit_default_half_set_and_empty(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "home")
    with pytest.raises(ValueError, match="materialize raw/events first or set train_end and valid_end"):
        CutoffsResource().resolve(store)
    explicit = CutoffsResource(train_end="2026-01-03T00:00:00Z", valid_end="2026-01-04")
    assert explicit.explicit and explicit.resolve(store) == Cutoffs(T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=3))
    for half in (CutoffsResource(train_end="2026-01-03T00:00:00Z"), CutoffsResource(valid_end="2026-01-03T00:00:00Z")):
        with pytest.raises(ValueError, match="set both train_end and valid_end"):
            half.resolve(store)
    with pytest.raises(ValueError, match="before train_end"):
        CutoffsResource(train_end="2026-01-05", valid_end="2026-01-04").resolve(store)

    # The default counts the union of the days with events and with impressions (days with data only).
    events_day, impressions_day = dt.date(2026, 1, 2), dt.date(2026, 1, 11)
    store.write(RAW_EVENTS, _one_row(RAW_EVENTS, events_day, event_id="e", user_id="u", event_type="view",
                                     ts=dt.datetime.combine(events_day, dt.time(12), dt.UTC)), events_day)
    assert CutoffsResource().resolve(store) == default_cutoffs(events_day, events_day)
    store.write(RAW_IMPRESSIONS, _one_row(RAW_IMPRESSIONS, impressions_day, request_id="r", user_id="u", item_id="i", position=0,
                                          ts=dt.datetime.combine(impressions_day, dt.time(12), dt.UTC)), impressions_day)
    resolved = CutoffsResource().resolve(store)
    # Two days with data, eight empty days between: train the first, valid the second, not 70 % of the calendar.
    assert resolved == cutoffs_for_days([events_day, impressions_day]) == Cutoffs(T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=11))
    assert CutoffsResource(train_share=0.5, valid_share=0.5).resolve(store) == cutoffs_for_days([events_day, impressions_day], 0.5, 0.5)
    assert not CutoffsResource().explicit


# --- label weights stay within the split --------------------------------------------------------------


def test_training_events_take_weights_only_from_train_label_rows(duckdb_engine: Any) -> None:
    cutoffs = Cutoffs(T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=3))
    at = lambda hours: T0 + dt.timedelta(hours=hours)  # noqa: E731
    events = pa.Table.from_pylist(
        [
            {"event_id": "e1", "request_id": "r1", "user_id": "u1", "item_id": "i1", "ts": at(47)},  # train window
            {"event_id": "e2", "request_id": "r2", "user_id": "u1", "item_id": "i2", "ts": at(47)},  # train window
            {"event_id": "e3", "request_id": "r3", "user_id": "u2", "item_id": "i1", "ts": at(60)},  # valid window
            {"event_id": "e4", "request_id": "r4", "user_id": "u2", "item_id": "i2", "ts": at(80)},  # test window
        ],
        schema=pa.schema([("event_id", pa.string()), ("request_id", pa.string()), ("user_id", pa.string()),
                          ("item_id", pa.string()), ("ts", pa.timestamp("ms", tz="UTC"))]),
    )

    def label(request: str, user: str, item: str, hours: float, split: str, weight: float) -> dict[str, Any]:
        return {"request_id": request, "user_id": user, "item_id": item, "ts": at(hours), "observed": 1, "ips_weight": weight, "split": split}

    # e1's impression was logged twice, once (clock skew) after train_end: that row's propensity saw later data.
    labels = pa.Table.from_pylist(
        [label("r1", "u1", "i1", 46, "train", 2.0), label("r1", "u1", "i1", 49, "valid", 50.0),
         label("r2", "u1", "i2", 50, "valid", 9.0),  # only a valid row for a training event
         label("r3", "u2", "i1", 30, "train", 3.0), label("r3", "u2", "i1", 59, "valid", 5.0),
         label("r4", "u2", "i2", 79, "test", 7.0)],
        schema=pa.schema([("request_id", pa.string()), ("user_id", pa.string()), ("item_id", pa.string()),
                          ("ts", pa.timestamp("ms", tz="UTC")), ("observed", pa.int8()), ("ips_weight", pa.float64()),
                          ("split", pa.string())]),
    )
    unrestricted = {r["event_id"]: r["weight"] for r in seq.label_weights_from_debiased(duckdb_engine, events, labels).to_pylist()}
    assert unrestricted["e1"] == 26.0 and unrestricted["e2"] == 9.0  # what joining every label row gives
    weights = {r["event_id"]: r["weight"] for r in label_weights_within_splits(duckdb_engine, events, labels, cutoffs).to_pylist()}
    assert weights == {"e1": 2.0, "e3": 4.0, "e4": 7.0}  # e2 has no train row: no weight (1.0 downstream)

    stale = labels.set_column(labels.schema.get_field_index("split"), "split", pa.array(["train"] * labels.num_rows))
    with pytest.raises(ValueError, match="built with other cut-offs"):
        label_weights_within_splits(duckdb_engine, events, stale, cutoffs)


# --- one resource, every layer --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sample world (5 days) staged into ``home``."""
    tmp_path = tmp_path_factory.mktemp("cutoffs_world")
    home = tmp_path / "home"
    generate_world(WorldConfig(users=150, items=60, days=DAYS, seed=3, bad_share=0.0, dup_share=0.0), home / "landing")
    store = Warehouse(home)
    with DuckDBEngine(EngineConfig(memory_limit="1GB", spill_dir=str(tmp_path / "spill"))) as engine:
        for day in (START + dt.timedelta(days=d) for d in range(DAYS)):
            for table in LOG_TABLES:
                ingest_table(store, engine, table, home / "landing", day)
        for table in ("items", "users"):
            ingest_table(store, engine, table, home / "landing")
    return home


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    return {
        e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def test_one_cutoffs_resource_drives_labels_profiles_and_sequences(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    store = Warehouse(world)
    cutoffs = CutoffsResource()  # the default rule: no layer sets its own
    expected = cutoffs.resolve(store)
    assert expected == default_cutoffs(START, START + dt.timedelta(days=DAYS - 1))
    resources = {"warehouse": WarehouseResource(home=str(world)), "engine": EngineResource(memory_limit="1GB"),
                 "cutoffs": cutoffs, "label_settings": LabelSettings(min_position_clicks=20),
                 "enrichment_generator": ExtractiveGeneratorResource()}
    selection = [id_maps, position_bias, exposure_propensities, debiased_labels, td.interactions, td.training_window,
                 td.user_sequences, td.sequence_shards, enrichment.user_profiles]
    result = dg.materialize(selection, resources=resources, raise_on_error=True)
    meta = _metadata(result)
    train_end, valid_end = expected.train_end.isoformat(), expected.valid_end.isoformat()

    # The labels' train split ends where the sequences' training window and the profiles' cut-off end.
    for key in ("labels/position_bias", "labels/exposure_propensities", "labels/debiased_labels", "enrichment/user_profiles"):
        assert (meta[key]["train_end"], meta[key]["valid_end"]) == (train_end, valid_end), key
    assert meta["enrichment/user_profiles"]["cutoff"] == train_end
    assert set(store.read(ENRICHMENT_USER_PROFILES)["cutoff"].to_pylist()) == {expected.train_end}
    split = read_manifest(shard_root(world))["params"]["split"]
    assert (split["train_end"], split["valid_end"]) == (
        expected.train_end.strftime("%Y-%m-%dT%H:%M:%SZ"), expected.valid_end.strftime("%Y-%m-%dT%H:%M:%SZ"))
    labels = store.read(LABELS_DEBIASED_LABELS)
    train = labels.filter(pc.equal(labels["split"], "train"))
    rest = labels.filter(pc.not_equal(labels["split"], "train"))
    assert train.num_rows and rest.num_rows
    assert pc.max(train["ts"]).as_py() < expected.train_end <= pc.min(rest["ts"]).as_py()

    # Every training-window event's weight is the one the train label rows alone give.
    with DuckDBEngine(EngineConfig(memory_limit="1GB")) as eng:
        inter = store.files(CORE_INTERACTIONS)
        train_only = seq.label_weights_from_debiased(eng, inter, train.select(["request_id", "user_id", "item_id", "ts", "observed", "ips_weight"]))
        used = label_weights_within_splits(eng, inter, labels, expected)
    events = store.read(CORE_INTERACTIONS).select(["event_id", "ts"]).to_pylist()
    early = {e["event_id"] for e in events if e["ts"] < expected.train_end}
    pick = lambda t: {r["event_id"]: r["weight"] for r in t.to_pylist() if r["event_id"] in early}  # noqa: E731
    assert pick(used) == pick(train_only) and pick(used)

    # Sequences built with other cut-offs than the labels are refused, not silently mixed.
    moved = CutoffsResource(train_end=(expected.train_end - dt.timedelta(days=1)).isoformat(), valid_end=valid_end)
    with pytest.raises((ValueError, dg.DagsterExecutionStepExecutionError)) as raised:
        dg.materialize([td.training_window, td.user_sequences], resources={**resources, "cutoffs": moved}, raise_on_error=True)
    assert "built with other cut-offs" in f"{raised.value} {raised.value.__cause__}"
