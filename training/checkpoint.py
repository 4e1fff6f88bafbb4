"""Checkpoints are versioned data: one file, written aside and swapped in (``warehouse.atomic``), that
holds the config, the versions of every input, the code version, the step, the metrics and the state
needed to resume (model, optimiser, early stopping, RNG). A kill -9 at any moment leaves the previous
checkpoint whole, and ``train`` resumes from it.

    <out_dir>/checkpoint.pt     torch.save of {"meta": {...}, "state": {...}}
    <out_dir>/checkpoint.json   the meta alone, for people and for the metrics table (written after)

``warm_start`` initialises a new run from another run's checkpoint (nightly retraining from the
promoted version): its best weights only, a fresh optimiser.
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


# Embedding tables whose last row is not an id but the shared "unseen" row (training/models/two_tower.py):
# when the catalogue grew, that row moves to the new end instead of landing on a new item's row.
TRAILING_ROWS = {"item_tower.embed.weight": 1, "user_tower.history.weight": 1}


def warm_start(task: torch.nn.Module, path: Path) -> dict[str, str]:
    """Initialise ``task`` from the model weights of the checkpoint file ``path`` (its best epoch's).

    Ids are stable across runs (``core/id_maps`` only appends), so a table whose first dimension changed
    (users or items added since) keeps the rows of the ids both runs know, and the new rows keep their
    fresh initialisation; a tensor of another shape otherwise (a changed width) is not loaded.

    Returns:
        How each parameter of the task was initialised: ``loaded``, ``rows n/m`` (n of its m rows) or
        ``fresh``; buffers (log-Q) are this run's.

    Raises:
        ValueError: No tensor of the checkpoint fits the task (another model or another width throughout).
    """
    saved = torch.load(Path(path), map_location="cpu", weights_only=False)["state"]
    weights = saved["early_stopping"].get("best_task") or saved["task"]
    target = task.state_dict()
    learned = {name for name, _ in task.named_parameters()}  # buffers (log-Q) come from this run's data
    report = {}
    for name, tensor in target.items():
        if name not in learned:
            continue
        old = weights.get(name)
        if old is not None and old.shape == tensor.shape:
            target[name] = old.to(tensor.dtype)
            report[name] = "loaded"
        elif old is not None and old.dim() == tensor.dim() and old.shape[1:] == tensor.shape[1:]:
            tail = next((n for suffix, n in TRAILING_ROWS.items() if name.endswith(suffix)), 0)
            shared = min(len(old), len(tensor)) - tail
            fresh = tensor.clone()
            fresh[:shared] = old[:shared]
            if tail:
                fresh[-tail:] = old[-tail:]
            target[name] = fresh
            report[name] = f"rows {shared + tail}/{len(tensor)}"
        else:
            report[name] = "fresh"
    if all(v == "fresh" for v in report.values()):
        raise ValueError(f"warm start: no weight of {path} fits this model (another model kind or width)")
    task.load_state_dict(target)
    return report
