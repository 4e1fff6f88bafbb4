"""Evaluate a scorer on a ranking split: exact top-K over the candidates, users in chunks.

``evaluate`` returns ``{"ndcg@5": ..., "recall@5": ..., ...}`` for every metric of
``training.metrics.METRICS`` and every K; ``users`` restricts the users (short histories) and
``items`` the relevant items (tail items: only they count as relevant, every candidate is still ranked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from training.data.pairs import RankingSplit
from training.metrics import METRICS, mean_over_users, per_user, top_hits

Scorer = Callable[[torch.Tensor], torch.Tensor]  # user indices [U'] -> scores [U', I]


@torch.no_grad()
def evaluate(
    scorer: Scorer,
    split: RankingSplit,
    ks: Sequence[int],
    *,
    users: torch.Tensor | None = None,
    items: torch.Tensor | None = None,
    chunk: int = 2048,
    metrics: Sequence[str] = METRICS,
) -> dict[str, float]:
    """Mean of each metric at each K over the split's users.

    Args:
        scorer: Scores every item for a chunk of user indices.
        split: Relevant and candidate items per user.
        ks: The cut-offs K.
        users: ``[U]`` bool: only these users (None: all).
        items: ``[I]`` bool: only these items count as relevant (None: all).
        chunk: Users scored at once (memory: ``chunk x I`` floats).
        metrics: Which of ``METRICS``.
    """
    top = max(ks)
    num_users = split.relevant.shape[0]
    per_k: dict[int, list[dict[str, torch.Tensor]]] = {k: [] for k in ks}
    counts: list[torch.Tensor] = []
    for start in range(0, num_users, chunk):
        index = torch.arange(start, min(start + chunk, num_users))
        scores = scorer(index).float().cpu()
        relevant = split.relevant[index]
        if items is not None:
            relevant = relevant & items.unsqueeze(0)
        candidates = None if split.candidates is None else split.candidates[index]
        hits, n_relevant = top_hits(scores, relevant, top, candidates)
        counts.append(n_relevant)
        for k in ks:
            per_k[k].append(per_user(hits[:, :k], n_relevant, split.map_by_all_relevant))
    n_relevant = torch.cat(counts)
    out: dict[str, float] = {}
    for k in ks:
        for name in metrics:
            values = torch.cat([part[name] for part in per_k[k]])
            out[f"{name}@{k}"] = mean_over_users(values, n_relevant, split.skip_empty, users)
    return out
