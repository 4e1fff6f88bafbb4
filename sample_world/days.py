"""One day: requests, then chunks of requests simulated and streamed to the day's files."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sample_world.config import _STREAM_CHUNK, _STREAM_DAY
from sample_world.defects import _log_defects, _LogCounts
from sample_world.exposure import (
    _SERVED_SCHEMA,
    _SERVED_WRITE_OPTIONS,
    _SLATES_SCHEMA,
    _SLATES_WRITE_OPTIONS,
    _simulate_chunk,
)
from sample_world.static import _epoch_ms, _rng, _World
from sample_world.streaming import _event_fields, _impression_fields, _OrderedLog, _review_fields
from sample_world.traffic import _availability, _Day, _day_requests


@dataclass
class _DayResult:
    requests: int
    served: int
    exposure: np.ndarray  # (N,) impressions per item
    logs: list[_LogCounts]


def _run_days(world: _World, staging: Path, workers: int) -> list[_DayResult]:
    days = range(world.config.days)
    if workers <= 1 or world.config.days == 1:
        return [_simulate_day(world, d, staging) for d in days]
    # spawn, not fork: forking after Arrow's thread pool has started can deadlock the child.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_simulate_day, [world] * len(days), days, [staging] * len(days)))


def _simulate_day(world: _World, day_index: int, staging: Path) -> _DayResult:
    """Simulate one day chunk by chunk, streaming its slates, truth and JSONL logs to ``staging``."""
    config = world.config
    date = config.start_date + dt.timedelta(days=day_index)
    day = _Day(day_index, _epoch_ms(date), date.isoformat(), date.strftime("%Y%m%d"))
    requests = _day_requests(world, day, _rng(config.seed, _STREAM_DAY, day_index))
    available = _availability(world.catalog, day_index)
    exposure = np.zeros(config.items, dtype=np.int64)
    n = len(requests.user)
    bounds = [*range(0, n, config.chunk_requests), n]
    with contextlib.ExitStack() as stack:
        slates = stack.enter_context(pq.ParquetWriter(
            staging / "slates" / f"{day.date_text}.parquet", _SLATES_SCHEMA, **_SLATES_WRITE_OPTIONS))
        served = stack.enter_context(pq.ParquetWriter(
            staging / "truth" / "served" / f"{day.date_text}.parquet", _SERVED_SCHEMA, **_SERVED_WRITE_OPTIONS))
        logs = [stack.enter_context(log) for log in _day_logs(world, day, staging)]
        for chunk, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            rng = _rng(config.seed, _STREAM_CHUNK, day_index, chunk)
            out = _simulate_chunk(world, day, requests, lo, hi, available, rng)
            slates.write_table(out.slates)
            served.write_table(out.served)
            exposure += out.exposure
            # Later chunks' requests start at or after this time, so everything before it is final.
            boundary = int(requests.ts_ms[hi]) if hi < n else None
            for log, rows in zip(logs, (out.impressions, out.events, out.reviews), strict=True):
                log.add(rows)
                log.write_before(boundary, config, rng)
        tail_rng = _rng(config.seed, _STREAM_CHUNK, day_index, len(bounds) - 1)
        for log in logs:
            log.write_before(None, config, tail_rng)
    return _DayResult(requests=n, served=n * config.slate_size, exposure=exposure,
                      logs=[log.counts for log in logs])


def _day_logs(world: _World, day: _Day, staging: Path) -> list[_OrderedLog]:
    """The day's impressions, events and reviews logs, in the order chunks hand them rows."""
    defects = _log_defects(world.config)
    renderers = {"impressions": _impression_fields, "events": _event_fields, "reviews": _review_fields}
    return [
        _OrderedLog(staging / log / f"{day.date_text}.jsonl", log, functools.partial(render, world, day), defects[log])
        for log, render in renderers.items()
    ]
