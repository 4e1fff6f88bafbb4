"""An approximate top-K index (faiss) beside the exact one, and how far it is from it.

Exact brute-force top-K is the protocol of every metric; the ANN index is an option whose cost in
quality is reported, never a silent substitute:

    item vectors [I, d] --faiss (inner product: HNSW or IVF)--> index
    user vectors [U, d] --search depth K + seen--> ids [U, depth], scores [U, depth]
        --> dense scores [U, I] (-inf where not retrieved) --> the same ``evaluate`` as the exact scorer

``ann_recall_vs_exact@K`` is the share of the exact top-K (seen items filtered, as in the metrics)
that the index returns in its top-K, over the split's users with a relevant item; ``ann_recall@K``
and ``ann_ndcg@K`` are the split's metrics when the index serves them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from training.config import AnnConfig, AnnKind
from training.data.pairs import RankingSplit
from training.evaluate import Scorer, evaluate

UserVectors = Callable[[torch.Tensor], torch.Tensor]  # user indices [U'] -> [U', d]
ANN_METRICS = ("recall", "ndcg")  # what the ANN-served rows report beside the recall against exact


def build_index(items: torch.Tensor, config: AnnConfig) -> Any:
    """A faiss inner-product index over the ``[I, d]`` item vectors."""
    import faiss

    vectors = np.ascontiguousarray(items.detach().float().cpu().numpy())
    dim = vectors.shape[1]
    index: Any
    if config.kind is AnnKind.HNSW:
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = config.ef_search
    elif config.kind is AnnKind.IVF:
        lists = config.lists or max(1, round(math.sqrt(len(vectors))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = config.probe
    else:
        raise ValueError("no ANN index for kind 'none' (exact top-K)")
    index.add(vectors)
    return index


def ann_scorer(index: Any, user_vectors: UserVectors, num_items: int, depth: int, candidates: torch.Tensor | None = None) -> Scorer:
    """A scorer that ranks what the index returns: each user's ``depth`` nearest items (plus as many as
    the user has filtered candidates, so filtering leaves ``depth``) keep their scores, the rest -inf."""

    def scorer(users: torch.Tensor) -> torch.Tensor:
        queries = np.ascontiguousarray(user_vectors(users).detach().float().cpu().numpy())
        filtered = 0 if candidates is None else int((~candidates[users]).sum(1).max().item())
        scores, ids = index.search(queries, min(num_items, depth + filtered))
        out = torch.full((len(users), num_items), float("-inf"))
        found = torch.from_numpy(ids) >= 0  # faiss pads with -1 when it finds fewer
        rows = torch.arange(len(users)).unsqueeze(1).expand_as(found)
        out[rows[found], torch.from_numpy(ids)[found]] = torch.from_numpy(scores)[found]
        return out

    return scorer


def exact_top(scorer: Scorer, split: RankingSplit, k: int, chunk: int = 2048) -> torch.Tensor:
    """``[U, I]`` bool: each user's exact top-``k`` among the candidates."""
    num_users, num_items = split.relevant.shape
    out = torch.zeros(num_users, num_items, dtype=torch.bool)
    for start in range(0, num_users, chunk):
        users = torch.arange(start, min(start + chunk, num_users))
        scores = scorer(users).float().cpu()
        if split.candidates is not None:
            scores = scores.masked_fill(~split.candidates[users], float("-inf"))
        values, top = scores.topk(min(k, num_items), dim=1)
        out[users.unsqueeze(1).expand_as(top)[torch.isfinite(values)], top[torch.isfinite(values)]] = True
    return out


@torch.no_grad()
def ann_report(exact: Scorer, user_vectors: UserVectors, items: torch.Tensor, split: RankingSplit, ks: Sequence[int],
               config: AnnConfig) -> dict[str, float]:
    """``ann_recall_vs_exact@K`` and the ANN-served ``ann_recall@K`` / ``ann_ndcg@K`` for every K.

    Args:
        exact: The brute-force scorer (user indices -> ``[U', I]`` scores).
        user_vectors: The same users' query vectors (what the index is searched with).
        items: ``[I, d]`` item vectors (``exact``'s scores are ``user_vectors @ items.T``).
        split: The ranking split (relevant items, candidates = the seen filter).
        ks: The cut-offs.
        config: The index.
    """
    index = build_index(items, config)
    approx = ann_scorer(index, user_vectors, items.shape[0], max(ks), split.candidates)
    queried = split.relevant.any(1)  # the users the split's metrics average over
    out = {f"ann_{k}": v for k, v in evaluate(approx, split, ks, metrics=ANN_METRICS).items()}
    for k in ks:
        top = exact_top(exact, split, k)
        # The exact top-K as the "relevant" items: recall@K is then |ANN top-K ∩ exact top-K| / K.
        against = RankingSplit(top & queried.unsqueeze(1), split.candidates, skip_empty=True, protocol=split.protocol)
        out[f"ann_recall_vs_exact@{k}"] = evaluate(approx, against, [k], metrics=("recall",))[f"recall@{k}"]
    return out
