"""Ranking metrics against hand-computed values and a plain-Python reference."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from training.data.pairs import RankingSplit
from training.evaluate import evaluate
from training.metrics import average_precision, ndcg, per_user, recall, top_hits


def test_hand_computed_user() -> None:
    # Five candidates ranked 0 > 1 > 2 > 3 > 4; items 1 and 3 are relevant (two of them).
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    relevant = torch.tensor([[False, True, False, True, False]])
    hits, n = top_hits(scores, relevant, 3)
    assert hits.tolist() == [[0.0, 1.0, 0.0]] and n.tolist() == [2.0]
    assert recall(hits, n).item() == 0.5
    idcg = 1 + 1 / math.log2(3)
    assert math.isclose(ndcg(hits, n).item(), (1 / math.log2(3)) / idcg, rel_tol=1e-6)
    assert math.isclose(average_precision(hits, n).item(), 0.5 / 2)
    m = per_user(hits, n)
    assert m["hr"].item() == 1.0 and m["mrr"].item() == 0.5


def test_candidates_filter_and_empty_users() -> None:
    # Item 0 scores highest but was seen: filtered; user 1 has no relevant item: 0, or skipped.
    scores = torch.tensor([[9.0, 1.0, 2.0], [1.0, 2.0, 3.0]])
    relevant = torch.tensor([[False, True, False], [False, False, False]])
    seen = torch.tensor([[True, False, False], [False, False, False]])
    split = RankingSplit(relevant, ~seen, skip_empty=False)
    out = evaluate(lambda idx: scores[idx], split, [1, 2])
    assert out["recall@1"] == 0.0 and out["recall@2"] == 0.5  # user 0 gets 1.0 at K=2, user 1 scores 0
    skipped = evaluate(lambda idx: scores[idx], RankingSplit(relevant, ~seen, skip_empty=True), [2])
    assert skipped["recall@2"] == 1.0


def _reference(scores: np.ndarray, relevant: np.ndarray, k: int) -> tuple[float, float, float]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
    n = int(relevant.sum())
    gains = [1.0 if relevant[i] else 0.0 for i in order]
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(n, k)))
    ap, found = 0.0, 0
    for r, g in enumerate(gains):
        if g:
            found += 1
            ap += found / (r + 1)
    return sum(gains) / max(n, 1), dcg / idcg if n else 0.0, ap / max(min(n, k), 1)


@settings(max_examples=50, deadline=None)
@given(items=st.integers(2, 12), k=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_matches_plain_python(items: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.permutation(items).astype(np.float32)  # distinct: no ties
    relevant = rng.random(items) < 0.4
    hits, n = top_hits(torch.from_numpy(scores)[None], torch.from_numpy(relevant)[None], k)
    want = _reference(scores, relevant, k)
    got = (recall(hits, n).item(), ndcg(hits, n).item(), average_precision(hits, n).item())
    assert np.allclose(got, want, atol=1e-6)
