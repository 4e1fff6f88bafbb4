"""Several days staged at once (pipelines.ingestion.ingest_days): the same partitions as one day at a time."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from pathlib import Path

import pytest

from pipelines.ingestion import ingest_days, ingest_table
from transforms.engine import EngineConfig, open_engine
from transforms.engine.sources import CorruptSourceError
from transforms.ingest.staging import SPECS
from warehouse import contracts
from warehouse.staging import StagedWarehouse
from warehouse.store import Warehouse

START = dt.date(2026, 3, 1)
DAYS = [START + dt.timedelta(days=d) for d in range(6)]


def write_landing(landing: Path) -> None:
    """Six days of events, each with good rows, a malformed line, a bad value, an exact copy and a blank line."""
    folder = landing / "events"
    folder.mkdir(parents=True)
    for d, day in enumerate(DAYS):
        lines = []
        for k in range(40 + 7 * d):
            lines.append(json.dumps({
                "event_id": f"e{d}-{k}", "user_id": f"u{k % 9}", "ts": f"{day.isoformat()}T{k % 24:02d}:00:00Z",
                "event_type": "click" if k % 3 else "view", "item_id": f"i{k % 13}", "session_id": f"s{k % 5}",
            }))
        lines += [lines[3], "{not json", json.dumps({"event_id": f"e{d}-bad", "user_id": "u1", "ts": "never",
                                                     "event_type": "click", "item_id": "i1"}), ""]
        (folder / f"{day.isoformat()}.jsonl").write_text("\n".join(lines) + "\n")


def test_days_staged_in_parallel_match_one_day_at_a_time(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_landing(landing)
    with open_engine(EngineConfig(threads=2)) as engine:
        assert engine.parallel_workers == 2
        one_by_one = [ingest_table(Warehouse(tmp_path / "a"), engine, "events", landing, day) for day in DAYS]
        together = ingest_days(Warehouse(tmp_path / "b"), engine, "events", landing, DAYS)
    assert [r.partition for r in together] == DAYS  # reports in day order
    assert together == one_by_one
    assert {r.reasons.get("duplicate") for r in together} == {1}
    assert {r.reasons.get("invalid_json") for r in together} == {1}
    for contract in (SPECS["events"].contract, contracts.quarantine_contract(SPECS["events"].contract)):
        # Same rows in the same order: the content hashes of every partition agree.
        assert Warehouse(tmp_path / "b").manifest(contract) == Warehouse(tmp_path / "a").manifest(contract)


def test_parallel_days_write_through_a_staged_warehouse_and_commit_together(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_landing(landing)
    store = Warehouse(tmp_path / "home")
    contract = SPECS["events"].contract
    with open_engine(EngineConfig(threads=2)) as engine, StagedWarehouse(store) as staging:
        reports = ingest_days(staging, engine, "events", landing, DAYS, quarantine_to=store)
        assert staging.partitions(contract) == DAYS  # staged aside, visible to this run
        assert store.partitions(contract) == []  # ...but not to readers until the commit
    assert store.partitions(contract) == DAYS
    assert sum(r.staged for r in reports) == store.read(contract).num_rows


def test_a_damaged_day_stops_the_run_with_its_file_named(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_landing(landing)
    damaged = landing / "events" / f"{DAYS[4].isoformat()}.jsonl"
    damaged.unlink()
    gz = damaged.with_name(damaged.name + ".gz")
    gz.write_bytes(gzip.compress(b'{"event_id": "x"}\n' * 100)[:-20])  # truncated
    store = Warehouse(tmp_path / "home")
    with (
        open_engine(EngineConfig(threads=2)) as engine,
        pytest.raises(CorruptSourceError, match=gz.name),
        StagedWarehouse(store) as staging,
    ):
        ingest_days(staging, engine, "events", landing, DAYS)
    assert store.partitions(SPECS["events"].contract) == []  # nothing was swapped in


def test_after_an_error_the_days_not_yet_started_are_not_staged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import ingestion

    landing = tmp_path / "landing"
    write_landing(landing)
    started: list[dt.date] = []
    real = ingestion.ingest_table

    def failing_first(warehouse, engine, table, landing, day, *rest):  # type: ignore[no-untyped-def]
        started.append(day)
        if day == DAYS[0]:
            raise RuntimeError("disk full")
        return real(warehouse, engine, table, landing, day, *rest)

    monkeypatch.setattr(ingestion, "ingest_table", failing_first)
    many = [START + dt.timedelta(days=d) for d in range(40)]  # most have no landing file: quick, and never started
    with open_engine(EngineConfig(threads=2)) as engine, pytest.raises(RuntimeError, match="disk full"):
        ingest_days(Warehouse(tmp_path / "home"), engine, "events", landing, many)
    assert len(started) < len(many)


def test_each_thread_stages_through_its_own_engine(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_landing(landing)
    seen: dict[int, set[int]] = {}
    with open_engine(EngineConfig(threads=2)) as engine:
        make_worker = engine.worker

        def counting_worker():  # type: ignore[no-untyped-def]
            worker = make_worker()
            seen.setdefault(threading.get_ident(), set()).add(id(worker))
            return worker

        engine.worker = counting_worker  # type: ignore[method-assign]
        ingest_days(Warehouse(tmp_path / "home"), engine, "events", landing, DAYS)
    assert seen and all(len(engines) == 1 for engines in seen.values())  # one engine per thread, reused
    assert len(seen) <= 2
