from __future__ import annotations

from pathlib import Path

from tests.transforms.connectors.conftest import by_table, objects, passed_through
from transforms.connectors import connector_for


def test_diginetica_views_purchases_and_categories(fixtures: Path) -> None:
    tables = by_table(connector_for("diginetica", fixtures / "diginetica"))
    first = objects(tables["events"])[0]
    # eventdate 2016-05-09 + timeframe 526309 ms = 00:08:46.309; an anonymous session gets its own user.
    assert first == {"event_id": "diginetica:view:1:9001:526309", "user_id": "anon-1", "ts": "2016-05-09T00:08:46.309Z",
                     "event_type": "view", "item_id": "9001", "session_id": "1"}
    purchase = next(e for e in objects(tables["events"]) if e["event_type"] == "purchase")
    assert purchase["user_id"] == "777" and purchase["item_id"] == "9004"
    assert objects(tables["items"])[0] == {"item_id": "9001", "categories": ["42"]}
    assert passed_through(tables["events"]) == [("train-item-views.csv", 5, "3;NA;1")]


def test_yoochoose_sessions_and_item_categories(fixtures: Path) -> None:
    tables = by_table(connector_for("yoochoose", fixtures / "yoochoose"))
    clicks = [e for e in objects(tables["events"]) if e["event_type"] == "click"]
    assert [(c["user_id"], c["session_id"]) for c in clicks][:1] == [("session-1", "1")]
    buys = [e for e in objects(tables["events"]) if e["event_type"] == "purchase"]
    assert [b["value"] for b in buys] == [12462.0, 20942.0]  # price x quantity
    # Item 214662742 was clicked under "S" and "5"; category 0 means unknown and is left out.
    assert objects(tables["items"]) == [
        {"item_id": "214536502", "categories": []},
        {"item_id": "214536500", "categories": []},
        {"item_id": "214662742", "categories": ["S", "5"]},
    ]
