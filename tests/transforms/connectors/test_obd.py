from __future__ import annotations

from pathlib import Path

from tests.transforms.connectors.conftest import by_table, objects, passed_through
from transforms.connectors import connector_for


def test_rows_of_one_recommendation_form_one_slate(fixtures: Path) -> None:
    tables = by_table(connector_for("obd", fixtures / "obd"))
    slates = objects(tables["slates"])
    by_policy = {(s["policy"], s["surface"]): [] for s in slates}
    for s in slates:
        by_policy[(s["policy"], s["surface"])].append(s)
    # random/men rows 0 and 1 share timestamp and user features: one slate, items in position order.
    first = by_policy[("random", "men")][0]
    assert first["item_ids"] == ["men:1", "men:0"] and first["propensities"] == [0.5, 0.5]
    assert first["ts"] == "2019-11-24T00:04:27.815Z"
    assert len(by_policy[("random", "men")]) == 3 and len(by_policy[("bts", "men")]) == 1
    # The two policies never share a request.
    assert not {s["request_id"] for s in by_policy[("random", "men")]} & {s["request_id"] for s in by_policy[("bts", "men")]}


def test_impressions_carry_position_and_propensity_and_clicks_link_to_the_slate(fixtures: Path) -> None:
    tables = by_table(connector_for("obd", fixtures / "obd"))
    impressions = objects(tables["impressions"])
    assert [(i["item_id"], i["position"], i["propensity"]) for i in impressions[:2]] == [("men:0", 0, 0.0238), ("men:1", 0, 0.5)]
    clicks = objects(tables["events"])
    assert {c["item_id"] for c in clicks} == {"men:0"} and len(clicks) == 2
    slates = {s["request_id"] for s in objects(tables["slates"])}
    assert all(c["request_id"] in slates and c["event_type"] == "click" for c in clicks)
    assert [p[:2] for p in passed_through(tables["impressions"])] == [("men.csv", 5)]


def test_items_keep_each_policys_hashed_features(fixtures: Path) -> None:
    items = objects(by_table(connector_for("obd", fixtures / "obd"))["items"])
    assert items[0] == {"item_id": "men:0", "attributes": {"item_feature_0": -0.55, "bts": {"item_feature_1": "k1"}, "random": {"item_feature_1": "h1"}}}
