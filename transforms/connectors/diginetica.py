"""DIGINETICA (CIKM Cup 2016), ``;``-separated: item views, purchases and product categories.

- ``train-item-views.csv`` (or the ``sample_train-item-views.csv`` of SR-GNN):
  ``sessionId;userId;itemId;timeframe;eventdate`` → ``view`` events;
- ``train-purchases.csv``: ``sessionId;userId;timeframe;eventdate;ordernumber;itemId`` → ``purchase`` events;
- ``product-categories.csv``: ``itemId;categoryId`` → items with ``categories = [categoryId]``.

Time: ``eventdate`` (a day) plus ``timeframe`` milliseconds, the dataset's own offset within the
session. Anonymous sessions (``userId`` = ``NA``) get ``user_id = "anon-<sessionId>"``; every event
keeps its ``session_id``. Header spellings ``sessionId`` and ``session_id`` are both accepted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from transforms.connectors.base import (
    Connector,
    ConnectorError,
    Record,
    dumps,
    iso_ts,
    iter_lines,
    without_nulls,
)

VIEW_COLUMNS = ("sessionid", "userid", "itemid", "timeframe", "eventdate")
PURCHASE_COLUMNS = ("sessionid", "userid", "timeframe", "eventdate", "ordernumber", "itemid")
CATEGORY_COLUMNS = ("itemid", "categoryid")


class DigineticaConnector(Connector):
    format = "diginetica"
    tables = ("events", "items")

    def records(self) -> Iterator[Record]:
        views = self.find("*train-item-views.csv")
        purchases = self.find("*train-purchases.csv")
        categories = self.find("*product-categories.csv")
        if not (views or purchases or categories):
            raise ConnectorError(f"diginetica: no train-item-views.csv, train-purchases.csv or product-categories.csv in {self.path}")
        for path in views:
            yield from self._events(path, VIEW_COLUMNS, "view")
        for path in purchases:
            yield from self._events(path, PURCHASE_COLUMNS, "purchase")
        for path in categories:
            src = self.source_name(path)
            for no, row, text in _rows(path, CATEGORY_COLUMNS):
                if row is None:
                    yield Record("items", src, no, text)
                else:
                    yield Record("items", src, no, dumps({"item_id": row["itemid"], "categories": [row["categoryid"]]}))

    def _events(self, path: Path, columns: tuple[str, ...], event_type: str) -> Iterator[Record]:
        src = self.source_name(path)
        for no, row, text in _rows(path, columns):
            if row is None:
                yield Record("events", src, no, text)
                continue
            session, user = row["sessionid"], row["userid"]
            order = row.get("ordernumber", "")
            event = {
                "event_id": f"{self.name}:{event_type}:{session}:{row['itemid']}:{row['timeframe']}:{order}".rstrip(":"),
                "user_id": user if user and user != "NA" else f"anon-{session}",
                "ts": _ts(row["eventdate"], row["timeframe"]),
                "event_type": event_type,
                "item_id": row["itemid"],
                "session_id": session,
            }
            yield Record("events", src, no, dumps(without_nulls(event)))


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    lines = iter_lines(path)
    first = next(lines, None)
    if first is None:
        return
    header = [h.strip().replace("_", "").lower() for h in first[1].split(";")]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ConnectorError(f"diginetica: {path} lacks columns {missing} (header: {first[1]!r})")
    for no, text in lines:
        fields = text.split(";")
        yield no, (dict(zip(header, fields, strict=True)) if len(fields) == len(header) else None), text


def _ts(day: str, timeframe: str) -> str:
    try:
        start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.UTC)
        return iso_ts(start + dt.timedelta(milliseconds=int(timeframe)))
    except ValueError:
        return f"{day}+{timeframe}"
