"""Warm start (run.init_from): a new run starts from another run's best weights, the ids both know keep their rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.checkpoint import warm_start
from training.config import ModelKind, TrainConfig
from training.data.two_tower import two_tower_data
from training.generative.train import train_generative
from training.train import build_task, train

from .test_sasrec import cycle_data, tiny
from .test_tiger import TINY_TIGER, grid_ids
from .test_two_tower import make_data, tiny_config, tiny_examples


def test_a_warm_started_run_begins_from_the_checkpoints_best_weights(tmp_path: Path) -> None:
    data = make_data()
    first = train(tiny_config(**{"run.out_dir": str(tmp_path / "first")}), data)
    assert first.checkpoint is not None

    # Learning rate 0: the run cannot move its weights, so what it ends with is what it started from.
    warm = train(tiny_config(**{"run.init_from": str(first.checkpoint), "two_tower.lr": 0.0, "run.max_epochs": 1}), data)
    cold = train(tiny_config(**{"two_tower.lr": 0.0, "run.max_epochs": 1}), data)

    assert warm.warm_started is not None and set(warm.warm_started.values()) == {"loaded"}
    for name, tensor in first.task.state_dict().items():
        assert torch.equal(warm.task.state_dict()[name], tensor), name
    assert warm.test == first.test
    assert cold.warm_started is None and cold.test["recall@10"] < first.test["recall@10"]


def test_a_grown_catalogue_keeps_the_known_rows_and_moves_the_unseen_row(tmp_path: Path) -> None:
    data = make_data()  # 40 items
    first = train(tiny_config(**{"run.out_dir": str(tmp_path / "first"), "run.max_epochs": 2}), data)
    grown = two_tower_data(tiny_examples(items=48), None, max_history=10)  # eight new items since
    task = build_task(tiny_config(), grown)

    report = warm_start(task, first.checkpoint)

    old, new = first.task.state_dict(), task.state_dict()
    assert report["model.item_tower.embed.weight"] == "rows 41/49"
    assert torch.equal(new["model.item_tower.embed.weight"][:40], old["model.item_tower.embed.weight"][:40])
    assert torch.equal(new["model.item_tower.embed.weight"][-1], old["model.item_tower.embed.weight"][-1])  # the unseen row
    assert torch.equal(new["model.user_tower.history.weight"][:41], old["model.user_tower.history.weight"][:41])
    assert report["model.item_tower.mlp.0.weight"] == "loaded"
    assert torch.equal(new["log_q"], torch.as_tensor(grown.log_q))  # data, not weights: this run's frequencies


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    data = make_data()
    first = train(tiny_config(**{"run.out_dir": str(tmp_path / "first"), "run.max_epochs": 1}), data)
    other = build_task(TrainConfig().with_overrides({"model": ModelKind.MF, "mf.dim": 8}), data)
    with pytest.raises(ValueError, match="no weight"):
        warm_start(other, first.checkpoint)


@pytest.mark.parametrize("model", ["sasrec", "tiger"])
def test_a_sequence_model_warm_starts_from_the_checkpoints_best_weights(model: str, tmp_path: Path) -> None:
    data = cycle_data()
    ids = grid_ids() if model == "tiger" else None
    small = {**(TINY_TIGER if model == "tiger" else {}), "run.max_epochs": 3}
    first = train_generative(tiny(model, **small, **{"run.out_dir": str(tmp_path / "first")}), data, ids)
    assert first.checkpoint is not None

    # Learning rate 0: the run cannot move its weights, so it ends with the weights it started from.
    frozen = {"sasrec.lr": 0.0, "tiger.lr": 0.0, "run.max_epochs": 1, "sasrec.dropout": 0.0, "tiger.dropout": 0.0}
    warm = train_generative(tiny(model, **{**small, **frozen, "run.init_from": str(first.checkpoint)}), data, ids)
    cold = train_generative(tiny(model, **{**small, **frozen}), data, ids)

    assert warm.warm_started is not None and set(warm.warm_started.values()) == {"loaded"}
    for name, tensor in first.task.state_dict().items():
        assert torch.equal(warm.task.state_dict()[name], tensor), name
    assert warm.test == first.test
    assert cold.warm_started is None and cold.test != first.test
