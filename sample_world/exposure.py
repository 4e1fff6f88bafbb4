"""One chunk of requests: slates, exposure, clicks and what follows them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sample_world.config import (
    _ADD_TO_CART,
    _CLICK,
    _PURCHASE,
    _VIEW,
    CART_BASE,
    CART_GAIN,
    CLICK_DELAY_MS,
    CLICK_THINK_MEAN_MS,
    DWELL_MEDIAN_S,
    DWELL_RELEVANCE_GAIN,
    DWELL_SIGMA,
    HELPFUL_VOTES_MEAN,
    MEAN_VIEWPORT,
    PAIR_NOISE_SD,
    PARQUET_COMPRESSION,
    PURCHASE_BASE,
    PURCHASE_DELAY_MEAN_MS,
    PURCHASE_GAIN,
    PURCHASE_MIN_DELAY_MS,
    RATING_NOISE_SD,
    RELEVANCE_SCALE,
    RENDER_MS_PER_POSITION,
    REVIEW_DELAY_MEAN_MS,
    REVIEW_MIN_DELAY_MS,
    REVIEW_TITLES,
    REVIEW_VERDICTS,
    VIEW_DELAY_MS,
    LoggingPolicy,
)
from sample_world.policy import _sample_slates
from sample_world.static import _taxonomy, _World
from sample_world.text import _int_text, _join, _lookup
from sample_world.traffic import _Availability, _Day, _Requests

_SLATES_SCHEMA = pa.schema([
    pa.field("request_id", pa.string()),
    pa.field("user_id", pa.string()),
    pa.field("ts", pa.timestamp("ms", tz="UTC")),
    pa.field("surface", pa.string()),
    pa.field("item_ids", pa.list_(pa.string())),
    pa.field("policy", pa.string()),
    pa.field("propensities", pa.list_(pa.float64())),
])


# Served slots repeat a few ids and names many times: they are handed to Parquet as dictionary arrays
# (no hashing, no string copies) and read back as plain strings (no Arrow schema is stored).
_DICT = pa.dictionary(pa.int32(), pa.string())


_SERVED_SCHEMA = pa.schema([
    pa.field("request_id", _DICT),
    pa.field("user_id", _DICT),
    pa.field("item_id", _DICT),
    pa.field("surface", _DICT),
    pa.field("policy", _DICT),
    pa.field("anchor_category", _DICT),
    pa.field("position", pa.int32()),
    pa.field("viewport", pa.int32()),
    pa.field("impressed", pa.bool_()),
    pa.field("examination_prob", pa.float64()),
    pa.field("relevance_prob", pa.float64()),
    pa.field("propensity", pa.float64()),
    pa.field("examined", pa.bool_()),
    pa.field("relevant", pa.bool_()),
    pa.field("clicked", pa.bool_()),
])


# Min/max statistics of id strings and random doubles cost more to write than they ever save a reader.
_SLATES_WRITE_OPTIONS: Mapping[str, object] = {
    "compression": PARQUET_COMPRESSION,
    "use_dictionary": ["user_id", "surface", "policy", "item_ids"],
    "write_statistics": ["ts", "surface", "policy"],
}


_SERVED_WRITE_OPTIONS: Mapping[str, object] = {
    "compression": PARQUET_COMPRESSION,
    "store_schema": False,
    "use_dictionary": [f.name for f in _SERVED_SCHEMA if f.type == _DICT],
    "write_statistics": [f.name for f in _SERVED_SCHEMA if f.type in (pa.int32(), pa.bool_())],
}


_POLICIES = (LoggingPolicy.POPULARITY, LoggingPolicy.UNIFORM_RANDOM)


@dataclass(frozen=True)
class _Slots:
    """A chunk of requests (n) and their served slots (n, K): the truth from which the logs are written."""

    seq: np.ndarray  # (n,) request number within the day
    user: np.ndarray
    ts_ms: np.ndarray
    session: np.ndarray
    surface: np.ndarray  # index into config.surfaces
    uniform: np.ndarray  # served by uniform_random
    logged: np.ndarray  # propensities logged in slates
    viewport: np.ndarray  # rendered depth
    anchor: np.ndarray  # related-surface anchor category of popularity slates, else -1
    items: np.ndarray  # (n, K)
    propensity: np.ndarray
    relevance: np.ndarray
    impressed: np.ndarray
    examination: np.ndarray
    examined: np.ndarray
    relevant: np.ndarray
    clicked: np.ndarray


@dataclass(frozen=True)
class _ChunkResult:
    slates: pa.Table
    served: pa.Table
    impressions: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    reviews: dict[str, np.ndarray]
    exposure: np.ndarray


def _simulate_chunk(
    world: _World, day: _Day, requests: _Requests, lo: int, hi: int, available: _Availability,
    rng: np.random.Generator,
) -> _ChunkResult:
    slots = _serve(world, requests, lo, hi, available, rng)
    request_ids = _join(f"r{day.id_prefix}", pc.utf8_lpad(_int_text(slots.seq), 8, "0"))
    r, pos = np.nonzero(slots.impressed)
    impressions = {
        "ts": np.minimum(slots.ts_ms[r] + pos * RENDER_MS_PER_POSITION, day.end_ms - 1),
        "request": slots.seq[r], "user": slots.user[r], "item": slots.items[r, pos], "position": pos,
    }
    r, pos = np.nonzero(slots.clicked)
    events, purchases = _session_events(
        rng, day, click_ts=slots.ts_ms[r] + pos * RENDER_MS_PER_POSITION, request=slots.seq[r], user=slots.user[r],
        item=slots.items[r, pos], session=slots.session[r], relevance=slots.relevance[r, pos],
    )
    return _ChunkResult(
        slates=_slates_table(world, slots, request_ids),
        served=_served_table(world, slots, request_ids),
        impressions=impressions,
        events=events,
        reviews=_reviews(rng, day, world.config.review_share, **purchases),
        exposure=np.bincount(slots.items[slots.impressed], minlength=world.config.items),
    )


def _serve(world: _World, requests: _Requests, lo: int, hi: int, available: _Availability,
           rng: np.random.Generator) -> _Slots:
    """Serve requests ``lo:hi``: surface, policy, slate, viewport, then examination, relevance and clicks."""
    config, k, n = world.config, world.config.slate_size, hi - lo
    user = requests.user[lo:hi]
    surface = rng.choice(len(config.surfaces), size=n, p=world.surface_traffic)
    uniform = rng.random(n) < config.exploration_share
    logged = rng.random(n) < config.propensity_logged_share
    mean_viewport = np.array([MEAN_VIEWPORT[s] for s in config.surfaces])[surface]
    viewport = np.minimum(1 + rng.poisson(mean_viewport - 1.0), k)
    items, propensity, anchor = _sample_slates(world, available, user, surface, uniform, rng)
    relevance = _relevance_prob(world, user, items)
    impressed = np.arange(k) < viewport[:, None]
    examination = np.where(impressed, world.curves[surface], 0.0)
    examined = rng.random((n, k)) < examination
    relevant = rng.random((n, k)) < relevance
    return _Slots(
        seq=np.arange(lo, hi, dtype=np.int64), user=user, ts_ms=requests.ts_ms[lo:hi],
        session=requests.session[lo:hi], surface=surface, uniform=uniform, logged=logged, viewport=viewport,
        anchor=anchor, items=items, propensity=propensity, relevance=relevance, impressed=impressed,
        examination=examination, examined=examined, relevant=relevant, clicked=examined & relevant,
    )


def _slates_table(world: _World, slots: _Slots, request_ids: pa.Array) -> pa.Table:
    n, k = slots.items.shape
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    return pa.table({
        "request_id": request_ids,
        "user_id": world.user_ids.take(pa.array(slots.user)),
        "ts": pa.array(slots.ts_ms, pa.timestamp("ms", tz="UTC")),
        "surface": _lookup([str(s) for s in world.config.surfaces], slots.surface),
        "item_ids": pa.ListArray.from_arrays(offsets, world.item_ids.take(pa.array(slots.items.ravel()))),
        "policy": _lookup([str(p) for p in _POLICIES], slots.uniform.astype(np.int64)),
        "propensities": pa.ListArray.from_arrays(offsets, pa.array(slots.propensity.ravel()),
                                                 mask=pa.array(~slots.logged)),
    }, schema=_SLATES_SCHEMA)


def _served_table(world: _World, slots: _Slots, request_ids: pa.Array) -> pa.Table:
    n, k = slots.items.shape
    row = np.repeat(np.arange(n, dtype=np.int32), k)
    users, user_index = np.unique(slots.user, return_inverse=True)
    items, item_index = np.unique(slots.items.ravel(), return_inverse=True)
    return pa.table({
        "request_id": _dictionary(row, request_ids),
        "user_id": _dictionary(user_index[row], world.user_ids.take(pa.array(users))),
        "item_id": _dictionary(item_index, world.item_ids.take(pa.array(items))),
        "surface": _dictionary(slots.surface[row], pa.array([str(s) for s in world.config.surfaces])),
        "policy": _dictionary(slots.uniform[row], pa.array([str(p) for p in _POLICIES])),
        "anchor_category": _dictionary(slots.anchor[row], pa.array(_taxonomy().category_names)),
        "position": pa.array(np.tile(np.arange(k, dtype=np.int32), n)),
        "viewport": pa.array(slots.viewport[row].astype(np.int32)),
        "impressed": pa.array(slots.impressed.ravel()),
        "examination_prob": pa.array(slots.examination.ravel()),
        "relevance_prob": pa.array(slots.relevance.ravel()),
        "propensity": pa.array(slots.propensity.ravel()),
        "examined": pa.array(slots.examined.ravel()),
        "relevant": pa.array(slots.relevant.ravel()),
        "clicked": pa.array(slots.clicked.ravel()),
    }, schema=_SERVED_SCHEMA)


def _dictionary(index: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    """``values[index]`` as a dictionary array; null where index < 0."""
    index = index.astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(index, mask=index < 0), values)


def _relevance_prob(world: _World, user: np.ndarray, items: np.ndarray) -> np.ndarray:
    """True P(relevant | user, item) for each slot, (n, K)."""
    catalog = world.catalog
    affinity = np.einsum("nd,nkd->nk", world.population.latent[user], catalog.latent[items]).astype(np.float64)
    noise = _pair_noise(user[:, None], items, world.config.items, world.pair_noise_salt)
    return 1.0 / (1.0 + np.exp(-(RELEVANCE_SCALE * affinity + catalog.bias[items] + noise)))


def _pair_noise(user: np.ndarray, item: np.ndarray, n_items: int, salt: np.uint64) -> np.ndarray:
    """Fixed logistic noise with sd PAIR_NOISE_SD per (user, item), from a splitmix64 hash of the pair."""
    z = user.astype(np.uint64) * np.uint64(n_items) + item.astype(np.uint64) + salt
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    return PAIR_NOISE_SD * np.sqrt(3.0) / np.pi * np.log(u / (1.0 - u))


def _session_events(
    rng: np.random.Generator, day: _Day, *, click_ts: np.ndarray, request: np.ndarray, user: np.ndarray,
    item: np.ndarray, session: np.ndarray, relevance: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Click -> view (dwell) -> sometimes add_to_cart -> sometimes purchase, for each click.

    Returns the event rows and the purchases (for reviews).
    """
    last_ms = day.end_ms - 1
    n = len(click_ts)
    click_ts = np.minimum(click_ts + CLICK_DELAY_MS + rng.exponential(CLICK_THINK_MEAN_MS, n).astype(np.int64), last_ms)
    view_ts = np.minimum(click_ts + VIEW_DELAY_MS, last_ms)
    dwell_s = rng.lognormal(np.log(DWELL_MEDIAN_S) + DWELL_RELEVANCE_GAIN * relevance, DWELL_SIGMA)
    dwell_ds = np.maximum(np.rint(dwell_s * 10).astype(np.int64), 1)
    carted = rng.random(n) < CART_BASE + CART_GAIN * relevance
    cart_ts = np.minimum(view_ts + (dwell_ds * 100 * rng.uniform(0.3, 1.0, n)).astype(np.int64), last_ms)
    purchased = carted & (rng.random(n) < PURCHASE_BASE + PURCHASE_GAIN * relevance)
    purchase_delay = PURCHASE_MIN_DELAY_MS + rng.exponential(PURCHASE_DELAY_MEAN_MS, n).astype(np.int64)
    purchase_ts = np.minimum(cart_ts + purchase_delay, last_ms)

    everyone, none = np.ones(n, dtype=bool), np.full(n, -1, dtype=np.int64)
    # (which clicks lead to it, ts, event type, request, value); only clicks carry the request.
    kinds = [
        (everyone, click_ts, _CLICK, request, none),
        (everyone, view_ts, _VIEW, none, dwell_ds),
        (carted, cart_ts, _ADD_TO_CART, none, none),
        (purchased, purchase_ts, _PURCHASE, none, none),
    ]
    events = {
        "ts": np.concatenate([ts[mask] for mask, ts, _, _, _ in kinds]),
        "user": np.concatenate([user[mask] for mask, *_ in kinds]),
        "item": np.concatenate([item[mask] for mask, *_ in kinds]),
        "kind": np.concatenate([np.full(int(mask.sum()), kind) for mask, _, kind, _, _ in kinds]),
        "request": np.concatenate([req[mask] for mask, _, _, req, _ in kinds]),
        "value": np.concatenate([value[mask] for mask, _, _, _, value in kinds]),
        "session": np.concatenate([session[mask] for mask, *_ in kinds]),
    }
    purchases = {"ts": purchase_ts[purchased], "user": user[purchased], "item": item[purchased],
                 "relevance": relevance[purchased]}
    return events, purchases


def _reviews(rng: np.random.Generator, day: _Day, review_share: float, *, ts: np.ndarray, user: np.ndarray,
             item: np.ndarray, relevance: np.ndarray) -> dict[str, np.ndarray]:
    """Reviews for ``review_share`` of purchases, later the same day; the rating grows with relevance."""
    n = len(ts)
    written = rng.random(n) < review_share
    n_written = int(written.sum())
    delay = REVIEW_MIN_DELAY_MS + rng.exponential(REVIEW_DELAY_MEAN_MS, n_written).astype(np.int64)
    rating = np.clip(np.rint(1 + 4 * relevance[written] + rng.normal(0.0, RATING_NOISE_SD, n_written)), 1, 5).astype(np.int64)
    return {
        "ts": np.minimum(ts[written] + delay, day.end_ms - 1),
        "user": user[written],
        "item": item[written],
        "rating": rating,
        "title_variant": rng.integers(0, len(REVIEW_TITLES[0]), n_written),
        "verdict_variant": rng.integers(0, len(REVIEW_VERDICTS[0]), n_written),
        "helpful_votes": rng.geometric(1.0 / (1.0 + HELPFUL_VOTES_MEAN + np.abs(rating - 3)), n_written) - 1,
    }
