"""The entry point: build the static world, write every file into a staging folder, swap it into place."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sample_world.config import WorldConfig, WorldSummary
from sample_world.days import _run_days
from sample_world.static import _build_world, _World
from sample_world.writers import (
    _sum_by_log,
    _write_catalog,
    _write_truth,
    _write_users,
    _write_world_json,
)
from warehouse.atomic import write_aside


def generate_world(config: WorldConfig, out_dir: Path, *, workers: int = 1) -> WorldSummary:
    """Write a complete sample world (raw logs, catalog, truth, ``world.json``) to ``out_dir``.

    The world is written into a staging folder beside ``out_dir`` and swapped into place at the end, so
    a crash never leaves a half-written world. An existing ``out_dir`` is replaced when it is empty or
    holds a previous world (a ``world.json``); anything else is refused.

    Args:
        config: Sizes, seed and knobs.
        out_dir: World directory to create or replace.
        workers: Processes that generate days in parallel; the output does not depend on it.

    Returns:
        Counts of what was written and the time it took.

    Raises:
        ValueError: ``out_dir`` holds something other than a world, or the config leaves fewer available
            items than ``slate_size``.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    world = _build_world(config)
    with write_aside(out_dir, directory=True) as staged:
        counts, bad_by_log, dup_by_log = _write_world(world, staged.path, workers)
    return WorldSummary(**counts, seconds=time.perf_counter() - started, out_dir=out_dir,
                        bad_lines_by_log=bad_by_log, duplicate_lines_by_log=dup_by_log)


def _write_world(world: _World, staging: Path, workers: int) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Write every file of the world under ``staging``; return the counts, bad and duplicate lines per log."""
    config = world.config
    for sub in ("catalog", "slates", "impressions", "events", "reviews", "truth/served"):
        (staging / sub).mkdir(parents=True)
    catalog_counts = _write_catalog(world, staging)
    _write_users(world, staging / "catalog" / "users.csv")
    days = _run_days(world, staging, workers)
    requests = sum(d.requests for d in days)
    exposure = np.sum([d.exposure for d in days], axis=0) if days else np.zeros(config.items, np.int64)
    _write_truth(world, staging / "truth", exposure, requests)

    per_log = [catalog_counts] + [c for d in days for c in d.logs]
    bad_by_log = _sum_by_log(per_log, lambda c: c.bad)
    dup_by_log = _sum_by_log(per_log, lambda c: c.duplicates)
    clean_by_log = _sum_by_log(per_log, lambda c: c.records)
    counts = {
        "slates": requests,
        "impressions": clean_by_log["impressions"],
        "events": clean_by_log["events"],
        "reviews": clean_by_log["reviews"],
        "items": clean_by_log["items"],
        "users": config.users,
        "served": sum(d.served for d in days),
        "bad_lines": sum(bad_by_log.values()),
        "duplicate_lines": sum(dup_by_log.values()),
    }
    _write_world_json(staging / "world.json", config, counts, bad_by_log, dup_by_log)
    return counts, bad_by_log, dup_by_log


def _check_replaceable(out_dir: Path) -> None:
    # Replacing a folder deletes what it held: only a previous world (or nothing) may go.
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "world.json").exists():
        raise ValueError(f"{out_dir} is not empty and holds no world.json; refusing to replace it")
