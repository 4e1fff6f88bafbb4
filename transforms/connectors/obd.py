"""Open Bandit Dataset (ZOZOTOWN): ``<policy>/<campaign>/<campaign>.csv`` and ``item_context.csv``.

Each CSV row is one item shown at one position (1 left, 2 centre, 3 right) with the logging policy's
propensity and a click flag. Rows of one recommendation share the timestamp and the user features;
consecutive such rows become one slate (items in position order), every row an impression with its
position (0-based here) and logged propensity, every click a ``click`` event linked to the slate.

OBD has no user ids: the user is the tuple of its four hashed user features, so
``user_id = "obd-" + hash(features)``; item ids are per campaign (``men:14``). The behaviour policy
(``random`` or ``bts``) is the slate's ``policy`` and the campaign its ``surface``, so the two
policies never mix. The user-item affinity columns are kept as nothing: they describe past clicks,
already in the logs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

from transforms.connectors.base import Connector, ConnectorError, Record, dumps, iso_ts, stable_id

POLICIES = ("random", "bts")
USER_FEATURES = ("user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3")
LOG_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score")


class OpenBanditConnector(Connector):
    format = "obd"
    tables = ("slates", "impressions", "events", "items", "users")

    def records(self) -> Iterator[Record]:
        base = self.path if self.path.is_dir() else self.path.parent
        logs = sorted(p for p in base.rglob("*.csv") if p.name != "item_context.csv")
        contexts = sorted(base.rglob("item_context.csv"))
        if not logs:
            raise ConnectorError(f"obd: no <policy>/<campaign>/<campaign>.csv files under {self.path}")
        seen_users: set[str] = set()
        yield from self._items(contexts)
        for path in logs:
            yield from self._log(path, seen_users)

    def _policy_campaign(self, path: Path) -> tuple[str, str]:
        campaign = path.stem
        policy = path.parent.parent.name
        if policy not in POLICIES:
            raise ConnectorError(f"obd: {path} is not under a policy folder {POLICIES} (expected <policy>/<campaign>/<campaign>.csv)")
        return policy, campaign

    def _items(self, paths: list[Path]) -> Iterator[Record]:
        # The same campaign's items appear under both policies; the numeric feature agrees, but the
        # hashed categorical features were hashed per policy. One item row per campaign item keeps
        # the hashes of each policy apart: {"item_feature_0": -0.67, "bts": {...}, "random": {...}}.
        merged: dict[str, tuple[str, int, dict[str, object]]] = {}
        for path in paths:
            campaign, policy = path.parent.name, path.parent.parent.name
            src = self.source_name(path)
            for no, row, text in _csv_dicts(path):
                if row is None or not row.get("item_id"):
                    yield Record("items", src, no, text)
                    continue
                item = f"{campaign}:{row['item_id']}"
                _, _, attributes = merged.setdefault(item, (src, no, {}))
                features = {k: _number_or_text(v) for k, v in row.items() if k.startswith("item_feature")}
                numeric = {k: v for k, v in features.items() if isinstance(v, float)}
                attributes.update(numeric)
                attributes[policy] = {k: v for k, v in features.items() if k not in numeric}
        for item, (src, no, attributes) in merged.items():
            yield Record("items", src, no, dumps({"item_id": item, "attributes": attributes}))

    def _log(self, path: Path, seen_users: set[str]) -> Iterator[Record]:
        policy, campaign = self._policy_campaign(path)
        src = self.source_name(path)
        group: list[tuple[int, dict[str, str]]] = []
        group_key: tuple[str, ...] | None = None
        for no, row, text in _csv_dicts(path, required=LOG_COLUMNS + USER_FEATURES):
            if row is None:
                yield Record("impressions", src, no, text)
                continue
            key = (row["timestamp"], *(row[f] for f in USER_FEATURES))
            if key != group_key and group:
                yield from self._slate(src, policy, campaign, group, seen_users)
                group = []
            group_key = key
            group.append((no, row))
        if group:
            yield from self._slate(src, policy, campaign, group, seen_users)

    def _slate(
        self, src: str, policy: str, campaign: str, rows: list[tuple[int, dict[str, str]]], seen_users: set[str]
    ) -> Iterator[Record]:
        first_no, first = rows[0]
        ts = _iso(first["timestamp"])
        features = [first[f] for f in USER_FEATURES]
        user = f"obd-{stable_id(*features)}"
        request = f"{self.name}:{policy}:{campaign}:{stable_id(first['timestamp'], *features)}"
        if user not in seen_users:
            seen_users.add(user)
            yield Record("users", src, first_no, dumps({"user_id": user, "attributes": dict(zip(USER_FEATURES, features, strict=True))}))
        ordered = sorted(rows, key=lambda r: _int_or(r[1]["position"], 0) or 0)
        yield Record(
            "slates",
            src,
            first_no,
            dumps(
                {
                    "request_id": request,
                    "user_id": user,
                    "ts": ts,
                    "surface": campaign,
                    "item_ids": [f"{campaign}:{r['item_id']}" for _, r in ordered],
                    "policy": policy,
                    "propensities": [_number_or_text(r["propensity_score"]) for _, r in ordered],
                }
            ),
        )
        for no, row in rows:
            item = f"{campaign}:{row['item_id']}"
            position = _int_or(row["position"], None)
            impression = {
                "request_id": request,
                "user_id": user,
                "item_id": item,
                "position": position - 1 if position is not None else row["position"],
                "ts": ts,
                "propensity": _number_or_text(row["propensity_score"]),
            }
            yield Record("impressions", src, no, dumps(impression))
            if row["click"] == "1":
                event = {
                    "event_id": f"{request}:click:{row['position']}",
                    "user_id": user,
                    "ts": ts,
                    "event_type": "click",
                    "item_id": item,
                    "request_id": request,
                }
                yield Record("events", src, no, dumps(event))
            elif row["click"] != "0":
                yield Record("events", src, no, dumps({"event_id": f"{request}:click:{row['position']}", "user_id": user, "ts": ts, "event_type": row["click"], "item_id": item}))


def _csv_dicts(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """Rows of a CSV with a header as dicts (None for a row with the wrong number of fields)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        header_text = handle.readline()
        header = next(csv.reader([header_text]))
        missing = [c for c in required if c not in header]
        if missing:
            raise ConnectorError(f"obd: {path} lacks columns {missing}; header: {header}")
        for no, text in enumerate(handle, start=2):
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            fields = next(csv.reader(io.StringIO(text)), [])
            yield no, (dict(zip(header, fields, strict=True)) if len(fields) == len(header) else None), text


def _iso(text: str) -> str:
    try:
        return iso_ts(dt.datetime.fromisoformat(text))
    except ValueError:
        return text


def _int_or(text: str, default: int | None) -> int | None:
    try:
        return int(text)
    except ValueError:
        return default


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
