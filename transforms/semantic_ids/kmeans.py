"""k-means for one codebook level: k-means++ seeding, Lloyd iterations, dead-code reseeding and an
optional balanced (Sinkhorn) assignment.

Distances are computed as ``||c||^2 - 2 x.c`` (the ``||x||^2`` term does not change an argmin) with one
float32 matrix product per block of rows, so the cost is BLAS-bound and memory stays at one
``block x K`` score matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SINKHORN_ITERATIONS = 50
# Temperature of the balanced assignment, as a share of the mean gap between an item's nearest and its
# average centroid distance: small enough that items stay near their centroid, large enough to move
# items at the margin of a crowded code to a neighbour.
SINKHORN_TEMPERATURE = 0.05


@dataclass(frozen=True)
class LevelFit:
    """One trained level.

    Attributes:
        centroids: ``(K, dim)`` float32.
        bias: ``(K,)`` float32 per-code offset subtracted from the squared distance when assigning
            (zero unless trained balanced).
        counts: Training rows per code after the last iteration.
        iterations: Lloyd iterations run.
    """

    centroids: np.ndarray
    bias: np.ndarray
    counts: np.ndarray
    iterations: int


def nearest(
    x: np.ndarray, centroids: np.ndarray, bias: np.ndarray | None = None, chunk_rows: int = 16_384
) -> tuple[np.ndarray, np.ndarray]:
    """Code of the nearest centroid for every row (ties to the lower code), and its squared distance.

    Args:
        x: ``(n, dim)`` float32 rows.
        centroids: ``(K, dim)`` float32.
        bias: Optional ``(K,)`` offsets: the code minimises ``||x - c_k||^2 - bias_k``.
        chunk_rows: Rows per block.

    Returns:
        ``codes`` int32 ``(n,)`` and ``sq_dist`` float32 ``(n,)`` (true squared distance, without bias).
    """
    n = x.shape[0]
    codes = np.empty(n, dtype=np.int32)
    sq_dist = np.empty(n, dtype=np.float32)
    c_sq = np.einsum("ij,ij->i", centroids, centroids)
    offset = c_sq if bias is None else c_sq - bias
    for start in range(0, n, chunk_rows):
        block = x[start : start + chunk_rows]
        scores = block @ centroids.T
        scores *= -2.0
        scores += offset
        best = scores.argmin(axis=1)
        codes[start : start + len(block)] = best
        picked = scores[np.arange(len(block)), best]
        if bias is not None:
            picked += bias[best]
        sq_dist[start : start + len(block)] = np.maximum(picked + np.einsum("ij,ij->i", block, block), 0.0)
    return codes, sq_dist


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (one candidate per step). Duplicates the first centroid when ``x`` has fewer
    than ``k`` distinct rows, which leaves those codes dead rather than failing."""
    n, dim = x.shape
    centers = np.empty((k, dim), dtype=np.float32)
    x_sq = np.einsum("ij,ij->i", x, x).astype(np.float64)
    first = int(rng.integers(n))
    centers[0] = x[first]
    closest = np.maximum(x_sq - 2.0 * (x @ centers[0]) + float(centers[0] @ centers[0]), 0.0)
    for j in range(1, k):
        cumulative = np.cumsum(closest)
        total = cumulative[-1]
        if total <= 0.0:
            centers[j:] = centers[0]
            break
        idx = min(int(np.searchsorted(cumulative, rng.random() * total, side="right")), n - 1)
        centers[j] = x[idx]
        dist = np.maximum(x_sq - 2.0 * (x @ centers[j]) + float(centers[j] @ centers[j]), 0.0)
        np.minimum(closest, dist, out=closest)
    return centers


def balanced_assign(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Assign rows so that every code receives about ``n / K`` of them (Sinkhorn-Knopp).

    The transport plan is ``P_ij = u_i exp(-D_ij / eps) v_j`` with unit row sums and ``n / K`` column
    sums; the row's argmax is then ``argmin_j D_ij - eps log v_j``, i.e. nearest centroid after a
    per-code offset. Returning that offset lets new items be encoded the same way, one at a time.

    Returns:
        ``codes`` int32 and ``bias`` float32 ``(K,)`` (``eps log v``, centred on zero).
    """
    n, k = x.shape[0], centroids.shape[0]
    dist = (x @ centroids.T) * -2.0
    dist += np.einsum("ij,ij->i", centroids, centroids)
    dist += np.einsum("ij,ij->i", x, x)[:, None]
    row_min = dist.min(axis=1, keepdims=True)
    gap = float(np.mean(dist.mean(axis=1) - row_min[:, 0]))
    eps = max(gap * SINKHORN_TEMPERATURE, 1e-12)
    kernel = np.exp(-(dist - row_min) / eps).astype(np.float64)
    target = n / k
    v = np.ones(k)
    for _ in range(SINKHORN_ITERATIONS):
        u = 1.0 / np.maximum(kernel @ v, 1e-300)
        v = target / np.maximum(kernel.T @ u, 1e-300)
    log_v = np.log(np.maximum(v, 1e-300))
    bias = (eps * (log_v - log_v.mean())).astype(np.float32)
    codes = (dist - bias).argmin(axis=1).astype(np.int32)
    return codes, bias


def fit_level(
    x: np.ndarray, k: int, rng: np.random.Generator, *, max_iter: int, tol: float, balanced: bool
) -> LevelFit:
    """Train one level's ``k`` centroids on ``x`` (float32 rows).

    Lloyd iterations with k-means++ seeding; a code left empty is reseeded on the row that is
    farthest from its centroid (one distinct row per dead code), so codes do not die during training.
    """
    n = x.shape[0]
    centroids = kmeans_pp(x, k, rng)
    bias = np.zeros(k, dtype=np.float32)
    spread = float(np.var(x, axis=0, dtype=np.float64).sum()) if n > 1 else 0.0
    counts = np.zeros(k, dtype=np.int64)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        if balanced:
            codes, bias = balanced_assign(x, centroids)
            sq = np.einsum("ij,ij->i", x - centroids[codes], x - centroids[codes])
        else:
            codes, sq = nearest(x, centroids)
        counts = np.bincount(codes, minlength=k)
        updated = _means(x, codes, counts, centroids)
        dead = np.flatnonzero(counts == 0)
        if len(dead):
            # Farthest rows first; a row already a centroid would stay dead, so only rows with error > 0.
            far = np.argsort(-sq, kind="stable")
            far = far[sq[far] > 0][: len(dead)]
            updated[dead[: len(far)]] = x[far]
        shift = float(np.sum((updated - centroids) ** 2)) / k
        centroids = updated
        if shift <= tol * max(spread, 1e-30) and not len(dead):
            break
    if balanced:
        codes, bias = balanced_assign(x, centroids)
        counts = np.bincount(codes, minlength=k)
    return LevelFit(centroids=centroids.astype(np.float32), bias=bias, counts=counts, iterations=iterations)


def _means(x: np.ndarray, codes: np.ndarray, counts: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Per-code mean of the rows (float64 sums); codes without rows keep their previous centroid."""
    order = np.argsort(codes, kind="stable")
    present = np.flatnonzero(counts)
    starts = np.concatenate(([0], np.cumsum(counts[present])[:-1]))
    sums = np.add.reduceat(x[order], starts, axis=0, dtype=np.float64)
    out = previous.astype(np.float32, copy=True)
    out[present] = (sums / counts[present, None]).astype(np.float32)
    return out
