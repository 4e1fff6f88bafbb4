"""The generative trainer's learning-rate schedule: warm-up, cosine and inverse-square-root rates, and no change by
default."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch

from tests.training.test_sasrec import cycle_data, tiny
from training.generative.config import GenerativeConfig, LrScheduleConfig, LrScheduleKind
from training.generative.schedule import apply_schedule, lr_factor
from training.generative.train import train_generative

COSINE = LrScheduleConfig(kind=LrScheduleKind.COSINE, warmup_epochs=1, decay_epochs=5, min_ratio=0.1)


def test_warmup_rises_linearly_then_the_cosine_falls_to_the_floor() -> None:
    steps = 10  # per epoch: warm-up is steps 0-9, the cosine runs over steps 10-50
    assert [lr_factor(COSINE, s, steps) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_factor(COSINE, 10, steps) == pytest.approx(1.0)
    assert lr_factor(COSINE, 30, steps) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way: cos(pi / 2) = 0
    assert lr_factor(COSINE, 20, steps) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert [lr_factor(COSINE, s, steps) for s in (50, 51, 10_000)] == pytest.approx([0.1, 0.1, 0.1])
    factors = [lr_factor(COSINE, s, steps) for s in range(10, 60)]
    assert all(a >= b for a, b in pairwise(factors))


def test_without_warmup_the_first_step_has_the_full_rate() -> None:
    schedule = LrScheduleConfig(kind=LrScheduleKind.COSINE, decay_epochs=2)
    assert lr_factor(schedule, 0, 7) == 1.0 and lr_factor(schedule, 14, 7) == pytest.approx(0.0, abs=1e-12)


def test_the_default_leaves_the_optimisers_rate_alone() -> None:
    assert GenerativeConfig().schedule.kind is LrScheduleKind.CONSTANT
    optimiser = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.003)
    for step in (0, 5, 10_000):
        apply_schedule(optimiser, GenerativeConfig().schedule, 0.5, step, 3)
        assert optimiser.param_groups[0]["lr"] == 0.003
        assert lr_factor(GenerativeConfig().schedule, step, 3) == 1.0
    apply_schedule(optimiser, COSINE, 0.5, 30, 10)
    assert optimiser.param_groups[0]["lr"] == pytest.approx(0.5 * 0.55)


def test_overrides_and_a_training_run_with_the_schedule() -> None:
    cfg = tiny("hstu", **{"hstu.dim": 16, "hstu.attention_dim": 8, "hstu.linear_dim": 8, "hstu.dropout": 0.0, "hstu.lr": 0.01,
                          "hstu.num_buckets": 8, "run.max_epochs": 3, "schedule.kind": "cosine", "schedule.warmup_epochs": "0.5",
                          "schedule.decay_epochs": 3})
    assert cfg.schedule == LrScheduleConfig(LrScheduleKind.COSINE, 0.5, 3.0, 0.0)
    assert GenerativeConfig.from_dict(cfg.to_dict()) == cfg
    torch.manual_seed(0)
    result = train_generative(cfg, cycle_data(users=32))
    assert result.epochs == 3 and all(math.isfinite(x) for x in result.epoch_losses)


def test_the_inverse_square_root_holds_the_rate_then_falls_as_one_over_the_root_of_the_step() -> None:
    tiger = LrScheduleConfig(kind=LrScheduleKind.INVERSE_SQRT, hold_epochs=10)  # TIGER: 10,000 steps at the full rate
    steps = 1000  # per epoch: the hold ends after step 9,999
    assert [lr_factor(tiger, s, steps) for s in (0, 5_000, 9_999)] == [1.0, 1.0, 1.0]
    assert lr_factor(tiger, 39_999, steps) == pytest.approx(0.5)  # 4x the hold: half the rate
    assert lr_factor(tiger, 999_999, steps) == pytest.approx(0.1)
    factors = [lr_factor(tiger, s, steps) for s in range(9_000, 60_000, 500)]
    assert all(a >= b for a, b in pairwise(factors))
    warm = LrScheduleConfig(kind=LrScheduleKind.INVERSE_SQRT, warmup_epochs=1, min_ratio=0.3)  # no hold: decay after warm-up
    assert [lr_factor(warm, s, 10) for s in (0, 9, 39, 10_000)] == pytest.approx([0.1, 1.0, 0.5, 0.3])
    assert GenerativeConfig().with_overrides({"schedule.kind": "inverse_sqrt", "schedule.hold_epochs": "2.5"}).schedule == (
        LrScheduleConfig(kind=LrScheduleKind.INVERSE_SQRT, hold_epochs=2.5))
