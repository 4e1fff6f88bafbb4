"""Faults: one bad value, one bad byte or one bad argument costs one quarantined row or one clear error.

Issue 14, items 3 and 5 to 9: numbers out of range, NaN and infinity, ids that are not ids, bytes that are
not UTF-8, a date range given backwards, and a re-ingest that moves bad rows to other days.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.connect import UNDATED, ConnectRules, ingest_dataset
from recforge.cli import main as recforge_main
from transforms.connectors.base import iter_lines
from transforms.connectors.tabular import TabularConnector, mapping_from_dict
from transforms.engine import DuckDBEngine, Engine
from transforms.engine.sources import (
    UNDECODABLE_MARK,
    SourceFile,
    SourceFormat,
    lines_from_text,
    read_csv_as_lines,
    read_lines,
)
from transforms.ingest.staging import day_window, stage
from warehouse import contracts
from warehouse.store import Warehouse

WINDOW = day_window(dt.date(2026, 1, 1))
TS = "2026-01-01T10:00:00Z"


def _impression(n: int, position: object) -> str:
    return json.dumps({"request_id": f"r{n}", "user_id": "u1", "item_id": f"i{n}", "position": position, "ts": TS})


def _reasons(result: object) -> dict[int, str]:
    q = result.quarantined  # type: ignore[attr-defined]
    return dict(zip(q["line_no"].to_pylist(), q["reason"].to_pylist(), strict=True))


# --- item 3: one out-of-range number is one bad row, not a crashed step -----------------------------------


def test_integers_out_of_range_are_bad_values_not_a_crash(duckdb_engine: Engine) -> None:
    lines = [
        _impression(1, 3),
        _impression(2, "NaN"),
        _impression(3, 1e30),
        '{"request_id": "r4", "user_id": "u1", "item_id": "i4", "position": 9223372036854775808, "ts": "2026-01-01T10:00:00Z"}',
        _impression(5, 4.0),  # a whole number written as a fraction is accepted
        _impression(6, 2**31),  # position is a 32-bit column
    ]
    result = stage(duckdb_engine, "impressions", lines_from_text("\n".join(lines)), WINDOW)
    assert _reasons(result) == {2: "bad_value:position", 3: "bad_value:position", 4: "bad_value:position", 6: "bad_value:position"}
    assert result.staged["position"].to_pylist() == [3, 4]


def test_helpful_votes_past_the_64_bit_range(duckdb_engine: Engine) -> None:
    review = {"review_id": "v1", "user_id": "u1", "item_id": "i1", "ts": TS, "rating": 4, "helpful_votes": 1e20}
    exact = '{"review_id": "v2", "user_id": "u1", "item_id": "i1", "ts": "2026-01-01T10:00:00Z", "helpful_votes": 9007199254740993}'
    result = stage(duckdb_engine, "reviews", lines_from_text(json.dumps(review) + "\n" + exact), WINDOW)
    assert _reasons(result) == {1: "bad_value:helpful_votes"}
    assert result.staged["helpful_votes"].to_pylist() == [2**53 + 1]  # read exactly, not through a double


# --- item 6: NaN and infinity never reach the interactions ------------------------------------------------


@pytest.mark.parametrize("value", ['"NaN"', '"Infinity"', '"-Infinity"', "1e999", '"inf"'])
def test_non_finite_values_are_bad_values(duckdb_engine: Engine, value: str) -> None:
    line = f'{{"event_id": "e1", "user_id": "u1", "ts": "{TS}", "event_type": "rating", "item_id": "i1", "value": {value}}}'
    result = stage(duckdb_engine, "events", lines_from_text(line + "\n" + line.replace('"e1"', '"e2"').replace(f"{value}}}", "4.5}")), WINDOW)
    assert _reasons(result) == {1: "bad_value:value"}
    assert result.staged["value"].to_pylist() == [4.5]


def test_non_finite_rating_and_propensity(duckdb_engine: Engine) -> None:
    review = {"review_id": "v1", "user_id": "u1", "item_id": "i1", "ts": TS, "rating": "NaN"}
    assert _reasons(stage(duckdb_engine, "reviews", lines_from_text(json.dumps(review)), WINDOW)) == {1: "bad_value:rating"}
    imp = {"request_id": "r1", "user_id": "u1", "item_id": "i1", "position": 0, "ts": TS, "propensity": "NaN"}
    assert _reasons(stage(duckdb_engine, "impressions", lines_from_text(json.dumps(imp)), WINDOW)) == {1: "bad_value:propensity"}


# --- item 7: an id is a non-blank string or an integer, in NFC --------------------------------------------

BAD_IDS = ['""', '"   "', '"\\t"', '{"a": 1}', "[1, 2]", "true", "1.5"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_that_are_not_ids_are_bad_values(duckdb_engine: Engine, bad: str) -> None:
    line = f'{{"event_id": "e1", "user_id": {bad}, "ts": "{TS}", "event_type": "click", "item_id": "i1"}}'
    result = stage(duckdb_engine, "events", lines_from_text(line), WINDOW)
    assert _reasons(result) == {1: "bad_value:user_id"}


@pytest.mark.parametrize("text", [" u1", "\tu1", "\u00a0", "\u0001", "u 1 "])
def test_an_id_with_any_non_blank_character_is_an_id_as_written(duckdb_engine: Engine, text: str) -> None:
    # Blank means ASCII whitespace only: a no-break space or a control character is text, and nothing is trimmed.
    line = json.dumps({"event_id": "e1", "user_id": text, "ts": TS, "event_type": "click", "item_id": "i1"})
    result = stage(duckdb_engine, "events", lines_from_text(line), WINDOW)
    assert result.staged["user_id"].to_pylist() == [text]


def test_integer_ids_are_their_decimal_text_and_ids_are_nfc(duckdb_engine: Engine) -> None:
    decomposed = unicodedata.normalize("NFD", "u_café")
    lines = [
        f'{{"event_id": 7, "user_id": 42, "ts": "{TS}", "event_type": "click", "item_id": -3}}',
        json.dumps({"event_id": "e2", "user_id": decomposed, "ts": TS, "event_type": "click", "item_id": "i1"}),
        json.dumps({"event_id": "e3", "user_id": "u_cafè", "ts": TS, "event_type": "click", "item_id": "i1"}),
        # The same event id, typed once composed and once decomposed: one key, so the second is a duplicate key.
        json.dumps({"event_id": "é", "user_id": "u1", "ts": TS, "event_type": "click", "item_id": "i1"}),
        json.dumps({"event_id": unicodedata.normalize("NFD", "é"), "user_id": "u2", "ts": TS, "event_type": "click", "item_id": "i1"}),
    ]
    result = stage(duckdb_engine, "events", lines_from_text("\n".join(lines)), WINDOW)
    rows = result.staged.to_pylist()
    assert [(r["event_id"], r["user_id"], r["item_id"]) for r in rows] == [
        ("7", "42", "-3"), ("e2", "u_café", "i1"), ("e3", "u_cafè", "i1"), ("é", "u1", "i1")]
    assert rows[1]["user_id"] == unicodedata.normalize("NFC", "u_café") != rows[2]["user_id"]
    assert _reasons(result) == {5: "duplicate_key"}
    assert result.quarantined["line"].to_pylist() == [lines[4]]  # found only after NFC, and still kept whole


# --- item 5: bytes that are not UTF-8 are quarantined, not altered ----------------------------------------


def _latin1_events(path: Path) -> None:
    good = json.dumps({"event_id": "e1", "user_id": "u_café", "ts": TS, "event_type": "click", "item_id": "i1"})
    bad = json.dumps({"event_id": "e2", "user_id": "u_cafè", "ts": TS, "event_type": "click", "item_id": "i1"}, ensure_ascii=False)
    path.write_bytes(good.encode("utf-8") + b"\n" + bad.encode("latin-1") + b"\n")


def test_latin1_line_in_jsonl_is_quarantined_as_invalid_encoding(duckdb_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "2026-01-01.jsonl"
    _latin1_events(path)
    result = stage(duckdb_engine, "events", read_lines(path, "events/2026-01-01.jsonl"), WINDOW)
    assert result.staged["user_id"].to_pylist() == ["u_café"]
    assert _reasons(result) == {2: "invalid_encoding"}
    kept = result.quarantined["line"][0].as_py()
    assert "u_caf\\xe8" in kept and not kept.startswith(UNDECODABLE_MARK)  # the bytes are visible, the mark is gone


def test_latin1_row_in_csv_is_quarantined(duckdb_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes("user_id,country\nu_café,fr\n".encode() + "u_cafè,it\n".encode("latin-1"))
    result = stage(duckdb_engine, "users", read_csv_as_lines(path, attribute_key="user_id"))
    assert result.staged["user_id"].to_pylist() == ["u_café"]
    assert _reasons(result) == {3: "invalid_encoding"}


def test_connector_lines_keep_undecodable_lines_marked(tmp_path: Path) -> None:
    path = tmp_path / "ratings.tsv"
    path.write_bytes(b"1\t2\t5\n" + "u_cafè\t2\t5\n".encode("latin-1"))
    lines = list(iter_lines(path))
    assert lines[0] == (1, "1\t2\t5")
    assert lines[1][0] == 2 and lines[1][1].startswith(UNDECODABLE_MARK) and "\\xe8" in lines[1][1]
    # The encoding is a setting: read as Latin-1, the same line is text.
    assert list(iter_lines(path, "latin-1"))[1] == (2, "u_cafè\t2\t5")


# --- item 8: a backwards date range is refused ------------------------------------------------------------


def test_materialize_with_end_before_start_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECFORGE_HOME", str(tmp_path))
    assert recforge_main(["materialize", "--start", "2026-01-05", "--end", "2026-01-01"]) == 2
    assert "--end 2026-01-01 is before --start 2026-01-05" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was created


# --- item 9: a re-ingest replaces what came from the files it reads ---------------------------------------


def test_reingest_with_another_mapping_leaves_no_stale_rows(tmp_path: Path) -> None:
    # Six lines; the first mapping takes `t1` as the time, the second `t2`: the bad rows move to other days.
    data = tmp_path / "clicks.jsonl"
    rows = [{"u": f"u{i}", "i": "x", "t1": f"2026-01-0{1 + i % 3}T10:00:00Z", "t2": f"2026-02-0{1 + i % 3}T10:00:00Z",
             "k": "click" if i % 2 else "teleport"} for i in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    warehouse = Warehouse(tmp_path / "home")
    rules = ConnectRules(ts_max=dt.datetime(2030, 1, 1), max_bad_share=None)
    with DuckDBEngine() as engine:
        for ts in ("t1", "t2"):
            mapping = mapping_from_dict({"table": "events", "columns": {"user_id": "u", "item_id": "i", "ts": ts, "event_type": "k"}})
            report = ingest_dataset(TabularConnector(data, "clicks", mapping), warehouse, engine, rules)
    assert (report.tables["events"].staged, report.tables["events"].quarantined) == (3, 3)
    quarantine = warehouse.read(contracts.quarantine_contract(contracts.RAW_EVENTS))
    assert quarantine.num_rows == 3
    assert warehouse.partitions(contracts.quarantine_contract(contracts.RAW_EVENTS)) == [
        dt.date(2026, 2, 1), dt.date(2026, 2, 2), dt.date(2026, 2, 3)]
    assert UNDATED not in warehouse.partitions(contracts.quarantine_contract(contracts.RAW_EVENTS))
    # The staged rows of the first mapping (January) are gone too: only these files had written those days.
    february = [dt.date(2026, 2, d) for d in (1, 2, 3)]
    assert warehouse.partitions(contracts.RAW_EVENTS) == february
    assert warehouse.read(contracts.RAW_EVENTS).num_rows == 3
    assert report.tables["events"].stale_removed == tuple(dt.date(2026, 1, d) for d in (1, 2, 3))
    assert isinstance(quarantine, pa.Table)


def test_reingest_keeps_a_stale_day_that_another_source_shares_and_says_so(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "home")
    rules = ConnectRules(ts_max=dt.datetime(2030, 1, 1), max_bad_share=None)
    other, mine = tmp_path / "other.jsonl", tmp_path / "mine.jsonl"
    other.write_text('{"u": "bob", "i": "x", "t1": "2026-01-05T10:00:00Z", "k": "click"}\n')
    mine.write_text('{"u": "ann", "i": "x", "t1": "2026-01-05T11:00:00Z", "t2": "2026-01-07T11:00:00Z", "k": "click"}\n')
    with DuckDBEngine() as engine:
        for name, path, ts in (("other", other, "t1"), ("mine", mine, "t1"), ("mine", mine, "t2")):
            mapping = mapping_from_dict({"table": "events", "columns": {"user_id": "u", "item_id": "i", "ts": ts, "event_type": "k"}})
            report = ingest_dataset(TabularConnector(path, name, mapping), warehouse, engine, rules)
    assert report.tables["events"].stale_kept == (dt.date(2026, 1, 5),)
    assert report.summary()["tables"]["events"]["stale_partitions_kept_shared_with_other_sources"] == ["2026-01-05"]
    assert warehouse.partitions(contracts.RAW_EVENTS) == [dt.date(2026, 1, 5), dt.date(2026, 1, 7)]


# --- both engines say the same about every bad value above -------------------------------------------


@pytest.mark.spark
def test_spark_quarantines_the_same_bad_values(duckdb_engine: Engine, spark_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "2026-01-01.jsonl"
    _latin1_events(path)
    spark_ids = BAD_IDS
    event_lines = [
        *(f'{{"event_id": "b{i}", "user_id": {bad}, "ts": "{TS}", "event_type": "click", "item_id": "i1"}}'
          for i, bad in enumerate(spark_ids)),
        *(f'{{"event_id": "v{i}", "user_id": "u1", "ts": "{TS}", "event_type": "rating", "item_id": "i1", "value": {v}}}'
          for i, v in enumerate(['"NaN"', '"Infinity"', "1e999", "4.5"])),
        f'{{"event_id": 7, "user_id": 42, "ts": "{TS}", "event_type": "click", "item_id": "i1"}}',
        json.dumps({"event_id": "n1", "user_id": unicodedata.normalize("NFD", "u_café"), "ts": TS, "event_type": "click", "item_id": "i1"}),
    ]
    impressions = [_impression(1, 3), _impression(2, "NaN"), _impression(3, 1e30), _impression(4, 2**31), _impression(5, 1.5)]
    cases = [
        ("events", lines_from_text("\n".join(event_lines), "e.jsonl")),
        ("events", read_lines(path, "latin.jsonl")),
        ("impressions", lines_from_text("\n".join(impressions), "i.jsonl")),
    ]
    for table, source in cases:
        on_duckdb = stage(duckdb_engine, table, source, WINDOW)
        on_spark = stage(spark_engine, table, source, WINDOW)
        assert on_spark.staged.equals(on_duckdb.staged), table
        assert on_spark.quarantined.equals(on_duckdb.quarantined), table
        assert on_duckdb.quarantined.num_rows > 0
    # Each engine reading the file itself: Spark finds the invalid bytes on its own (shown as U+FFFD).
    source = SourceFile(path, "latin.jsonl", SourceFormat.JSON_LINES)
    on_duckdb, on_spark = stage(duckdb_engine, "events", source, WINDOW), stage(spark_engine, "events", source, WINDOW)
    assert on_spark.staged.equals(on_duckdb.staged)
    assert _reasons(on_spark) == _reasons(on_duckdb) == {2: "invalid_encoding"}
    assert "u_caf\ufffd" in on_spark.quarantined["line"][0].as_py()
