"""YooChoose (RecSys Challenge 2015): ``yoochoose-clicks.dat`` and ``yoochoose-buys.dat``, no header.

- clicks: ``SessionID,Timestamp,ItemID,Category`` → ``click`` events;
- buys: ``SessionID,Timestamp,ItemID,Price,Quantity`` → ``purchase`` events, value = price * quantity;
- items: every item seen in the clicks, with the distinct categories it was clicked under (``0``,
  the dataset's "missing", is left out); emitted after the clicks, located at the item's first click.

YooChoose has no users: ``user_id`` is ``"session-<SessionID>"`` and ``session_id`` the session.
Timestamps are already ISO-8601 UTC (``2014-04-07T10:51:09.277Z``).

The prepared files that session-rec and GRU4Rec publish (``rsc15_train_full.txt``, ``rsc15_test.txt``,
any ``*.txt`` / ``*.tsv`` whose header is ``SessionId<TAB>ItemId<TAB>Time``, Time in epoch seconds)
are read as ``click`` events by the same rules; they carry no categories, so no items.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from transforms.connectors.base import Connector, ConnectorError, Record, dumps, iso_from_epoch, iter_lines

MISSING_CATEGORY = "0"
PREPARED_HEADER = ("SessionId", "ItemId", "Time")  # session-rec / GRU4Rec, tab-separated


class YooChooseConnector(Connector):
    format = "yoochoose"
    tables = ("events", "items")

    def records(self) -> Iterator[Record]:
        clicks = self.find("*clicks.dat")
        buys = self.find("*buys.dat")
        prepared = [p for p in self.find("*.txt", "*.tsv", "*.txt.gz", "*.tsv.gz") if _is_prepared(p)]
        if not clicks and not buys and not prepared:
            raise ConnectorError(
                f"yoochoose: no yoochoose-clicks.dat, yoochoose-buys.dat or tab-separated SessionId/ItemId/Time file in {self.path}"
            )
        for path in prepared:
            yield from self._prepared(path)
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

    def _prepared(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        lines = iter_lines(path)
        next(lines, None)  # the header
        for no, text in lines:
            fields = text.split("\t")
            if len(fields) != len(PREPARED_HEADER):
                yield Record("events", src, no, text)
                continue
            session, item, seconds = fields
            ts = iso_from_epoch(seconds, "s") or seconds
            event = {"event_id": f"{self.name}:click:{session}:{seconds}:{item}", "user_id": f"session-{session}", "ts": ts,
                     "event_type": "click", "item_id": item, "session_id": session}
            yield Record("events", src, no, dumps(event))


def _is_prepared(path: Path) -> bool:
    first = next(iter_lines(path), None)
    return first is not None and tuple(first[1].split("\t")) == PREPARED_HEADER
