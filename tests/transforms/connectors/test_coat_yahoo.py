from __future__ import annotations

from pathlib import Path

from tests.transforms.connectors.conftest import by_table, objects, passed_through
from transforms.connectors import RANDOM_EXPOSURE_TABLE, connector_for


def test_coat_train_matrix_becomes_events_with_propensity_impressions(fixtures: Path) -> None:
    tables = by_table(connector_for("coat", fixtures / "coat"))
    # Nonzero cells of the train matrix: (0,1)=3, (0,3)=5, (1,0)=4; row 2 is malformed.
    assert [(e["user_id"], e["item_id"], e["value"]) for e in objects(tables["events"])] == [("0", "1", 3), ("0", "3", 5), ("1", "0", 4)]
    assert {e["ts"] for e in objects(tables["events"])} == {"2016-01-01T00:00:00.000Z"}
    assert [(i["user_id"], i["item_id"], i["propensity"]) for i in objects(tables["impressions"])] == [("0", "1", 0.2), ("0", "3", 0.4), ("1", "0", 0.5)]
    assert passed_through(tables["events"]) == [("train.ascii", 3, "0 0 2 x")]


def test_coat_test_matrix_goes_to_the_random_exposure_table_only(fixtures: Path) -> None:
    tables = by_table(connector_for("coat", fixtures / "coat"))
    held_out = [(r["user_id"], r["item_id"], r["rating"]) for r in objects(tables[RANDOM_EXPOSURE_TABLE])]
    assert held_out == [("0", "0", 1), ("1", "2", 5), ("2", "1", 2)]
    training = {(e["user_id"], e["item_id"]) for e in objects(tables["events"])}
    assert not training & {(u, i) for u, i, _ in held_out}
    assert objects(tables["users"])[0] == {"user_id": "0", "attributes": {"region": "north", "band": "a"}}


def test_yahoo_r3_train_and_random_test(fixtures: Path) -> None:
    tables = by_table(connector_for("yahoo-r3", fixtures / "yahoo-r3"))
    assert [(e["user_id"], e["item_id"], e["value"]) for e in objects(tables["events"])] == [("3", "211", "4"), ("3", "388", "2"), ("5", "211", "0")]
    assert len(objects(tables[RANDOM_EXPOSURE_TABLE])) == 3
    assert passed_through(tables["events"]) == [("ydata-ymusic-rating-study-v1_0-train.txt", 4, "5\t742")]
