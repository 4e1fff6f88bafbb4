"""The label assets materialize on a staged sample world, write their tables and pass their checks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pytest

from assets.labels import LabelSettings, debiased_labels, exposure_propensities, position_bias
from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from pipelines.ingestion import LOG_TABLES, ingest_table
from sample_world import WorldConfig, generate_world
from transforms.cutoffs import Cutoffs
from transforms.engine import DuckDBEngine, EngineConfig
from transforms.labels import LabelCheckConfig, LabelConfig
from transforms.labels.click_model import ClickModelConfig
from warehouse.contracts import LABELS_DEBIASED_LABELS, LABELS_EXPOSURE_PROPENSITIES, LABELS_POSITION_BIAS
from warehouse.store import Warehouse

START = dt.date(2026, 1, 1)
DAYS = 4


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small world (400 users, 4 days) generated into ``home/landing`` and staged into ``home``.

    Shared by the tests of this module: each materialization rewrites the label tables whole.
    """
    tmp_path = tmp_path_factory.mktemp("labels_assets")
    home = tmp_path / "home"
    config = WorldConfig(users=400, items=150, days=DAYS, seed=5, bad_share=0.0, dup_share=0.0)
    generate_world(config, home / "landing")
    store = Warehouse(home)
    with DuckDBEngine(EngineConfig(memory_limit="1GB", spill_dir=str(tmp_path / "spill"))) as engine:
        for day in (START + dt.timedelta(days=d) for d in range(DAYS)):
            for table in LOG_TABLES:
                ingest_table(store, engine, table, home / "landing", day)
        ingest_table(store, engine, "items", home / "landing")
    return home


def _materialize(home: Path, settings: LabelSettings, cutoffs: CutoffsResource) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [position_bias, exposure_propensities, debiased_labels],
        resources={"warehouse": WarehouseResource(home=str(home)), "engine": EngineResource(), "label_settings": settings,
                   "cutoffs": cutoffs},
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_label_assets_write_tables_pass_checks_and_plot(staged: Path) -> None:
    result = _materialize(staged, LabelSettings(min_position_clicks=20),
                          CutoffsResource(train_end="2026-01-03T00:00:00Z", valid_end="2026-01-04T00:00:00Z"))
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    for name in ("examination_in_unit_interval", "weights_finite_positive", "propensities_in_unit_interval"):
        assert checks[name].passed, name
    assert "clipped_share" in checks

    store = Warehouse(staged)
    labels = store.read(LABELS_DEBIASED_LABELS)
    impressions = sum(1 for f in (staged / "landing" / "impressions").glob("*.jsonl") for _ in f.open())
    assert labels.num_rows == impressions  # one row per exposure, nothing lost
    assert set(labels.column("split").to_pylist()) == {"train", "valid", "test"}
    # Half the world's slates log propensities: under the default estimand (auto) no split is logged
    # throughout, so every row is debiased for position, and the metadata says so per split.
    assert set(labels.column("propensity_source").to_pylist()) == {"click_model"}
    assert store.read(LABELS_POSITION_BIAS).num_rows > 0
    assert pc.min(store.read(LABELS_EXPOSURE_PROPENSITIES)["propensity"]).as_py() > 0

    bias_meta = next(
        e.materialization.metadata for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["labels", "position_bias"])
    )
    assert bias_meta["train_end"].value == "2026-01-03T00:00:00+00:00" and bias_meta["valid_end"].value == "2026-01-04T00:00:00+00:00"
    assert bias_meta["examination_curve"].value.startswith("![examination curve](data:image/png;base64,")
    assert "max_abs_error_vs_truth" in bias_meta  # the landing zone holds the world's truth
    label_meta = next(
        e.materialization.metadata for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["labels", "debiased_labels"])
    )
    assert label_meta["estimand"].value == "auto"
    assert label_meta["sources_by_split"].value == {s: ["click_model"] for s in ("test", "train", "valid")}
    assert label_meta["orphan_impressions"].value == 0 and label_meta["slot_mismatches"].value == 0


def test_an_orphan_impression_is_left_out_and_every_check_reports(tmp_path: Path) -> None:
    # One impression whose request has no slate, at position 3: its surface has no anchor.
    home = tmp_path / "home"
    config = WorldConfig(users=150, items=60, days=2, seed=7, bad_share=0.0, dup_share=0.0)
    generate_world(config, home / "landing")
    day_file = sorted((home / "landing" / "impressions").glob("*.jsonl"))[0]
    first = json.loads(day_file.open().readline())
    with day_file.open("a") as f:
        f.write(json.dumps({**first, "request_id": "no-such-request", "position": 3}) + "\n")
    store = Warehouse(home)
    with DuckDBEngine(EngineConfig(memory_limit="1GB", spill_dir=str(tmp_path / "spill"))) as engine:
        for day in (START + dt.timedelta(days=d) for d in range(2)):
            for table in LOG_TABLES:
                ingest_table(store, engine, table, home / "landing", day)
        ingest_table(store, engine, "items", home / "landing")
    result = _materialize(home, LabelSettings(min_position_clicks=20),
                          CutoffsResource(train_end="2026-01-02T00:00:00Z", valid_end="2026-01-02T00:00:00Z"))
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.check_name != "clipped_share")
    label_meta = next(
        e.materialization.metadata for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["labels", "debiased_labels"])
    )
    assert label_meta["orphan_impressions"].value == 1 and label_meta["orphans_excluded"].value == 1
    assert "no-such-request" not in Warehouse(home).read(LABELS_DEBIASED_LABELS).column("request_id").to_pylist()


def test_a_rebuild_with_later_cutoffs_moves_rows_between_splits(staged: Path) -> None:
    _materialize(staged, LabelSettings(), CutoffsResource(train_end="2026-01-02T00:00:00Z", valid_end="2026-01-03T00:00:00Z"))
    before = Warehouse(staged).read(LABELS_DEBIASED_LABELS)
    _materialize(staged, LabelSettings(), CutoffsResource(train_end="2026-01-04T00:00:00Z", valid_end="2026-01-04T00:00:00Z"))
    after = Warehouse(staged).read(LABELS_DEBIASED_LABELS)
    assert before.num_rows == after.num_rows
    count = lambda t, s: pc.sum(pc.equal(t["split"], s)).as_py()  # noqa: E731
    assert count(after, "train") > count(before, "train")
    assert count(after, "valid") == 0


def test_half_set_cutoffs_are_refused(staged: Path) -> None:
    # Dagster re-raises the step's own error (or wraps it, depending on the version).
    with pytest.raises((ValueError, dg.DagsterExecutionStepExecutionError)) as raised:
        _materialize(staged, LabelSettings(), CutoffsResource(train_end="2026-01-03T00:00:00Z"))
    assert "set both train_end and valid_end" in f"{raised.value} {raised.value.__cause__}"


def test_label_settings_take_their_defaults_and_field_names_from_the_frozen_configs() -> None:
    # The run-config field names users pass stay what they were; every default is the dataclasses' own.
    assert list(LabelSettings.model_fields) == [
        "clip_min", "snips", "estimand", "popularity_eta", "positive_rating", "relevance_by",
        "min_position_clicks", "max_clipped_share",
    ]
    cutoffs = Cutoffs.parse("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z")
    assert LabelSettings().label_config(cutoffs) == LabelConfig(cutoffs=cutoffs)
    assert LabelSettings().max_clipped_share == LabelCheckConfig().max_clipped_share
    assert LabelSettings(clip_min=0.05, min_position_clicks=20).label_config(cutoffs) == LabelConfig(
        cutoffs=cutoffs, clip_min=0.05, click_model=ClickModelConfig(min_position_clicks=20)
    )
