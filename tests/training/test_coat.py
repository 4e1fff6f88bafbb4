"""The Coat protocol of Lee et al. (SIGIR 2021), on the real files when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import DataConfig
from training.data.coat import holdout, load_coat, read_matrix

COAT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "coat"

pytestmark = pytest.mark.datasets


@pytest.fixture(scope="module")
def coat() -> Path:
    if not (COAT / "train.ascii").exists():
        pytest.skip("Coat is not in ../shared/datasets")
    return COAT


def test_holdout_is_the_published_draw() -> None:
    # A fresh RandomState(12345) per user, int(0.3 n) of the user's rated items in item order.
    rated = np.array([3, 8, 10, 21, 40, 41, 77])
    want = np.random.RandomState(12345).choice(rated, 2, replace=False)
    assert holdout(rated, 0.3, 12345).tolist() == want.tolist()


def test_protocol_on_coat(coat: Path) -> None:
    train, test = read_matrix(coat / "train.ascii"), read_matrix(coat / "test.ascii")
    data = load_coat(coat, DataConfig())
    assert (data.num_users, data.num_items) == (290, 300) and len(data) == 290 * 300  # every pair is a training row
    held = sum(int(0.3 * np.count_nonzero(row)) for row in train)
    positives = int((train >= 4).sum())
    valid = int(data.valid.relevant.sum())
    assert int(data.labels.sum()) + valid == positives and 0 < valid < held  # held-out positives left the training labels
    assert data.test.candidates is not None and data.test.candidates.sum(1).tolist() == [16] * 290
    assert torch.equal(data.test.relevant, torch.from_numpy(test >= 4))
    theta = data.propensity.view(290, 300)[0]
    assert float(theta.max()) == 1.0 and float(theta.min()) >= 0.0
