"""``train`` under ``torchrun --nproc_per_node 2`` (Gloo on CPU): ranks read disjoint rows that cover
the epoch, and the model matches a one-process run with the same global batch.

Tolerance: 1e-4 absolute on every parameter after 2 epochs. The gradients are the same mean over the
global batch; only the order of floating-point sums differs (the all-reduce adds two half-batch means).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.config import DataConfig, TrainConfig
from training.data.coat import coat_protocol
from training.data.pairs import PairData

TOLERANCE = 1e-4


def ddp_data() -> PairData:
    from tests.training.test_train import tiny_ratings

    train, test = tiny_ratings(users=24, items=20)
    return coat_protocol(train, test, DataConfig())


def ddp_config() -> TrainConfig:
    # Batch 64 over 480 rows: 8 global steps per epoch, each rank 32 rows a step (the last batch 32: 16 each).
    return TrainConfig().with_overrides({"mf.dim": 8, "mf.lr": 0.05, "mf.loss": "relmf", "run.batch_size": 64, "run.max_epochs": 1,
                                         "run.patience": 0, "run.threads": 1, "run.device": "cpu"})


@pytest.mark.slow
def test_two_ranks_match_one_process(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    worker = Path(__file__).with_name("ddp_worker.py")
    subprocess.run([torchrun, "--nproc_per_node", "2", "--standalone", str(worker), str(tmp_path)], check=True, env=env, timeout=120,
                   capture_output=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    data = ddp_data()
    rows = [set(r["rows"].tolist()) for r in ranks]
    assert not rows[0] & rows[1] and rows[0] | rows[1] == set(range(len(data)))
    from training.train import train

    single = train(ddp_config(), data)
    for name, value in single.task.state_dict().items():
        for r in ranks:
            assert torch.allclose(r["state"][name], value, atol=TOLERANCE), name
    assert ranks[0]["losses"] == pytest.approx(single.epoch_losses, abs=TOLERANCE)
