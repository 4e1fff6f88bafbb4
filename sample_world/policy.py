"""The logging policy: slates drawn by Plackett-Luce (popularity or uniform random), their propensities."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sample_world.config import DRAWS_PER_SLOT, RELATED_ANCHOR_BOOST, Surface
from sample_world.static import _World
from sample_world.traffic import _Availability


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
