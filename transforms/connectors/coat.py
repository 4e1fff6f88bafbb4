"""Coat (Schnabel et al., ICML 2016): biased training ratings and randomly-exposed test ratings.

``train.ascii`` and ``test.ascii`` are dense 290 x 300 matrices (one line per user, one column per
item, 0 = unobserved); ``propensities.ascii`` the same shape of learned exposure propensities;
``user_item_features/`` one-hot user and item features with ``*_map.txt`` naming each column.

- train ratings → ``rating`` events (the training data), and, when propensities are present, one
  impression per training rating carrying its propensity P(O = 1) (position 0, request ``coat:u:i``);
- test ratings → ``eval/random_exposure_ratings`` (never training data);
- features → users and items with ``{"gender": "women", "age": "20-30", ...}`` attributes.

Coat has no timestamps. Every training event and impression gets the fixed synthetic time
:data:`COAT_EPOCH` (the dataset's publication year): one day partition, ordered by ids downstream.
User and item ids are the 0-based row and column numbers, as text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from transforms.connectors.base import (
    RANDOM_EXPOSURE_TABLE,
    Connector,
    ConnectorError,
    Record,
    dumps,
    iso_ts,
    iter_lines,
)

COAT_EPOCH = dt.datetime(2016, 1, 1, tzinfo=dt.UTC)


class CoatConnector(Connector):
    format = "coat"
    tables = ("events", "impressions", "items", "users", RANDOM_EXPOSURE_TABLE)

    def records(self) -> Iterator[Record]:
        train = self.path / "train.ascii"
        test = self.path / "test.ascii"
        if not train.exists() and not test.exists():
            raise ConnectorError(f"coat: neither train.ascii nor test.ascii in {self.path}")
        ts = iso_ts(COAT_EPOCH)
        if train.exists():
            yield from self._train(train, ts)
        if test.exists():
            yield from self._test(test)
        features = self.path / "user_item_features"
        for kind, table in (("user", "users"), ("item", "items")):
            matrix, names = features / f"{kind}_features.ascii", features / f"{kind}_features_map.txt"
            if matrix.exists() and names.exists():
                yield from self._features(matrix, names, table)

    def _train(self, path: Path, ts: str) -> Iterator[Record]:
        # propensities.ascii is read line by line in step with train.ascii: one user row in memory.
        src = self.source_name(path)
        prop_path = self.path / "propensities.ascii"
        prop_lines = iter_lines(prop_path) if prop_path.exists() else None
        prop_src = self.source_name(prop_path)
        for no, text in iter_lines(path):
            user = str(no - 1)
            values = _ints(text)
            prop_row: list[str] | None = None
            if prop_lines is not None:
                prop_no, prop_text = next(prop_lines, (no, ""))
                prop_row = prop_text.split()
            if values is None:
                yield Record("events", src, no, text)
                continue
            for col, rating in enumerate(values):
                if rating == 0:
                    continue
                item = str(col)
                yield Record(
                    "events",
                    src,
                    no,
                    dumps({"event_id": f"{self.name}:train:{user}:{item}", "user_id": user, "ts": ts, "event_type": "rating", "item_id": item, "value": rating}),
                )
                if prop_row is not None:
                    propensity = _float_or_text(prop_row[col]) if col < len(prop_row) else None
                    yield Record(
                        "impressions",
                        prop_src,
                        prop_no,
                        dumps({"request_id": f"{self.name}:{user}:{item}", "user_id": user, "item_id": item, "position": 0, "ts": ts, "propensity": propensity}),
                    )

    def _test(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        for no, text in iter_lines(path):
            values = _ints(text)
            if values is None:
                yield Record(RANDOM_EXPOSURE_TABLE, src, no, text)
                continue
            user = str(no - 1)
            for col, rating in enumerate(values):
                if rating != 0:
                    row = {"dataset": self.name, "user_id": user, "item_id": str(col), "rating": rating}
                    yield Record(RANDOM_EXPOSURE_TABLE, src, no, dumps(row))

    def _features(self, matrix: Path, names_path: Path, table: str) -> Iterator[Record]:
        names = [text.strip() for _, text in iter_lines(names_path)]
        src = self.source_name(matrix)
        key = "user_id" if table == "users" else "item_id"
        for no, text in iter_lines(matrix):
            values = _ints(text)
            if values is None or len(values) != len(names):
                yield Record(table, src, no, text)
                continue
            attributes: dict[str, object] = {}
            for name, flag in zip(names, values, strict=True):
                if flag:
                    field, _, value = name.partition(":")
                    attributes[field] = value
            yield Record(table, src, no, dumps({key: str(no - 1), "attributes": attributes}))


def _float_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _ints(text: str) -> list[int] | None:
    try:
        return [int(v) for v in text.split()]
    except ValueError:
        return None


__all__ = ["COAT_EPOCH", "CoatConnector"]
