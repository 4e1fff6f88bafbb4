"""The warehouse writes partitions atomically and keeps the catalog consistent."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from warehouse.catalog import catalog_path, connect_catalog, refresh_catalog
from warehouse.contracts import RAW_EVENTS, RAW_ITEMS, all_contracts
from warehouse.store import ContractError, Warehouse

DAY = dt.date(2026, 1, 1)
UTC = dt.UTC


def events(n: int, user: str = "u1") -> pa.Table:
    ts = [dt.datetime(2026, 1, 1, 12, tzinfo=UTC) + dt.timedelta(seconds=i) for i in range(n)]
    return pa.table(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "user_id": [user] * n,
            "ts": ts,
            "event_type": ["click"] * n,
            "item_id": ["i1"] * n,
            "request_id": [None] * n,
            "value": [None] * n,
            "session_id": [None] * n,
        }
    )


def test_partition_round_trip_records_rows_and_hash(warehouse: Warehouse) -> None:
    result = warehouse.write(RAW_EVENTS, events(3), DAY)

    assert result.path == warehouse.root / "raw" / "events" / "date=2026-01-01" / "part.parquet"
    assert warehouse.read(RAW_EVENTS).num_rows == 3
    assert warehouse.stored_stats(RAW_EVENTS, DAY) == (3, result.content_hash)
    assert warehouse.manifest(RAW_EVENTS)["2026-01-01"] == {"rows": 3, "content_hash": result.content_hash}
    assert warehouse.partitions(RAW_EVENTS) == [DAY]


def test_same_content_gives_same_hash_and_bytes(warehouse: Warehouse) -> None:
    first = warehouse.write(RAW_EVENTS, events(5), DAY)
    first_bytes = first.path.read_bytes()
    second = warehouse.write(RAW_EVENTS, events(5), DAY)

    assert second.content_hash == first.content_hash
    assert second.path.read_bytes() == first_bytes
    assert warehouse.write(RAW_EVENTS, events(5, user="u2"), DAY).content_hash != first.content_hash


def test_rewrite_replaces_partition_and_leaves_no_temporary_files(warehouse: Warehouse) -> None:
    warehouse.write(RAW_EVENTS, events(5), DAY)
    warehouse.write(RAW_EVENTS, events(2), DAY)

    assert warehouse.read(RAW_EVENTS).num_rows == 2
    leftovers = [p.name for p in (warehouse.root / "raw" / "events" / "date=2026-01-01").iterdir()]
    assert leftovers == ["part.parquet"]


def test_table_that_breaks_the_contract_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(ContractError, match="missing columns \\['session_id'\\]"):
        warehouse.write(RAW_EVENTS, events(1).drop_columns(["session_id"]), DAY)
    with pytest.raises(ValueError, match="partitioned"):
        warehouse.write(RAW_EVENTS, events(1))
    assert not warehouse.exists(RAW_EVENTS)


def test_catalog_has_a_view_per_table_and_sees_new_partitions(warehouse: Warehouse) -> None:
    warehouse.write(RAW_EVENTS, events(3), DAY)
    refresh_catalog(warehouse.root)
    warehouse.write(RAW_EVENTS, events(4), DAY + dt.timedelta(days=1))

    con = connect_catalog(warehouse.root)
    rows = con.execute("SELECT date, count(*) FROM raw_events GROUP BY 1 ORDER BY 1").fetchall()
    con.close()
    assert rows == [(DAY, 3), (DAY + dt.timedelta(days=1), 4)]


def test_catalog_refresh_does_not_disturb_an_open_reader(warehouse: Warehouse) -> None:
    warehouse.write(RAW_EVENTS, events(3), DAY)
    refresh_catalog(warehouse.root)
    analyst = connect_catalog(warehouse.root)

    tent = {"item_id": ["i1"], "title": ["Tent"], "description": [None], "categories": [["Outdoor"]],
            "brand": ["B"], "price": [10.0], "attributes": ["{}"], "available_from": [None]}
    warehouse.write(RAW_ITEMS, pa.table(tent, schema=RAW_ITEMS.schema))
    refresh_catalog(warehouse.root)  # must not fail although the analyst holds the old file open

    assert analyst.execute("SELECT count(*) FROM raw_events").fetchone() == (3,)
    analyst.close()
    fresh = connect_catalog(warehouse.root)
    assert fresh.execute("SELECT title FROM raw_items").fetchall() == [("Tent",)]
    fresh.close()


WRITER = textwrap.dedent(
    """
    import datetime as dt, sys, time
    import pyarrow as pa
    from warehouse.contracts import RAW_EVENTS
    from warehouse.store import Warehouse

    def batches():
        for b in range(10_000):
            n = 10_000
            yield pa.record_batch({
                "event_id": [f"e{b}-{i}" for i in range(n)], "user_id": ["u"] * n,
                "ts": pa.array([1767268800000] * n, pa.timestamp("ms", tz="UTC")),
                "event_type": ["view"] * n, "item_id": ["i"] * n, "request_id": pa.nulls(n, pa.string()),
                "value": pa.nulls(n, pa.float64()), "session_id": pa.nulls(n, pa.string())})
            if b == 3:
                print("WRITING", flush=True)
    Warehouse(sys.argv[1]).write_batches(RAW_EVENTS, batches(), dt.date(2026, 1, 1))
    """
)


def test_writer_killed_midway_leaves_previous_partition_and_catalog_readable(warehouse: Warehouse, tmp_path: Path) -> None:
    before = warehouse.write(RAW_EVENTS, events(7), DAY)
    refresh_catalog(warehouse.root)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(script), str(warehouse.root)], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "WRITING"  # the new partition is half written now
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert warehouse.read(RAW_EVENTS).num_rows == 7
    assert warehouse.stored_stats(RAW_EVENTS, DAY) == (7, before.content_hash)
    con = duckdb.connect(str(catalog_path(warehouse.root)), read_only=True)
    assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (7,)
    con.close()
    # A rerun after the crash picks up cleanly and replaces the partition.
    assert warehouse.write(RAW_EVENTS, events(2), DAY).rows == 2
    assert [p.name for p in before.path.parent.iterdir()] == ["part.parquet"]


def test_every_contract_has_a_unique_view_name() -> None:
    names = [c.view_name for c in all_contracts()]
    assert len(names) == len(set(names))


def test_catalog_reads_versioned_file_sets_through_the_current_link(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "home"
    shards = root / "training_data" / "sequence_shards"
    for version, rows in (("v1", 2), ("v2", 3)):
        for split in ("train", "test"):
            (shards / "versions" / version / split).mkdir(parents=True)
            pq.write_table(pa.table({"user": list(range(rows))}), shards / "versions" / version / split / "shard-00000.parquet")
    (shards / "current").symlink_to("versions/v1")
    refresh_catalog(root)
    os.replace(_symlink(shards, "versions/v2"), shards / "current")  # what a new shard set does

    con = connect_catalog(root)
    assert con.execute("SELECT count(*) FROM training_data_sequence_shards_train").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM training_data_sequence_shards_test").fetchone() == (3,)
    con.close()


def _symlink(folder: Path, target: str) -> Path:
    link = folder / ".current.tmp"
    link.symlink_to(target)
    return link


def test_read_as_stored_keeps_the_written_width(warehouse: Warehouse) -> None:
    from warehouse.contracts import embedding_contract

    wide = embedding_contract("item", dim=3)  # the registered contract says 384
    table = pa.table({"item_id": ["i1"], "embedding": pa.array([[0.0, 0.6, 0.8]], pa.list_(pa.float32(), 3)),
                      "text_hash": ["h"], "model": ["m"]})
    warehouse.write(wide, table)

    stored = warehouse.read_as_stored(embedding_contract("item"), ["item_id", "embedding"])
    assert stored is not None and stored.schema.field("embedding").type.list_size == 3
    assert stored.column_names == ["item_id", "embedding"]
    assert warehouse.read_as_stored(RAW_EVENTS) is None


def test_writing_a_table_gives_it_a_catalog_view_in_the_same_call(warehouse: Warehouse) -> None:
    # No hand-written refresh: the first write of a new table adds its view; later partitions need none.
    warehouse.write(RAW_EVENTS, events(2), DAY)
    with connect_catalog(warehouse.root) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (2,)
    warehouse.write(RAW_ITEMS, RAW_ITEMS.schema.empty_table())
    Warehouse(warehouse.root).write(RAW_EVENTS, events(1, user="u2"), DAY + dt.timedelta(days=1))
    with connect_catalog(warehouse.root) as con:
        assert con.execute("SELECT count(*) FROM raw_items").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (3,)
