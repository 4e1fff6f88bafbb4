"""Run by tests/training/test_resume.py: trains the tiny MF with checkpoints until it is killed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.training.test_resume import resume_config, resume_data
from training.train import train


def main() -> None:
    train(resume_config(sys.argv[1]), resume_data())


if __name__ == "__main__":
    main()
