"""Metrics as rows of ``models/metrics`` (one row per model version, split, protocol, subset, metric, K, seed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa

from warehouse.contracts import MODELS_METRICS

SUBSETS = {"tail": "tail_items", "short": "short_history", "ann": "ann_index", "cold": "cold_items", "new": "new_items"}  # key prefix -> subset
COMPOUND_METRICS = ("recall_vs_exact",)  # metric names with an underscore (the ANN index's recall of the exact top-K)


def checkpoint_version(path: Path | None) -> str:
    """A model version: the first 16 hex digits of its checkpoint's sha256 (``untracked`` without one)."""
    if path is None or not Path(path).exists():
        return "untracked"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def metrics_rows(metrics: dict[str, float], *, model: str, version: str, dataset: str, split: str, protocol: str,
                 seen_filtered: bool, seed: int, data_versions: dict[str, str], created_at: dt.datetime | None = None) -> pa.Table:
    """``{"ndcg@5": v, "tail_recall@50": v, ...}`` as rows of the metrics table."""
    created = created_at or dt.datetime.now(dt.UTC)
    rows = []
    for key, value in sorted(metrics.items()):
        name, _, k = key.partition("@")
        compound = next((m for m in COMPOUND_METRICS if name == m or name.endswith(f"_{m}")), None)
        prefix, metric = (name[: -len(compound)].rstrip("_"), compound) if compound else (name.rpartition("_")[0], name.rpartition("_")[2])
        rows.append({"model": model, "version": version, "dataset": dataset, "split": split, "protocol": protocol,
                     "seen_filtered": seen_filtered, "subset": SUBSETS.get(prefix, "all"), "metric": metric, "k": int(k),
                     "value": float(value), "seed": seed, "data_versions": json.dumps(data_versions, sort_keys=True), "created_at": created})
    return pa.Table.from_pylist(rows, schema=MODELS_METRICS.schema)
