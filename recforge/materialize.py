"""Materialize the asset graph in-process on a persistent Dagster instance (what ``recforge demo`` runs).

The instance lives in ``<data root>/.dagster`` unless ``DAGSTER_HOME`` says otherwise, so runs made
here show up in ``make dev``'s UI.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from warehouse.lock import holding_writer_lock

DAGSTER_HOME_ENV = "DAGSTER_HOME"
LOG_LEVEL = "INFO"  # Dagster's default console level is DEBUG: one line per event, unreadable in a terminal


def dagster_instance(root: Path) -> dg.DagsterInstance:
    """The persistent instance for this data root."""
    home = Path(os.environ.get(DAGSTER_HOME_ENV) or root / ".dagster")
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        # Machines running recforge may have no internet; telemetry would only try and fail.
        settings.write_text("telemetry:\n  enabled: false\n")
    os.environ[DAGSTER_HOME_ENV] = str(home)
    return dg.DagsterInstance.get()


@holding_writer_lock("root")  # one writing run per data root (warehouse.lock)
def materialize_everything(
    defs: dg.Definitions,
    root: Path,
    first_day: dt.date,
    last_day: dt.date,
    groups: Sequence[str] | None = None,
    resources: dict[str, object] | None = None,
    run_config: dict[str, object] | None = None,
) -> list[dg.ExecuteInProcessResult]:
    """Materialize every asset: partitioned ones over ``[first_day, last_day]`` in one run, then the rest.

    Args:
        defs: The definitions to run.
        root: Data root (its ``.dagster`` folder holds the instance unless ``DAGSTER_HOME`` is set).
        first_day: First partition day.
        last_day: Last partition day, inclusive.
        groups: Only the assets of these groups (all when None).
        resources: Resources overriding the definitions' defaults.
        run_config: Run config for the partitioned run (e.g. ops config of the raw assets).

    Raises:
        dg.DagsterExecutionStepExecutionError: A step failed (the message says which and why).
    """
    graph = defs.resolve_asset_graph()
    keys = [k for k in _topological(graph) if groups is None or graph.get(k).group_name in groups]
    unbound = [a for a in (defs.assets or []) if isinstance(a, dg.AssetsDefinition)]
    every = [a for k in keys for a in unbound if k in a.keys]
    partitioned = _unique([a for a in every if a.partitions_def is not None])
    unpartitioned = _unique([a for a in every if a.partitions_def is None])
    resources = {**(defs.resources or {}), **(resources or {})}
    logging = {"loggers": {"console": {"config": {"log_level": LOG_LEVEL}}}}
    instance = dagster_instance(root)
    results = []
    if partitioned:
        tags = {
            "dagster/asset_partition_range_start": first_day.isoformat(),
            "dagster/asset_partition_range_end": last_day.isoformat(),
        }
        results.append(
            dg.materialize(
                partitioned, instance=instance, resources=resources, tags=tags, run_config={**logging, **(run_config or {})},
                selection=[k for k in _keys(partitioned) if k in keys],
            )
        )
    if unpartitioned:
        # Unpartitioned assets read partitioned ones as whole tables from the warehouse, not as inputs.
        results.append(
            dg.materialize(
                unpartitioned,
                instance=instance,
                resources=resources,
                selection=[k for k in _keys(unpartitioned) if k in keys],
                run_config=logging,
            )
        )
    return results


def _topological(graph: dg.AssetGraph) -> Sequence[dg.AssetKey]:
    return [key for level in graph.toposorted_asset_keys_by_level for key in level]


def _unique(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    seen: list[dg.AssetsDefinition] = []
    for a in assets:
        if a not in seen:
            seen.append(a)
    return seen


def _keys(assets: list[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    return [k for a in assets for k in a.keys]
