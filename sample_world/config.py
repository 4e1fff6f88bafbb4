"""The world's config and summary, its catalog vocabulary and the constants of its generative story."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

import numpy as np


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
    "marginal_slot_probability: probability that the logging policy puts the item in this slot, "
    "P(pi_k = i), so that E[1{pi_k = i} / propensity] = 1; uniform_random: 1 / n_available, exact; "
    "popularity (Plackett-Luce): exact at slot 0 (w_i / W), below it a Rao-Blackwellised Monte Carlo "
    "estimate over 16 slates per request (relative standard error 2-3%, bias of 1 / propensity under 0.1%)"
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
