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
rendered). Positions with fewer than ``min_position_impressions`` impressions are pooled with every
position below them into one tail parameter, because a parameter fitted to a handful of impressions
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
        min_position_impressions: Positions with fewer impressions share one tail parameter.
        monotone: Constrain examination to be non-increasing in position (the M-step becomes a
            weighted isotonic regression, which is the constrained maximum for Bernoulli counts).
    """

    max_iterations: int = 5000
    tolerance: float = 1e-6
    min_position_impressions: int = 1000
    monotone: bool = True

    def __post_init__(self) -> None:
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be at least 1, got {self.max_iterations}")
        if self.tolerance <= 0:
            raise ValueError(f"tolerance must be positive, got {self.tolerance}")
        if self.min_position_impressions < 1:
            raise ValueError(f"min_position_impressions must be at least 1, got {self.min_position_impressions}")


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


def position_groups(impressions_per_position: np.ndarray, min_impressions: int) -> tuple[np.ndarray, int]:
    """Map each position to its parameter: itself, or the pooled tail from the first sparse position on.

    Returns:
        ``(group of each position, first pooled position)``; the first pooled position is K when every
        position has enough impressions.
    """
    n = len(impressions_per_position)
    sparse = np.flatnonzero(impressions_per_position < min_impressions)
    tail = int(sparse[0]) if len(sparse) else n
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
        ValueError: The arrays differ in length, are empty, or hold impossible counts.
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
    per_pos_c = np.bincount(positions, c, n_pos)
    groups, pooled_from = position_groups(per_pos_n, config.min_position_impressions)
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
    examination = np.minimum(theta[groups] / scale, 1.0)
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
