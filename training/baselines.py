"""Baselines under the same protocol as the models: popularity (training positives) and item-kNN
(cosine similarity of item co-occurrence in users' training histories). Each gives a ``Scorer`` for
``training.evaluate.evaluate``, so every metrics row has a floor beside it.
"""

from __future__ import annotations

import torch

from training.data.pairs import PairData
from training.data.two_tower import TwoTowerData
from training.evaluate import Scorer


def user_item_matrix(data: PairData | TwoTowerData) -> torch.Tensor:
    """``[U, I]`` float: 1 where the user has a training positive."""
    matrix = torch.zeros(data.num_users, data.num_items)
    if isinstance(data, PairData):
        positive = data.labels > 0
        matrix[data.users[positive], data.items[positive]] = 1.0
    else:
        matrix[data.users, data.items] = 1.0
    return matrix


def popularity(data: PairData | TwoTowerData) -> Scorer:
    counts = user_item_matrix(data).sum(0)
    return lambda index: counts.expand(len(index), -1)


def item_similarity(matrix: torch.Tensor) -> torch.Tensor:
    """``[I, I]`` cosine similarity of the items' user columns, zero on the diagonal."""
    norms = matrix.sum(0).clamp(min=1).sqrt()
    sim = (matrix.T @ matrix) / norms[:, None] / norms[None, :]
    sim.fill_diagonal_(0.0)
    return sim


def item_knn(data: PairData | TwoTowerData, neighbours: int = 50) -> Scorer:
    """Score = sum of the similarities (top ``neighbours`` per item) to the items in the user's profile:
    their training positives (pairs) or their query history (two-tower splits)."""
    matrix = user_item_matrix(data)
    sim = item_similarity(matrix)
    if neighbours < sim.shape[1]:
        keep = sim.topk(neighbours, dim=1).indices
        sim = torch.zeros_like(sim).scatter_(1, keep, sim.gather(1, keep))
    if isinstance(data, PairData):
        return lambda index: matrix[index] @ sim

    def from_history(history: torch.Tensor) -> Scorer:
        profile = torch.zeros(history.shape[0], data.num_items)
        profile.scatter_(1, (history - 1).clamp(min=0), (history > 0).float())
        return lambda index: profile[index] @ sim

    return from_history(data.test.history)


BASELINES = {"popularity": popularity, "item_knn": item_knn}
