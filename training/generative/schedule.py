"""The learning-rate schedule of the generative trainer (``GenerativeConfig.schedule``): a factor of the model's
``lr`` as a function of the step alone, so that a resumed or replayed run gets the same rates."""

from __future__ import annotations

import math

import torch

from training.generative.config import LrScheduleConfig, LrScheduleKind


def lr_factor(schedule: LrScheduleConfig, step: int, steps_per_epoch: int) -> float:
    """The factor for step ``step`` (0-based): linear warm-up to 1, then a half cosine to ``min_ratio`` at the end
    of ``decay_epochs``, flat after it; or, for the inverse square root, 1 until the end of ``hold_epochs`` and
    ``sqrt(hold / step)`` after it (at least ``min_ratio``); 1 for the constant schedule."""
    if schedule.kind is LrScheduleKind.CONSTANT:
        return 1.0
    warmup = schedule.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    if schedule.kind is LrScheduleKind.INVERSE_SQRT:
        hold = max(schedule.hold_epochs * steps_per_epoch, warmup, 1.0)
        return max(schedule.min_ratio, math.sqrt(hold / max(step + 1, hold)))
    horizon = schedule.decay_epochs * steps_per_epoch - warmup
    progress = min(1.0, (step - warmup) / horizon) if horizon > 0 else 1.0
    return schedule.min_ratio + (1.0 - schedule.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def apply_schedule(optimiser: torch.optim.Optimizer, schedule: LrScheduleConfig, base_lr: float, step: int, steps_per_epoch: int) -> None:
    """Set every parameter group's learning rate for ``step``; the constant schedule leaves the optimiser untouched."""
    if schedule.kind is LrScheduleKind.CONSTANT:
        return
    for group in optimiser.param_groups:
        group["lr"] = base_lr * lr_factor(schedule, step, steps_per_epoch)
