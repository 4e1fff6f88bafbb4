"""The faiss ANN option: its recall against the exact top-K is what a plain loop counts, and it is reported beside the exact metrics."""

from __future__ import annotations

import numpy as np
import torch

from training.ann import ann_report, ann_scorer, build_index
from training.config import AnnConfig, AnnKind
from training.data.pairs import RankingSplit
from training.train import train

from .test_two_tower import make_data, tiny_config


def _random_split(users: int, items: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, RankingSplit]:
    generator = torch.Generator().manual_seed(seed)
    user_vecs = torch.nn.functional.normalize(torch.randn(users, 16, generator=generator), dim=1)
    item_vecs = torch.nn.functional.normalize(torch.randn(items, 16, generator=generator), dim=1)
    relevant = torch.rand(users, items, generator=generator) < 0.05
    relevant[::7] = False  # every seventh user has nothing relevant: not queried
    seen = torch.rand(users, items, generator=generator) < 0.1  # filtered from both rankings
    return user_vecs, item_vecs, RankingSplit(relevant & ~seen, ~seen, skip_empty=True, protocol="t")


def _reference_recall_vs_exact(user_vecs: torch.Tensor, item_vecs: torch.Tensor, split: RankingSplit, index, k: int) -> float:
    """One user at a time: the exact top-k of the unseen items, the index's first k unseen results, their overlap over k."""
    shares = []
    for u in range(len(user_vecs)):
        if not split.relevant[u].any():
            continue
        unseen = [i for i in range(len(item_vecs)) if split.candidates[u, i]]
        scores = {i: float(user_vecs[u] @ item_vecs[i]) for i in unseen}
        exact = sorted(unseen, key=lambda i: -scores[i])[:k]
        _, ids = index.search(np.ascontiguousarray(user_vecs[u : u + 1].numpy()), len(item_vecs))
        approx = [int(i) for i in ids[0] if i >= 0 and split.candidates[u, int(i)]][:k]
        shares.append(len(set(exact) & set(approx)) / len(exact))
    return float(np.mean(shares))


def test_recall_against_exact_is_the_overlap_a_plain_loop_counts() -> None:
    user_vecs, item_vecs, split = _random_split(60, 400)
    exact = lambda idx: user_vecs[idx] @ item_vecs.T  # noqa: E731
    vectors = lambda idx: user_vecs[idx]  # noqa: E731
    # A coarse IVF index (one list of 20 searched) misses items; a wide HNSW search finds (nearly) all.
    coarse = AnnConfig(kind=AnnKind.IVF, lists=20, probe=1)
    report = ann_report(exact, vectors, item_vecs, split, [10, 50], coarse)
    for k in (10, 50):
        # build_index is deterministic for the same vectors, so the reference searches the same index.
        reference = _reference_recall_vs_exact(user_vecs, item_vecs, split, build_index(item_vecs, coarse), k)
        assert abs(report[f"ann_recall_vs_exact@{k}"] - reference) < 1e-6
    assert report["ann_recall_vs_exact@10"] < 0.9
    wide = ann_report(exact, vectors, item_vecs, split, [10, 50], AnnConfig(kind=AnnKind.HNSW, ef_search=400))
    assert wide["ann_recall_vs_exact@10"] > 0.99 and wide["ann_recall_vs_exact@50"] > 0.99


def test_the_ann_scorer_never_returns_a_filtered_item_and_keeps_k_after_filtering() -> None:
    user_vecs, item_vecs, split = _random_split(20, 300, seed=1)
    index = build_index(item_vecs, AnnConfig(kind=AnnKind.HNSW, ef_search=300))
    scores = ann_scorer(index, lambda idx: user_vecs[idx], 300, 10, split.candidates)(torch.arange(20))
    # Every user keeps at least 10 retrieved unseen items once the seen ones are masked.
    assert (torch.isfinite(scores.masked_fill(~split.candidates, float("-inf"))).sum(1) >= 10).all()


def test_training_reports_the_ann_rows_beside_the_exact_metrics() -> None:
    data = make_data()
    exact_only = train(tiny_config(), data)
    with_ann = train(tiny_config(**{"ann.kind": "hnsw", "ann.ef_search": 64}), data)

    assert not any(k.startswith("ann_") for k in exact_only.test)
    # The exact figures do not change with the option; the index over 40 items with a wide search is exact.
    assert {k: v for k, v in with_ann.test.items() if not k.startswith("ann_")} == exact_only.test
    assert with_ann.test["ann_recall_vs_exact@10"] > 0.99
    assert abs(with_ann.test["ann_recall@10"] - with_ann.test["recall@10"]) < 0.02
