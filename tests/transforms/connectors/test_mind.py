from __future__ import annotations

from pathlib import Path

from tests.transforms.connectors.conftest import by_table, objects, passed_through
from transforms.connectors import connector_for


def test_behaviors_become_slates_impressions_and_clicks(fixtures: Path) -> None:
    tables = by_table(connector_for("mind", fixtures / "mind"))
    slate = objects(tables["slates"])[0]
    assert slate == {"request_id": "mind:1", "user_id": "U90001", "ts": "2019-11-11T09:07:21.000Z", "surface": "news", "item_ids": ["N90006", "N90007"]}
    impressions = [i for i in objects(tables["impressions"]) if i["request_id"] == "mind:2"]
    assert [(i["item_id"], i["position"]) for i in impressions] == [("N90009", 0), ("N90010", 1), ("N90011", 2)]
    clicks = [e for e in objects(tables["events"]) if e.get("request_id")]
    assert [(c["item_id"], c["request_id"]) for c in clicks] == [("N90006", "mind:1"), ("N90011", "mind:2")]
    assert [p[:2] for p in passed_through(tables["slates"])] == [("behaviors.tsv", 5)]


def test_history_becomes_earlier_clicks_once_per_user(fixtures: Path) -> None:
    history = [e for e in objects(by_table(connector_for("mind", fixtures / "mind"))["events"]) if e.get("session_id") == "history"]
    # U90001 appears twice with the same history: emitted once, one second apart, before 09:07:21.
    assert [(e["user_id"], e["item_id"], e["ts"]) for e in history] == [
        ("U90001", "N90004", "2019-11-11T09:07:19.000Z"),
        ("U90001", "N90005", "2019-11-11T09:07:20.000Z"),
        ("U90002", "N90008", "2019-11-12T18:11:29.000Z"),
    ]


def test_news_become_items(fixtures: Path) -> None:
    items = objects(by_table(connector_for("mind", fixtures / "mind"))["items"])
    assert items[0]["title"] == "The Notebooks a Lighthouse Keeper Loves" and items[0]["description"] == "Shop the notebooks."
    assert items[0]["categories"] == ["lifestyle", "lifestyle > lifestylefixture"]


def test_history_is_dated_from_the_earliest_impression_not_the_first_line(tmp_path: Path) -> None:
    # carol's first line is her later impression (3 PM); her history must precede the 9 AM one too.
    folder = tmp_path / "mind"
    folder.mkdir()
    (folder / "behaviors.tsv").write_text(
        "1\tcarol\t11/12/2019 3:00:00 PM\tN1 N2\tN5-1 N6-0\n"
        "2\tcarol\t11/12/2019 9:00:00 AM\tN1 N2\tN7-0\n"
    )
    events = objects(by_table(connector_for("mind", folder))["events"])
    history = [(e["item_id"], e["ts"]) for e in events if e.get("session_id") == "history"]
    assert history == [("N1", "2019-11-12T08:59:58.000Z"), ("N2", "2019-11-12T08:59:59.000Z")]
