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


def item_knn(data: PairData | TwoTowerData, neighbours: int = 50, chunk: int = 2048) -> Scorer:
    """Score = sum of the similarities (top ``neighbours`` per item) to the items in the user's profile:
    their training positives (pairs) or their query history (two-tower splits). The similarity rows are
    built ``chunk`` items at a time from a sparse user-item matrix, so memory is ``I x neighbours``."""
    matrix = user_item_matrix(data)
    sparse = matrix.to_sparse()
    norms = matrix.sum(0).clamp(min=1).sqrt()
    k = min(neighbours, data.num_items - 1)
    rows, cols, vals = [], [], []
    for start in range(0, data.num_items, chunk):
        index = torch.arange(start, min(start + chunk, data.num_items))
        block = torch.sparse.mm(sparse.t().index_select(0, index).coalesce(), matrix)  # [chunk, I] co-occurrence
        block = block / norms[index, None] / norms[None, :]
        block[torch.arange(len(index)), index] = 0.0
        top = block.topk(k, dim=1)
        rows.append(index.repeat_interleave(k))
        cols.append(top.indices.reshape(-1))
        vals.append(top.values.reshape(-1))
    sim = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals), (data.num_items, data.num_items),
                                  check_invariants=True).coalesce()
    if isinstance(data, PairData):
        return lambda index: torch.sparse.mm(sim.t(), matrix[index].T).T

    history = data.test.history

    def from_history(index: torch.Tensor) -> torch.Tensor:
        profile = torch.zeros(len(index), data.num_items)
        profile.scatter_add_(1, (history[index] - 1).clamp(min=0), (history[index] > 0).float()).clamp_(max=1.0)  # pads add 0
        return torch.sparse.mm(sim.t(), profile.T).T

    return from_history


BASELINES = {"popularity": popularity, "item_knn": item_knn}
