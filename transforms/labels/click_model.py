"""Position-based click model fitted by EM on aggregated counts.

The model (Richardson et al. 2007; Chuklin et al. 2015) says that a rendered item at position ``k`` is
clicked when it is examined and relevant, two independent events::

    P(click | k, i) = theta_k * gamma_i        theta_k = P(examined | k),  gamma_i = P(relevant | i)

EM (as in the regression-EM of Wang et al., WSDM 2018, with one relevance parameter per item instead of
a regression over features) treats examination E and relevance R as latent. Given a non-click at
``(k, i)`` the posteriors are::

    P(E=1 | C=0) = theta (1 - gamma) / (1 - theta gamma)     P(R=1 | C=0) = (1 - theta) gamma / (1 - theta gamma)

and a click implies E = R = 1. Every quantity depends on the row only through ``(k, i)``, so the
*sufficient statistics* are the impression and click counts per ``(position, item)`` cell::

    cells:  position  item   impressions  clicks
               0      i17        812         95
               0      i42         40          3
               1      i17        655         41      <- one row per (k, i) seen, whatever the log size

The E and M steps are weighted sums over cells, so memory and time per iteration grow with the
number of cells (at most positions x items), never with the number of impressions: 10M impressions
over 10 positions and 100k items are at most 1M cells. The counts are computed by the SQL engine over
Parquet files (see :mod:`transforms.labels`); this module only sees the small aggregate.

Identifiability: ``theta * gamma`` is invariant under ``theta -> c theta, gamma -> gamma / c``, so the
curve is reported relative to position 0 (``theta_0 = 1``: the top slot is always examined when it is
rendered). Positions with fewer than ``min_position_clicks`` clicks are pooled with every
position below them (and, while that tail is still short of the minimum, the positions above it) into
one tail parameter, because a parameter fitted to a handful of impressions
is noise (a 30-impression position has a click-rate standard error larger than the whole curve's
spread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Probabilities are kept strictly inside (0, 1) so that 1 - theta * gamma never reaches 0.
_EPS = 1e-9


@dataclass(frozen=True)
class ClickModelConfig:
    """EM settings.

    Attributes:
        max_iterations: Upper bound on EM iterations.
        tolerance: Stop when no examination value moves by more than this in one iteration.
        min_position_clicks: Positions with fewer clicks share one tail parameter. Clicks, not
            impressions, measure what a position's estimate rests on (its relative standard error is
            about ``1 / sqrt(clicks)``: 7% at the default 200), whatever the surface's click rate.
        monotone: Constrain examination to be non-increasing in position (the M-step becomes a
            weighted isotonic regression, which is the constrained maximum for Bernoulli counts).
    """

    max_iterations: int = 5000
    tolerance: float = 1e-6
    min_position_clicks: int = 200
    monotone: bool = True

    def __post_init__(self) -> None:
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be at least 1, got {self.max_iterations}")
        if self.tolerance <= 0:
            raise ValueError(f"tolerance must be positive, got {self.tolerance}")
        if self.min_position_clicks < 1:
            raise ValueError(f"min_position_clicks must be at least 1, got {self.min_position_clicks}")


@dataclass(frozen=True)
class ExaminationFit:
    """A fitted examination curve.

    Attributes:
        examination: ``P(examined | position k)`` for k = 0..K-1, relative to position 0 (so ``[0] == 1``).
        impressions: Impressions per position.
        clicks: Clicks per position.
        relevance: ``P(relevant)`` per item, in the order of the ``items`` codes passed in.
        pooled_from: First position of the pooled tail (K when nothing was pooled).
        iterations: EM iterations run.
        converged: True when the tolerance was reached before ``max_iterations``.
        log_likelihood: Bernoulli log-likelihood of the clicks under the fit.
    """

    examination: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    relevance: np.ndarray
    pooled_from: int
    iterations: int
    converged: bool
    log_likelihood: float


def position_groups(support_per_position: np.ndarray, min_support: float) -> tuple[np.ndarray, int]:
    """Map each position to its parameter: itself, or the pooled tail from the first sparse position on.

    The tail starts at the first position with less than ``min_support`` (clicks) and is extended
    upwards until the pooled tail itself holds ``min_support``: every parameter, own or pooled, rests
    on at least that much data.

    Returns:
        ``(group of each position, first pooled position)``; the first pooled position is K when every
        position has enough impressions.
    """
    n = len(support_per_position)
    sparse = np.flatnonzero(support_per_position < min_support)
    tail = int(sparse[0]) if len(sparse) else n
    while 1 < tail < n and support_per_position[tail:].sum() < min_support:
        tail -= 1
    # Position 0 anchors the scale; it keeps its own parameter even when sparse.
    tail = max(tail, 1) if n > 1 else n
    groups = np.minimum(np.arange(n), tail)
    return groups, tail


def non_increasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares projection onto non-increasing sequences (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [weighted mean, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks[-1]
            total = w1 + w2
            blocks[-1] = [(v1 * w1 + v2 * w2) / total if total > 0 else (v1 + v2) / 2, total, n1 + n2]
    return np.array([b[0] for b in blocks for _ in range(int(b[2]))], dtype=np.float64)


def _shape_tail(curve: np.ndarray, impressions: np.ndarray, tail: int) -> np.ndarray:
    """Give the pooled tail the power-law shape of the well-observed positions, keeping its level.

    The pooled parameter is the tail's impression-weighted mean examination; spreading it as a
    constant over several positions is biased at both ends of the tail. Examination that decays as
    ``(1 + k) ** -beta`` is the usual model of position bias (Joachims et al., WSDM 2017), so ``beta``
    is fitted (weighted least squares in log-log) to the own positions 1..tail-1 and the tail follows
    that shape, scaled so that its impression-weighted mean stays the pooled estimate. With fewer than
    two own positions past 0, or a curve that does not decay, the constant stays.
    """
    n = len(curve)
    own = np.arange(1, tail)
    if tail >= n or len(own) < 2 or np.any(curve[own] <= 0):
        return curve
    weights = impressions[own]
    x, y = np.log1p(own), np.log(curve[own])
    xm, ym = np.average(x, weights=weights), np.average(y, weights=weights)
    beta = -np.sum(weights * (x - xm) * (y - ym)) / np.sum(weights * (x - xm) ** 2)
    positions = np.arange(tail, n)
    if not beta > 0 or impressions[positions].sum() <= 0:
        return curve
    shape = (1.0 + positions) ** -beta
    level = curve[tail] / np.average(shape, weights=impressions[positions])
    shaped = curve.copy()
    shaped[tail:] = np.minimum(level * shape, curve[tail - 1])
    return shaped


def fit_examination(
    positions: np.ndarray,
    items: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
    config: ClickModelConfig | None = None,
) -> ExaminationFit:
    """Fit the position-based model to per-(position, item) counts by EM.

    Args:
        positions: 0-based position of each cell (int array).
        items: Dense item code of each cell (int array, 0..n_items-1).
        impressions: Impressions of each cell (> 0).
        clicks: Clicks of each cell (0..impressions).

    Returns:
        The fitted curve, per-item relevance and convergence facts.

    Raises:
        ValueError: The arrays differ in length, are empty, hold impossible counts, or have no
            impressions at position 0 (the anchor of the curve: without it EM divides 0 by 0).
    """
    config = config or ClickModelConfig()
    positions = np.asarray(positions, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    n = np.asarray(impressions, dtype=np.float64)
    c = np.asarray(clicks, dtype=np.float64)
    if not (len(positions) == len(items) == len(n) == len(c)):
        raise ValueError("positions, items, impressions and clicks must have the same length")
    if len(n) == 0:
        raise ValueError("no cells to fit: the click model needs impressions")
    if np.any(n <= 0) or np.any(c < 0) or np.any(c > n) or np.any(positions < 0):
        raise ValueError("cells need impressions > 0, 0 <= clicks <= impressions and positions >= 0")

    n_pos = int(positions.max()) + 1
    n_items = int(items.max()) + 1
    per_pos_n = np.bincount(positions, n, n_pos)
    if per_pos_n[0] <= 0:
        raise ValueError(
            f"no impressions at position 0 (the smallest is {int(positions.min())}): positions must be 0-based, "
            "the top slot anchors the examination curve"
        )
    per_pos_c = np.bincount(positions, c, n_pos)
    groups, pooled_from = position_groups(per_pos_c, config.min_position_clicks)
    g = groups[positions]
    n_groups = int(groups.max()) + 1
    group_n = np.bincount(g, n, n_groups)
    item_n = np.bincount(items, n, n_items)
    nonclick = n - c

    # Start from a flat curve and the overall click rate: symmetric, so EM is not steered.
    theta = np.full(n_groups, 0.5)
    gamma = np.full(n_items, np.clip(c.sum() / n.sum() * 2.0, _EPS, 1 - _EPS))
    converged = False
    iterations = 0
    previous = theta / theta[0]
    for iterations in range(1, config.max_iterations + 1):  # noqa: B007 (read after the loop)
        t = theta[g]
        r = gamma[items]
        denom = np.maximum(1.0 - t * r, _EPS)
        exam = c + nonclick * (t * (1.0 - r) / denom)
        rel = c + nonclick * ((1.0 - t) * r / denom)
        theta = np.bincount(g, exam, n_groups) / group_n
        if config.monotone:
            theta = non_increasing(theta, group_n)
        theta = np.clip(theta, _EPS, 1 - _EPS)
        gamma = np.clip(np.bincount(items, rel, n_items) / np.maximum(item_n, _EPS), _EPS, 1 - _EPS)
        current = theta / theta[0]
        if np.max(np.abs(current - previous)) < config.tolerance:
            converged = True
            break
        previous = current

    scale = theta[0]
    examination = _shape_tail(np.minimum(theta[groups] / scale, 1.0), per_pos_n, pooled_from)
    relevance = np.minimum(gamma * scale, 1.0)
    p = np.clip(examination[positions] * relevance[items], _EPS, 1 - _EPS)
    log_likelihood = float(np.sum(c * np.log(p) + nonclick * np.log1p(-p)))
    return ExaminationFit(
        examination=examination,
        impressions=per_pos_n.astype(np.int64),
        clicks=per_pos_c.astype(np.int64),
        relevance=relevance,
        pooled_from=pooled_from,
        iterations=iterations,
        converged=converged,
        log_likelihood=log_likelihood,
    )
