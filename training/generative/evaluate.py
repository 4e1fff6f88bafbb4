"""Leave-one-out evaluation: one held-out item per query, ranked against the whole catalogue.

With one relevant item the ranking reduces to its rank ``r`` (0-based): ``hits[u, k] = (r_u == k)``,
and every metric of ``training.metrics`` follows from those hits (HR@K = Recall@K, NDCG@K =
1 / log2(r + 2) when r < K, MRR@K). ``mrr@<I>`` (K = the catalogue) is the untruncated MRR.

Ties are counted against the model: the target's rank is the number of OTHER candidates scoring at
least as high, so a model that scores everything equally ranks every target last (not first).
With ``filter_seen`` the query history's items are not candidates; the target always is (an item
consumed again is still a hit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from training.generative.data import SequenceBatch
from training.metrics import per_user

KS = (5, 10, 50)
METRICS = ("hr", "ndcg", "mrr")

Scorer = Callable[[SequenceBatch], torch.Tensor]  # queries [U'] -> scores [U', I]


@torch.no_grad()
def full_ranks(scorer: Scorer, queries: SequenceBatch, num_items: int, *, filter_seen: bool, chunk: int = 1024) -> torch.Tensor:
    """``[U]`` rank of each query's target among the candidates (0 = first).

    Queries are scored shortest history first, so that a chunk's rows have similar lengths (a model's
    cost follows the chunk's longest row: on Beauty this made SASRec's validation 2x faster)."""
    order = torch.argsort(queries.lengths, stable=True)
    out = []
    for start in range(0, len(queries), chunk):
        part = queries.rows(order[start : start + chunk])
        scores = scorer(part).float().cpu()
        target = part.targets - 1
        if filter_seen:
            scores = scores.masked_fill(seen_items(part, num_items), float("-inf"))
        target_score = scores.gather(1, target.unsqueeze(1))
        out.append((scores >= target_score).sum(1) - 1)
    ranks = torch.empty(len(queries), dtype=torch.int64)
    ranks[order] = torch.cat(out) if out else ranks[:0]
    return ranks


def seen_items(queries: SequenceBatch, num_items: int) -> torch.Tensor:
    """``[U, I]`` bool: the item is in the query's history and is not its target (the items that seen-item
    filtering leaves out)."""
    seen = torch.zeros(len(queries), num_items + 1, dtype=torch.bool, device=queries.items.device)
    seen.scatter_(1, queries.items, True)
    seen = seen[:, 1:]
    seen[torch.arange(len(queries), device=seen.device), queries.targets - 1] = False
    return seen


def rank_metrics(ranks: torch.Tensor, ks: Sequence[int] = KS, num_items: int | None = None) -> dict[str, float]:
    """HR@K, NDCG@K, MRR@K (and Recall@K, equal to HR@K here) from 0-based ranks; ``mrr@<num_items>`` when given."""
    top = max(ks)
    hits = (ranks.unsqueeze(1) == torch.arange(top)).float()
    n_relevant = torch.ones(len(ranks))
    out: dict[str, float] = {}
    for k in ks:
        values = per_user(hits[:, :k], n_relevant)
        for name in (*METRICS, "recall"):
            out[f"{name}@{k}"] = float(values[name].mean()) if len(ranks) else 0.0
    if num_items is not None:
        out[f"mrr@{num_items}"] = float((1.0 / (ranks.double() + 1)).mean()) if len(ranks) else 0.0
    return out


def ranks_from_lists(recommended: torch.Tensor, targets: torch.Tensor, miss: int) -> torch.Tensor:
    """``[U]`` rank of each target in ``recommended [U, K]`` (item ids, -1 for an empty slot), ``miss`` when
    absent (a list from a search that left seen items out already, if filtering)."""
    found = recommended == targets.unsqueeze(1)
    first = found.float().argmax(1)
    return torch.where(found.any(1), first, torch.full_like(first, miss))


def popularity_scorer(popularity: torch.Tensor) -> Scorer:
    """Scores every item by its training count (the floor every model is compared with)."""
    scores = popularity.float()
    return lambda queries: scores.expand(len(queries), -1)
