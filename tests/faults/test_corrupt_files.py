"""Faults 14.10 and 14.12: a corrupt or bit-flipped partition is found and named, never returned as data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from tests.faults.helpers import events, flip_bytes, id_map, recforge, truncate
from warehouse.catalog import broken_tables, connect_catalog, refresh_catalog
from warehouse.contracts import CORE_ID_MAPS, RAW_EVENTS
from warehouse.integrity import verify_warehouse
from warehouse.store import CorruptPartitionError, Warehouse

DAY = dt.date(2026, 1, 1)


@pytest.fixture()
def store(tmp_path: Path) -> Warehouse:
    """Two days of events and an id map of 50 users."""
    store = Warehouse(tmp_path / "root")
    store.write(RAW_EVENTS, events(DAY, 100), DAY)
    store.write(RAW_EVENTS, events(DAY + dt.timedelta(days=1), 80), DAY + dt.timedelta(days=1))
    store.write(CORE_ID_MAPS, id_map(50))
    return store


def test_a_truncated_id_map_does_not_stop_the_catalog_and_is_named_with_its_repair(store: Warehouse) -> None:
    broken = store.partition_path(CORE_ID_MAPS, None)
    truncate(broken)
    refresh_catalog(store.root)  # used to raise, so every run failed until the file was deleted by hand

    problems = broken_tables(store.root)
    assert list(problems) == ["core_id_maps"]
    assert str(broken) in problems["core_id_maps"] and "Repair" in problems["core_id_maps"]
    with connect_catalog(store.root) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (180,)  # the other views work
        with pytest.raises(duckdb.Error, match=r"core_id_maps: cannot read .*Repair"):
            con.execute("SELECT idx FROM core_id_maps").fetchall()
    with pytest.raises(CorruptPartitionError, match=rf"{broken}.*Repair: rerun what writes core_id_maps"):
        store.read(CORE_ID_MAPS)  # a run that needs the table fails naming the file and the repair


def test_flipped_bytes_in_a_partition_are_reported_by_verify(store: Warehouse) -> None:
    damaged = store.partition_path(RAW_EVENTS, DAY)
    flip_bytes(damaged)
    found = verify_warehouse(store.root)
    assert [(d.table, d.partition, d.path) for d in found] == [("raw_events", DAY.isoformat(), damaged)]

    cli = recforge("verify", "--json", root=store.root)
    assert cli.returncode == 1, cli.stderr
    report = json.loads(cli.stdout)
    assert report["partitions_checked"] == 3
    assert [d["path"] for d in report["damaged"]] == [str(damaged)]


def test_an_intact_warehouse_verifies_clean(store: Warehouse) -> None:
    cli = recforge("verify", root=store.root)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "3 partitions checked, 0 damaged" in cli.stdout


def test_the_id_map_is_verified_on_every_read(store: Warehouse) -> None:
    flip_bytes(store.partition_path(CORE_ID_MAPS, None), count=16)
    with pytest.raises(CorruptPartitionError, match="core_id_maps"):
        store.read(CORE_ID_MAPS)


def test_a_partition_whose_row_count_was_changed_is_reported(store: Warehouse) -> None:
    # A partition rewritten outside the store (here: by pyarrow, keeping the store's metadata) with a row less.
    import pyarrow.parquet as pq

    path = store.partition_path(RAW_EVENTS, DAY)
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)
    (found,) = verify_warehouse(store.root)
    assert found.path == path
