"""The logging policy: slates drawn by Plackett-Luce (popularity or uniform random), their propensities.

The logged propensity of a slot is the marginal ``P(policy puts item i in slot k)``, what inverse
propensity weighting needs (``E[1{pi_k = i} / p_ik] = 1``), not the Plackett-Luce step probability
(which conditions on the items above and would weigh the top item at slot 2 five times too little).
Uniform random: ``1 / n_available`` at every slot, exact. Popularity: exact at slot 0 (``w_i / W``),
below it a Rao-Blackwellised Monte Carlo estimate (:func:`_plackett_luce_marginals`) whose relative
standard error is about 2-3% per propensity (``MARGINAL_SAMPLES`` = 16; measured on a heavy-tailed
200-item catalog, slate of 10), so ``1 / p`` is biased by about its squared relative error, under 0.1%.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sample_world.config import DRAWS_PER_SLOT, RELATED_ANCHOR_BOOST, Surface
from sample_world.static import _World
from sample_world.traffic import _Availability

MARGINAL_SAMPLES = 16  # Monte Carlo slates per request behind each logged marginal propensity
_MARGINAL_BLOCK = 512  # requests per block of the marginal computation (small blocks stay in cache)


def _sample_slates(
    world: _World, available: _Availability, user: np.ndarray, surface: np.ndarray, uniform: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw each request's slate by Plackett-Luce.

    Returns:
        items (n, K), marginal slot propensities ``P(item in its slot)`` (n, K), and the anchor category
        of popularity slates on the related surface (n,; -1 elsewhere).
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
        propensity[explore] = 1.0 / n_available  # every item is equally likely in every slot
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

    def drawer(gen: np.random.Generator) -> Callable[[np.ndarray, int], np.ndarray]:
        def draw(rows: np.ndarray, m: int) -> np.ndarray:
            category = _inverse_cdf(cdf[rows], gen.random((len(rows), m)))
            at = available.category_start[category] + (gen.random(category.shape) * available.category_count[category]).astype(np.int64)
            at = np.where(gen.random(category.shape) < available.accept[at], at, available.alias[at])
            return available.items[at]
        return draw

    def weight_of(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return world.catalog.popularity[items] * np.take_along_axis(multiplier[rows], world.catalog.category[items], axis=1)

    items = _plackett_luce_draws(drawer(rng), len(user), world.config.slate_size)
    # The Monte Carlo slates draw from a spawned generator: the world's own stream (and so every
    # slate, click and event) is the same as without them.
    marginal = _plackett_luce_marginals(drawer(rng.spawn(1)[0]), weight_of, items, cdf[:, -1])
    return items, marginal, anchor


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per row, the index drawn by uniforms ``u`` (rows, m) from unnormalized cumulative weights (rows, C)."""
    target = u * cdf[:, -1:]
    # The number of cumulative weights at or below the target, counted one column at a time (a third of
    # the time of one (rows, m, C) comparison); the last column is left out, which caps the index at C - 1.
    index = np.zeros(target.shape, dtype=np.int64)
    for column in range(cdf.shape[1] - 1):
        index += target >= cdf[:, column : column + 1]
    return index


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


def _plackett_luce_marginals(
    draw: Callable[[np.ndarray, int], np.ndarray], weight_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
    items: np.ndarray, total: np.ndarray, samples: int = MARGINAL_SAMPLES,
) -> np.ndarray:
    """``P(pi_k = items[r, k])`` under Plackett-Luce with weights ``w`` (total ``W``), for each slot.

    The exponential-race view of Plackett-Luce gives the estimator. Item ``i`` lands in slot ``k``
    when its arrival falls between the k-th and (k+1)-th arrival of the other items; given the order
    of the others, the gaps between their arrivals are independent ``Exp(R_m)`` with ``R_m`` the weight
    not yet arrived (without ``i``), so

        P(pi_k = i | order of the others) = prod_{m<k} R_m / (R_m + w_i)  *  w_i / (R_k + w_i)

    and the order of the others is a Plackett-Luce draw with ``i`` deleted from it. The estimate is the
    mean of this over ``samples`` independent slates (each with ``i`` deleted): every term is positive
    and smooth in the others' weights, so 16 samples give 2-3% relative error, and slot 0 (``w_i / W``)
    is exact.
    """
    n, k = items.shape
    marginal = np.empty((n, k), dtype=np.float64)
    for lo in range(0, n, _MARGINAL_BLOCK):
        rows = np.arange(lo, min(n, lo + _MARGINAL_BLOCK))
        replicated = np.repeat(rows, samples)
        drawn = _plackett_luce_draws(lambda r, m, rep=replicated: draw(rep[r], m), len(replicated), k)
        weights = weight_of(replicated, drawn).reshape(len(rows), samples, k)
        drawn = drawn.reshape(len(rows), samples, k)
        own = weight_of(rows, items[rows])  # (b, K)
        big_w = total[rows][:, None, None]
        # before[..., p]: the weight of the first p sampled positions. The first m others are the first m
        # positions, or the first m + 1 less the target where it lies among them: one running sum per
        # sampled slate serves every slot.
        before = np.concatenate([np.zeros((len(rows), samples, 1)), np.cumsum(weights, axis=2)], axis=2)
        for slot in range(k):
            target, w = items[rows, slot], own[:, slot][:, None, None]
            is_target = drawn == target[:, None, None]
            at = np.where(is_target.any(axis=2), is_target.argmax(axis=2), k)  # the target's sampled position
            m = np.arange(slot + 1)
            prefix = np.where(m <= at[:, :, None], before[:, :, : slot + 1], before[:, :, 1 : slot + 2] - w)
            rest = np.maximum(big_w - w - prefix, np.finfo(np.float64).tiny)
            stay = np.prod(rest[:, :, :slot] / (rest[:, :, :slot] + w), axis=2)
            marginal[rows, slot] = np.mean(stay * w[:, :, 0] / (rest[:, :, slot] + w[:, :, 0]), axis=1)
    return np.clip(marginal, np.finfo(np.float64).tiny, 1.0)
