from __future__ import annotations

from pathlib import Path

import pytest

from tests.transforms.connectors.conftest import by_table, objects, passed_through
from transforms.connectors import ConnectorError, connector_for


def test_ml100k_ratings_become_rating_events_and_reviews(fixtures: Path) -> None:
    tables = by_table(connector_for("movielens", fixtures / "movielens/ml-100k"))
    events = objects(tables["events"])
    # 7 rated 1 with 3 at 881251234 s = 1997-12-04 16:00:34 UTC.
    assert events[0] == {
        "event_id": "ml-100k:7:1",
        "user_id": "7",
        "ts": "1997-12-04T16:00:34.000Z",
        "event_type": "rating",
        "item_id": "1",
        "value": "3",
    }
    assert objects(tables["reviews"])[0] == {
        "review_id": "ml-100k:7:1", "user_id": "7", "item_id": "1", "ts": "1997-12-04T16:00:34.000Z", "rating": "3"
    }
    # The truncated line is passed on untouched, with its file and line number, to the events table only.
    assert passed_through(tables["events"]) == [("u.data", 4, "9\t3")]
    assert [r.line_no for r in tables["reviews"]] == [1, 2, 3, 5, 6]


def test_ml100k_items_and_users(fixtures: Path) -> None:
    tables = by_table(connector_for("movielens", fixtures / "movielens/ml-100k"))
    harbor, night_city = objects(tables["items"])
    assert harbor["title"] == "Quiet Harbor (1996)" and harbor["categories"] == ["Comedy"]
    assert harbor["attributes"]["year"] == 1996 and harbor["attributes"]["release_date"] == "24-Jan-1997"
    assert night_city["categories"] == ["Crime", "Film-Noir", "Mystery", "Thriller"]
    assert passed_through(tables["items"])[0][:2] == ("u.item", 3)
    assert objects(tables["users"])[0] == {
        "user_id": "7", "attributes": {"age": 49, "gender": "M", "occupation": "writer", "zip_code": "12345"}
    }


def test_ml1m_dat_files_latin1_titles(fixtures: Path) -> None:
    tables = by_table(connector_for("movielens", fixtures / "movielens/ml-1m"))
    assert objects(tables["events"])[0]["ts"] == "2000-12-31T22:15:05.000Z"
    titles = [o["title"] for o in objects(tables["items"])]
    assert "Caf\u00e9 Society (1995)" in titles  # decoded from Latin-1, not mojibake
    assert objects(tables["items"])[1]["categories"] == ["Animation", "Children's", "Musical"]
    assert objects(tables["users"])[1]["attributes"] == {"gender": "F", "age_group": "35", "occupation_code": "7", "zip_code": "10002"}
    assert passed_through(tables["events"]) == [("ratings.dat", 4, "5001::3002")]


def test_ml_latest_csv_with_quoted_titles_and_tags(fixtures: Path) -> None:
    tables = by_table(connector_for("movielens", fixtures / "movielens/ml-latest"))
    items = {o["item_id"]: o for o in objects(tables["items"])}
    assert items["3"]["title"] == "Quiet President, The (1995)"
    assert "categories" not in items["4"]  # "(no genres listed)" is no genre
    tags = [o for o in objects(tables["reviews"]) if "text" in o]
    assert [t["text"] for t in tags] == ["animated", "warm, clever"]
    assert all("rating" not in t for t in tags)


def test_folder_without_movielens_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="no MovieLens files"):
        list(connector_for("movielens", tmp_path).records())
