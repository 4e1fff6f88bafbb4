"""Two-tower retrieval on tiny examples: it learns, log-Q and SSL run, metrics carry tail and short-history views."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import torch

from training.config import ModelKind, TrainConfig
from training.data.two_tower import TwoTowerData, two_tower_data
from training.evaluate import evaluate
from training.train import train
from warehouse.contracts import TRAINING_TWO_TOWER_EXAMPLES


def tiny_examples(users: int = 60, items: int = 40, per_user: int = 12, seed: int = 0) -> pa.Table:
    """Users in four taste groups consume items of their group (item % 4 == user % 4), in time order."""
    rng = np.random.default_rng(seed)
    rows = []
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for u in range(users):
        group = [i for i in range(items) if i % 4 == u % 4]
        seq = rng.choice(group, per_user, replace=True).tolist()
        for t, item in enumerate(seq):
            rows.append({"user_idx": u, "history_item_ids": seq[:t], "history_length": t, "user_prior_events": t, "surface": None,
                         "event_type": "click", "item_idx": item, "weight": 1.0, "ts": start + dt.timedelta(hours=t * 10 + u % 7)})
    return pa.Table.from_pylist(rows, schema=TRAINING_TWO_TOWER_EXAMPLES.schema)


def make_data() -> TwoTowerData:
    return two_tower_data(tiny_examples(), None, max_history=10)


def tiny_config(**overrides: object) -> TrainConfig:
    base = {"model": ModelKind.TWO_TOWER, "two_tower.dim": 16, "two_tower.hidden": 32, "two_tower.temperature": 0.1, "two_tower.lr": 0.01,
            "run.batch_size": 64, "run.max_epochs": 8, "run.patience": 0, "run.threads": 1, "run.valid_k": 10}
    return TrainConfig().with_overrides(base | overrides)


def test_split_is_temporal_and_seen_items_are_filtered() -> None:
    data = make_data()
    q = data.test
    assert q.ranking.candidates is not None
    for u in range(data.num_users):
        seen = q.history[u][q.history[u] > 0] - 1
        assert not q.ranking.candidates[u, seen].any()
    assert data.tail_items.sum() == int(0.8 * data.num_items)


def test_two_tower_learns_and_reports_views() -> None:
    data = make_data()
    result = train(tiny_config(), data)
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    generator = torch.Generator().manual_seed(0)
    random = evaluate(lambda idx: torch.rand(len(idx), data.num_items, generator=generator), data.test.ranking, [10])
    assert result.test["recall@10"] > random["recall@10"] + 0.2
    assert {"tail_recall@50", "short_ndcg@10", "recall@100"} <= set(result.test)


def test_variants_run() -> None:
    data = make_data()
    for overrides in ({"two_tower.logq": False}, {"two_tower.ssl_weight": 0.5, "two_tower.uniform_negatives": 8}, {"two_tower.user_buckets": 16}):
        result = train(tiny_config(**overrides, **{"run.max_epochs": 2}), data)
        assert np.isfinite(result.epoch_losses).all()
