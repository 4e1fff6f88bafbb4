"""Streaming the JSONL logs of a day in time order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from sample_world.config import EVENT_TYPES, REVIEW_FINISH, REVIEW_TITLES, REVIEW_VERDICTS, WorldConfig
from sample_world.defects import _DefectSpec, _LogCounts, _with_defects
from sample_world.static import _World
from sample_world.text import (
    _Fields,
    _fixed_text,
    _int_text,
    _join,
    _json_lines,
    _null_where,
    _quoted,
    _seq_json,
    _ts_json,
    _write_lines,
)
from sample_world.traffic import _Day


class _OrderedLog:
    """One JSONL log of a day: buffers rows, writes them in time order, numbers ids in that order.

    Rows reach the log chunk by chunk, and a chunk's events can run past the next chunk's first request,
    so rows at or after that boundary wait in the buffer for the next write.
    """

    def __init__(self, path: Path, log: str, render: Callable[[dict[str, np.ndarray], int], _Fields],
                 defects: _DefectSpec) -> None:
        self._fh = open(path, "wb")  # noqa: SIM115 - a context manager itself: the day keeps it open across chunks
        self._render = render
        self._defects = defects
        self._pending: dict[str, np.ndarray] = {}
        self.counts = _LogCounts(log)

    def add(self, rows: dict[str, np.ndarray]) -> None:
        if not self._pending:
            self._pending = rows
        else:
            self._pending = {k: np.concatenate([v, rows[k]]) for k, v in self._pending.items()}

    def write_before(self, boundary_ms: int | None, config: WorldConfig, rng: np.random.Generator) -> None:
        """Write buffered rows with ts < ``boundary_ms`` (all rows when None), sorted by ts."""
        if not self._pending:
            return
        ts = self._pending["ts"]
        ready = np.ones(len(ts), dtype=bool) if boundary_ms is None else ts < boundary_ms
        order = np.flatnonzero(ready)
        order = order[np.argsort(ts[order], kind="stable")]
        rows = {k: v[order] for k, v in self._pending.items()}
        self._pending = {k: v[~ready] for k, v in self._pending.items()}
        fields = self._render(rows, self.counts.records)
        _write_lines(self._fh, _with_defects(fields, _json_lines, self._defects, config, rng, self.counts))

    def __enter__(self) -> _OrderedLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


_EVENT_TYPE_JSON = tuple(f'"{t}"' for t in EVENT_TYPES)


def _impression_fields(world: _World, day: _Day, rows: dict[str, np.ndarray], first_id: int) -> _Fields:
    return {
        "request_id": _seq_json(f"r{day.id_prefix}", rows["request"]),
        "user_id": world.user_json.take(pa.array(rows["user"])),
        "item_id": world.item_json.take(pa.array(rows["item"])),
        "position": _int_text(rows["position"]),
        "ts": _ts_json(rows["ts"], day.start_ms, day.date_text),
    }


def _event_fields(world: _World, day: _Day, rows: dict[str, np.ndarray], first_id: int) -> _Fields:
    n = len(rows["ts"])
    value = rows["value"]
    return {
        "event_id": _seq_json(f"e{day.id_prefix}", first_id + np.arange(n, dtype=np.int64)),
        "user_id": world.user_json.take(pa.array(rows["user"])),
        "ts": _ts_json(rows["ts"], day.start_ms, day.date_text),
        "event_type": pa.array(_EVENT_TYPE_JSON).take(pa.array(rows["kind"])),
        "item_id": world.item_json.take(pa.array(rows["item"])),
        "request_id": _seq_json(f"r{day.id_prefix}", rows["request"]),
        "value": _null_where(value < 0, _fixed_text(np.maximum(value, 0), 1)),
        "session_id": _seq_json(f"s{day.id_prefix}", rows["session"]),
    }


def _review_fields(world: _World, day: _Day, rows: dict[str, np.ndarray], first_id: int) -> _Fields:
    n = len(rows["ts"])
    grade = rows["rating"] - 1
    item = pa.array(rows["item"])
    titles = pa.array([t for variants in REVIEW_TITLES for t in variants])
    verdicts = pa.array([v for variants in REVIEW_VERDICTS for v in variants])
    title = titles.take(pa.array(grade * len(REVIEW_TITLES[0]) + rows["title_variant"]))
    verdict = verdicts.take(pa.array(grade * len(REVIEW_VERDICTS[0]) + rows["verdict_variant"]))
    finish = pa.array(REVIEW_FINISH).take(pa.array(grade))
    text = _join(world.review_subject.take(item), " ", verdict, ". ", world.review_detail.take(item), " ", finish, ".")
    return {
        "review_id": _seq_json(f"v{day.id_prefix}", first_id + np.arange(n, dtype=np.int64)),
        "user_id": world.user_json.take(pa.array(rows["user"])),
        "item_id": world.item_json.take(item),
        "ts": _ts_json(rows["ts"], day.start_ms, day.date_text),
        "rating": _int_text(rows["rating"]),
        "title": _quoted(title),
        "text": _quoted(text),
        "helpful_votes": _int_text(rows["helpful_votes"]),
    }
