"""Ranking metrics over a score matrix, per user, exact top-K by brute force.

Inputs are dense ``[U, I]`` tensors (callers chunk users for large catalogues)::

    scores      [U, I] float   higher is better
    relevant    [U, I] bool    the user's held-out positives
    candidates  [U, I] bool    which items are ranked (None: all). Full-catalogue ranking with seen
                               items filtered passes ``~seen``; the Coat protocol passes each user's
                               16 randomly exposed test items.

``top_hits`` turns them into ``hits [U, K]`` (1 where the item at rank k is relevant) and
``n_relevant [U]`` (relevant candidates); every metric is a function of those two. A user with no
relevant candidate scores 0 on every metric (the Coat protocol's rule); ``mean_over_users`` can
instead skip such users (``skip_empty``), which is the usual rule for full-catalogue tables.
"""

from __future__ import annotations

import torch

METRICS = ("recall", "ndcg", "map", "hr", "mrr")


def top_hits(scores: torch.Tensor, relevant: torch.Tensor, k: int, candidates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hits [U, k] float, n_relevant [U] float)``; ranks past a user's last candidate are no hit."""
    if candidates is not None:
        scores = scores.masked_fill(~candidates, float("-inf"))
        relevant = relevant & candidates
    k = min(k, scores.shape[1])
    top_scores, top = scores.topk(k, dim=1)
    hits = relevant.gather(1, top) & torch.isfinite(top_scores)
    return hits.float(), relevant.sum(1).float()


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float32))


def recall(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    """Relevant items in the top K over all of the user's relevant items."""
    return hits.sum(1) / n_relevant.clamp(min=1)


def ndcg(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    """DCG over the ideal DCG of ``min(n_relevant, K)`` relevant items at the top (binary gains)."""
    disc = _discounts(hits.shape[1], hits.device)
    ideal_count = n_relevant.clamp(max=hits.shape[1]).long()
    idcg = torch.cat([torch.zeros(1, device=hits.device), disc.cumsum(0)])[ideal_count]
    return (hits * disc).sum(1) / idcg.clamp(min=1e-12)


def average_precision(hits: torch.Tensor, n_relevant: torch.Tensor, by_all_relevant: bool = False) -> torch.Tensor:
    """AP@K: the precision at each hit, summed, over ``min(n_relevant, K)``; or over ``n_relevant``
    when ``by_all_relevant`` (what the Lee et al. code divides by, so its MAP@5 is comparable only so)."""
    ranks = torch.arange(1, hits.shape[1] + 1, device=hits.device, dtype=torch.float32)
    precision_at_hits = hits * hits.cumsum(1) / ranks
    denominator = n_relevant if by_all_relevant else n_relevant.clamp(max=hits.shape[1])
    return precision_at_hits.sum(1) / denominator.clamp(min=1)


def hit_rate(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    return (hits.sum(1) > 0).float()


def reciprocal_rank(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    """1 / rank of the first relevant item in the top K (0 when none)."""
    ranks = torch.arange(1, hits.shape[1] + 1, device=hits.device, dtype=torch.float32)
    return (hits / ranks).max(1).values


def per_user(hits: torch.Tensor, n_relevant: torch.Tensor, map_by_all_relevant: bool = False) -> dict[str, torch.Tensor]:
    """Every metric of ``METRICS``, per user ``[U]``."""
    return {
        "recall": recall(hits, n_relevant),
        "ndcg": ndcg(hits, n_relevant),
        "map": average_precision(hits, n_relevant, map_by_all_relevant),
        "hr": hit_rate(hits, n_relevant),
        "mrr": reciprocal_rank(hits, n_relevant),
    }


def mean_over_users(values: torch.Tensor, n_relevant: torch.Tensor, skip_empty: bool = False, users: torch.Tensor | None = None) -> float:
    """Mean over users (a ``users`` bool mask restricts them, e.g. short histories); users without a
    relevant item count as 0 unless ``skip_empty``."""
    keep = torch.ones_like(n_relevant, dtype=torch.bool) if users is None else users.clone()
    if skip_empty:
        keep &= n_relevant > 0
    return float(values[keep].mean()) if bool(keep.any()) else 0.0
