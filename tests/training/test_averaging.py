"""The weights' moving average (``ema_decay``): its arithmetic, and a run that validates, keeps and resumes it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.training.test_sasrec import cycle_data, tiny
from training.checkpoint import load_checkpoint
from training.generative.averaging import WeightAverage
from training.generative.train import evaluate_generative, train_generative


def test_the_average_follows_the_weights_and_swaps_in_and_out() -> None:
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average = WeightAverage(layer, decay=0.5)
    with torch.no_grad():
        layer.weight.fill_(3.0)
    average.update(step=100)  # past the ramp: keep 0.5 of the average
    assert torch.equal(average.shadow["weight"], torch.full((1, 2), 2.0))
    average.update(step=1)  # in the ramp: keep (1 + 1) / (10 + 1) of it
    assert torch.allclose(average.shadow["weight"], torch.full((1, 2), 2.0 * 2 / 11 + 3.0 * 9 / 11))
    with average.swapped_in():
        assert torch.equal(layer.weight, average.shadow["weight"])
    assert torch.equal(layer.weight, torch.full((1, 2), 3.0))
    with pytest.raises(ValueError, match="between 0 and 1"):
        WeightAverage(layer, decay=1.0)


def test_a_run_validates_keeps_and_resumes_the_average(tmp_path) -> None:
    data = cycle_data()
    settings = {"ema_decay": 0.9, "run.patience": 0}
    straight = train_generative(tiny("sasrec", **settings, **{"run.max_epochs": 3, "run.out_dir": str(tmp_path / "a")}), data)
    assert all("valid_raw_ndcg@10" in point for point in straight.curve)
    assert any(p["valid_ndcg@10"] != p["valid_raw_ndcg@10"] for p in straight.curve)  # the average is not the weights
    # what is kept and tested is the average of the best epoch: the checkpoint's best weights validate as recorded
    saved = load_checkpoint(tmp_path / "a")["state"]["early_stopping"]
    assert saved["averaged"] is not None
    straight.task.load_state_dict(saved["best_task"])
    best = max(straight.curve, key=lambda p: p["valid_ndcg@10"])
    assert evaluate_generative(straight.task, data, "valid", straight.config)["ndcg@10"] == pytest.approx(best["valid_ndcg@10"])
    # a run stopped after 2 epochs and resumed continues the same average
    train_generative(tiny("sasrec", **settings, **{"run.max_epochs": 2, "run.out_dir": str(tmp_path / "b")}), data)
    resumed = train_generative(tiny("sasrec", **settings, **{"run.max_epochs": 3, "run.out_dir": str(tmp_path / "b")}), data)
    assert resumed.resumed_from_epoch == 2
    final = load_checkpoint(tmp_path / "b")["state"]["early_stopping"]["averaged"]
    for name, value in saved["averaged"].items():
        assert torch.allclose(final[name], value, atol=1e-6), name
