from __future__ import annotations

from pathlib import Path

import pytest

from tests.transforms.connectors.conftest import by_table, objects, passed_through
from transforms.connectors import ConnectorError, connector_for


def test_diginetica_views_purchases_and_categories(fixtures: Path) -> None:
    tables = by_table(connector_for("diginetica", fixtures / "diginetica"))
    first = objects(tables["events"])[0]
    # eventdate 2016-03-14 + timeframe 512345 ms = 00:08:32.345; an anonymous session gets its own user.
    assert first == {"event_id": "diginetica:view:41:9001:512345", "user_id": "anon-41", "ts": "2016-03-14T00:08:32.345Z",
                     "event_type": "view", "item_id": "9001", "session_id": "41"}
    purchase = next(e for e in objects(tables["events"]) if e["event_type"] == "purchase")
    assert purchase["user_id"] == "777" and purchase["item_id"] == "9004"
    assert objects(tables["items"])[0] == {"item_id": "9001", "categories": ["42"]}
    assert passed_through(tables["events"]) == [("train-item-views.csv", 5, "43;NA;1")]


def test_yoochoose_sessions_and_item_categories(fixtures: Path) -> None:
    tables = by_table(connector_for("yoochoose", fixtures / "yoochoose"))
    clicks = [e for e in objects(tables["events"]) if e["event_type"] == "click"]
    assert [(c["user_id"], c["session_id"]) for c in clicks][:1] == [("session-1", "1")]
    buys = [e for e in objects(tables["events"]) if e["event_type"] == "purchase"]
    assert [b["value"] for b in buys] == [8150.0, 12460.0]  # price x quantity
    # Item 300000003 was clicked under "S" and "5"; category 0 means unknown and is left out.
    assert objects(tables["items"]) == [
        {"item_id": "300000002", "categories": []},
        {"item_id": "300000001", "categories": []},
        {"item_id": "300000003", "categories": ["S", "5"]},
    ]


def test_yoochoose_reads_the_prepared_tab_separated_files_of_session_rec(tmp_path: Path) -> None:
    # rsc15_train_full.txt as session-rec and GRU4Rec publish it: a header, Time in epoch seconds.
    (tmp_path / "rsc15_train_full.txt").write_text(
        "SessionId\tItemId\tTime\n1\t300000002\t1396839069.277\n1\t300000001\t1396839249.868\n2\t300000003\n"
    )
    (tmp_path / "README.txt").write_text("not data\n")
    tables = by_table(connector_for("yoochoose", tmp_path))
    clicks = objects(tables["events"])
    assert [(c["user_id"], c["item_id"], c["ts"]) for c in clicks] == [
        ("session-1", "300000002", "2014-04-07T02:51:09.277Z"),
        ("session-1", "300000001", "2014-04-07T02:54:09.868Z"),
    ]
    assert passed_through(tables["events"]) == [("rsc15_train_full.txt", 4, "2\t300000003")]


def test_tabular_reads_txt_and_dat_when_the_mapping_names_the_format(tmp_path: Path) -> None:
    (tmp_path / "clicks.txt").write_text("uid\tsku\twhen\nalice\ti1\t2026-01-02T10:00:00Z\n")
    (tmp_path / "more.dat").write_text("uid\tsku\twhen\nbob\ti2\t2026-01-02T11:00:00Z\n")
    mapping = "table: events\ncolumns: {user_id: uid, item_id: sku, ts: when}\nconstants: {event_type: click}\ngenerate_ids: true\n"
    (tmp_path / "mapping.yaml").write_text(mapping + "format: tsv\n")
    users = [e["user_id"] for e in objects(by_table(connector_for("tabular", tmp_path))["events"])]
    assert users == ["alice", "bob"]
    # Without `format:` a .txt says nothing about its layout: it is not read.
    (tmp_path / "mapping.yaml").write_text(mapping)
    with pytest.raises(ConnectorError, match="with `format:` in the mapping"):
        list(connector_for("tabular", tmp_path).records())


def test_sequences_become_ordered_events_and_published_ids_item_attributes(tmp_path: Path) -> None:
    (tmp_path / "Beauty.inter.json").write_text('{"0": [5, 3, 9], "1": [3]}')
    (tmp_path / "Beauty.index.json").write_text('{"3": ["<a_1>", "<b_2>"]}')
    tables = by_table(connector_for("sequences", tmp_path, "beauty"))
    events = objects(tables["events"])
    assert [(e["event_id"], e["user_id"], e["item_id"], e["ts"]) for e in events] == [
        ("beauty:0:000000", "0", "5", "2014-01-01T00:00:00.000Z"),
        ("beauty:0:000001", "0", "3", "2014-01-01T00:00:01.000Z"),
        ("beauty:0:000002", "0", "9", "2014-01-01T00:00:02.000Z"),
        ("beauty:1:000000", "1", "3", "2014-01-01T00:00:00.000Z"),
    ]
    assert {e["event_type"] for e in events} == {"purchase"}
    assert objects(tables["items"]) == [{"item_id": "3", "attributes": {"published_semantic_id": ["<a_1>", "<b_2>"]}}]
