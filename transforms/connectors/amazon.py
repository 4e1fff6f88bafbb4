"""Amazon Reviews 2014, 2018 and 2023 (McAuley lab): reviews and product metadata.

The version is read from each line's keys, so one folder may mix them:

- 2014: ``reviewerID, asin, overall, summary, reviewText, unixReviewTime, helpful=[up, total]``;
  metadata lines are Python literals (single quotes), read with :func:`ast.literal_eval`.
- 2018: as 2014 with ``vote`` ("1,234") instead of ``helpful``; metadata is JSON whose ``title`` and
  ``description`` may carry HTML fragments (stripped here), and duplicate rows occur.
- 2023: ``user_id, asin, parent_asin, rating, title, text, timestamp (ms), helpful_vote``; items are
  keyed by ``parent_asin`` (the product, not the variant), as the 2023 release recommends.

Files whose name starts with ``meta`` are metadata (→ items); every other file holds reviews (→ reviews
and one ``rating`` event per review).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from collections.abc import Iterator

from transforms.connectors.base import (
    Connector,
    ConnectorError,
    Record,
    category_paths,
    dumps,
    iso_from_epoch,
    iso_ts,
    iter_lines,
    stable_id,
    strip_html,
    without_nulls,
)

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class AmazonConnector(Connector):
    format = "amazon"
    tables = ("reviews", "events", "items")

    def records(self) -> Iterator[Record]:
        files = self.find("*.json", "*.json.gz", "*.jsonl", "*.jsonl.gz")
        if not files:
            raise ConnectorError(f"amazon: no *.json[l][.gz] review or metadata files in {self.path}")
        for path in files:
            is_meta = path.name.startswith("meta")
            table = "items" if is_meta else "reviews"
            src = self.source_name(path)
            for no, text in iter_lines(path):
                obj = _parse(text)
                if obj is None:
                    yield Record(table, src, no, text)
                elif is_meta:
                    yield Record("items", src, no, dumps(self._item(obj)))
                else:
                    review = self._review(obj)
                    yield Record("reviews", src, no, dumps(review))
                    event = {
                        "event_id": f"rating:{review['review_id']}" if "review_id" in review else None,
                        "user_id": review.get("user_id"),
                        "ts": review.get("ts"),
                        "event_type": "rating",
                        "item_id": review.get("item_id"),
                        "value": review.get("rating"),
                    }
                    yield Record("events", src, no, dumps(without_nulls(event)))

    def _review(self, obj: dict[str, object]) -> dict[str, object]:
        if "parent_asin" in obj or "user_id" in obj:  # 2023
            user, item, stamp = obj.get("user_id"), obj.get("parent_asin"), obj.get("timestamp")
            ts = iso_from_epoch(stamp, "ms") if stamp is not None else None  # type: ignore[arg-type]
            review_id = f"{self.name}:{user}:{obj.get('asin')}:{stamp}"
            rating, title, text, votes = obj.get("rating"), obj.get("title"), obj.get("text"), obj.get("helpful_vote")
        else:  # 2014 / 2018
            user, item, stamp = obj.get("reviewerID"), obj.get("asin"), obj.get("unixReviewTime")
            ts = iso_from_epoch(stamp) if stamp is not None else _review_time(obj.get("reviewTime"))  # type: ignore[arg-type]
            # One user may review one item several times (gift cards bought again, another style):
            # the id includes the time and a hash of the content; an exact copy keeps its id.
            content = stable_id(obj.get("summary"), obj.get("reviewText"), json.dumps(obj.get("style"), sort_keys=True))[:8]
            review_id = f"{self.name}:{user}:{item}:{stamp}:{content}"
            rating, title, text = obj.get("overall"), obj.get("summary"), obj.get("reviewText")
            helpful = obj.get("helpful")
            votes = _votes(obj["vote"]) if "vote" in obj else (helpful[0] if isinstance(helpful, list) and helpful else None)
        return without_nulls(
            {
                "review_id": review_id if user is not None and item is not None else None,
                "user_id": user,
                "item_id": item,
                "ts": ts if ts is not None else stamp,
                "rating": rating,
                "title": title,
                "text": text,
                "helpful_votes": votes,
            }
        )

    def _item(self, obj: dict[str, object]) -> dict[str, object]:
        if "parent_asin" in obj:  # 2023
            item = obj.get("parent_asin")
            raw_categories = obj.get("categories") or []
            paths = [raw_categories] if raw_categories and isinstance(raw_categories, list) and not isinstance(raw_categories[0], list) else raw_categories
            brand = obj.get("store")
            extra = {
                "main_category": obj.get("main_category"),
                "features": obj.get("features"),
                "details": obj.get("details"),
                "average_rating": obj.get("average_rating"),
                "rating_number": obj.get("rating_number"),
            }
        else:  # 2014 (categories: list of paths) / 2018 (category: one path)
            item = obj.get("asin")
            if "categories" in obj:
                paths = obj.get("categories") or []
            else:
                category = obj.get("category") or []
                paths = [category] if category else []
            brand = obj.get("brand")
            extra = {
                "main_cat": obj.get("main_cat"),
                "features": obj.get("feature"),
                "details": obj.get("details"),
                "sales_rank": obj.get("salesRank"),
            }
        price, price_text = _price(obj.get("price"))
        description = obj.get("description")
        if isinstance(description, list):  # 2018/2023: paragraphs, each stripped of its HTML
            description = "\n".join(t for t in (strip_html(str(d)) for d in description) if t)
        elif isinstance(description, str):
            description = strip_html(description)
        else:
            description = None
        return without_nulls(
            {
                "item_id": item,
                "title": strip_html(obj.get("title")),  # type: ignore[arg-type]
                "description": description,
                "categories": category_paths([p for p in paths if isinstance(p, list)] if isinstance(paths, list) else []),
                "brand": strip_html(brand) if isinstance(brand, str) else None,
                "price": price,
                "attributes": without_nulls({**extra, "price_text": price_text}),
            }
        )


def _parse(text: str) -> dict[str, object] | None:
    """A line as a dict: JSON first (2018, 2023, 2014 reviews), then a Python literal (2014 metadata)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def _votes(value: object) -> int | object:
    if isinstance(value, str) and value.replace(",", "").isdigit():
        return int(value.replace(",", ""))
    return value


def _review_time(value: object) -> str | None:
    # reviewTime is "MM DD, YYYY" (e.g. "06 17, 2018").
    try:
        return iso_ts(dt.datetime.strptime(str(value), "%m %d, %Y"))
    except ValueError:
        return None


def _price(value: object) -> tuple[float | None, str | None]:
    """A price as a number; 2018 prices are text ("$12.99", "$10.00 - $20.00"): the lower bound, and the text kept."""
    if value is None or value == "":
        return None, None
    if isinstance(value, int | float):
        return float(value), None
    match = _NUMBER.search(str(value).replace(",", ""))
    if match and str(value).strip().startswith("$"):
        return float(match.group(0)), str(value) if "-" in str(value) else None
    return None, str(value)[:200]

