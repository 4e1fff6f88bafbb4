"""Generate a sample recommender world: the raw logs of ``docs/raw_formats.md`` and the truth behind them.

The world is the product's test bed. Every raw log that ingestion reads is written in its exact format,
and the hidden quantities the logs were drawn from (examination curve, relevance, exposure) are written
beside them under ``truth/``, so that debiasing, click models and recommenders can be validated against
known answers.

Generative story
----------------
* **Items** belong to a top category and a subcategory (:data:`CATEGORIES`), carry a brand of their
  category, a lognormal price around the category's median, a bias (intrinsic appeal), a popularity
  (what the logging policy knows) and a unit latent vector close to their subcategory's. Titles and
  descriptions are built from those attributes (brand, subcategory noun, material, colour, and the
  adjectives of the latent vector's three strongest dimensions, :data:`LATENT_POLES`), so similar
  items share words. A ``cold_start_share`` of items becomes available at midnight of a later day of
  the period and is never served before; the others predate the period.
* **Users** have a taste (a Dirichlet mixture over top categories, tilted by age band), a unit latent
  vector near their taste-weighted category centroids, and an activity level.
* **True relevance** ``P(relevant | u, i) = sigmoid(RELEVANCE_SCALE * <u, v_i> + bias_i + eps_ui)``,
  where ``eps_ui`` is a fixed logistic noise per (user, item) pair (hash-seeded, so it is the same each
  time the pair meets).
* **Requests** arrive Poisson per user-day, grouped into sessions: seconds between requests of a
  session, at least ``SESSION_MIN_GAP_S`` (typically hours) between sessions. Each request is on one
  surface and renders the first ``viewport`` slots of its slate (served-but-not-rendered is not an
  impression).
* **Logging policy**: a slate is ``slate_size`` distinct available items drawn by Plackett-Luce
  (sampling without replacement proportionally to weights). ``popularity`` (most requests):
  ``w_i = popularity_i * exp(personalization * taste_u[c_i])``, times ``exp(RELATED_ANCHOR_BOOST)``
  for the request's anchor category (drawn from the user's taste) on the ``related`` surface.
  ``uniform_random`` (``exploration_share`` of requests): equal weights.
* **Propensities** are Plackett-Luce *step* probabilities: for the item in slot ``k``,
  ``w_k / (W - sum_{j<k} w_j)``, the probability that the policy put that item in slot ``k`` given the
  items it had put in the slots above (``W`` is the total weight of the available items). Slot 0 is
  the exact marginal; for ``uniform_random`` the step probability is ``1 / (n_available - k)``. On
  the related surface they are conditional on the request's anchor category (context, like the item
  a related-items widget sits under; written to ``truth/served``). Slates are drawn by the exact
  equivalent of Gumbel top-k that is cheaper for large catalogs: draws with replacement (a category,
  then an item through an alias table), repeats rejected. Propensities are logged in ``slates`` for
  ``propensity_logged_share`` of requests (null otherwise) and always written to ``truth/served``.
* **Examination**: a rendered slot at position ``k`` is examined with probability
  :func:`examination_curve` ``(1 + k) ** -eta`` (``eta`` per surface, :data:`EXAMINATION_ETA`);
  clicked = examined AND relevant, two independent Bernoulli draws.
* **Session events**: each click is followed by a view (dwell seconds in ``value``, longer when the
  relevance probability is higher), sometimes an ``add_to_cart`` and then sometimes a ``purchase``;
  only the click carries the ``request_id``. Events of a session share its ``session_id``, except for
  the ``1 - session_id_logged_share`` of sessions whose client sent none (null).
* **Reviews** follow ``review_share`` of purchases later the same day; the rating (1..5) grows with
  relevance, the text combines sentiment phrases for that rating with the item's own words.
* **Defects**: ``bad_share`` of each JSONL/CSV log's lines get a malformed copy inserted right after
  them (truncated JSON, a missing ``user_id``/``item_id``, an impossible timestamp, an unknown event
  type, a negative price, a rating outside 1..5, whichever apply to that log), and ``dup_share`` an
  exact duplicate. The originals stay intact, so the truth matches the clean logs exactly. Slates
  (typed Parquet) and ``users.csv`` carry no defects. Counts go to the summary and ``world.json``.

Every log file of a day holds only timestamps of that day, in time order (ties in generation order).

Truth files (``DIR/truth/``, never read by ingestion)
----------------------------------------------------
``examination.json``
    ``{"definition": ..., "propensity_definition": ..., "surfaces": {surface: {"eta": float,
    "curve": [P(examined | rendered at position k) for k in 0..slate_size-1],
    "mean_viewport": float}}}``.
``items.parquet``
    item_id string, category string, subcategory string, brand string, price double, bias double
    (additive logit of relevance), popularity double (the logging policy's weight before
    personalization), latent list<float>, exposure_prob double (share of all requests of the period
    in which the item was served *and* rendered), impressions int64, available_from timestamp[ms, UTC],
    cold_start bool.
``users.parquet``
    user_id string, latent list<float>, taste list<float> (over ``world.json``'s ``categories``, in
    that order), activity double (multiplier of ``requests_per_user_day``).
``served/YYYY-MM-DD.parquet``
    one row per served slot: request_id, user_id, item_id, surface, policy string; anchor_category
    string (the related surface's context category for popularity slates, else null); position int32
    (0-based); viewport int32 (rendered depth of the request); impressed bool (position < viewport);
    examination_prob double (curve value when impressed, else 0); relevance_prob double; propensity
    double (the step probability above, also where the slate does not log it); examined, relevant,
    clicked bool.

Everything is generated day by day and, within a day, in chunks of ``chunk_requests`` requests that
are streamed to disk. Each day and chunk draws from its own ``numpy`` generator spawned from the seed,
so the same config gives byte-identical files whatever ``workers`` is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing import get_context
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


class CatalogFormat(StrEnum):
    """File format of ``catalog/items.*``."""

    JSONL = "jsonl"
    CSV = "csv"


class Surface(StrEnum):
    """Where a slate is shown; each surface has its own examination curve and viewport depth."""

    HOME = "home"
    RELATED = "related"


class LoggingPolicy(StrEnum):
    """Policy that produced a slate (the ``policy`` field of slates)."""

    POPULARITY = "popularity"
    UNIFORM_RANDOM = "uniform_random"


class _Defect(StrEnum):
    TRUNCATED = "truncated"
    MISSING_KEY = "missing_key"
    BAD_TIMESTAMP = "bad_timestamp"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    NEGATIVE_PRICE = "negative_price"
    RATING_OUT_OF_RANGE = "rating_out_of_range"


class _CategorySpec(NamedTuple):
    name: str
    subcategories: tuple[tuple[str, str], ...]  # (subcategory, singular noun used in titles)
    brands: tuple[str, ...]
    materials: tuple[str, ...]
    median_price: float
    usage: str


# fmt: off
CATEGORIES: tuple[_CategorySpec, ...] = (
    _CategorySpec("Outdoor", (("Tents", "tent"), ("Backpacks", "backpack"), ("Sleeping Bags", "sleeping bag"), ("Hiking Boots", "hiking boot")),
                  ("Northpeak", "Trailborn", "Summitra", "Ridgeway"), ("nylon", "polyester", "canvas", "leather"), 90.0, "Built for weekends on the trail."),
    _CategorySpec("Kitchen", (("Cookware", "pan"), ("Knives", "knife"), ("Coffee Makers", "coffee maker"), ("Blenders", "blender")),
                  ("Ferrocasa", "Brightpan", "Olivewood", "Kettlebrook"), ("stainless steel", "cast iron", "ceramic", "bamboo"), 45.0, "Made for cooking every day."),
    _CategorySpec("Electronics", (("Headphones", "headphones"), ("Speakers", "speaker"), ("Chargers", "charger"), ("Smartwatches", "smartwatch")),
                  ("Voltra", "Sonique", "Ampere", "Pixelon"), ("aluminium", "plastic", "glass", "silicone"), 120.0, "Connects to all your devices."),
    _CategorySpec("Books", (("Fiction", "novel"), ("Cookbooks", "cookbook"), ("Travel Guides", "travel guide"), ("Science", "science book")),
                  ("Inkwell Press", "Paperlane", "Foliohouse", "Quillmark"), ("paperback", "hardcover", "cloth", "recycled paper"), 18.0, "A read to come back to."),
    _CategorySpec("Toys", (("Puzzles", "puzzle"), ("Building Sets", "building set"), ("Plush", "plush toy"), ("Board Games", "board game")),
                  ("Tinkertop", "Jollyjam", "Brickbee", "Wonderwhirl"), ("wood", "plastic", "cotton", "cardboard"), 25.0, "Hours of fun for the family."),
    _CategorySpec("Beauty", (("Skincare", "moisturizer"), ("Fragrance", "perfume"), ("Haircare", "shampoo"), ("Makeup", "lipstick")),
                  ("Lumiere", "Velvetine", "Aurabloom", "Dewlight"), ("aloe", "argan oil", "shea butter", "vitamin C"), 22.0, "A small ritual for your routine."),
    _CategorySpec("Sports", (("Running Shoes", "running shoe"), ("Yoga Mats", "yoga mat"), ("Dumbbells", "dumbbell"), ("Cycling", "bike helmet")),
                  ("Stridex", "Flexa", "Ironclad", "Velocita"), ("mesh", "rubber", "foam", "steel"), 55.0, "Ready for your next workout."),
    _CategorySpec("Home", (("Bedding", "duvet"), ("Lamps", "lamp"), ("Rugs", "rug"), ("Storage", "storage box")),
                  ("Hearthly", "Nordhem", "Casaluma", "Willowmere"), ("linen", "wool", "oak", "rattan"), 50.0, "Makes any room feel like home."),
    _CategorySpec("Garden", (("Planters", "planter"), ("Seeds", "seed kit"), ("Garden Tools", "trowel"), ("Hoses", "garden hose")),
                  ("Greenroot", "Bloomfield", "Terracraft", "Sproutly"), ("terracotta", "galvanized steel", "recycled plastic", "ash wood"), 28.0, "For a greener backyard."),
    _CategorySpec("Pets", (("Dog Food", "dog food"), ("Cat Toys", "cat toy"), ("Pet Beds", "pet bed"), ("Aquarium", "aquarium filter")),
                  ("Pawsome", "Whiskerly", "Barkley", "Fintail"), ("chicken", "fleece", "sisal", "glass"), 24.0, "Your pet will thank you."),
)
# Share of the catalog per top category (same order as CATEGORIES); uneven on purpose.
CATEGORY_SHARES = (0.12, 0.12, 0.14, 0.10, 0.08, 0.10, 0.09, 0.11, 0.07, 0.07)

# One (negative pole, positive pole) adjective pair per latent dimension: an item's description uses the
# poles of its three strongest dimensions, so items close in latent space share words.
LATENT_POLES: tuple[tuple[str, str], ...] = (
    ("lightweight", "heavy-duty"), ("compact", "spacious"), ("classic", "modern"), ("budget", "premium"),
    ("quiet", "powerful"), ("soft", "firm"), ("minimal", "feature-rich"), ("rustic", "sleek"),
    ("everyday", "professional"), ("playful", "elegant"), ("portable", "stationary"), ("warm", "cool"),
    ("natural", "synthetic"), ("simple", "advanced"), ("vintage", "futuristic"), ("gentle", "intense"),
)
LATENT_DIM = len(LATENT_POLES)
COLORS = ("black", "white", "grey", "navy", "green", "red", "blue", "beige", "brown", "yellow")
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "BR")
COUNTRY_SHARES = (0.30, 0.12, 0.12, 0.10, 0.08, 0.07, 0.06, 0.05, 0.05, 0.05)
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_BAND_SHARES = (0.15, 0.27, 0.23, 0.17, 0.11, 0.07)

# Review phrases by rating (index rating - 1), three variants each.
REVIEW_TITLES = (
    ("Disappointed", "Would not buy again", "Not as described"),
    ("Not great", "Below expectations", "Meh"),
    ("It's okay", "Average", "Does the job"),
    ("Pretty good", "Happy with it", "Solid choice"),
    ("Love it", "Excellent", "Exactly what I wanted"),
)
REVIEW_VERDICTS = (
    ("broke within a week", "looks nothing like the photos", "was a waste of money"),
    ("feels cheaper than expected", "works but has flaws", "is hard to recommend"),
    ("is fine for the price", "does what it says", "is decent but nothing special"),
    ("works really well", "is good value", "feels well made"),
    ("is perfect", "exceeded my expectations", "is the best I have owned"),
)
REVIEW_FINISH = ("is poor", "is mediocre", "is fine", "is nice", "is lovely")
# fmt: on

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
_VIEW, _CLICK, _ADD_TO_CART, _PURCHASE = range(len(EVENT_TYPES))

# Examination: P(examined | rendered at position k) = (1 + k) ** -eta. Home is a scrolled feed (steep),
# related is a compact carousel (flat).
EXAMINATION_ETA: Mapping[Surface, float] = {Surface.HOME: 1.0, Surface.RELATED: 0.5}
MEAN_VIEWPORT: Mapping[Surface, float] = {Surface.HOME: 5.0, Surface.RELATED: 3.5}
SURFACE_TRAFFIC: Mapping[Surface, float] = {Surface.HOME: 0.65, Surface.RELATED: 0.35}
RELATED_ANCHOR_BOOST = 3.0  # log-weight added to the anchor category on the related surface

SUBCATEGORY_SPREAD = 0.6  # latent noise of a subcategory around its category centroid
ITEM_SPREAD = 0.6  # latent noise of an item around its subcategory
USER_SPREAD = 0.5  # latent noise of a user around the taste-weighted centroids
TASTE_CONCENTRATION = 3.0  # Dirichlet total mass: small, so users favour one or two categories
PRICE_SIGMA = 0.5
BRAND_PRICE_SIGMA = 0.3  # brands are price tiers within their category
POPULARITY_SIGMA = 1.3
POPULARITY_QUALITY_WEIGHT = 0.8  # better items are somewhat more popular
ACTIVITY_SIGMA = 0.8

RELEVANCE_SCALE = 5.0
ITEM_BIAS_MEAN = -3.0
ITEM_BIAS_SD = 0.7
PAIR_NOISE_SD = 0.5

NEW_SESSION_PROB = 0.25
REQUEST_GAP_MEAN_S = 45.0
SESSION_MIN_GAP_S = 45 * 60.0  # above the usual 30 min inactivity cut, so sessionization can recover them
SESSION_GAP_MEAN_S = 3 * 3600.0
# A user's first session of the day starts around mid-morning (normal, clipped to the day), later
# ones follow after pauses, so traffic is low at night and spreads over the afternoon and evening.
FIRST_SESSION_MEAN_S, FIRST_SESSION_SD_S = 10 * 3600.0, 3.5 * 3600.0
DAY_S = 86_400
DAY_MS = DAY_S * 1000
LAST_REQUEST_MARGIN_S = 10 * 60.0  # requests stop before midnight so their events mostly fit the day

RENDER_MS_PER_POSITION = 250  # lower slots are rendered as the user scrolls
CLICK_DELAY_MS = 1_000
CLICK_THINK_MEAN_MS = 4_000.0
VIEW_DELAY_MS = 800
DWELL_MEDIAN_S = 15.0
DWELL_RELEVANCE_GAIN = 1.5  # log-dwell slope in the relevance probability
DWELL_SIGMA = 0.6
CART_BASE, CART_GAIN = 0.05, 0.35
PURCHASE_BASE, PURCHASE_GAIN = 0.15, 0.45
PURCHASE_MIN_DELAY_MS = 10_000
PURCHASE_DELAY_MEAN_MS = 120_000.0
REVIEW_MIN_DELAY_MS = 10 * 60_000
REVIEW_DELAY_MEAN_MS = 3 * 3_600_000.0
RATING_NOISE_SD = 0.7
HELPFUL_VOTES_MEAN = 1.0  # plus |rating - 3|: strong opinions get more votes
CATALOG_HISTORY_DAYS = 365  # non-cold-start items appeared up to this long before the period
SIGNUP_HISTORY_DAYS = 3 * 365

DRAWS_PER_SLOT = 2  # with-replacement draws per slot before the top-up of the few slates with many repeats
PARQUET_COMPRESSION = "snappy"  # zstd writes ~30% slower here for ~10-15% smaller files

# Streams of the per-seed SeedSequence tree (spawn_key prefixes).
_STREAM_CATALOG, _STREAM_USERS, _STREAM_DAY, _STREAM_CHUNK, _STREAM_PAIR_NOISE, _STREAM_CATALOG_LINES = range(6)

PROPENSITY_DEFINITION = (
    "plackett_luce_step: probability that the logging policy put the item in this slot given the items "
    "it put in the slots above (w_k / (W - sum_{j<k} w_j)); exact marginal for slot 0; "
    "1 / (n_available - k) for uniform_random"
)
EXAMINATION_DEFINITION = "P(examined | rendered at position k) = (1 + k) ** -eta; unrendered slots are never examined"


@dataclass(frozen=True)
class WorldConfig:
    """Size, seed and behaviour knobs of a sample world.

    Attributes:
        users: Number of users.
        items: Number of catalog items.
        days: Number of days of logs, starting at ``start_date``.
        seed: Root seed; the same config gives byte-identical files.
        start_date: First day of the period (UTC).
        slate_size: Items served per request (K).
        surfaces: Surfaces that receive traffic (shares from :data:`SURFACE_TRAFFIC`).
        requests_per_user_day: Mean requests per user and day (scaled by each user's activity).
        propensity_logged_share: Share of requests whose slate logs its propensities.
        exploration_share: Share of requests served by ``uniform_random`` instead of ``popularity``.
        cold_start_share: Share of items that become available at midnight of a later day.
        bad_share: Share of log lines that get a malformed copy.
        dup_share: Share of log lines that get an exact duplicate.
        catalog_format: ``catalog/items.jsonl`` or ``catalog/items.csv``.
        personalization: Strength of the popularity policy's taste term (0 = pure popularity).
        review_share: Share of purchases followed by a review.
        session_id_logged_share: Share of sessions whose events carry a session_id.
        chunk_requests: Requests simulated per in-memory chunk (bounds memory; part of the seed tree).
    """

    users: int = 3000
    items: int = 2000
    days: int = 14
    seed: int = 7
    start_date: dt.date = dt.date(2026, 1, 1)
    slate_size: int = 10
    surfaces: tuple[Surface, ...] = (Surface.HOME, Surface.RELATED)
    requests_per_user_day: float = 2.0
    propensity_logged_share: float = 0.5
    exploration_share: float = 0.05
    cold_start_share: float = 0.1
    bad_share: float = 0.002
    dup_share: float = 0.002
    catalog_format: CatalogFormat = CatalogFormat.JSONL
    personalization: float = 2.0
    review_share: float = 0.3
    session_id_logged_share: float = 0.9
    chunk_requests: int = 50_000

    def __post_init__(self) -> None:
        # Accept plain strings for the enums (CLI, JSON) but store the enum members.
        object.__setattr__(self, "surfaces", tuple(Surface(s) for s in self.surfaces))
        object.__setattr__(self, "catalog_format", CatalogFormat(self.catalog_format))
        for name in ("users", "items", "days", "slate_size", "chunk_requests"):
            if getattr(self, name) < 1:
                raise ValueError(f"WorldConfig.{name} must be at least 1, got {getattr(self, name)}")
        shares = ("propensity_logged_share", "exploration_share", "cold_start_share", "bad_share",
                  "dup_share", "review_share", "session_id_logged_share")
        for name in shares:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"WorldConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.surfaces or len(set(self.surfaces)) != len(self.surfaces):
            raise ValueError(f"WorldConfig.surfaces must be non-empty and distinct, got {self.surfaces}")
        if self.requests_per_user_day < 0:
            raise ValueError("WorldConfig.requests_per_user_day must be non-negative")

    def to_json(self) -> dict[str, object]:
        """Plain-JSON form, as written to ``world.json``."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dt.date):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = [str(v) for v in value]
            elif isinstance(value, StrEnum):
                value = str(value)
            out[f.name] = value
        return out


@dataclass(frozen=True)
class WorldSummary:
    """What :func:`generate_world` wrote.

    Attributes:
        slates: Slate rows (one per request).
        impressions: Clean impression lines (without malformed or duplicate lines).
        events: Clean event lines.
        reviews: Clean review lines.
        items: Clean catalog lines.
        users: Rows of ``users.csv``.
        bad_lines: Malformed lines written, all logs together.
        duplicate_lines: Exact duplicate lines written, all logs together.
        seconds: Wall-clock time of the generation.
        out_dir: The world directory.
        served: Served slots (rows of ``truth/served``).
        bad_lines_by_log: Malformed lines per log (``items``, ``impressions``, ``events``, ``reviews``).
        duplicate_lines_by_log: Duplicate lines per log.
    """

    slates: int
    impressions: int
    events: int
    reviews: int
    items: int
    users: int
    bad_lines: int
    duplicate_lines: int
    seconds: float
    out_dir: Path
    served: int = 0
    bad_lines_by_log: Mapping[str, int] = field(default_factory=dict)
    duplicate_lines_by_log: Mapping[str, int] = field(default_factory=dict)


def examination_curve(surface: str, slate_size: int) -> np.ndarray:
    """The true examination curve of a surface.

    Args:
        surface: A :class:`Surface` value (``"home"`` or ``"related"``).
        slate_size: Number of positions.

    Returns:
        float64 array of length ``slate_size``: ``P(examined | rendered at position k)``, 1 at k = 0.
    """
    eta = EXAMINATION_ETA[Surface(surface)]
    return (1.0 + np.arange(slate_size, dtype=np.float64)) ** -eta


def generate_world(config: WorldConfig, out_dir: Path, *, workers: int = 1) -> WorldSummary:
    """Write a complete sample world (raw logs, catalog, truth, ``world.json``) to ``out_dir``.

    The world is written into a staging folder beside ``out_dir`` and swapped into place at the end, so
    a crash never leaves a half-written world. An existing ``out_dir`` is replaced when it is empty or
    holds a previous world (a ``world.json``); anything else is refused.

    Args:
        config: Sizes, seed and knobs.
        out_dir: World directory to create or replace.
        workers: Processes that generate days in parallel; the output does not depend on it.

    Returns:
        Counts of what was written and the time it took.

    Raises:
        ValueError: ``out_dir`` holds something other than a world, or the config leaves fewer available
            items than ``slate_size``.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    world = _build_world(config)
    staging = out_dir.parent / f".{out_dir.name}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        counts, bad_by_log, dup_by_log = _write_world(world, staging, workers)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_into_place(staging, out_dir)
    return WorldSummary(**counts, seconds=time.perf_counter() - started, out_dir=out_dir,
                        bad_lines_by_log=bad_by_log, duplicate_lines_by_log=dup_by_log)


def _write_world(world: _World, staging: Path, workers: int) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Write every file of the world under ``staging``; return the counts, bad and duplicate lines per log."""
    config = world.config
    for sub in ("catalog", "slates", "impressions", "events", "reviews", "truth/served"):
        (staging / sub).mkdir(parents=True)
    catalog_counts = _write_catalog(world, staging)
    _write_users(world, staging / "catalog" / "users.csv")
    days = _run_days(world, staging, workers)
    requests = sum(d.requests for d in days)
    exposure = np.sum([d.exposure for d in days], axis=0) if days else np.zeros(config.items, np.int64)
    _write_truth(world, staging / "truth", exposure, requests)

    per_log = [catalog_counts] + [c for d in days for c in d.logs]
    bad_by_log = _sum_by_log(per_log, lambda c: c.bad)
    dup_by_log = _sum_by_log(per_log, lambda c: c.duplicates)
    clean_by_log = _sum_by_log(per_log, lambda c: c.records)
    counts = {
        "slates": requests,
        "impressions": clean_by_log["impressions"],
        "events": clean_by_log["events"],
        "reviews": clean_by_log["reviews"],
        "items": clean_by_log["items"],
        "users": config.users,
        "served": sum(d.served for d in days),
        "bad_lines": sum(bad_by_log.values()),
        "duplicate_lines": sum(dup_by_log.values()),
    }
    _write_world_json(staging / "world.json", config, counts, bad_by_log, dup_by_log)
    return counts, bad_by_log, dup_by_log


# --------------------------------------------------------------------------------------------------
# The static world: catalog, population and the lookup tables used to render lines.


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


# --------------------------------------------------------------------------------------------------
# Vectorized text building. Every JSON value is rendered as its JSON text (strings quoted, null as
# ``null``) into Arrow string arrays, and lines are joined element-wise; no per-row Python.


def _join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings."""
    return pc.binary_join_element_wise(*parts, "")


def _quoted(strings: pa.Array) -> pa.Array:
    escaped = pc.replace_substring(pc.replace_substring(strings, "\\", "\\\\"), '"', '\\"')
    return _join('"', escaped, '"')


def _csv_quoted(strings: pa.Array) -> pa.Array:
    return _join('"', pc.replace_substring(strings, '"', '""'), '"')


def _lookup(names: Sequence[str], index: np.ndarray) -> pa.Array:
    """``names[index]`` as a string array."""
    return pa.array(names).take(pa.array(index))


def _int_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, type=pa.int64()), pa.string())


def _padded_ids(prefix: str, n: int, min_width: int = 7) -> pa.Array:
    width = max(min_width, len(str(max(n - 1, 0))))
    return _join(prefix, pc.utf8_lpad(_int_text(np.arange(n)), width, "0"))


def _seq_json(prefix: str, seq: np.ndarray, width: int = 8) -> pa.Array:
    """Quoted ids ``"<prefix><seq zero-padded>"``; ``null`` where seq < 0."""
    text = _join('"', prefix, pc.utf8_lpad(_int_text(np.maximum(seq, 0)), width, "0"), '"')
    return _null_where(seq < 0, text)


def _null_where(mask: np.ndarray, text: pa.Array) -> pa.Array:
    if not mask.any():
        return text
    return pc.if_else(pa.array(mask), pa.scalar("null"), text)


def _fixed_text(values: np.ndarray, decimals: int) -> pa.Array:
    """Render non-negative integers scaled by 10**decimals as fixed-point text (1234, 2 -> ``12.34``)."""
    scale = 10**decimals
    whole = _int_text(values // scale)
    frac = pc.utf8_lpad(_int_text(values % scale), decimals, "0")
    return _join(whole, ".", frac)


@functools.cache
def _clock_table() -> tuple[pa.Array, pa.Array]:
    """``HH:MM:SS.`` for every second of a day and ``mmmZ"`` for every millisecond."""
    seconds = np.arange(DAY_S)
    hh, mm, ss = (pc.utf8_lpad(_int_text(v), 2, "0") for v in (seconds // 3600, seconds // 60 % 60, seconds % 60))
    clock = _join(hh, ":", mm, ":", ss, ".")
    millis = _join(pc.utf8_lpad(_int_text(np.arange(1000)), 3, "0"), 'Z"')
    return clock, millis


def _ts_json(ts_ms: np.ndarray, day_start_ms: int, date_text: str) -> pa.Array:
    """Quoted ISO-8601 UTC timestamps with milliseconds, for timestamps inside one day."""
    clock, millis = _clock_table()
    in_day = ts_ms - day_start_ms
    return _join(f'"{date_text}T', clock.take(pa.array(in_day // 1000)), millis.take(pa.array(in_day % 1000)))


def _iso_ms(ts_ms: np.ndarray) -> pa.Array:
    """Unquoted ISO-8601 UTC timestamps with milliseconds, for any timestamps (small arrays)."""
    text = np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms")
    return _join(pa.array(text.astype(object)), "Z")


_Fields = dict[str, pa.Array]  # field name -> rendered value text, in line order
_LineBuilder = Callable[[_Fields], pa.Array]  # _json_lines or _csv_lines


def _json_lines(fields: _Fields) -> pa.Array:
    """``{"k1": v1, "k2": v2}\\n`` per row, from already rendered JSON value texts."""
    parts: list[pa.Array | str] = []
    for i, (key, text) in enumerate(fields.items()):
        parts += [("{" if i == 0 else ", ") + f'"{key}": ', text]
    parts.append("}\n")
    return _join(*parts)


def _csv_lines(fields: _Fields) -> pa.Array:
    """CSV rows from already rendered CSV field texts, in ``fields`` order."""
    parts: list[pa.Array | str] = []
    for i, text in enumerate(fields.values()):
        parts += [","] if i else []
        parts.append(text)
    parts.append("\n")
    return _join(*parts)


def _write_lines(fh: IO[bytes], lines: pa.Array) -> None:
    """Write a string array's bytes in one go (its rows already end in a newline)."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if len(lines) == 0:
        return
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)
    begin, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    fh.write(memoryview(data_buf)[begin:end])


# --------------------------------------------------------------------------------------------------
# Malformed and duplicate lines.


@dataclass
class _LogCounts:
    log: str
    records: int = 0
    bad: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class _DefectSpec:
    defects: tuple[_Defect, ...]
    missing_keys: tuple[str, ...]  # candidates for MISSING_KEY
    bad_timestamps: tuple[str, ...] = ()  # rendered values for BAD_TIMESTAMP
    csv: bool = False  # CSV rows lose trailing fields and have empty keys instead


def _with_defects(
    fields: _Fields, build: _LineBuilder, spec: _DefectSpec, config: WorldConfig,
    rng: np.random.Generator, counts: _LogCounts,
) -> pa.Array:
    """Lines of ``fields`` with malformed copies and exact duplicates inserted right after their source."""
    lines = build(fields)
    n = len(lines)
    counts.records += n
    n_bad = int(rng.binomial(n, config.bad_share)) if n else 0
    n_dup = int(rng.binomial(n, config.dup_share)) if n else 0
    if n_bad == 0 and n_dup == 0:
        return lines
    dup_source = np.sort(rng.choice(n, size=n_dup, replace=False))
    bad_source = np.sort(rng.choice(n, size=n_bad, replace=False))
    kinds = rng.integers(0, len(spec.defects), size=n_bad)
    bad_lines = [_malformed(fields, bad_source[kinds == k], spec.defects[k], build, spec, rng)
                 for k in range(len(spec.defects))]
    bad_order = np.concatenate([bad_source[kinds == k] for k in range(len(spec.defects))])
    all_lines = pa.concat_arrays([lines, lines.take(pa.array(dup_source)), *bad_lines])
    # Stable sort on the source row puts each copy right after its original.
    order = np.argsort(np.concatenate([np.arange(n), dup_source, bad_order]), kind="stable")
    counts.bad += n_bad
    counts.duplicates += n_dup
    return all_lines.take(pa.array(order))


def _malformed(
    fields: _Fields, rows: np.ndarray, defect: _Defect, build: _LineBuilder, spec: _DefectSpec,
    rng: np.random.Generator,
) -> pa.Array:
    subset = {k: v.take(pa.array(rows, type=pa.int64())) for k, v in fields.items()}
    n = len(rows)
    if n == 0:
        return pa.array([], pa.string())
    if defect is _Defect.TRUNCATED and spec.csv:
        # Cut at a field boundary: a cut inside a quoted field would swallow the next rows.
        keep = int(rng.integers(1, len(subset)))
        return build(dict(list(subset.items())[:keep]))
    if defect is _Defect.TRUNCATED:
        # A strict prefix of a JSON object is never valid JSON.
        full = build(subset).to_pylist()
        cut = rng.uniform(0.2, 0.9, size=n)
        return pa.array([s[: max(1, int(len(s) * c))].rstrip("\n") + "\n" for s, c in zip(full, cut, strict=True)])
    if defect is _Defect.MISSING_KEY:
        drop = spec.missing_keys[int(rng.integers(len(spec.missing_keys)))]
        if spec.csv:
            subset[drop] = pa.array([""] * n)
            return build(subset)
        return build({k: v for k, v in subset.items() if k != drop})
    if defect is _Defect.BAD_TIMESTAMP:
        subset["ts"] = pa.array(rng.choice(np.array(spec.bad_timestamps, dtype=object), size=n), pa.string())
    elif defect is _Defect.UNKNOWN_EVENT_TYPE:
        subset["event_type"] = pa.array(['"teleport"'] * n)
    elif defect is _Defect.NEGATIVE_PRICE:
        subset["price"] = _join("-", subset["price"])
    elif defect is _Defect.RATING_OUT_OF_RANGE:
        subset["rating"] = pa.array(rng.choice(np.array(["0", "6", "9", "-1"], dtype=object), size=n), pa.string())
    return build(subset)


def _bad_timestamps(config: WorldConfig) -> tuple[str, ...]:
    """Unparseable timestamps and ones years away from the world's period."""
    far_year = config.start_date.year - 20
    return ('"not a timestamp"', '"2026-02-30T25:61:00.000Z"', f'"{far_year}-06-15T12:00:00.000Z"')


def _log_defects(config: WorldConfig) -> Mapping[str, _DefectSpec]:
    bad_ts = _bad_timestamps(config)
    common = (_Defect.TRUNCATED, _Defect.MISSING_KEY, _Defect.BAD_TIMESTAMP)
    return {
        "impressions": _DefectSpec(common, ("user_id", "item_id"), bad_ts),
        "events": _DefectSpec((*common, _Defect.UNKNOWN_EVENT_TYPE), ("user_id", "item_id"), bad_ts),
        "reviews": _DefectSpec((*common, _Defect.RATING_OUT_OF_RANGE), ("user_id", "item_id"), bad_ts),
        "items": _DefectSpec((_Defect.TRUNCATED, _Defect.MISSING_KEY, _Defect.NEGATIVE_PRICE), ("item_id",)),
    }


# --------------------------------------------------------------------------------------------------
# Catalog, users and truth files.


def _write_catalog(world: _World, staging: Path) -> _LogCounts:
    config, catalog, tax = world.config, world.catalog, _taxonomy()
    category = _lookup(tax.category_names, catalog.category)
    subcategory = _lookup(tax.subcategory_names, catalog.subcategory)
    brand = _lookup(tax.brand_names, catalog.brand)
    noun = _lookup(tax.subcategory_nouns, catalog.subcategory)
    material = _lookup(tax.material_names, catalog.material)
    color = _lookup(COLORS, catalog.color)
    words = [w for pair in LATENT_POLES for w in pair]
    adjectives = [_lookup(words, catalog.pole_words[:, j]) for j in range(3)]
    model_rng = _rng(config.seed, _STREAM_CATALOG_LINES)
    model = _join(_lookup([chr(ord("A") + i) for i in range(26)], model_rng.integers(0, 26, config.items)),
                  _int_text(model_rng.integers(10, 100, config.items)))
    title = _join(brand, " ", pc.utf8_title(adjectives[0]), " ", pc.utf8_title(noun), " ", model)
    description = _join(
        "A ", adjectives[0], ", ", adjectives[1], " and ", adjectives[2], " ", noun, " by ", brand, ". Made with ",
        material, " in ", color, ". ", _lookup([s.usage for s in CATEGORIES], catalog.category),
    )
    path_name = _join(category, " > ", subcategory)
    attributes = _join('{"color": "', color, '", "material": "', material, '"}')
    price = _fixed_text(catalog.price_cents, 2)
    available_from = _iso_ms(catalog.available_from_ms)

    if config.catalog_format is CatalogFormat.JSONL:
        fields: _Fields = {
            "item_id": world.item_json, "title": _quoted(title), "description": _quoted(description),
            "categories": _join("[", _quoted(category), ", ", _quoted(path_name), "]"),
            "brand": _quoted(brand), "price": price, "attributes": attributes,
            "available_from": _join('"', available_from, '"'),
        }
        build: _LineBuilder = _json_lines
        header = ""
    else:
        fields = {
            "item_id": world.item_ids, "title": _csv_quoted(title), "description": _csv_quoted(description),
            "categories": _csv_quoted(_join(category, "|", path_name)), "brand": _csv_quoted(brand),
            "price": price, "attributes": _csv_quoted(attributes), "available_from": available_from,
        }
        build, header = _csv_lines, ",".join(fields) + "\n"
    counts = _LogCounts("items")
    spec = dataclasses.replace(_log_defects(config)["items"], csv=config.catalog_format is CatalogFormat.CSV)
    lines = _with_defects(fields, build, spec, config, model_rng, counts)
    with open(staging / "catalog" / f"items.{config.catalog_format.value}", "wb") as fh:
        fh.write(header.encode())
        _write_lines(fh, lines)
    return counts


def _write_users(world: _World, path: Path) -> None:
    pop = world.population
    signup_ms = world.start_ms - pop.signup_days_before.astype(np.int64) * DAY_MS
    signup = pc.utf8_slice_codeunits(_iso_ms(signup_ms), 0, 10)
    lines = _join(world.user_ids, ",", signup, ",", _lookup(COUNTRIES, pop.country), ",",
                  _lookup(AGE_BANDS, pop.age_band), "\n")
    with open(path, "wb") as fh:
        fh.write(b"user_id,signup_date,country,age_band\n")
        _write_lines(fh, lines)


def _write_truth(world: _World, truth: Path, exposure: np.ndarray, requests: int) -> None:
    config, catalog, tax = world.config, world.catalog, _taxonomy()
    surfaces = {
        str(s): {"eta": EXAMINATION_ETA[s], "curve": examination_curve(s, config.slate_size).tolist(),
                 "mean_viewport": MEAN_VIEWPORT[s]}
        for s in config.surfaces
    }
    examination = {"definition": EXAMINATION_DEFINITION, "propensity_definition": PROPENSITY_DEFINITION,
                   "surfaces": surfaces}
    (truth / "examination.json").write_text(json.dumps(examination, indent=2) + "\n")

    items = pa.table({
        "item_id": world.item_ids,
        "category": _lookup(tax.category_names, catalog.category),
        "subcategory": _lookup(tax.subcategory_names, catalog.subcategory),
        "brand": _lookup(tax.brand_names, catalog.brand),
        "price": pa.array(catalog.price_cents / 100.0),
        "bias": pa.array(catalog.bias),
        "popularity": pa.array(catalog.popularity),
        "latent": _list_column(catalog.latent),
        "exposure_prob": pa.array(exposure / max(requests, 1)),
        "impressions": pa.array(exposure.astype(np.int64)),
        "available_from": pa.array(catalog.available_from_ms, pa.timestamp("ms", tz="UTC")),
        "cold_start": pa.array(catalog.available_day > 0),
    })
    pq.write_table(items, truth / "items.parquet", compression=PARQUET_COMPRESSION)
    users = pa.table({
        "user_id": world.user_ids,
        "latent": _list_column(world.population.latent),
        "taste": _list_column(world.population.taste.astype(np.float32)),
        "activity": pa.array(world.population.activity),
    })
    pq.write_table(users, truth / "users.parquet", compression=PARQUET_COMPRESSION)


def _list_column(matrix: np.ndarray) -> pa.Array:
    """A (n, d) matrix as a list<float> column."""
    n, d = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))


def _write_world_json(path: Path, config: WorldConfig, counts: Mapping[str, int],
                      bad_by_log: Mapping[str, int], dup_by_log: Mapping[str, int]) -> None:
    # No wall-clock time here: the same config must give the same bytes.
    doc = {
        "config": config.to_json(),
        "counts": dict(counts),
        "bad_lines_by_log": dict(bad_by_log),
        "duplicate_lines_by_log": dict(dup_by_log),
        "categories": list(_taxonomy().category_names),
        "propensity_definition": PROPENSITY_DEFINITION,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def _sum_by_log(counts: Sequence[_LogCounts], value: Callable[[_LogCounts], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        out[c.log] = out.get(c.log, 0) + value(c)
    return out


def _check_replaceable(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "world.json").exists():
        raise ValueError(f"{out_dir} is not empty and holds no world.json; refusing to replace it")


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``staging`` (write aside, then swap)."""
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old"
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
        os.replace(staging, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(staging, out_dir)


# --------------------------------------------------------------------------------------------------
# One day: requests, then chunks of requests simulated and streamed to the day's files.


@dataclass
class _DayResult:
    requests: int
    served: int
    exposure: np.ndarray  # (N,) impressions per item
    logs: list[_LogCounts]


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


# --------------------------------------------------------------------------------------------------
# One chunk of requests: slates, exposure, clicks and what follows them.


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


def _sample_slates(
    world: _World, available: _Availability, user: np.ndarray, surface: np.ndarray, uniform: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw each request's slate by Plackett-Luce.

    Returns:
        items (n, K), step propensities (n, K), and the anchor category of popularity slates on the
        related surface (n,; -1 elsewhere).
    """
    n, k = len(user), world.config.slate_size
    items = np.empty((n, k), dtype=np.int64)
    propensity = np.empty((n, k), dtype=np.float64)
    anchor = np.full(n, -1, dtype=np.int64)
    popular = np.flatnonzero(~uniform)
    if len(popular):
        items[popular], propensity[popular], anchor[popular] = _popularity_slates(
            world, available, user[popular], surface[popular], rng)
    explore = np.flatnonzero(uniform)
    if len(explore):
        n_available = len(available.items)

        def draw(rows: np.ndarray, m: int) -> np.ndarray:
            return available.items[rng.integers(0, n_available, size=(len(rows), m))]

        items[explore] = _plackett_luce_draws(draw, len(explore), k)
        propensity[explore] = 1.0 / (n_available - np.arange(k))
    return items, propensity, anchor


def _popularity_slates(
    world: _World, available: _Availability, user: np.ndarray, surface: np.ndarray, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Popularity policy: weight = popularity * exp(personalization * taste[category]) (+ related anchor).

    Sampling is two-stage and exact: a category with probability proportional to its requests' weight
    mass, then an item of that category proportionally to popularity (the taste term is constant within
    a category). On the related surface the anchor category (what the user is looking at, drawn from
    their taste) is part of the request's context, and propensities are conditional on it.
    """
    taste = world.population.taste[user]
    log_multiplier = world.config.personalization * taste
    related = np.flatnonzero(np.asarray(world.config.surfaces)[surface] == Surface.RELATED)
    anchor = np.full(len(user), -1, dtype=np.int64)
    if len(related):
        anchor[related] = _inverse_cdf(np.cumsum(taste[related], axis=1), rng.random((len(related), 1)))[:, 0]
        log_multiplier[related, anchor[related]] += RELATED_ANCHOR_BOOST
    multiplier = np.exp(log_multiplier)
    mass = multiplier * available.category_mass
    cdf = np.cumsum(mass, axis=1)

    def draw(rows: np.ndarray, m: int) -> np.ndarray:
        category = _inverse_cdf(cdf[rows], rng.random((len(rows), m)))
        at = available.category_start[category] + (rng.random(category.shape) * available.category_count[category]).astype(np.int64)
        at = np.where(rng.random(category.shape) < available.accept[at], at, available.alias[at])
        return available.items[at]

    items = _plackett_luce_draws(draw, len(user), world.config.slate_size)
    weight = world.catalog.popularity[items] * np.take_along_axis(multiplier, world.catalog.category[items], axis=1)
    return items, _plackett_luce_steps(weight, cdf[:, -1]), anchor


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per row, the index drawn by uniforms ``u`` (rows, m) from unnormalized cumulative weights (rows, C)."""
    target = u * cdf[:, -1:]
    index = (target[:, :, None] >= cdf[:, None, :]).sum(axis=2)
    return np.minimum(index, cdf.shape[1] - 1)


def _plackett_luce_draws(draw: Callable[[np.ndarray, int], np.ndarray], n: int, k: int) -> np.ndarray:
    """K distinct items per row, by drawing with replacement and keeping first occurrences.

    Rejecting repeats of a with-replacement sequence gives exactly Plackett-Luce sampling without
    replacement. Rows that have not reached K distinct items draw more (never restart, which would bias
    the slates towards less popular items).
    """
    result = np.empty((n, k), dtype=np.int64)
    pending = np.arange(n)
    draws = draw(pending, DRAWS_PER_SLOT * k)
    while len(pending):
        chosen, complete = _first_distinct(draws, k)
        result[pending[complete]] = chosen
        pending, draws = pending[~complete], draws[~complete]
        if len(pending):
            draws = np.concatenate([draws, draw(pending, DRAWS_PER_SLOT * k)], axis=1)
    return result


def _first_distinct(draws: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """First K distinct values of each row, in order, for rows that have K; and which rows do."""
    order = np.argsort(draws, axis=1, kind="stable")
    ordered = np.take_along_axis(draws, order, axis=1)
    first_sorted = np.ones_like(ordered, dtype=bool)
    first_sorted[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.empty_like(first_sorted)
    np.put_along_axis(first, order, first_sorted, axis=1)
    rank = np.cumsum(first, axis=1)
    complete = rank[:, -1] >= k
    keep = first & (rank <= k)
    return draws[complete][keep[complete]].reshape(-1, k), complete


def _plackett_luce_steps(weight: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Step probabilities w_k / (W - sum_{j<k} w_j) of a slate's items, (n, K)."""
    remaining = total[:, None] - (np.cumsum(weight, axis=1) - weight)
    return np.clip(weight / remaining, np.finfo(np.float64).tiny, 1.0)


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


# --------------------------------------------------------------------------------------------------
# Streaming the JSONL logs of a day in time order.


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
