"""Logged propensities are marginal slot probabilities: inverse propensity weighting on them is unbiased."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sample_world import Surface, WorldConfig, generate_world
from sample_world.policy import _inverse_cdf, _plackett_luce_draws, _plackett_luce_marginals


def _exact_marginals(w: np.ndarray, k: int) -> np.ndarray:
    """P(item i in slot j) of Plackett-Luce by enumerating every ordered k-prefix, (n, k)."""
    exact = np.zeros((len(w), k))
    for prefix in itertools.permutations(range(len(w)), k):
        p, left = 1.0, w.sum()
        for i in prefix:
            p *= w[i] / left
            left -= w[i]
        for slot, i in enumerate(prefix):
            exact[i, slot] += p
    return exact


def test_marginals_match_an_enumeration_of_every_slate() -> None:
    rng = np.random.default_rng(0)
    w = rng.uniform(0.05, 1.0, 9)
    w[0] = 3.0  # one dominant item: deep slots rarely hold it
    k = 4
    items = np.array([list(p) for p in itertools.permutations(range(9), k)][::97])  # varied slates

    def draw(rows: np.ndarray, m: int) -> np.ndarray:
        return rng.choice(9, size=(len(rows), m), p=w / w.sum())

    def weight_of(rows: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        return w[drawn]

    estimate = _plackett_luce_marginals(draw, weight_of, items, np.full(len(items), w.sum()), samples=64)
    exact = _exact_marginals(w, k)[items, np.arange(k)]
    np.testing.assert_allclose(estimate[:, 0], exact[:, 0], rtol=1e-12)  # slot 0 is exact
    relative = np.abs(estimate / exact - 1.0)
    assert relative.mean() < 0.02 and relative.max() < 0.1


@pytest.mark.parametrize("policy_share", [0.0, 1.0])
def test_inverse_logged_propensities_count_the_top_item_once_per_request(tmp_path: Path, policy_share: float) -> None:
    # One surface, no personalization: every popularity request shares one distribution. For the top
    # item and each slot, the mean over requests of 1{item in slot} / logged propensity is 1 when the
    # logged value is P(item in slot) (Plackett-Luce step probabilities give 1.00 / 0.50 / 0.20).
    config = WorldConfig(users=6000, items=12, days=1, slate_size=3, surfaces=(Surface.HOME,), personalization=0.0,
                         exploration_share=policy_share, cold_start_share=0.0, bad_share=0.0, dup_share=0.0, seed=3)
    generate_world(config, tmp_path / "w")
    served = pq.read_table(tmp_path / "w" / "truth" / "served").to_pandas()
    requests = served.request_id.nunique()
    items = pq.read_table(tmp_path / "w" / "truth" / "items.parquet").to_pandas()
    top = items.item_id[items.popularity.idxmax()]  # chosen before looking at the slates
    for slot in range(3):
        hits = served[(served.position == slot) & (served.item_id == top)]
        ratio = (1.0 / hits.propensity).sum() / requests
        assert ratio == pytest.approx(1.0, abs=0.08), (slot, ratio)


def test_plackett_luce_draws_are_what_the_marginals_assume() -> None:
    # Empirical slot frequencies of the sampler against the enumeration (the estimator's premise).
    rng = np.random.default_rng(1)
    w = np.array([3.0, 1.0, 0.5, 0.5, 0.25])
    slates = _plackett_luce_draws(lambda rows, m: rng.choice(5, size=(len(rows), m), p=w / w.sum()), 40_000, 3)
    freq = np.stack([np.bincount(slates[:, s], minlength=5) / len(slates) for s in range(3)], axis=1)
    np.testing.assert_allclose(freq, _exact_marginals(w, 3), atol=0.01)


@settings(max_examples=60, deadline=None)
@given(
    masses=st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.25]), min_size=1, max_size=9), min_size=1, max_size=6)
    .map(lambda rows: [row + [1.0] * (max(map(len, rows)) - len(row)) for row in rows]),  # rows padded to one width
    seed=st.integers(0, 2**16),
)
def test_inverse_cdf_draws_what_a_search_of_each_row_draws(masses: list[list[float]], seed: int) -> None:
    # The vectorised draw against the obvious one: per row, the first cumulative weight above u * total
    # (zero masses included: an item of weight 0 is never drawn).
    cdf = np.cumsum(np.asarray(masses), axis=1)
    u = np.random.default_rng(seed).random((len(masses), 5))
    last = cdf.shape[1] - 1
    expected = np.stack([np.minimum(np.searchsorted(row, ui * row[-1], side="right"), last) for row, ui in zip(cdf, u, strict=True)])
    np.testing.assert_array_equal(_inverse_cdf(cdf, u), expected)
