"""MIND (Microsoft News Dataset): ``behaviors.tsv`` and ``news.tsv``, tab-separated, no header.

- ``behaviors.tsv``: ``impression_id, user_id, time ("11/15/2019 8:55:22 AM"), history ("N1 N2 ..."),
  impressions ("N3-1 N4-0 ...")`` → one slate per line (items in list order, ``surface = "news"``),
  one impression per listed item (position = index), one ``click`` event per item labelled ``-1``
  (the test split has no labels: impressions only).
- history → earlier ``click`` events, once per user (the history of the user's first line): history
  clicks happened before the logs but MIND gives no times, so click k of n gets the user's earliest
  impression time (over every behaviors file, whatever the line order) minus (n - k) seconds, which
  keeps their order and puts them before every logged impression; they carry
  ``session_id = "history"`` so they can be told apart.
- ``news.tsv``: ``news_id, category, subcategory, title, abstract, url, title_entities,
  abstract_entities`` → items (title, description = abstract, categories ``[category,
  "category > subcategory"]``, the URL as an attribute).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from transforms.connectors.base import (
    Connector,
    ConnectorError,
    Record,
    category_paths,
    dumps,
    iso_ts,
    iter_lines,
    without_nulls,
)

MIND_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


class MindConnector(Connector):
    format = "mind"
    tables = ("slates", "impressions", "events", "items")

    def records(self) -> Iterator[Record]:
        behaviors = self.find("behaviors.tsv", "*behaviors.tsv")
        news = self.find("news.tsv", "*news.tsv")
        if not behaviors and not news:
            raise ConnectorError(f"mind: no behaviors.tsv or news.tsv in {self.path}")
        for path in news:
            yield from self._news(path)
        # A first pass finds each user's earliest impression: lines are not in time order.
        earliest: dict[str, dt.datetime] = {}
        for path in behaviors:
            for user, moment in self._impression_times(path):
                if user not in earliest or moment < earliest[user]:
                    earliest[user] = moment
        seen_users: set[str] = set()
        for path in behaviors:
            yield from self._behaviors(path, seen_users, earliest)

    @staticmethod
    def _impression_times(path: Path) -> Iterator[tuple[str, dt.datetime]]:
        for _, text in iter_lines(path):
            fields = text.split("\t")
            if len(fields) == 5:
                moment = _parse_time(fields[2])
                if moment is not None:
                    yield fields[1], moment

    def _news(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        for no, text in iter_lines(path):
            fields = text.split("\t")
            if len(fields) != 8:
                yield Record("items", src, no, text)
                continue
            news_id, category, subcategory, title, abstract, url = fields[:6]
            item = {
                "item_id": news_id,
                "title": title,
                "description": abstract,
                "categories": category_paths([[category, subcategory]]),
                "attributes": without_nulls({"url": url}),
            }
            yield Record("items", src, no, dumps(without_nulls(item)))

    def _behaviors(self, path: Path, seen_users: set[str], earliest: dict[str, dt.datetime]) -> Iterator[Record]:
        src = self.source_name(path)
        for no, text in iter_lines(path):
            fields = text.split("\t")
            if len(fields) != 5:
                yield Record("slates", src, no, text)
                continue
            impression_id, user, time_text, history, shown = fields
            moment = _parse_time(time_text)
            ts = iso_ts(moment) if moment else time_text
            request = f"{self.name}:{impression_id}"
            pairs = [entry.rsplit("-", 1) if "-" in entry else [entry, ""] for entry in shown.split()]
            items = [p[0] for p in pairs]
            yield Record("slates", src, no, dumps({"request_id": request, "user_id": user, "ts": ts, "surface": "news", "item_ids": items}))
            for position, (item, label) in enumerate(pairs):
                yield Record("impressions", src, no, dumps({"request_id": request, "user_id": user, "item_id": item, "position": position, "ts": ts}))
                if label == "1":
                    event = {"event_id": f"{request}:click:{position}", "user_id": user, "ts": ts, "event_type": "click", "item_id": item, "request_id": request}
                    yield Record("events", src, no, dumps(event))
                elif label not in ("", "0"):
                    yield Record("events", src, no, dumps({"event_id": f"{request}:click:{position}", "user_id": user, "ts": ts, "event_type": f"label {label}", "item_id": item}))
            if user not in seen_users:
                seen_users.add(user)
                clicked = history.split()
                first = earliest.get(user)
                for k, item in enumerate(clicked):
                    when = iso_ts(first - dt.timedelta(seconds=len(clicked) - k)) if first else ts
                    event = {"event_id": f"{self.name}:history:{user}:{k}", "user_id": user, "ts": when, "event_type": "click", "item_id": item, "session_id": "history"}
                    yield Record("events", src, no, dumps(event))


def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, MIND_TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
