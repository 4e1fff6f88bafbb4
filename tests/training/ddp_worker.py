"""Run by tests/training/test_ddp.py under ``torchrun``: trains the tiny MF and saves what each rank saw."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.training.test_ddp import ddp_config, ddp_data
from training.train import train


def main() -> None:
    out = Path(sys.argv[1])
    result = train(ddp_config(), ddp_data())
    rank = int(os.environ["RANK"])
    torch.save({"rows": result.rows_seen, "state": result.task.state_dict(), "losses": result.epoch_losses, "test": result.test},
               out / f"rank{rank}.pt")


if __name__ == "__main__":
    main()
