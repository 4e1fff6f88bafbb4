"""Staging: typed rows in, every rejected row in quarantine with its reason and location."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.engine import Engine
from transforms.engine.sources import (
    SourceFile,
    SourceFormat,
    lines_from_text,
    read_csv_as_lines,
    read_lines,
    read_parquet_rows,
)
from transforms.ingest.staging import day_window, stage

DAY = dt.date(2026, 1, 1)
WINDOW = day_window(DAY)


def event(**overrides: object) -> str:
    row = {"event_id": "e1", "user_id": "u1", "ts": "2026-01-01T10:00:00.000Z", "event_type": "click",
           "item_id": "i1", "request_id": "r1", "value": None, "session_id": "s1"}
    row.update(overrides)
    return json.dumps({k: v for k, v in row.items() if v is not ...})


# One line per kind of bad row the issue lists, plus good rows around them.
EVENT_LINES = [
    (event(event_id="e1"), None),                                   # good
    (event(event_id="e1"), "duplicate"),                            # exact copy of line 1
    ('{"event_id": "e2", "user_id": "u1", "ts": "2026-01-0', "invalid_json"),  # truncated
    ("[1, 2, 3]", "invalid_json"),                                   # JSON, but not an object
    (event(event_id="e3", user_id=...), "missing:user_id"),          # key absent
    (event(event_id="e4", user_id=None), "missing:user_id"),         # key null
    (event(event_id="e5", ts="yesterday-ish"), "bad_value:ts"),      # unparseable timestamp
    (event(event_id="e6", ts="1971-01-01T00:00:00.000Z"), "impossible_ts"),
    (event(event_id="e7", ts="2031-01-01T00:00:00.000Z"), "impossible_ts"),
    (event(event_id="e8", event_type="teleport"), "unknown_event_type"),
    (event(event_id="e9", value="twelve"), "bad_value:value"),
    (event(event_id="e1", user_id="u2"), "duplicate_key"),           # same id, other content
    (event(event_id="e12", item_id=None), "missing:item_id"),        # a click on nothing
    (event(event_id="e13", event_type="search", item_id=None), None),  # a search needs no item
    (event(event_id="e10", event_type="view", value=12.5, ts="2026-01-01T23:59:59.999Z"), None),
    (event(event_id="e11", ts="2026-01-02T00:30:00.000Z"), None),    # late within tolerance
]


def test_every_kind_of_bad_event_is_quarantined_with_reason_and_line(duckdb_engine: Engine) -> None:
    text = "\n".join(line for line, _ in EVENT_LINES)
    result = stage(duckdb_engine, "events", lines_from_text(text, "events/2026-01-01.jsonl"), WINDOW)

    expected_bad = {i + 1: reason for i, (_, reason) in enumerate(EVENT_LINES) if reason}
    got = dict(zip(result.quarantined["line_no"].to_pylist(), result.quarantined["reason"].to_pylist(), strict=True))
    assert got == expected_bad
    assert set(result.quarantined["source_file"].to_pylist()) == {"events/2026-01-01.jsonl"}
    assert result.quarantined["line"].to_pylist()[1] == EVENT_LINES[2][0]  # original text kept
    assert result.staged["event_id"].to_pylist() == ["e1", "e13", "e10", "e11"]
    assert result.staged.num_rows + result.quarantined.num_rows == len(EVENT_LINES)
    assert result.staged.schema.field("ts").type == pa.timestamp("ms", tz="UTC")


def test_items_reject_negative_price_and_keep_lists_and_attributes(duckdb_engine: Engine) -> None:
    lines = "\n".join([
        json.dumps({"item_id": "i1", "title": "Tent", "categories": ["Outdoor", "Outdoor > Tents"], "price": 99.5,
                    "attributes": {"color": "green"}, "available_from": "2026-01-03T00:00:00.000Z"}),
        json.dumps({"item_id": "i2", "title": "Bad", "price": -3}),
        json.dumps({"item_id": "i3", "price": "free"}),
        json.dumps({"title": "no id"}),
    ])
    result = stage(duckdb_engine, "items", lines_from_text(lines, "catalog/items.jsonl"))

    assert result.quarantined["reason"].to_pylist() == ["out_of_range:price", "bad_value:price", "missing:item_id"]
    row = result.staged.to_pylist()[0]
    assert row["categories"] == ["Outdoor", "Outdoor > Tents"]
    assert json.loads(row["attributes"]) == {"color": "green"}
    assert row["available_from"] == dt.datetime(2026, 1, 3, tzinfo=dt.UTC)


def test_reviews_and_impressions_ranges(duckdb_engine: Engine) -> None:
    review = {"review_id": "v1", "user_id": "u1", "item_id": "i1", "ts": "2026-01-01T10:00:00.000Z",
              "rating": 5, "title": "Great", "text": "Loved it", "helpful_votes": 2}
    reviews = "\n".join(json.dumps({**review, **o}) for o in ({}, {"review_id": "v2", "rating": 7},
                                                                {"review_id": "v3", "helpful_votes": -1},
                                                                {"review_id": "v4", "helpful_votes": 1.5}))
    r = stage(duckdb_engine, "reviews", lines_from_text(reviews), WINDOW)
    assert r.quarantined["reason"].to_pylist() == ["out_of_range:rating", "out_of_range:helpful_votes", "bad_value:helpful_votes"]

    imp = {"request_id": "r1", "user_id": "u1", "item_id": "i1", "position": 0, "ts": "2026-01-01T10:00:00.000Z"}
    imps = "\n".join(json.dumps({**imp, **o}) for o in ({}, {"item_id": "i2", "position": -1},
                                                         {"item_id": "i3", "position": 2, "propensity": 1.5}))
    r = stage(duckdb_engine, "impressions", lines_from_text(imps), WINDOW)
    assert r.quarantined["reason"].to_pylist() == ["out_of_range:position", "out_of_range:propensity"]
    assert r.staged.to_pylist()[0]["position"] == 0


def slates_table() -> pa.Table:
    ts = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
    return pa.table({
        "request_id": ["r1", "r2", "r3", "r4", "r1", "r1"],
        "user_id": ["u1", "u1", None, "u2", "u1", "u1"],
        "ts": pa.array([ts] * 6, pa.timestamp("ms", tz="UTC")),
        "surface": ["home"] * 6,
        "item_ids": [["a", "b"], ["a", "b"], ["a"], ["a", "b"], ["a", "b"], ["b", "a"]],
        "policy": ["popularity"] * 6,
        "propensities": [[0.5, 0.25], [0.5, 1.5], None, [0.5], [0.5, 0.25], [0.5, 0.25]],
    })


def test_parquet_slates_are_validated_and_bad_rows_rendered_as_json(duckdb_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "2026-01-01.parquet"
    pq.write_table(slates_table(), path)
    result = stage(duckdb_engine, "slates", read_parquet_rows(path, "slates/2026-01-01.parquet"), WINDOW)

    assert result.staged["request_id"].to_pylist() == ["r1"]
    assert result.quarantined["reason"].to_pylist() == [
        "out_of_range:propensities", "missing:user_id", "out_of_range:propensities", "duplicate", "duplicate_key"]
    assert result.quarantined["line_no"].to_pylist() == [2, 3, 4, 5, 6]
    assert json.loads(result.quarantined["line"][0].as_py())["propensities"] == [0.5, 1.5]


def test_csv_catalog_reads_lists_and_reports_ragged_rows(duckdb_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text('item_id,title,categories,price,attributes\n'
                    'i1,"Tent, 2p",Outdoor|Outdoor > Tents,99.5,"{""color"": ""green""}"\n'
                    'i2,Mug,Kitchen\n'
                    'i3,Lamp,Home,-1,{}\n')
    result = stage(duckdb_engine, "items", read_csv_as_lines(path, list_columns=("categories",), json_columns=("attributes",)))

    assert result.staged.to_pylist()[0]["categories"] == ["Outdoor", "Outdoor > Tents"]
    assert result.staged.to_pylist()[0]["title"] == "Tent, 2p"
    assert dict(zip(result.quarantined["line_no"].to_pylist(), result.quarantined["reason"].to_pylist(), strict=True)) == {
        3: "invalid_json", 4: "out_of_range:price"}


def test_read_lines_numbers_lines_across_blocks_and_gzip(tmp_path: Path) -> None:
    import gzip

    body = "".join(f'{{"n": {i}}}\n' for i in range(1000)) + "\n" + '{"n": "last"}'
    plain, packed = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    plain.write_text(body)
    packed.write_bytes(gzip.compress(body.encode()))
    for path in (plain, packed):
        table = read_lines(path, "x")
        assert table.num_rows == 1001  # the blank line is not a row...
        assert table["line_no"].to_pylist()[-1] == 1002  # ...but keeps its number
        assert table["line"].to_pylist()[-1] == '{"n": "last"}'


CORRUPTIONS = st.sampled_from(["truncate", "drop_user", "bad_ts", "bad_type", "duplicate", "garbage", "none"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10_000), CORRUPTIONS), min_size=1, max_size=40))
def test_staged_plus_quarantined_equals_input_lines(duckdb_engine: Engine, rows: list[tuple[int, str]]) -> None:
    lines: list[str] = []
    for n, corruption in rows:
        good = event(event_id=f"e{n}", user_id=f"u{n % 7}")
        lines.append({
            "truncate": good[: len(good) // 2],
            "drop_user": event(event_id=f"e{n}", user_id=...),
            "bad_ts": event(event_id=f"e{n}", ts="31/02/2026"),
            "bad_type": event(event_id=f"e{n}", event_type="hover"),
            "duplicate": lines[-1] if lines else good,
            "garbage": "\x00\x01 not json",
            "none": good,
        }[corruption])
    result = stage(duckdb_engine, "events", lines_from_text("\n".join(lines)), WINDOW)

    assert result.input_rows == len(lines)
    quarantined_lines = result.quarantined["line_no"].to_pylist()
    assert len(set(quarantined_lines)) == len(quarantined_lines)
    staged_ids = result.staged["event_id"].to_pylist()
    assert len(staged_ids) == len(set(staged_ids))


@pytest.mark.spark
def test_duckdb_and_spark_stage_identically(duckdb_engine: Engine, spark_engine: Engine, tmp_path: Path) -> None:
    events_text = "\n".join(line for line, _ in EVENT_LINES)
    path = tmp_path / "2026-01-01.parquet"
    pq.write_table(slates_table(), path)
    item_lines = "\n".join([
        json.dumps({"item_id": "i1", "categories": ["A", "B"], "price": 1.0, "attributes": {"k": "v"}}),
        json.dumps({"item_id": "i2", "price": -1}),
    ])
    cases = [
        ("events", lines_from_text(events_text, "e.jsonl"), WINDOW),
        ("slates", read_parquet_rows(path, "s.parquet"), WINDOW),
        ("items", lines_from_text(item_lines, "i.jsonl"), None),
    ]
    for table, source, window in cases:
        on_duckdb = stage(duckdb_engine, table, source, window)
        on_spark = stage(spark_engine, table, source, window)
        assert on_spark.staged.equals(on_duckdb.staged), table
        assert on_spark.quarantined.equals(on_duckdb.quarantined), table


@pytest.mark.spark
def test_engines_read_files_themselves_with_the_same_line_numbers(
    duckdb_engine: Engine, spark_engine: Engine, tmp_path: Path
) -> None:
    import gzip

    text = "\n".join(line for line, _ in EVENT_LINES[:6]) + "\n\n" + "\n".join(line for line, _ in EVENT_LINES[6:]) + "\n"
    plain, packed, slates = tmp_path / "e.jsonl", tmp_path / "e.jsonl.gz", tmp_path / "s.parquet"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    pq.write_table(slates_table(), slates)
    cases = [
        ("events", SourceFile(plain, "e.jsonl", SourceFormat.JSON_LINES)),
        ("events", SourceFile(packed, "e.jsonl", SourceFormat.JSON_LINES)),
        ("slates", SourceFile(slates, "s.parquet", SourceFormat.PARQUET)),
    ]
    for table, source in cases:
        on_duckdb = stage(duckdb_engine, table, source, WINDOW)
        on_spark = stage(spark_engine, table, source, WINDOW)
        assert on_spark.staged.equals(on_duckdb.staged), source
        assert on_spark.quarantined.equals(on_duckdb.quarantined), source
    in_memory = stage(duckdb_engine, "events", lines_from_text(text, "e.jsonl"), WINDOW)
    from_file = stage(duckdb_engine, "events", cases[0][1], WINDOW)
    assert from_file.quarantined.equals(in_memory.quarantined)


def test_slates_from_json_lines_parse_propensity_lists(duckdb_engine: Engine) -> None:
    slate = {"request_id": "r1", "user_id": "u1", "ts": "2026-01-01T09:00:00.000Z", "surface": "home",
             "item_ids": ["a", "b"], "policy": "random", "propensities": [0.5, 0.5]}
    result = stage(duckdb_engine, "slates", lines_from_text(json.dumps(slate)), WINDOW)

    assert result.quarantined.num_rows == 0
    assert result.staged.to_pylist()[0]["propensities"] == [0.5, 0.5]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["", " ", "\t", "a", '{"x": 1}', "é", "\r", "line\r", " x", "\t{}"]), max_size=12), st.integers(1, 5))
def test_block_reader_numbers_lines_as_splitting_the_text_does(parts: list[str], first: int) -> None:
    from transforms.engine.sources import _lines_table

    block = "\n".join(parts).encode()
    table, next_line_no = _lines_table(block, "f", first)
    expected = [(first + i, line) for i, line in enumerate(block.decode().split("\n")) if line.strip()]
    assert list(zip(table["line_no"].to_pylist(), table["line"].to_pylist(), strict=True)) == expected
    assert next_line_no == first + len(block.decode().split("\n"))
