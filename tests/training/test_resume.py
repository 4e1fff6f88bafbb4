"""kill -9 in the middle of training, then resume: the run ends where an uninterrupted one ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training.config import DataConfig, TrainConfig
from training.data.coat import coat_protocol
from training.data.pairs import PairData
from training.train import train

EPOCHS = 40


def resume_data() -> PairData:
    from tests.training.test_train import tiny_ratings

    train_r, test_r = tiny_ratings(users=60, items=50)
    return coat_protocol(train_r, test_r, DataConfig())


def resume_config(out_dir: str = "") -> TrainConfig:
    return TrainConfig().with_overrides({"mf.dim": 8, "mf.lr": 0.02, "run.batch_size": 64, "run.max_epochs": EPOCHS, "run.patience": 0,
                                         "run.threads": 1, "run.out_dir": out_dir})


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("resume_worker.py")), str(tmp_path)], env=env)
    meta = tmp_path / "checkpoint.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text())["epoch"] >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(meta.read_text())["epoch"]
    assert 2 <= killed_at < EPOCHS, "the worker must be killed mid-run"
    resumed = train(resume_config(str(tmp_path)), resume_data())
    straight = train(resume_config(), resume_data())
    assert resumed.resumed_from_epoch is not None and resumed.resumed_from_epoch >= killed_at
    assert resumed.steps == straight.steps and resumed.test == pytest.approx(straight.test, abs=1e-6)
    for a, b in zip(straight.task.state_dict().values(), resumed.task.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
