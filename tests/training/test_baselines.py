"""Baselines rank as they should on tiny data."""

from __future__ import annotations

import torch

from training.baselines import item_knn, item_similarity, popularity
from training.config import DataConfig
from training.data.coat import coat_protocol
from training.evaluate import evaluate

from .test_train import tiny_ratings


def test_item_similarity_is_cosine() -> None:
    # Items 0 and 1 share both users; item 2 shares one of them with each.
    m = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    sim = item_similarity(m)
    assert torch.allclose(sim[0, 1], torch.tensor(1.0)) and torch.allclose(sim[0, 2], torch.tensor(1 / 2**0.5)) and sim[0, 0] == 0


def test_knn_beats_popularity_on_taste_groups() -> None:
    train, test = tiny_ratings()
    data = coat_protocol(train, test, DataConfig())
    pop = evaluate(popularity(data), data.test, [5])
    knn = evaluate(item_knn(data, neighbours=10), data.test, [5])
    assert knn["ndcg@5"] > pop["ndcg@5"] + 0.2
