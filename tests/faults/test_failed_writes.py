"""Fault 14.2 (storage): a failed write keeps the previous version of its partition.

A writer that raises, or is killed, never replaces a partition; a run that must check its result before
anything becomes visible stages its partitions (``StagedWarehouse``) and they replace the stored ones only
when the run succeeds: a day over the bad-share limit keeps the last good version.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from tests.faults.helpers import events, python
from warehouse.contracts import RAW_EVENTS
from warehouse.staging import StagedWarehouse
from warehouse.store import Warehouse

DAY = dt.date(2026, 1, 1)


class TooManyBadRows(Exception):
    """What an ingest raises for a day over its bad-share limit."""


def _good_day(tmp_path: Path) -> Warehouse:
    store = Warehouse(tmp_path / "root")
    store.write(RAW_EVENTS, events(DAY, 1074), DAY)
    return store


def test_a_writer_that_raises_midway_keeps_the_previous_partition(tmp_path: Path) -> None:
    store = _good_day(tmp_path)

    def batches() -> Iterator[pa.RecordBatch]:
        yield from events(DAY, 100, user="new").to_batches()
        raise OSError("the source went away")

    with pytest.raises(OSError, match="went away"):
        store.write_batches(RAW_EVENTS, batches(), DAY)
    assert store.read(RAW_EVENTS, [DAY]).num_rows == 1074
    assert store.manifest(RAW_EVENTS)[DAY.isoformat()]["rows"] == 1074
    assert [p.name for p in store.partition_path(RAW_EVENTS, DAY).parent.iterdir()] == ["part.parquet"]


def test_a_staged_day_over_the_limit_keeps_the_last_good_version(tmp_path: Path) -> None:
    store = _good_day(tmp_path)
    with pytest.raises(TooManyBadRows), StagedWarehouse(store) as staging:
        staging.write(RAW_EVENTS, events(DAY, 100, user="bad"), DAY)
        assert staging.read(RAW_EVENTS, [DAY]).num_rows == 100  # the run sees what it staged...
        assert store.read(RAW_EVENTS, [DAY]).num_rows == 1074  # ...everyone else the stored day
        raise TooManyBadRows("974 of 1074 rows rejected")
    assert store.read(RAW_EVENTS, [DAY]).num_rows == 1074
    assert [p.name for p in store.partition_path(RAW_EVENTS, DAY).parent.iterdir()] == ["part.parquet"]


def test_a_staged_run_that_succeeds_replaces_its_partitions(tmp_path: Path) -> None:
    store = _good_day(tmp_path)
    later = DAY + dt.timedelta(days=1)
    with StagedWarehouse(store) as staging:
        staging.write(RAW_EVENTS, events(DAY, 10), DAY)
        staging.write(RAW_EVENTS, events(later, 20), later)
        assert staging.partitions(RAW_EVENTS) == [DAY, later]
        assert store.partitions(RAW_EVENTS) == [DAY]
    assert store.partitions(RAW_EVENTS) == [DAY, later]
    assert [store.read(RAW_EVENTS, [d]).num_rows for d in (DAY, later)] == [10, 20]
    assert store.manifest(RAW_EVENTS)[later.isoformat()]["rows"] == 20


STAGE_AND_HANG = """
import sys, time, datetime as dt
from pathlib import Path
from tests.faults.helpers import events
from warehouse.contracts import RAW_EVENTS
from warehouse.staging import StagedWarehouse
from warehouse.store import Warehouse

day = dt.date(2026, 1, 1)
with StagedWarehouse(Warehouse(Path(sys.argv[1]))) as staging:
    staging.write(RAW_EVENTS, events(day, 100, user="bad"), day)
    print("staged", flush=True)
    time.sleep(60)
"""


def test_a_staged_run_killed_before_its_commit_changes_nothing(tmp_path: Path) -> None:
    store = _good_day(tmp_path)
    run = python(STAGE_AND_HANG, str(store.root))
    assert run.stdout is not None and run.stdout.readline().strip() == "staged"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    folder = store.partition_path(RAW_EVENTS, DAY).parent
    assert len(list(folder.iterdir())) == 2  # the killed run's temporary is still there
    assert store.read(RAW_EVENTS, [DAY]).num_rows == 1074

    store.write(RAW_EVENTS, events(DAY, 5), DAY)  # the next writer of the partition sweeps it
    assert [p.name for p in folder.iterdir()] == ["part.parquet"]
