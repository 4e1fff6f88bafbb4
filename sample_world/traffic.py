"""A day's traffic: its requests (Poisson per user, grouped into sessions) and the items servable that day."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sample_world.config import (
    CATEGORIES,
    DAY_MS,
    DAY_S,
    FIRST_SESSION_MEAN_S,
    FIRST_SESSION_SD_S,
    LAST_REQUEST_MARGIN_S,
    NEW_SESSION_PROB,
    REQUEST_GAP_MEAN_S,
    SESSION_GAP_MEAN_S,
    SESSION_MIN_GAP_S,
)
from sample_world.static import _Catalog, _World


@dataclass(frozen=True)
class _Day:
    index: int
    start_ms: int
    date_text: str  # 2026-01-03
    id_prefix: str  # 20260103, after the one-letter id kind

    @property
    def end_ms(self) -> int:
        return self.start_ms + DAY_MS


@dataclass(frozen=True)
class _Requests:
    """A day's requests, sorted by time; ``seq`` (the row number) names them."""

    user: np.ndarray
    ts_ms: np.ndarray
    session: np.ndarray  # session number within the day, -1 when the client sent no session id


@dataclass(frozen=True)
class _Availability:
    """Items servable on a day, grouped by category, with one alias table per category.

    The popularity policy samples in two stages (a category, then an item of it proportionally to
    popularity); the alias tables make the second stage O(1) per draw.
    """

    items: np.ndarray  # available item ids, sorted by category
    category_start: np.ndarray  # (C,) first position of each category in ``items``
    category_count: np.ndarray  # (C,) number of available items per category
    category_mass: np.ndarray  # (C,) total popularity of each category
    accept: np.ndarray  # per position: probability of keeping the position drawn uniformly in its category
    alias: np.ndarray  # per position: the position taken otherwise (same category)


def _segment_cumsum(x: np.ndarray, is_start: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum of ``x`` restarting wherever ``is_start`` is true."""
    total = np.cumsum(x)
    segment = np.cumsum(is_start) - 1
    before = (total - x)[is_start]
    return total - before[segment]


def _day_requests(world: _World, day: _Day, rng: np.random.Generator) -> _Requests:
    """Requests of one day: Poisson per user, grouped into sessions, sorted by time.

    Within a session requests are ``REQUEST_GAP_MEAN_S`` apart on average; a user's first session
    starts around ``FIRST_SESSION_MEAN_S`` and the next ones at least ``SESSION_MIN_GAP_S`` after the
    previous one ended. Requests past ``LAST_REQUEST_MARGIN_S`` before midnight are dropped.
    """
    config = world.config
    per_user = rng.poisson(config.requests_per_user_day * world.population.activity)
    user = np.repeat(np.arange(config.users, dtype=np.int32), per_user)
    n = len(user)
    first_of_user = np.ones(n, dtype=bool)
    first_of_user[1:] = user[1:] != user[:-1]
    new_session = first_of_user | (rng.random(n) < NEW_SESSION_PROB)
    session = np.cumsum(new_session) - 1

    gap_s = np.where(new_session, 0.0, rng.exponential(REQUEST_GAP_MEAN_S, size=n))
    offset_s = _segment_cumsum(gap_s, new_session)
    session_first = np.flatnonzero(new_session)
    span_s = np.maximum.reduceat(offset_s, session_first) if n else np.zeros(0)
    user_first_session = first_of_user[session_first]
    n_sessions = len(session_first)
    wake_s = np.clip(rng.normal(FIRST_SESSION_MEAN_S, FIRST_SESSION_SD_S, size=n_sessions), 0.0, DAY_S - 1.0)
    pause_s = SESSION_MIN_GAP_S + rng.exponential(SESSION_GAP_MEAN_S, size=n_sessions)
    previous_span = np.concatenate([[0.0], span_s[:-1]])
    step_s = np.where(user_first_session, wake_s, previous_span + pause_s)
    session_start_s = _segment_cumsum(step_s, user_first_session)

    ts_s = session_start_s[session] + offset_s
    logged = rng.random(n_sessions) < config.session_id_logged_share
    keep = ts_s < DAY_S - LAST_REQUEST_MARGIN_S
    ts_ms = day.start_ms + (ts_s[keep] * 1000).astype(np.int64)
    user, session = user[keep], np.where(logged[session], session, -1)[keep]
    order = np.lexsort((user, ts_ms))
    return _Requests(user=user[order], ts_ms=ts_ms[order], session=session[order])


def _availability(catalog: _Catalog, day_index: int) -> _Availability:
    items = np.flatnonzero(catalog.available_day <= day_index)
    items = items[np.argsort(catalog.category[items], kind="stable")]
    categories = np.arange(len(CATEGORIES))
    start = np.searchsorted(catalog.category[items], categories, side="left")
    end = np.searchsorted(catalog.category[items], categories, side="right")
    popularity = catalog.popularity[items]
    accept = np.ones(len(items))
    alias = np.arange(len(items))
    for lo, hi in zip(start, end, strict=True):
        if hi > lo:
            accept[lo:hi], local = _alias_table(popularity[lo:hi])
            alias[lo:hi] = lo + local
    mass = np.array([popularity[lo:hi].sum() for lo, hi in zip(start, end, strict=True)])
    return _Availability(items=items, category_start=start, category_count=end - start, category_mass=mass,
                         accept=accept, alias=alias)


def _alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table: draw a slot j uniformly, keep it with probability accept[j], else take alias[j].

    Returns:
        (accept, alias), alias indices local to ``weights``.
    """
    n = len(weights)
    scaled = (weights * (n / weights.sum())).tolist()
    accept, alias = [1.0] * n, list(range(n))
    small = [i for i, w in enumerate(scaled) if w < 1.0]
    large = [i for i, w in enumerate(scaled) if w >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] += scaled[s] - 1.0
        (small if scaled[g] < 1.0 else large).append(g)
    return np.array(accept), np.array(alias, dtype=np.int64)
