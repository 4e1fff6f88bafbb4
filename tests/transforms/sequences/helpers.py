"""Tiny interaction and label tables for the sequence-transform tests."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa

from warehouse.contracts import CORE_INTERACTIONS

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
LABEL_SCHEMA = pa.schema([("request_id", pa.string()), ("user_id", pa.string()), ("item_id", pa.string()),
                          ("ts", pa.timestamp("ms", tz="UTC")), ("observed", pa.int8()), ("ips_weight", pa.float64()),
                          ("split", pa.string()), ("propensity_source", pa.string()), ("examination", pa.float64())])


def event(eid: str, user: int, item: int, hours: float, event_type: str = "click", request: str | None = None,
          session: str = "s") -> dict:
    """One ``core_interactions`` row: user ``u<user>`` (idx ``user``) and item ``i<item>`` (idx ``item``)."""
    return {"event_id": eid, "user_idx": user, "item_idx": item, "user_id": f"u{user}", "item_id": f"i{item}",
            "ts": T0 + hours * HOUR, "event_type": event_type, "value": None, "request_id": request, "surface": None,
            "session_id": f"{session}{user}", "session_index": 0, "session_length": 1, "session_duration_ms": 0,
            "session_surface": None}


def interactions(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=CORE_INTERACTIONS.schema)


def label(request: str | None, user: int, item: int, hours: float, split: str, weight: float, observed: int = 1,
          source: str = "click_model") -> dict:
    """A label row; a click-model row's examination is ``1 / weight``, so its position weight is ``weight``."""
    return {"request_id": request, "user_id": f"u{user}", "item_id": f"i{item}", "ts": T0 + hours * HOUR,
            "observed": observed, "ips_weight": weight, "split": split, "propensity_source": source,
            "examination": None if source == "popularity" else 1.0 / weight}


def labels(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=LABEL_SCHEMA)


def random_world(rng: random.Random, users: int, items: int, events: int, days: int = 4) -> list[dict]:
    """Events spread over ``days`` days with a few duplicate timestamps (ties broken by event id)."""
    return [event(f"e{n:04d}", rng.randrange(users), rng.randrange(items), rng.randrange(days * 24 * 4) / 4,
                  rng.choice(["click", "view", "purchase"]), request=f"r{n % 9}", session=rng.choice(["s", "t"]))
            for n in range(events)]
