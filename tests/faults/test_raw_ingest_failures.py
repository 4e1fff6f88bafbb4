"""Fault 14.2 (ingestion): a failed raw run keeps the last good version of every table it writes.

A day over the bad-row limit fails the run after writing its quarantine, and the stored raw partitions
stay as they were (1,074 rows stayed 1,074, not 100); a CSV whose header line is missing fails naming
the file before anything is written, instead of emptying the table and losing its first row.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import WarehouseResource
from pipelines.ingestion import BadRowShareExceeded, ingest_table
from recforge.definitions import defs
from recforge.materialize import materialize_everything
from sample_world import WorldConfig, generate_world
from transforms.engine import DuckDBEngine
from transforms.engine.sources import CsvHeaderError
from warehouse.contracts import CORE_ID_MAPS, RAW_EVENTS, RAW_USERS, quarantine_contract
from warehouse.store import Warehouse

START = dt.date(2026, 1, 1)


def _run(home: Path, run_config: dict | None = None) -> list[dg.ExecuteInProcessResult]:
    return materialize_everything(defs, home, START, START, groups=["raw"],
                                  resources={"warehouse": WarehouseResource(home=str(home))}, run_config=run_config)


def test_a_day_over_the_bad_row_limit_keeps_the_stored_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    home = tmp_path / "home"
    generate_world(WorldConfig(users=300, items=200, days=1, bad_share=0.0, seed=3), home / "landing")
    _run(home)
    store = Warehouse(home)
    good = store.manifest(RAW_EVENTS)[START.isoformat()]
    assert good["rows"] > 100

    # The next delivery of that day is mostly broken: 100 good lines, the rest cut short.
    day_file = home / "landing" / "events" / f"{START.isoformat()}.jsonl"
    lines = day_file.read_text().splitlines()
    day_file.write_text("\n".join(lines[:100] + [line[: len(line) // 2] for line in lines[100:]]) + "\n")
    with pytest.raises(BadRowShareExceeded, match="raw_events"):
        _run(home)

    assert store.manifest(RAW_EVENTS)[START.isoformat()] == good  # the last good version, untouched
    assert store.read(RAW_EVENTS, [START]).num_rows == good["rows"]
    quarantine = store.read(quarantine_contract(RAW_EVENTS), [START])
    assert quarantine.num_rows == len(lines) - 100  # what was rejected, and why, is kept
    assert set(quarantine["reason"].to_pylist()) == {"invalid_json"}
    leftovers = [p.name for p in store.partition_path(RAW_EVENTS, START).parent.iterdir()]
    assert leftovers == ["part.parquet"]


def test_a_users_csv_without_its_header_fails_naming_the_file_and_keeps_the_table(tmp_path: Path) -> None:
    landing, store = tmp_path / "landing", Warehouse(tmp_path / "home")
    (landing / "catalog").mkdir(parents=True)
    users = landing / "catalog" / "users.csv"
    users.write_text("user_id,country\n" + "".join(f"u{i},fr\n" for i in range(500)))
    with DuckDBEngine() as engine:
        assert ingest_table(store, engine, "users", landing).staged == 500
        users.write_text("".join(f"u{i},fr\n" for i in range(500)))  # the header line is gone
        with pytest.raises(CsvHeaderError, match=r"catalog/users\.csv: the header line 'u0,fr' does not name user_id"):
            ingest_table(store, engine, "users", landing)
    assert store.read(RAW_USERS).num_rows == 500


def test_a_dataset_reingest_over_the_bad_row_limit_keeps_the_stored_tables(tmp_path: Path) -> None:
    from pipelines.connect import ConnectRules, ingest_dataset
    from transforms.connectors.tabular import TabularConnector, mapping_from_dict

    data, store = tmp_path / "clicks.jsonl", Warehouse(tmp_path / "home")
    mapping = mapping_from_dict({"table": "events", "columns": {"user_id": "u", "item_id": "i", "ts": "t", "event_type": "k"}})
    rules = ConnectRules(ts_max=dt.datetime(2030, 1, 1), max_bad_share=0.2)
    line = '{{"u": "u{n}", "i": "x", "t": "2026-01-05T10:00:00Z", "k": "click"}}\n'
    data.write_text("".join(line.format(n=n) for n in range(10)))
    with DuckDBEngine() as engine:
        ingest_dataset(TabularConnector(data, "clicks", mapping), store, engine, rules)
        before = store.manifest(RAW_EVENTS)
        ids = store.read(CORE_ID_MAPS)
        data.write_text(line.format(n=100) + line.format(n=101) + "".join(line.format(n=n)[:20] + "\n" for n in range(8)))
        with pytest.raises(BadRowShareExceeded, match="8 of 10 events rows"):
            ingest_dataset(TabularConnector(data, "clicks", mapping), store, engine, rules)
    assert store.manifest(RAW_EVENTS) == before
    assert sorted(store.read(RAW_EVENTS)["user_id"].to_pylist()) == sorted(f"u{n}" for n in range(10))
    assert store.read(CORE_ID_MAPS).equals(ids)  # no id from the failed run
    assert store.read(quarantine_contract(RAW_EVENTS)).num_rows == 8


def test_a_truncated_gzip_landing_file_fails_naming_the_file(tmp_path: Path) -> None:
    import gzip

    from transforms.connectors.base import iter_lines
    from transforms.engine.sources import CorruptSourceError

    landing, store = tmp_path / "landing", Warehouse(tmp_path / "home")
    (landing / "events").mkdir(parents=True)
    line = '{"event_id": "e%d", "user_id": "u1", "ts": "2026-01-01T10:00:00Z", "event_type": "click", "item_id": "i1"}\n'
    packed = gzip.compress("".join(line % n for n in range(2000)).encode())
    path = landing / "events" / "2026-01-01.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with DuckDBEngine() as engine, pytest.raises(CorruptSourceError, match=r"2026-01-01\.jsonl\.gz: the file is truncated"):
        ingest_table(store, engine, "events", landing, START)
    assert not store.exists(RAW_EVENTS)  # nothing half-read was written
    with pytest.raises(CorruptSourceError, match=r"2026-01-01\.jsonl\.gz"):
        list(iter_lines(path))


def test_a_dagster_run_waits_for_the_data_roots_writer_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run started the way the Dagster UI starts it (not through the CLI) takes the writer lock too."""
    from tests.warehouse.test_lock import _holder
    from warehouse.lock import WriterLockTimeout

    home = tmp_path / "home"
    generate_world(WorldConfig(users=50, items=40, days=1, bad_share=0.0, seed=3), home / "landing")
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("RECFORGE_LOCK_TIMEOUT", "0.5")
    local = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks,
                           resources={**(defs.resources or {}), "warehouse": WarehouseResource(home=str(home))})
    job = local.resolve_implicit_global_asset_job_def()

    def run() -> dg.ExecuteInProcessResult:
        with dg.instance_for_test() as instance:
            return job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(["raw", "events"])],
                                          partition_key=START.isoformat())

    process = _holder(home)
    try:
        with pytest.raises(dg.DagsterResourceFunctionError) as raised:  # Dagster wraps what the resource raised
            run()
        cause = raised.value.__cause__
        assert isinstance(cause, WriterLockTimeout) and f"pid {process.pid} (test holder)" in str(cause)
    finally:
        process.kill()
        process.wait()
    assert not Warehouse(home).exists(RAW_EVENTS)
    assert run().success and Warehouse(home).exists(RAW_EVENTS)  # free again once the holder is gone
