"""Checkpoints are versioned data: one file, written aside and swapped in (``warehouse.atomic``), that
holds the config, the versions of every input, the code version, the step, the metrics and the state
needed to resume (model, optimiser, early stopping, RNG). A kill -9 at any moment leaves the previous
checkpoint whole, and ``train`` resumes from it.

    <out_dir>/checkpoint.pt     torch.save of {"meta": {...}, "state": {...}}
    <out_dir>/checkpoint.json   the meta alone, for people and for the metrics table (written after)
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import torch

from warehouse.atomic import write_bytes, write_json

CHECKPOINT = "checkpoint.pt"
META = "checkpoint.json"


def code_version() -> str:
    """The git commit of the code (``+dirty`` with uncommitted changes), or ``unknown`` outside a checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "training"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def save_checkpoint(out_dir: Path, meta: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write ``{"meta", "state"}`` atomically; returns the checkpoint path."""
    buffer = io.BytesIO()
    torch.save({"meta": meta, "state": state}, buffer)
    path = Path(out_dir) / CHECKPOINT
    write_bytes(path, buffer.getvalue())
    write_json(Path(out_dir) / META, meta)
    return path


def load_checkpoint(out_dir: Path) -> dict[str, Any] | None:
    """The latest checkpoint in ``out_dir`` (``{"meta", "state"}``), or None."""
    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
