"""``recforge build``: every layer downstream of raw, from the raw tables as they are.

The route for a public dataset is ``recforge ingest <format> --path …`` then ``recforge build``. The
build never reads the landing zone, so nothing a connector staged is replaced; it runs as one
unpartitioned Dagster run, so its cost does not grow with the number of days the data spans.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from warehouse.settings import data_root

SPLITS = ("temporal", "leave-one-out", "session")


def register(subparsers: Any) -> None:
    """Add ``recforge build``."""
    parser = subparsers.add_parser(
        "build",
        help="materialize every layer downstream of raw from the staged raw tables (never touches landing)",
        description="Build the layers below raw (core, labels, enrichment, semantic_ids, training_data) from the raw "
        "tables as they are, e.g. after `recforge ingest`. The landing zone is not read.",
    )
    parser.add_argument(
        "--select", help="comma-separated layers to build (default: every layer below raw but models; --select models trains them)"
    )
    parser.add_argument("--split", choices=SPLITS, help="the training data's split (default: the run config's, else temporal)")
    parser.add_argument("--config", type=Path, help="a run-config YAML (ops: …, resources: …), as in the Dagster launchpad")
    parser.set_defaults(func=_cmd_build)


def _cmd_build(args: argparse.Namespace) -> int:
    from recforge.cli import dagster_log_level, print_summary
    from recforge.definitions import defs
    from recforge.materialize import (
        TRAINING_GROUPS,
        build_layers,
        downstream_groups,
        merge_run_config,
        split_run_config,
    )

    root = data_root()
    _require_raw(root)
    run_config = _read_config(args.config) if args.config else {}
    if args.split:
        run_config = merge_run_config(run_config, split_run_config(defs, args.split))
    groups = [g.strip() for g in args.select.split(",") if g.strip()] if args.select else None
    layers = groups or [g for g in downstream_groups(defs) if g not in TRAINING_GROUPS]
    print(f"recforge build: {', '.join(layers)} from the raw tables in {root}" + (f" ({args.split} split)" if args.split else ""))
    started = time.perf_counter()
    result = build_layers(defs, root, groups, run_config=run_config, log_level=dagster_log_level(args))
    for event in result.get_asset_materialization_events():
        print(f"  built {event.asset_key.to_user_string()}")
    print_summary(root, time.perf_counter() - started)
    return 0


def _require_raw(root: Path) -> None:
    from warehouse.contracts import RAW_EVENTS, RAW_IMPRESSIONS
    from warehouse.store import Warehouse

    store = Warehouse(root)
    if not (store.partitions(RAW_EVENTS) or store.partitions(RAW_IMPRESSIONS)):
        raise SystemExit(
            f"recforge build: no raw events or impressions in {root}: stage data first "
            "(`recforge ingest <format> --path …`, or `recforge materialize` over the landing zone)"
        )


def _read_config(path: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"recforge build: cannot read the run config {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SystemExit(f"recforge build: {path} is not a run config (a mapping with ops: and resources:)")
    return loaded
