from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.transforms.connectors.conftest import by_table, objects, passed_through
from transforms.connectors import TabularMappingError, connector_for
from transforms.connectors.tabular import TabularConnector, mapping_from_dict

EVENTS = {"table": "events", "columns": {"user_id": "uid", "item_id": "sku", "ts": "when", "event_type": "action"}}


def test_csv_rows_are_mapped_converted_and_translated(fixtures: Path) -> None:
    tables = by_table(connector_for("tabular", fixtures / "tabular/events"))
    alice, bob, carol, *_ = objects(tables["events"])
    # 03/01/2026 is 3 January in the mapping's '%d/%m/%Y'; pv -> view by the value map; an id is made up.
    assert alice["ts"] == "2026-01-03T14:05:09.000Z" and alice["event_type"] == "view" and alice["value"] == "1500"
    assert alice["event_id"].startswith("events:")
    assert bob["event_type"] == "purchase" and "value" not in bob
    assert carol["ts"] == "2026-01-03 14:07 (expected a time in the format '%d/%m/%Y %H:%M:%S')"
    assert passed_through(tables["events"]) == [("clicks.csv", 7, "erin,i6,03/01/2026 14:10:00")]


def test_explanations_name_the_column_and_what_was_expected(fixtures: Path) -> None:
    connector = connector_for("tabular", fixtures / "tabular/events")
    records = {r.line_no: r for r in connector.records()}
    assert connector.explain("events", "bad_value:ts", records[4].line) == (
        "column 'when' (mapped to ts): expected a time in the format '%d/%m/%Y %H:%M:%S', got '2026-01-03 14:07'"
    )
    assert connector.explain("events", "missing:user_id", records[6].line) == (
        "column 'uid' (mapped to user_id) is empty or absent, but user_id is required"
    )
    assert connector.explain("events", "unknown_event_type", records[5].line) == (
        "column 'action' (mapped to event_type): 'wishlist' is not a known event type (add a value_maps.event_type entry)"
    )
    assert connector.explain("events", "invalid_json", records[7].line) == (
        "expected 5 fields as in the header, got a row that does not split into them"
    )


def test_jsonl_items_with_attributes(fixtures: Path) -> None:
    tables = by_table(connector_for("tabular", fixtures / "tabular/items"))
    tent = objects(tables["items"])[0]
    assert tent == {"item_id": "i1", "title": "Tent", "categories": ["outdoor", "camping"], "price": 129.5, "attributes": {"color": "green"}}
    assert passed_through(tables["items"]) == [("catalog.jsonl", 3, '["not", "an", "object"]')]


def test_parquet_with_epoch_milliseconds(tmp_path: Path) -> None:
    pq.write_table(pa.table({"u": ["a", "b"], "i": ["x", "y"], "t": [1767225600000, 1767225601500], "k": ["click", "view"]}), tmp_path / "log.parquet")
    mapping = mapping_from_dict({"table": "events", "columns": {"user_id": "u", "item_id": "i", "ts": "t", "event_type": "k"}, "timestamps": {"unit": "ms"}})
    rows = objects(by_table(TabularConnector(tmp_path / "log.parquet", "mine", mapping))["events"])
    assert [r["ts"] for r in rows] == ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.500Z"]


def test_parquet_timestamps_and_local_zone(tmp_path: Path) -> None:
    local = dt.datetime(2026, 7, 1, 12, 0)  # naive: read in the mapping's zone
    pq.write_table(pa.table({"u": ["a"], "i": ["x"], "t": [local], "k": ["click"]}), tmp_path / "log.parquet")
    mapping = mapping_from_dict({**EVENTS, "columns": {"user_id": "u", "item_id": "i", "ts": "t", "event_type": "k"}, "timestamps": {"timezone": "Europe/Paris"}})
    rows = objects(by_table(TabularConnector(tmp_path / "log.parquet", "mine", mapping))["events"])
    assert rows[0]["ts"] == "2026-07-01T10:00:00.000Z"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"table": "clicks"}, "'clicks' is not a raw table"),
        ({**EVENTS, "columns": {**EVENTS["columns"], "user": "uid"}}, "columns.user: 'user' is not a field of events"),
        ({"table": "events", "columns": {"item_id": "sku", "ts": "when", "event_type": "action"}}, "events requires 'user_id'"),
        ({**EVENTS, "timestamps": {"format": "%Y", "unit": "s"}}, "either 'format'"),
        ({**EVENTS, "timestamps": {"timezone": "Mars/Olympus"}}, "unknown timezone 'Mars/Olympus'"),
        ({**EVENTS, "value_maps": {"value": {"a": 1}}}, "value_maps.value: 'value' is not mapped from a column"),
        ({**EVENTS, "constants": {"user_id": "u1"}}, "constants.user_id: 'user_id' is also mapped to column 'uid'"),
        ({**EVENTS, "colums": {}}, "colums: Extra inputs are not permitted"),
        ({**EVENTS, "attributes": ["x"]}, "attributes: events has no attributes field"),
    ],
)
def test_bad_mappings_say_what_is_wrong(mapping: dict, message: str) -> None:
    with pytest.raises(TabularMappingError, match="not a valid tabular mapping") as info:
        mapping_from_dict(mapping)
    assert message in str(info.value)


def test_column_missing_from_the_header_is_named(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("user,sku,when,action\na,i1,2026-01-01T00:00:00Z,click\n")
    connector = TabularConnector(tmp_path / "log.csv", "x", mapping_from_dict(EVENTS))
    with pytest.raises(TabularMappingError, match=r"log.csv has no column 'uid' \(for user_id\); its columns are: user, sku, when, action"):
        list(connector.records())


def test_invalid_yaml_and_missing_mapping(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("a\n1\n")
    with pytest.raises(TabularMappingError, match="no mapping given"):
        connector_for("tabular", tmp_path / "log.csv")
    (tmp_path / "m.yaml").write_text("table: [events\n")
    with pytest.raises(TabularMappingError, match="not valid YAML"):
        connector_for("tabular", tmp_path / "log.csv", mapping=tmp_path / "m.yaml")
