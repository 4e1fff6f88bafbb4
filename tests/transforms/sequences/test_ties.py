"""Events at the same millisecond keep the order they were read in (source file, then line).

In MovieLens 100K, 415 of 943 users rate their last two items in the same second; which of the two is
the leave-one-out target is the dataset's line order, not the text of an event id.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.connect import ConnectRules, ingest_dataset
from transforms import sequences as seq
from transforms.connectors import connector_for
from transforms.engine import Engine
from warehouse.contracts import CORE_ID_MAPS, RAW_EVENTS
from warehouse.store import Warehouse

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
RULES = ConnectRules(ts_max=dt.datetime(2030, 1, 1), max_bad_share=None)


def _event(eid: str, item: str, seconds: int, line: int | None, source: str | None = "ratings.csv") -> dict:
    return {"event_id": eid, "user_id": "u1", "ts": T0 + dt.timedelta(seconds=seconds), "event_type": "rating",
            "item_id": item, "request_id": None, "value": 4.0, "session_id": None,
            "source_file": source if line is not None else None, "line_no": line}


def _id_maps(items: list[str]) -> pa.Table:
    rows = [{"entity": "user", "external_id": "u1", "idx": 0, "first_seen": None}]
    rows += [{"entity": "item", "external_id": x, "idx": i, "first_seen": None} for i, x in enumerate(items)]
    return pa.Table.from_pylist(rows, schema=CORE_ID_MAPS.schema)


def _test_target(engine: Engine, events: pa.Table, items: list[str]) -> str:
    inter = seq.build_interactions(engine, events, _id_maps(items))
    prep = seq.prepare(engine, inter, seq.SequenceConfig(max_len=None, min_len=1), seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT))
    rows = [r for r in seq.build_splits(engine, prep).to_pylist() if r["split"] == "test"]
    assert len(rows) == 1
    return items[rows[0]["target_item_ids"][0]]


def test_same_millisecond_events_follow_their_lines_not_their_ids(duckdb_engine: Engine) -> None:
    # "r:9" sorts before "r:10" by length and after it by text; neither is the line order here.
    items = ["first", "second", "third"]
    events = pa.Table.from_pylist(
        [_event("r:1", "first", 0, 1), _event("r:9", "third", 60, 3), _event("r:10", "second", 60, 2)], schema=RAW_EVENTS.schema
    )
    assert _test_target(duckdb_engine, events, items) == "third"  # line 3 is the later event
    swapped = events.set_column(events.schema.get_field_index("line_no"), "line_no", pa.array([1, 2, 3], pa.int64()))
    assert _test_target(duckdb_engine, swapped, items) == "second"


def test_events_without_provenance_fall_back_to_the_event_id(duckdb_engine: Engine) -> None:
    items = ["first", "second", "third"]
    events = pa.Table.from_pylist(
        [_event("r:1", "first", 0, None), _event("r:10", "third", 60, None), _event("r:9", "second", 60, None)], schema=RAW_EVENTS.schema
    )
    assert _test_target(duckdb_engine, events, items) == "third"  # shorter id first: r:9, then r:10
    # Rows built in memory without the columns at all read the same.
    bare = events.drop_columns(["source_file", "line_no"])
    assert _test_target(duckdb_engine, bare, items) == "third"


def test_ingested_ratings_keep_file_and_line_and_decide_the_target(tmp_path: Path, duckdb_engine: Engine) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    # User 1 rates item 300 (line 2) and item 20 (line 3) in the same second: the event ids
    # (movielens:1:300, movielens:1:20) put item 20 first, the file puts it last.
    (folder / "u.data").write_text("1\t7\t5\t881250000\n1\t300\t4\t881251234\n1\t20\t3\t881251234\n2\t7\t4\t881250000\n")
    warehouse = Warehouse(tmp_path / "data")
    ingest_dataset(connector_for("movielens", folder), warehouse, duckdb_engine, RULES)
    raw = warehouse.read(RAW_EVENTS).sort_by("line_no")
    assert raw["line_no"].to_pylist() == [1, 2, 3, 4]
    assert set(raw["source_file"].to_pylist()) == {"ml-100k/u.data"}  # <dataset folder>/<file>
    assert pc.all(pc.equal(raw["item_id"], pa.array(["7", "300", "20", "7"]))).as_py()

    id_maps = pa.Table.from_pylist(
        [{"entity": "user", "external_id": u, "idx": i, "first_seen": None} for i, u in enumerate(["1", "2"])]
        + [{"entity": "item", "external_id": x, "idx": i, "first_seen": None} for i, x in enumerate(["7", "300", "20"])],
        schema=CORE_ID_MAPS.schema,
    )
    inter = seq.build_interactions(duckdb_engine, warehouse.files(RAW_EVENTS), id_maps)
    assert inter.filter(pc.equal(inter["user_id"], "1"))["item_id"].to_pylist() == ["7", "300", "20"]
    assert inter.filter(pc.equal(inter["user_id"], "1"))["line_no"].to_pylist() == [1, 2, 3]


def test_raw_partitions_written_before_provenance_still_read(tmp_path: Path, duckdb_engine: Engine) -> None:
    """A partition written without the provenance columns reads them as nulls beside a newer one."""
    warehouse = Warehouse(tmp_path / "data")
    old = pa.Table.from_pylist([_event("r:1", "first", 0, None)], schema=RAW_EVENTS.schema).drop_columns(["source_file", "line_no"])
    path = warehouse.partition_path(RAW_EVENTS, T0.date())
    path.parent.mkdir(parents=True)
    pq.write_table(old, path)
    warehouse.write(RAW_EVENTS, pa.Table.from_pylist([_event("r:2", "second", 86_400, 7)], schema=RAW_EVENTS.schema), (T0 + dt.timedelta(days=1)).date())
    read = warehouse.read(RAW_EVENTS).sort_by("ts")
    assert read["line_no"].to_pylist() == [None, 7]
    inter = seq.build_interactions(duckdb_engine, warehouse.files(RAW_EVENTS), _id_maps(["first", "second"]))
    assert inter["line_no"].to_pylist() == [None, 7]


def test_interactions_files_written_before_provenance_still_build(tmp_path: Path, duckdb_engine: Engine) -> None:
    events = pa.Table.from_pylist([_event("r:1", "first", 0, None), _event("r:2", "second", 60, None), _event("r:3", "third", 120, None)],
                                  schema=RAW_EVENTS.schema)
    inter = seq.build_interactions(duckdb_engine, events, _id_maps(["first", "second", "third"]))
    old = tmp_path / "interactions.parquet"
    pq.write_table(inter.drop_columns(["source_file", "line_no"]), old)
    prep = seq.prepare(duckdb_engine, [old], seq.SequenceConfig(max_len=None, min_len=1), seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT))
    test = [r for r in seq.build_splits(duckdb_engine, prep).to_pylist() if r["split"] == "test"]
    assert test[0]["target_item_ids"] == [2]


def _files_without_provenance_read_as_typed_nulls(tmp_path: Path, engine: Engine) -> None:
    events = pa.Table.from_pylist([_event("r:1", "first", 0, None)], schema=RAW_EVENTS.schema)
    old = tmp_path / "old.parquet"
    pq.write_table(events.drop_columns(["source_file", "line_no"]), old)
    seq.register_rows(engine, "old_rows", [old], RAW_EVENTS)  # read in place, the columns added as nulls
    out = engine.query("SELECT event_id, source_file, line_no FROM old_rows")
    assert out.to_pylist() == [{"event_id": "r:1", "source_file": None, "line_no": None}]
    assert out.schema.field("source_file").type == pa.string() and out.schema.field("line_no").type == pa.int64()


def test_files_without_provenance_read_as_typed_nulls(tmp_path: Path, duckdb_engine: Engine) -> None:
    _files_without_provenance_read_as_typed_nulls(tmp_path, duckdb_engine)


@pytest.mark.spark
def test_files_without_provenance_read_as_typed_nulls_on_spark(tmp_path: Path, spark_engine: Engine) -> None:
    _files_without_provenance_read_as_typed_nulls(tmp_path, spark_engine)
