"""Ordered item sequences without timestamps: the Amazon "Beauty" split of TIGER, LC-Rec and LETTER.

- ``*.inter.json``: ``{user: [item, item, ...]}``, each list oldest first → one ``purchase`` event per
  item (the lists are 5-core Amazon reviews: each item is one the user bought and reviewed);
- ``*.index.json`` (optional): ``{item: ["<a_183>", "<b_70>", ...]}``, published semantic IDs → items,
  with the tokens in ``attributes.published_semantic_id`` (kept for comparison, not used as ours).

**Synthetic time.** The lists have order and nothing else: the k-th item of a user gets
``2014-01-01T00:00:00Z`` plus k seconds, so every event lies on one day partition, a user's events are
strictly ordered (no ties to break) and leave-one-out takes the last item as the test target, as the
papers do. A temporal split over these times is meaningless: build with ``--split leave-one-out``.

Ids: users and items keep the file's indices; ``event_id`` is ``<name>:<user>:<k>`` with ``k``
zero-padded to six digits, so the id's text order is the sequence order. ``line_no`` is the user's
position in the file (1-based): one source record holds one user's whole list.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

from transforms.connectors.base import Connector, ConnectorError, Record, dumps, iso_ts

SEQUENCE_START = dt.datetime(2014, 1, 1, tzinfo=dt.UTC)
POSITION_DIGITS = 6


class SequencesConnector(Connector):
    format = "sequences"
    tables = ("events", "items")

    def records(self) -> Iterator[Record]:
        interactions = self.find("*.inter.json")
        indexes = self.find("*.index.json")
        if not interactions:
            raise ConnectorError(f"sequences: no *.inter.json ({{user: [items, oldest first]}}) in {self.path}")
        for path in indexes:
            yield from self._items(path)
        for path in interactions:
            yield from self._sequences(path)

    def _sequences(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        for no, (user, items) in enumerate(_load_mapping(path).items(), start=1):
            if not isinstance(items, list):
                yield Record("events", src, no, json.dumps({user: items}))
                continue
            for k, item in enumerate(items):
                event = {
                    "event_id": f"{self.name}:{user}:{k:0{POSITION_DIGITS}d}",
                    "user_id": str(user),
                    "ts": iso_ts(SEQUENCE_START + dt.timedelta(seconds=k)),
                    "event_type": "purchase",
                    "item_id": str(item),
                }
                yield Record("events", src, no, dumps(event))

    def _items(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        for no, (item, tokens) in enumerate(_load_mapping(path).items(), start=1):
            yield Record("items", src, no, dumps({"item_id": str(item), "attributes": {"published_semantic_id": tokens}}))


def _load_mapping(path: Path) -> dict:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConnectorError(f"sequences: {path.name} is not a JSON object: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConnectorError(f"sequences: {path.name} is not a JSON object {{key: list}}")
    return loaded
