"""Fault 14.14: a deleted ``_partitions.json`` is rebuilt from the partition files' own metadata."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.faults.helpers import events
from warehouse.contracts import RAW_EVENTS
from warehouse.layout import MANIFEST_FILE
from warehouse.store import Warehouse

DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(4)]


def test_a_deleted_manifest_is_rebuilt_from_every_partition_file(tmp_path: Path) -> None:
    store = Warehouse(tmp_path)
    for i, day in enumerate(DAYS[:3]):
        store.write(RAW_EVENTS, events(day, 10 + i), day)
    before = store.manifest(RAW_EVENTS)
    (store.table_dir(RAW_EVENTS) / MANIFEST_FILE).unlink()

    assert store.manifest(RAW_EVENTS) == before  # read: rebuilt from the files
    store.write(RAW_EVENTS, events(DAYS[3], 5), DAYS[3])  # the next run writes one more day
    after = store.manifest(RAW_EVENTS)
    assert {k: v for k, v in after.items() if k != DAYS[3].isoformat()} == before  # not only the new day
    assert sorted(after) == [d.isoformat() for d in DAYS]


def test_an_unreadable_manifest_is_rebuilt_and_a_vanished_partition_dropped(tmp_path: Path) -> None:
    store = Warehouse(tmp_path)
    for day in DAYS[:2]:
        store.write(RAW_EVENTS, events(day, 10), day)
    (store.table_dir(RAW_EVENTS) / MANIFEST_FILE).write_text('{"2026-01-01": {"rows": ')  # cut short
    store.partition_path(RAW_EVENTS, DAYS[1]).unlink()
    assert list(store.manifest(RAW_EVENTS)) == [DAYS[0].isoformat()]
