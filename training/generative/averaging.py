"""An exponential moving average of a model's weights (Polyak averaging), validated and tested in their place.

At a constant learning rate the weights wander around a minimum from one step to the next, and the validation metric
swings with them from epoch to epoch; their running average sits nearer its centre. Unlike a decaying rate, the
average does not slow the training itself. ``GenerativeConfig.ema_decay`` turns it on: the trainer then validates the
average (and, for comparison, the raw weights), keeps the average of the best epoch, tests it, and checkpoints the
average with the rest of the state, so that a resumed run continues it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """``shadow``: the average of each parameter of ``task``, updated after every optimiser step."""

    def __init__(self, task: nn.Module, decay: float, saved: dict[str, torch.Tensor] | None = None) -> None:
        """``saved``: the average a checkpoint holds; without it (a fresh run, or one resumed from a checkpoint made
        without averaging) the average starts at the current weights."""
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must lie strictly between 0 and 1, not {decay}")
        self.decay = decay
        self.live = dict(task.named_parameters())
        saved = saved or {}
        self.shadow = {name: (saved[name].to(p.device) if name in saved else p.detach().clone()) for name, p in self.live.items()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average toward the weights after optimiser step ``step`` (counted from 1). The decay ramps up as
        ``(1 + step) / (10 + step)`` to ``decay``, so the first steps do not leave it stuck at the initialisation."""
        keep = min(self.decay, (1 + step) / (10 + step))
        for name, p in self.live.items():
            self.shadow[name].lerp_(p.detach(), 1.0 - keep)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The average in the task's parameters for the ``with`` block, the trained weights back after it."""
        trained = {name: p.detach().clone() for name, p in self.live.items()}
        with torch.no_grad():
            for name, p in self.live.items():
                p.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.live.items():
                    p.copy_(trained[name])
