from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from tests.transforms.connectors.conftest import by_table, objects, passed_through
from transforms.connectors import connector_for


def test_2014_reviews_and_python_literal_metadata(fixtures: Path) -> None:
    tables = by_table(connector_for("amazon", fixtures / "amazon/2014"))
    first, second = objects(tables["reviews"])
    assert first["user_id"] == "AFIXTUREREV001" and first["item_id"] == "B0FIXMIC01"
    assert first["ts"] == "2003-06-17T00:00:00.000Z" and first["title"] == "steady" and first["rating"] == 5.0
    assert second["helpful_votes"] == 7  # helpful = [7, 9]: 7 found it helpful
    assert [o["event_type"] for o in objects(tables["events"])] == ["rating", "rating"]
    pop, strings = objects(tables["items"])  # single-quoted Python literals, read with ast.literal_eval
    assert pop["price"] == 12.99 and pop["brand"] == "Fixture Audio"
    assert pop["categories"] == [
        "Musical Instruments",
        "Musical Instruments > Microphones & Accessories",
        "Musical Instruments > Microphones & Accessories > Mesh Screens",
    ]
    assert strings["description"] == "Fixture strings, 'light' gauge"
    assert strings["categories"] == ["Musical Instruments", "Musical Instruments > Strings"]
    # Broken lines of both files go through untouched, each to its file's table.
    assert [p[:2] for p in passed_through(tables["reviews"])] == [("reviews_Musical_Instruments_5.json", 3)]
    assert [p[:2] for p in passed_through(tables["items"])] == [("meta_Musical_Instruments.json", 3)]


def test_2018_html_is_stripped_and_repeat_reviews_are_distinct(fixtures: Path) -> None:
    tables = by_table(connector_for("amazon", fixtures / "amazon/2018"))
    item = objects(tables["items"])[0]
    assert item["title"] == "Fixture Gift Card"
    assert item["description"] == "Use in any shop & online.\nNever expires."
    assert item["categories"] == ["Gift Cards", "Gift Cards > Gift Cards"]
    assert item["price"] == 50.0
    ranged = objects(tables["items"])[2]
    assert ranged["price"] == 10.0 and ranged["attributes"]["price_text"] == "$10.00 - $20.00"
    reviews = objects(tables["reviews"])
    assert reviews[1]["helpful_votes"] == 1087  # vote "1,087"
    # Line 3 is an exact copy of line 1 (same id: staging calls it a duplicate); line 4 is the same user
    # reviewing the same card again later (a different id: both are kept).
    assert reviews[0] == reviews[2]
    assert reviews[3]["review_id"] != reviews[0]["review_id"]
    assert "review_id" not in reviews[4] and "item_id" not in reviews[4]  # no asin: quarantined as missing


def test_2023_uses_parent_asin_and_millisecond_times(fixtures: Path) -> None:
    tables = by_table(connector_for("amazon", fixtures / "amazon/2023"))
    review = objects(tables["reviews"])[0]
    assert review["item_id"] == "B0FIXTURE01" and review["user_id"] == "AFIXTUREUSER00000000000000001"
    assert review["ts"] == "2020-05-05T14:08:48.923Z"
    item = objects(tables["items"])[0]
    assert item["item_id"] == "B0FIXTURE01" and item["brand"] == "Fixture Products" and item["price"] == 8.5
    assert item["categories"] == ["Beauty", "Beauty > Skin Care"]
    assert item["attributes"]["main_category"] == "All Beauty"


def test_gzip_files_read_the_same(fixtures: Path, tmp_path: Path) -> None:
    for name in ("Gift_Cards_5.json", "meta_Gift_Cards.json"):
        with open(fixtures / "amazon/2018" / name, "rb") as src, gzip.open(tmp_path / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    plain = [r.line for r in connector_for("amazon", fixtures / "amazon/2018", name="x").records()]
    zipped = [r.line for r in connector_for("amazon", tmp_path, name="x").records()]
    assert zipped == plain
