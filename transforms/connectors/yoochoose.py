"""YooChoose (RecSys Challenge 2015): ``yoochoose-clicks.dat`` and ``yoochoose-buys.dat``, no header.

- clicks: ``SessionID,Timestamp,ItemID,Category`` → ``click`` events;
- buys: ``SessionID,Timestamp,ItemID,Price,Quantity`` → ``purchase`` events, value = price * quantity;
- items: every item seen in the clicks, with the distinct categories it was clicked under (``0``,
  the dataset's "missing", is left out); emitted after the clicks, located at the item's first click.

YooChoose has no users: ``user_id`` is ``"session-<SessionID>"`` and ``session_id`` the session.
Timestamps are already ISO-8601 UTC (``2014-04-07T10:51:09.277Z``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from transforms.connectors.base import Connector, ConnectorError, Record, dumps, iter_lines

MISSING_CATEGORY = "0"


class YooChooseConnector(Connector):
    format = "yoochoose"
    tables = ("events", "items")

    def records(self) -> Iterator[Record]:
        clicks = self.find("*clicks.dat")
        buys = self.find("*buys.dat")
        if not clicks and not buys:
            raise ConnectorError(f"yoochoose: no yoochoose-clicks.dat or yoochoose-buys.dat in {self.path}")
        # item -> (first source, first line, categories in first-seen order): bounded by the catalog size.
        items: dict[str, tuple[str, int, list[str]]] = {}
        for path in clicks:
            yield from self._clicks(path, items)
        for path in buys:
            yield from self._buys(path)
        for item, (src, no, categories) in items.items():
            yield Record("items", src, no, dumps({"item_id": item, "categories": categories}))

    def _clicks(self, path: Path, items: dict[str, tuple[str, int, list[str]]]) -> Iterator[Record]:
        src = self.source_name(path)
        for no, text in iter_lines(path):
            fields = text.split(",")
            if len(fields) != 4:
                yield Record("events", src, no, text)
                continue
            session, ts, item, category = fields
            event = {"event_id": f"{self.name}:click:{session}:{ts}:{item}", "user_id": f"session-{session}", "ts": ts,
                     "event_type": "click", "item_id": item, "session_id": session}
            yield Record("events", src, no, dumps(event))
            known = items.setdefault(item, (src, no, []))
            if category != MISSING_CATEGORY and category not in known[2]:
                known[2].append(category)

    def _buys(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        for no, text in iter_lines(path):
            fields = text.split(",")
            if len(fields) != 5:
                yield Record("events", src, no, text)
                continue
            session, ts, item, price, quantity = fields
            try:
                value: float | str = float(price) * float(quantity)
            except ValueError:
                value = f"{price}x{quantity}"
            event = {"event_id": f"{self.name}:buy:{session}:{ts}:{item}", "user_id": f"session-{session}", "ts": ts,
                     "event_type": "purchase", "item_id": item, "value": value, "session_id": session}
            yield Record("events", src, no, dumps(event))
