"""data.source=labels: the Coat protocol fed from a warehouse's label table and random-exposure ratings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from training.config import DataConfig, DataSource, TrainConfig
from training.data.coat import coat_protocol
from training.train import load_data
from warehouse.contracts import EVAL_RANDOM_RATINGS, LABELS_DEBIASED_LABELS
from warehouse.store import Warehouse

from .test_train import tiny_ratings


def test_labels_source_matches_the_matrices(tmp_path: Path) -> None:
    # The same ratings written as label rows (Y = rating >= 4, propensity 0.5) and as random-exposure ratings.
    train_r, test_r = tiny_ratings(users=12, items=10)
    users, items = np.nonzero(train_r)
    day = dt.datetime(2016, 1, 1, tzinfo=dt.UTC)
    n = len(users)
    observed = (train_r[users, items] >= 4).astype(np.int32)
    labels = pa.table({
        "request_id": [None] * n, "user_id": [str(u) for u in users], "item_id": [str(i) for i in items], "ts": [day] * n,
        "surface": [None] * n, "position": [0] * n, "split": ["train"] * n, "observed": observed, "relevance_grade": observed,
        "policy_propensity": [None] * n, "examination": [None] * n, "propensity": [0.5] * n, "propensity_source": ["logged"] * n,
        "clipped": [False] * n, "ips_weight": [2.0] * n, "weight_positive": observed * 2.0, "weight_negative": 1 - observed * 2.0,
    })
    tu, ti = np.nonzero(test_r)
    ratings = pa.table({"dataset": ["coat"] * len(tu) + ["other"], "user_id": [str(u) for u in tu] + ["0"],
                        "item_id": [str(i) for i in ti] + ["0"], "rating": [float(r) for r in test_r[tu, ti]] + [5.0]})
    store = Warehouse(tmp_path)
    store.write(LABELS_DEBIASED_LABELS, labels, day.date())
    store.write(EVAL_RANDOM_RATINGS, ratings)
    data = load_data(TrainConfig(data=DataConfig(source=DataSource.LABELS, path=str(tmp_path))))
    direct = coat_protocol(train_r, test_r, DataConfig())
    assert (data.num_users, data.num_items) == (12, 10)
    assert data.labels.tolist() == direct.labels.tolist()  # same positives, same hold-out
    assert data.test.relevant.equal(direct.test.relevant)  # the "other" dataset's rating is not Coat's
    positives = data.labels > 0
    assert set(data.propensity[positives].tolist()) == {0.5}  # the table's propensities, not popularity
    assert set(data.versions) == {"labels/debiased_labels", "eval/random_exposure_ratings"}
