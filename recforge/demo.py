"""The model step of ``recforge demo``: small versions of the two-tower and MF models, then their metrics.

After the data layers, the demo materialises ``models/two_tower``, ``models/mf``, ``models/baselines``,
``models/metrics`` and ``models/promoted`` (the generative models are left to ``models_job`` and
``recforge build --select models``) with the sizes of :data:`DEMO_MODEL_CONFIG`: a few epochs, small
embeddings, so the step costs well under a minute on the demo world. The promotion checks run as in
any build: a model that fails them is kept, and the table printed at the end says so.

    models/<name>/candidate.json  -> the version each model trained in this run (and its checks)
    models/metrics                -> that version's test rows (recall, NDCG, tail, short history)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from warehouse.lock import holding_writer_lock

# Small, quick versions of the two models: a few epochs, validation Recall@50 (MF: MAP@50) picks the epoch.
# One thread each: the models are small, and two threads on a shared 2-core machine only contend.
# On the demo world (2,989 users, 1,948 items, 32,464 training examples) MF's epoch is 5.8M pairs, about
# 4 s of one core; two-tower's about 0.6 s.
DEMO_MODEL_CONFIG: dict[str, dict[str, Any]] = {
    "models__two_tower": {"dim": 32, "hidden": 64, "max_history": 20, "batch_size": 512, "max_epochs": 5, "patience": 2, "threads": 1},
    "models__mf": {"dim": 32, "lr": 0.01, "batch_size": 8192, "max_epochs": 3, "patience": 1, "threads": 1},
}
DEMO_MODEL_KEYS = (
    dg.AssetKey(["models", "two_tower"]),
    dg.AssetKey(["models", "mf"]),
    dg.AssetKey(["models", "baselines"]),
    dg.AssetKey(["models", "metrics"]),
    dg.AssetKey(["models", "promoted"]),
)
DEMO_TABLE_MODELS = ("popularity", "item_knn", "mf", "two_tower")  # floors first, then the trained models
DEMO_COLUMNS = (("all", "recall", 10), ("all", "recall", 50), ("all", "ndcg", 50), ("tail_items", "recall", 50), ("short_history", "recall", 50))


@holding_writer_lock("root")
def train_demo_models(
    defs: dg.Definitions,
    root: Path,
    resources: dict[str, object] | None = None,
    run_config: dict[str, Any] | None = None,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Train the demo's small two-tower and MF models on the current training data, with the baselines,
    the metrics table and the registry, in one run.

    Args:
        defs: The definitions (their model assets are the ones run).
        root: Data root (its ``.dagster`` folder holds the instance unless ``DAGSTER_HOME`` is set).
        resources: Resources overriding the definitions' defaults.
        run_config: Ops config merged over :data:`DEMO_MODEL_CONFIG` (per op, key by key).
        log_level: Dagster's console log level.

    Returns:
        The run's result; it is not a success when a model failed a blocking promotion check (the
        model is then kept but not promoted, and ``models/metrics`` collects it on the next run).
    """
    from recforge.materialize import dagster_instance

    selected = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and any(k in a.keys for k in DEMO_MODEL_KEYS)]
    ops = {op: {"config": {**cfg, **((run_config or {}).get("ops", {}).get(op, {}).get("config", {}))}} for op, cfg in DEMO_MODEL_CONFIG.items()}
    return dg.materialize(
        selected,
        instance=dagster_instance(root),
        resources={**(defs.resources or {}), **(resources or {})},
        selection=list(DEMO_MODEL_KEYS),
        run_config={"ops": ops, "loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,  # a failed promotion check is an outcome the table reports, not a crash
    )


def demo_metrics(root: Path) -> list[dict[str, Any]]:
    """One row per model of :data:`DEMO_TABLE_MODELS` that has a candidate: its version, whether it is
    promoted (None for baselines), the checks it failed, and the test metrics of :data:`DEMO_COLUMNS`.

    The figures are the version's rows of ``models/metrics``; a version that failed a blocking check is
    not in the table yet (that check stopped ``models/metrics``), so its rows come from its own file.
    """
    from warehouse.contracts import MODELS_METRICS, MODELS_PROMOTED
    from warehouse.store import Warehouse

    store = Warehouse(root)
    table = store.read(MODELS_METRICS).to_pylist() if store.exists(MODELS_METRICS) else []
    registry = {r["model"]: r["version"] for r in store.read(MODELS_PROMOTED).to_pylist()} if store.exists(MODELS_PROMOTED) else {}
    out = []
    for name in DEMO_TABLE_MODELS:
        folder = root / "models" / "checkpoints" / name
        if not (folder / "candidate.json").exists():
            continue
        candidate = json.loads((folder / "candidate.json").read_text())
        version = candidate["version"]
        rows = [r for r in table if r["model"] == name and r["version"] == version and r["split"] == "test"]
        in_table = bool(rows)
        if not rows and (folder / f"{version}.metrics.parquet").exists():
            rows = pq.read_table(folder / f"{version}.metrics.parquet").to_pylist()
        values = {(r["subset"], r["metric"], r["k"]): r["value"] for r in rows}
        checks = candidate.get("checks")
        out.append({"model": name, "version": version, "in_metrics_table": in_table,
                    "promoted": None if checks is None else registry.get(name) == version,
                    "failed_checks": [c for c, ok in (checks or {}).items() if not ok],
                    **{_column(*c): values.get(c) for c in DEMO_COLUMNS}})
    return out


def format_demo_metrics(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`demo_metrics` as a plain-text table."""
    header = ["model", *(_column(*c) for c in DEMO_COLUMNS), "promoted"]
    lines = [header]
    for row in rows:
        lines.append([row["model"], *(_figure(row[_column(*c)]) for c in DEMO_COLUMNS), _status(row)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  " + "  ".join(cell.ljust(w) if i in (0, len(header) - 1) else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
                     for line in lines)


def print_demo_metrics(root: Path, seconds: float | None = None) -> None:
    """Print the demo models' test metrics (full catalogue, seen items filtered) under a title."""
    rows = demo_metrics(root)
    took = f", trained in {seconds:.1f}s" if seconds is not None else ""
    print(f"\nModels (test split of the training window, full catalogue, seen items filtered{took}):")
    print(format_demo_metrics(rows) if rows else "  no model trained")
    print('Every version\'s rows:  recforge sql "select model, version, subset, metric, k, value from models_metrics"')


def _status(row: dict[str, Any]) -> str:
    if row["promoted"] is None:
        return "baseline"
    if row["promoted"]:
        return "yes"
    return "no: failed " + ", ".join(row["failed_checks"]) if row["failed_checks"] else "no (an earlier version is promoted)"


def _column(subset: str, metric: str, k: int) -> str:
    prefix = {"all": "", "tail_items": "tail ", "short_history": "short "}[subset]
    return f"{prefix}{metric}@{k}"


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
