"""k-means for one codebook level: k-means++ seeding, Lloyd iterations, dead-code reseeding and an
optional balanced (Sinkhorn) assignment.

Distances are computed as ``||c||^2 - 2 x.c`` (the ``||x||^2`` term does not change an argmin) with one
float32 matrix product per block of rows, so the cost is BLAS-bound and memory stays at one
``block x K`` score matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SINKHORN_ITERATIONS = 30
BALANCED_REFINEMENTS = 5  # balanced Lloyd steps after the plain ones converge
INIT_SAMPLE_PER_CODE = 16  # k-means++ seeds from at most this many rows per code (it is sequential)
TINY, HUGE = np.float32(1e-30), np.float32(1e30)
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
        codes: ``(n,)`` int32 code of every training row under the final centroids (and offsets).
        counts: Training rows per code.
        iterations: Lloyd iterations run.
    """

    centroids: np.ndarray
    bias: np.ndarray
    codes: np.ndarray
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
    canonical = _lowest_equal_code(centroids)
    c_sq = np.einsum("ij,ij->i", centroids, centroids)
    offset = c_sq if bias is None else c_sq - bias
    for start in range(0, n, chunk_rows):
        block = x[start : start + chunk_rows]
        scores = block @ centroids.T
        scores *= -2.0
        scores += offset
        best = scores.argmin(axis=1)
        if canonical is not None:
            best = canonical[best]
        codes[start : start + len(block)] = best
        picked = scores[np.arange(len(block)), best]
        if bias is not None:
            picked += bias[best]
        sq_dist[start : start + len(block)] = np.maximum(picked + np.einsum("ij,ij->i", block, block), 0.0)
    return codes, sq_dist


def _lowest_equal_code(centroids: np.ndarray) -> np.ndarray | None:
    """Per code, the lowest code with a bitwise-equal centroid; None when all centroids differ.

    Equal centroids (a level trained on fewer distinct rows than codes) tie exactly, but which one a
    matrix product ranks first, and the Sinkhorn offsets' noise between them, depend on the block's
    shape: without this an item's code would depend on what it is encoded with.
    """
    _, first, inverse = np.unique(centroids, axis=0, return_index=True, return_inverse=True)
    if len(first) == len(centroids):
        return None
    return first[inverse.reshape(-1)].astype(np.int64)


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
    dist = x @ centroids.T
    dist *= -2.0
    dist += np.einsum("ij,ij->i", centroids, centroids)
    dist += np.einsum("ij,ij->i", x, x)[:, None]
    row_min = dist.min(axis=1, keepdims=True)
    gap = float(np.mean(dist.mean(axis=1) - row_min[:, 0]))
    eps = np.float32(max(gap * SINKHORN_TEMPERATURE, 1e-12))
    kernel = dist - row_min
    kernel /= -eps
    np.exp(kernel, out=kernel)
    target = np.float32(n / k)
    v = np.ones(k, dtype=np.float32)
    for _ in range(SINKHORN_ITERATIONS):
        u = np.float32(1.0) / np.maximum(kernel @ v, TINY)
        v = np.minimum(target / np.maximum(kernel.T @ u, TINY), HUGE)
    log_v = np.log(np.maximum(v, TINY)).astype(np.float64)
    bias = (float(eps) * (log_v - log_v.mean())).astype(np.float32)
    dist -= bias
    return dist.argmin(axis=1).astype(np.int32), bias


def fit_level(
    x: np.ndarray, k: int, rng: np.random.Generator, *, max_iter: int, tol: float, balanced: bool
) -> LevelFit:
    """Train one level's ``k`` centroids on ``x`` (float32 rows).

    k-means++ seeding on a subsample, then Lloyd iterations; a code left empty is reseeded on the row
    farthest from its centroid (one distinct row per dead code), so codes do not die in training.
    With ``balanced``, a few more Lloyd steps use the Sinkhorn assignment, and its per-code offsets
    are kept for encoding.
    """
    n = x.shape[0]
    seed_rows = x if n <= INIT_SAMPLE_PER_CODE * k else x[np.sort(rng.choice(n, INIT_SAMPLE_PER_CODE * k, replace=False))]
    centroids = kmeans_pp(seed_rows, k, rng)
    spread = float(np.var(x, axis=0, dtype=np.float64).sum()) if n > 1 else 0.0
    limit = tol * max(spread, 1e-30)
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        centroids, shift = _lloyd_step(x, centroids, balanced=False)
        if shift <= limit:
            break
    for _ in range(BALANCED_REFINEMENTS if balanced else 0):
        iterations += 1
        centroids, _ = _lloyd_step(x, centroids, balanced=True)
    bias = np.zeros(k, dtype=np.float32)
    if balanced:
        codes, bias = balanced_assign(x, centroids)
    else:
        codes, _ = nearest(x, centroids)
    counts = np.bincount(codes, minlength=k)
    return LevelFit(centroids=centroids, bias=bias, codes=codes, counts=counts, iterations=iterations)


def _lloyd_step(x: np.ndarray, centroids: np.ndarray, *, balanced: bool) -> tuple[np.ndarray, float]:
    """One assignment + update step; returns the new centroids and their mean squared move.

    A code left empty is reseeded on the row farthest from its centroid (one distinct row per dead
    code; rows already sitting on a centroid do not qualify), and the move is then reported as
    infinite so that training does not stop on a step that revived codes.
    """
    k = centroids.shape[0]
    if balanced:
        codes, _ = balanced_assign(x, centroids)
        diff = x - centroids[codes]
        sq = np.einsum("ij,ij->i", diff, diff)
    else:
        codes, sq = nearest(x, centroids)
    counts = np.bincount(codes, minlength=k)
    updated = _means(x, codes, counts, centroids)
    dead = np.flatnonzero(counts == 0)
    far = np.argsort(-sq, kind="stable")[: len(dead)] if len(dead) else dead
    far = far[sq[far] > 0]
    updated[dead[: len(far)]] = x[far]
    shift = float(np.sum((updated - centroids) ** 2)) / k
    return updated, (np.inf if len(far) else shift)


def _means(x: np.ndarray, codes: np.ndarray, counts: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Per-code mean of the rows; codes without rows keep their previous centroid."""
    order = np.argsort(codes, kind="stable")
    present = np.flatnonzero(counts)
    starts = np.concatenate(([0], np.cumsum(counts[present])[:-1]))
    sums = np.add.reduceat(x[order], starts, axis=0)
    out = previous.astype(np.float32, copy=True)
    out[present] = (sums / counts[present, None]).astype(np.float32)
    return out
