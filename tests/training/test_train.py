"""train(cfg) on tiny seeded data: it learns, it resumes exactly, checkpoints carry their provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import DataConfig, TrainConfig, load_config
from training.data.coat import coat_protocol
from training.data.pairs import PairData
from training.evaluate import evaluate
from training.train import train


def tiny_ratings(users: int = 40, items: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two taste groups: even users love even items, odd users odd items; each rates a random third,
    and a random-exposure test set of 8 items per user."""
    rng = np.random.default_rng(seed)
    taste = (np.arange(users)[:, None] % 2) == (np.arange(items)[None, :] % 2)
    ratings = np.where(taste, 5, 1)
    train = np.where(rng.random((users, items)) < 0.35, ratings, 0)
    test = np.zeros_like(train)
    for u in range(users):
        test[u, rng.choice(items, 8, replace=False)] = ratings[u, rng.choice(items, 8, replace=False)]
    test = np.where(test > 0, np.where(taste, 5, 1), 0)
    return train, test


@pytest.fixture(scope="module")
def data() -> PairData:
    train, test = tiny_ratings()
    return coat_protocol(train, test, DataConfig(), {"tiny": "v1"})


def tiny_config(**overrides: object) -> TrainConfig:
    base = {"mf.dim": 8, "mf.lr": 0.05, "run.batch_size": 128, "run.max_epochs": 6, "run.patience": 0, "run.threads": 1}
    return TrainConfig().with_overrides(base | overrides)


def test_mf_learns(data: PairData) -> None:
    result = train(tiny_config(), data)
    assert result.epoch_losses[-1] < result.epoch_losses[0] * 0.7
    generator = torch.Generator().manual_seed(0)
    random = evaluate(lambda idx: torch.rand(len(idx), data.num_items, generator=generator), data.test, [5])
    assert result.test["ndcg@5"] > random["ndcg@5"] + 0.2


@pytest.mark.parametrize("loss", ["relmf", "mfdu"])
def test_debiased_losses_learn(data: PairData, loss: str) -> None:
    result = train(tiny_config(**{"mf.loss": loss}), data)
    assert all(np.isfinite(result.epoch_losses)) and result.test["ndcg@5"] > 0.7


def test_resume_after_interruption_equals_one_run(data: PairData, tmp_path: Path) -> None:
    straight = train(tiny_config(**{"run.max_epochs": 4}), data)
    first = train(tiny_config(**{"run.max_epochs": 2, "run.out_dir": str(tmp_path)}), data)
    assert first.checkpoint is not None and first.checkpoint.exists()
    resumed = train(tiny_config(**{"run.max_epochs": 4, "run.out_dir": str(tmp_path)}), data)
    assert resumed.resumed_from_epoch == 2 and resumed.steps == straight.steps
    assert resumed.epoch_losses == pytest.approx(straight.epoch_losses, rel=1e-6)
    for a, b in zip(straight.task.state_dict().values(), resumed.task.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["config"]["run"]["max_epochs"] == 4 and meta["inputs"] == {"tiny": "v1"}
    assert meta["step"] == straight.steps and meta["code_version"] and "valid" in meta["metrics"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_config_overrides_and_files(tmp_path: Path) -> None:
    cfg = TrainConfig().with_overrides({"mf.loss": "relmf", "run.resume": "false", "mf.lr": "0.01"})
    assert cfg.mf.loss == "relmf" and cfg.run.resume is False and cfg.mf.lr == 0.01
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert load_config(path) == cfg
    assert load_config(path, {"run.seed": "3"}, model="two_tower").run.seed == 3
    with pytest.raises(KeyError):
        cfg.with_overrides({"mf.nope": 1})


@pytest.mark.gpu
def test_cuda_run_matches_cpu(data: PairData) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu = train(tiny_config(**{"run.device": "cpu"}), data)
    gpu = train(tiny_config(**{"run.device": "cuda"}), data)
    assert next(gpu.task.parameters()).is_cuda
    assert gpu.epoch_losses == pytest.approx(cpu.epoch_losses, rel=1e-3)
