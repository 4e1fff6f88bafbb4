"""Disambiguation: telling apart items whose quantized codes coincide (see :mod:`transforms.semantic_ids.assign`).

::

    EXTRA_LEVEL    (12, 7, 201) x3  ->  (12, 7, 201, 0) (12, 7, 201, 1) (12, 7, 201, 2)
    REASSIGN_LAST  (12, 7, 201) x3  ->  (12, 7, 201) (12, 7, 88) (12, 7, 140)
"""

from __future__ import annotations

import numpy as np

from transforms.semantic_ids.codebook import Codebook, residual_before_level

REASSIGN_SINKHORN_ITERATIONS = 50
REASSIGN_TEMPERATURE = 0.1  # share of the mean cost spread within a group


class SemanticIdCapacityError(ValueError):
    """A prefix has more items than free last-level codes (``REASSIGN_LAST`` only)."""


def extra_level(existing: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, int]:
    """Append the disambiguating code: next free rank within each group of equal codes."""
    m, levels = new.shape
    if m == 0:
        return np.zeros((0, levels + 1), np.int32), 0
    prefixes = np.concatenate([existing[:, :levels], new])
    is_new = np.concatenate([np.zeros(len(existing), bool), np.ones(m, bool)])
    rank = np.concatenate([np.zeros(len(existing), np.int64), np.arange(m)])
    taken = np.concatenate([existing[:, levels].astype(np.int64), np.full(m, -1)])
    order = np.lexsort((rank, is_new, *prefixes.T[::-1]))
    group, starts = sorted_row_groups(prefixes[order])
    new_sorted = is_new[order]
    group_max = np.maximum.reduceat(taken[order], starts)
    new_before = np.cumsum(new_sorted) - new_sorted  # new rows before this one, overall
    rank_in_group = new_before - new_before[starts][group]
    code = group_max[group] + 1 + rank_in_group
    sizes = np.diff(np.append(starts, len(order)))
    extra = np.empty(m, np.int64)
    shared = np.empty(m, bool)
    extra[rank[order][new_sorted]] = code[new_sorted]
    shared[rank[order][new_sorted]] = sizes[group][new_sorted] > 1
    return np.column_stack([new, extra]).astype(np.int32), int(shared.sum())


def reassign_last(
    codebook: Codebook, existing: np.ndarray, new: np.ndarray, new_x: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """Resolve collisions by moving items to free codes of the last level (see module docstring)."""
    m, levels = new.shape
    out = new.copy()
    if m == 0:
        return out, 0, 0
    last = levels - 1
    full = np.concatenate([existing, new])
    is_new = np.concatenate([np.zeros(len(existing), bool), np.ones(m, bool)])
    rank = np.concatenate([np.zeros(len(existing), np.int64), np.arange(m)])
    order = np.lexsort((rank, is_new, *full.T[::-1]))
    group, starts = sorted_row_groups(full[order])
    sizes = np.diff(np.append(starts, len(order)))
    shared_sorted = sizes[group] > 1
    new_sorted = is_new[order]
    collided_new = rank[order][new_sorted & shared_sorted]  # indices into ``new``
    if len(collided_new) == 0:
        return out, 0, 0
    # Distance of each collided new item to the code it wanted: the closest keeps a free code.
    residual = residual_before_level(codebook, new_x[collided_new], new[collided_new], last)
    centroids, bias = codebook.centroids[last], codebook.biases[last]
    wanted = centroids[new[collided_new, last]]
    cost = np.full(m, np.inf)
    cost[collided_new] = np.einsum("ij,ij->i", residual - wanted, residual - wanted)
    residual_of = dict(zip(collided_new.tolist(), residual, strict=True))
    cost_all = np.concatenate([np.full(len(existing), -np.inf), cost])  # existing holders always keep
    order = np.lexsort((rank, cost_all, *full.T[::-1]))
    group, starts = sorted_row_groups(full[order])
    first = np.zeros(len(order), bool)
    first[starts] = True
    displaced = np.sort(rank[order][is_new[order] & ~first])
    if len(displaced) == 0:
        return out, len(collided_new), 0
    # Free codes per prefix of the first L-1 levels, over every item that keeps its code.
    keeps = np.ones(len(full), bool)
    keeps[len(existing) + displaced] = False
    prefix_of = full[:, :last]
    k = codebook.codes_per_level
    moving_prefix = new[displaced, :last]
    p_order = np.lexsort((displaced, *moving_prefix.T[::-1]))
    _p_group, p_starts = sorted_row_groups(moving_prefix[p_order])
    holders = np.flatnonzero(keeps)
    h_order = holders[np.lexsort((full[holders, last], *prefix_of[holders].T[::-1]))] if len(holders) else holders
    for g, start in enumerate(p_starts):
        stop = p_starts[g + 1] if g + 1 < len(p_starts) else len(p_order)
        members = displaced[p_order[start:stop]]
        prefix = new[members[0], :last]
        taken = _codes_with_prefix(h_order, prefix_of, full[:, last], prefix)
        free = np.setdiff1d(np.arange(k), taken)
        if len(free) < len(members):
            raise SemanticIdCapacityError(
                f"prefix {tuple(int(c) for c in prefix)} needs {len(members)} more last-level codes but only "
                f"{len(free)} of {k} are free; use disambiguation=extra_level or more codes_per_level"
            )
        rows = np.stack([residual_of[int(i)] for i in members])
        chosen = _sinkhorn_match(rows, centroids[free], bias[free])
        out[members, last] = free[chosen]
    return out, len(collided_new), len(displaced)


def _codes_with_prefix(order: np.ndarray, prefix_of: np.ndarray, last_codes: np.ndarray, prefix: np.ndarray) -> np.ndarray:
    """Last-level codes of the rows ``order`` (sorted by prefix) whose prefix equals ``prefix``."""
    lo, hi = 0, len(order)
    for level, code in enumerate(prefix):
        column = prefix_of[order[lo:hi], level]
        lo, hi = lo + int(np.searchsorted(column, code, "left")), lo + int(np.searchsorted(column, code, "right"))
        if lo == hi:
            break
    return last_codes[order[lo:hi]]


def _sinkhorn_match(rows: np.ndarray, centroids: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Distinct columns for ``rows`` (len(rows) <= len(centroids)): a Sinkhorn plan, rounded greedily.

    The plan has unit row sums and equal column sums, so items that all prefer one code are spread
    over the codes nearest to them; rounding takes the largest plan entries first and never gives a
    code twice.
    """
    r, f = len(rows), len(centroids)
    cost = (rows @ centroids.T) * -2.0 + np.einsum("ij,ij->i", centroids, centroids) - bias
    cost = cost.astype(np.float64) + np.einsum("ij,ij->i", rows, rows)[:, None]
    cost -= cost.min(axis=1, keepdims=True)
    eps = max(float(cost.mean()) * REASSIGN_TEMPERATURE, 1e-12)
    kernel = np.exp(-cost / eps)
    v = np.ones(f)
    for _ in range(REASSIGN_SINKHORN_ITERATIONS):
        u = 1.0 / np.maximum(kernel @ v, 1e-300)
        v = (r / f) / np.maximum(kernel.T @ u, 1e-300)
    plan = u[:, None] * kernel * v[None, :]
    # Largest entries first; ties by (row, column) so the rounding is deterministic.
    flat = np.lexsort((np.arange(r * f), -plan.ravel()))
    chosen = np.full(r, -1, np.int64)
    used = np.zeros(f, bool)
    for pos in flat:
        i, j = divmod(int(pos), f)
        if chosen[i] < 0 and not used[j]:
            chosen[i], used[j] = j, True
            if (chosen >= 0).all():
                break
    return chosen


def sorted_row_groups(sorted_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group number of each row of a lexicographically sorted matrix, and each group's first row."""
    n = len(sorted_rows)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.ones(n, bool)
    if sorted_rows.shape[1]:
        change[1:] = np.any(sorted_rows[1:] != sorted_rows[:-1], axis=1)
    else:
        change[1:] = False
    starts = np.flatnonzero(change)
    return np.cumsum(change) - 1, starts
