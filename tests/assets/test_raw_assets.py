"""The raw assets stage a sample world end to end through Dagster."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pytest

from assets.resources import WarehouseResource
from pipelines.ingestion import BadRowShareExceeded
from recforge.definitions import defs
from recforge.materialize import materialize_everything
from sample_world import WorldConfig, generate_world
from tests.recforge.test_definitions import EXPECTED_ASSET_KEYS
from warehouse.catalog import connect_catalog
from warehouse.contracts import CORE_ID_MAPS, RAW_EVENTS, RAW_IMPRESSIONS, RAW_ITEMS, quarantine_contract

START = dt.date(2026, 1, 1)
DAYS = 3
LOGS = ("impressions", "events", "reviews")


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    return root


def make_world(home: Path, days: int = DAYS, bad_share: float = 0.01) -> object:
    return generate_world(WorldConfig(users=300, items=200, days=days, bad_share=bad_share, seed=3), home / "landing")


def run(home: Path, days: int = DAYS, run_config: dict | None = None) -> list[dg.ExecuteInProcessResult]:
    resources = {"warehouse": WarehouseResource(home=str(home))}
    last = START + dt.timedelta(days=days - 1)
    return materialize_everything(defs, home, START, last, groups=["raw", "core"], resources=resources, run_config=run_config)


def count_lines(folder: Path) -> int:
    return sum(1 for f in folder.glob("*.jsonl") for line in f.read_text().splitlines() if line.strip())


def test_sample_world_is_staged_with_quarantine_and_checks_pass(home: Path) -> None:
    summary = make_world(home)
    results = run(home)

    assert all(r.success for r in results)
    checks = [e for r in results for e in r.get_asset_check_evaluations()]
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    store = WarehouseResource(home=str(home)).store()
    for log in LOGS:
        staged = store.read(store_contract(log)).num_rows
        quarantined = store.read(quarantine_contract(store_contract(log))).num_rows
        assert staged + quarantined == count_lines(home / "landing" / log), log
    for log in (*LOGS, "items"):
        quarantine = store.read(quarantine_contract(store_contract(log)))
        bad = quarantine.filter(pc.invert(pc.equal(quarantine["reason"], "duplicate")))
        # Every malformed line the world wrote is caught, and nothing else; exact copies are dropped.
        assert bad.num_rows == summary.bad_lines_by_log[log], log
        assert quarantine.num_rows - bad.num_rows == summary.duplicate_lines_by_log[log], log
    assert store.partitions(RAW_EVENTS) == [START + dt.timedelta(days=d) for d in range(DAYS)]

    con = connect_catalog(home)
    assert con.execute("SELECT count(*) FROM raw_impressions").fetchone()[0] > 0  # type: ignore[index]
    users = con.execute("SELECT count(*) FROM core_id_maps WHERE entity = 'user'").fetchone()[0]  # type: ignore[index]
    con.close()
    assert 0 < users <= 300


def store_contract(log: str):  # type: ignore[no-untyped-def]
    from transforms.ingest.staging import SPECS

    return SPECS[log].contract


def test_rerun_is_idempotent_and_new_days_append_ids_without_renumbering(home: Path) -> None:
    make_world(home, days=2)
    run(home, days=2)
    store = WarehouseResource(home=str(home)).store()
    before = store.read(CORE_ID_MAPS)
    manifest = store.manifest(RAW_IMPRESSIONS)

    run(home, days=2)
    assert store.manifest(RAW_IMPRESSIONS) == manifest
    assert store.read(CORE_ID_MAPS).equals(before)

    make_world(home, days=4)  # the same seed extends the world by two days
    run(home, days=4)
    after = store.read(CORE_ID_MAPS)
    old = {(r["entity"], r["external_id"]): r["idx"] for r in before.to_pylist()}
    new = {(r["entity"], r["external_id"]): r["idx"] for r in after.to_pylist()}
    assert all(new[k] == v for k, v in old.items())
    assert len(new) >= len(old)


def test_bad_row_share_over_the_limit_fails_the_run_with_a_clear_message(home: Path) -> None:
    make_world(home, days=1, bad_share=0.05)
    config = {"ops": {f"raw__{log}": {"config": {"max_bad_share": 0.001}} for log in ("slates", *LOGS)}}
    with pytest.raises(BadRowShareExceeded, match=r"rejected, above the limit of 0\.1%.*quarantine_"):
        run(home, days=1, run_config=config)
    # Nothing is lost: the rejected rows are in quarantine even though the run failed.
    store = WarehouseResource(home=str(home)).store()
    assert store.read(quarantine_contract(RAW_EVENTS)).num_rows > 0


def test_everything_job_materializes_one_day_and_every_downstream_data_asset(home: Path) -> None:
    from assets.jobs import everything_job

    # The nightly situation: six days already ingested, the job runs for the seventh.
    make_world(home, days=7, bad_share=0.0)
    run(home, days=6)
    local = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[everything_job],
        resources={**(defs.resources or {}), "warehouse": WarehouseResource(home=str(home))},
    )
    with dg.instance_for_test() as instance:
        # A 200-item world cannot fill 256 codes per level from items before the cut-off: use 16.
        small_codebook = {"ops": {"semantic_ids__codebooks": {"config": {"codes_per_level": 16}}}}
        result = local.resolve_job_def("everything_job").execute_in_process(
            instance=instance, partition_key=str(START + dt.timedelta(days=6)), run_config=small_codebook
        )

    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # Model training is models_job's (the automation sensor retrains after the data layers refresh).
    assert materialized == {k for k in EXPECTED_ASSET_KEYS if not k.startswith("models/")}


def test_materialize_never_replaces_staged_rows_with_an_empty_partition(home: Path) -> None:
    # What `recforge ingest` leaves: raw partitions and items staged, and an empty landing zone.
    make_world(home, days=2, bad_share=0.0)
    run(home, days=2)
    store = WarehouseResource(home=str(home)).store()
    before = {d: store.stored_stats(RAW_EVENTS, d) for d in store.partitions(RAW_EVENTS)}
    items_before = store.stored_stats(RAW_ITEMS)
    shutil.rmtree(home / "landing")

    results = run(home, days=3)  # the third day never had data: it is written empty, as before

    assert all(r.success for r in results)
    after = {d: store.stored_stats(RAW_EVENTS, d) for d in store.partitions(RAW_EVENTS)}
    assert {d: after[d] for d in before} == before
    assert after[START + dt.timedelta(days=2)][0] == 0
    assert store.stored_stats(RAW_ITEMS) == items_before
    events = next(e for e in results[0].get_asset_materialization_events() if e.asset_key == dg.AssetKey(["raw", "events"]))
    assert events.materialization.metadata["partitions_kept"].value == 2
