"""The static world: catalog, population and the lookup tables used to render lines."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sample_world.config import (
    _STREAM_CATALOG,
    _STREAM_PAIR_NOISE,
    _STREAM_USERS,
    ACTIVITY_SIGMA,
    AGE_BAND_SHARES,
    AGE_BANDS,
    BRAND_PRICE_SIGMA,
    CATALOG_HISTORY_DAYS,
    CATEGORIES,
    CATEGORY_SHARES,
    COLORS,
    COUNTRIES,
    COUNTRY_SHARES,
    DAY_MS,
    ITEM_BIAS_MEAN,
    ITEM_BIAS_SD,
    ITEM_SPREAD,
    LATENT_DIM,
    LATENT_POLES,
    POPULARITY_QUALITY_WEIGHT,
    POPULARITY_SIGMA,
    PRICE_SIGMA,
    SIGNUP_HISTORY_DAYS,
    SUBCATEGORY_SPREAD,
    SURFACE_TRAFFIC,
    TASTE_CONCENTRATION,
    USER_SPREAD,
    WorldConfig,
    _CategorySpec,
    examination_curve,
)
from sample_world.text import _join, _lookup, _padded_ids, _quoted


@dataclass(frozen=True)
class _Taxonomy:
    """CATEGORIES flattened into arrays indexed by category, subcategory, brand and material ids."""

    category_names: tuple[str, ...]
    subcategory_parent: np.ndarray
    subcategory_names: tuple[str, ...]
    subcategory_nouns: tuple[str, ...]
    brand_parent: np.ndarray
    brand_names: tuple[str, ...]
    material_parent: np.ndarray
    material_names: tuple[str, ...]


@functools.cache
def _taxonomy() -> _Taxonomy:
    def flat(select: Callable[[_CategorySpec], Sequence[object]]) -> tuple[np.ndarray, list[object]]:
        pairs = [(c, v) for c, spec in enumerate(CATEGORIES) for v in select(spec)]
        return np.array([c for c, _ in pairs]), [v for _, v in pairs]

    sub_parent, subs = flat(lambda s: s.subcategories)
    brand_parent, brands = flat(lambda s: s.brands)
    material_parent, materials = flat(lambda s: s.materials)
    return _Taxonomy(
        category_names=tuple(s.name for s in CATEGORIES),
        subcategory_parent=sub_parent,
        subcategory_names=tuple(str(s[0]) for s in subs),  # type: ignore[index]
        subcategory_nouns=tuple(str(s[1]) for s in subs),  # type: ignore[index]
        brand_parent=brand_parent,
        brand_names=tuple(str(b) for b in brands),
        material_parent=material_parent,
        material_names=tuple(str(m) for m in materials),
    )


@dataclass(frozen=True)
class _Catalog:
    category: np.ndarray  # (N,) top category id
    subcategory: np.ndarray  # (N,) flat subcategory id
    brand: np.ndarray  # (N,) flat brand id
    material: np.ndarray  # (N,) flat material id
    color: np.ndarray  # (N,) index into COLORS
    price_cents: np.ndarray  # (N,) int64
    bias: np.ndarray  # (N,) float64, additive relevance logit
    popularity: np.ndarray  # (N,) float64, logging-policy weight
    latent: np.ndarray  # (N, LATENT_DIM) float32, unit rows
    available_day: np.ndarray  # (N,) first day index at which the item may be served (0: before the period)
    available_from_ms: np.ndarray  # (N,) int64 epoch ms
    pole_words: np.ndarray  # (N, 3) indices into the flattened LATENT_POLES


@dataclass(frozen=True)
class _Population:
    taste: np.ndarray  # (U, C) rows sum to 1
    latent: np.ndarray  # (U, LATENT_DIM) float32, unit rows
    activity: np.ndarray  # (U,) mean 1
    country: np.ndarray
    age_band: np.ndarray
    signup_days_before: np.ndarray


@dataclass(frozen=True)
class _World:
    config: WorldConfig
    catalog: _Catalog
    population: _Population
    user_ids: pa.Array  # u0000042
    item_ids: pa.Array  # i0000137
    user_json: pa.Array  # "u0000042" with quotes, ready for JSON lines
    item_json: pa.Array
    review_subject: pa.Array  # "This lightweight tent from Northpeak", per item
    review_detail: pa.Array  # "The nylon and green finish", per item
    curves: np.ndarray  # (n_surfaces, K) examination curves, rows in config.surfaces order
    surface_traffic: np.ndarray  # (n_surfaces,) request shares
    pair_noise_salt: np.uint64
    start_ms: int


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _epoch_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1000


def _build_world(config: WorldConfig) -> _World:
    tax = _taxonomy()
    catalog_rng = _rng(config.seed, _STREAM_CATALOG)
    centroids = _unit_rows(catalog_rng.standard_normal((len(CATEGORIES), LATENT_DIM)))
    start_ms = _epoch_ms(config.start_date)
    catalog = _build_catalog(config, catalog_rng, centroids, start_ms)
    population = _build_population(config, _rng(config.seed, _STREAM_USERS), centroids)
    if int(np.sum(catalog.available_day == 0)) < config.slate_size:
        raise ValueError(
            f"only {int(np.sum(catalog.available_day == 0))} items are available on the first day, "
            f"fewer than slate_size={config.slate_size}; raise items or lower cold_start_share"
        )
    user_ids = _padded_ids("u", config.users)
    item_ids = _padded_ids("i", config.items)
    noun = _lookup(tax.subcategory_nouns, catalog.subcategory)
    brand = _lookup(tax.brand_names, catalog.brand)
    pole = _lookup([w for pair in LATENT_POLES for w in pair], catalog.pole_words[:, 0])
    material = _lookup(tax.material_names, catalog.material)
    color = _lookup(COLORS, catalog.color)
    salt = np.random.SeedSequence(config.seed, spawn_key=(_STREAM_PAIR_NOISE,)).generate_state(1, np.uint64)[0]
    return _World(
        config=config,
        catalog=catalog,
        population=population,
        user_ids=user_ids,
        item_ids=item_ids,
        user_json=_quoted(user_ids),
        item_json=_quoted(item_ids),
        review_subject=_join("This ", pole, " ", noun, " from ", brand),
        review_detail=_join("The ", material, " and ", color, " finish"),
        curves=np.stack([examination_curve(s, config.slate_size) for s in config.surfaces]),
        surface_traffic=_normalized([SURFACE_TRAFFIC[s] for s in config.surfaces]),
        pair_noise_salt=np.uint64(salt),
        start_ms=start_ms,
    )


def _normalized(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def _build_catalog(config: WorldConfig, rng: np.random.Generator, centroids: np.ndarray, start_ms: int) -> _Catalog:
    tax = _taxonomy()
    n = config.items
    category = rng.choice(len(CATEGORIES), size=n, p=_normalized(CATEGORY_SHARES))
    subcategory = _pick_child(rng, category, tax.subcategory_parent)
    brand = _pick_child(rng, category, tax.brand_parent)
    material = _pick_child(rng, category, tax.material_parent)
    color = rng.integers(0, len(COLORS), size=n)

    sub_latent = _unit_rows(centroids[tax.subcategory_parent]
                            + SUBCATEGORY_SPREAD * rng.standard_normal((len(tax.subcategory_names), LATENT_DIM)) / np.sqrt(LATENT_DIM))
    latent = _unit_rows(sub_latent[subcategory] + ITEM_SPREAD * rng.standard_normal((n, LATENT_DIM)) / np.sqrt(LATENT_DIM))
    # Each item's three strongest latent dimensions name its adjectives (pole by sign).
    strongest = np.argsort(-np.abs(latent), axis=1, kind="stable")[:, :3]
    pole_words = 2 * strongest + (np.take_along_axis(latent, strongest, axis=1) > 0)

    brand_tier = rng.normal(0.0, BRAND_PRICE_SIGMA, size=len(tax.brand_names))
    median = np.array([s.median_price for s in CATEGORIES])[category]
    price = np.exp(np.log(median) + brand_tier[brand] + rng.normal(0.0, PRICE_SIGMA, size=n))
    price_cents = np.maximum(np.rint(price).astype(np.int64), 1) * 100 - 1  # retail prices end in .99

    bias = rng.normal(ITEM_BIAS_MEAN, ITEM_BIAS_SD, size=n)
    popularity = np.exp(POPULARITY_SIGMA * rng.standard_normal(n) + POPULARITY_QUALITY_WEIGHT * (bias - ITEM_BIAS_MEAN))

    cold = (rng.random(n) < config.cold_start_share) if config.days > 1 else np.zeros(n, dtype=bool)
    cold_day = rng.integers(1, max(config.days, 2), size=n)
    history_day = -rng.integers(1, CATALOG_HISTORY_DAYS + 1, size=n)
    available_day = np.where(cold, cold_day, 0)
    available_from_ms = start_ms + np.where(cold, cold_day, history_day).astype(np.int64) * DAY_MS
    return _Catalog(
        category=category, subcategory=subcategory, brand=brand, material=material, color=color,
        price_cents=price_cents, bias=bias, popularity=popularity, latent=latent.astype(np.float32),
        available_day=available_day, available_from_ms=available_from_ms, pole_words=pole_words,
    )


def _pick_child(rng: np.random.Generator, parent_of_row: np.ndarray, child_parent: np.ndarray) -> np.ndarray:
    """Uniformly pick, for each row, one child (subcategory, brand, ...) of the row's category."""
    starts = np.searchsorted(child_parent, parent_of_row, side="left")
    counts = np.searchsorted(child_parent, parent_of_row, side="right") - starts
    return starts + (rng.random(len(parent_of_row)) * counts).astype(np.int64)


def _build_population(config: WorldConfig, rng: np.random.Generator, centroids: np.ndarray) -> _Population:
    n, n_categories = config.users, len(CATEGORIES)
    age_band = rng.choice(len(AGE_BANDS), size=n, p=_normalized(AGE_BAND_SHARES))
    # Each age band leans towards some categories; users then concentrate on one or two of them.
    band_prior = rng.dirichlet(np.ones(n_categories), size=len(AGE_BANDS))
    alpha = TASTE_CONCENTRATION * (0.5 * band_prior[age_band] + 0.5 / n_categories)
    taste = rng.standard_gamma(alpha)
    taste = taste / taste.sum(axis=1, keepdims=True)
    latent = _unit_rows(taste @ centroids + USER_SPREAD * rng.standard_normal((n, LATENT_DIM)) / np.sqrt(LATENT_DIM))
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, size=n) / np.exp(ACTIVITY_SIGMA**2 / 2)
    return _Population(
        taste=taste,
        latent=latent.astype(np.float32),
        activity=activity,
        country=rng.choice(len(COUNTRIES), size=n, p=_normalized(COUNTRY_SHARES)),
        age_band=age_band,
        signup_days_before=rng.integers(1, SIGNUP_HISTORY_DAYS + 1, size=n),
    )
