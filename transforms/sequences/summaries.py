"""Summaries of built training data: vocabulary sizes, history lengths, leaking and unordered rows.

What the shard manifest records and the training-data asset checks count, as plain functions over
Arrow tables (numpy over the list columns' offsets and values, no per-row Python).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms import sequences as seq


def vocab(id_maps: pa.Table, prep: seq.PreparedInputs, rows: pa.Table) -> dict[str, Any]:
    def size(entity: str) -> int:
        idx = id_maps.filter(pc.equal(id_maps["entity"], entity))["idx"]
        return int(pc.max(idx).as_py()) + 1 if len(idx) else 0

    vocab: dict[str, Any] = {
        "items": size("item"),
        "users": size("user"),
        "event_types": seq.EVENT_TYPE_CODES,
        "pad": seq.PAD,
        "loader_item_shift": 1,
        "semantic_id_levels": 0,
        "semantic_id_codebook_sizes": [],
    }
    if prep.has_semantic_ids and rows.num_rows:
        inner = pc.list_flatten(rows["semantic_ids"])
        lengths = pc.list_value_length(inner)
        levels = int(pc.max(lengths).as_py() or 0)
        if levels and pc.min(lengths).as_py() != levels:
            raise ValueError("semantic IDs of different lengths; the shards need one length per item")
        codes = np.asarray(pc.list_flatten(inner).to_numpy(zero_copy_only=False)).reshape(-1, max(levels, 1))
        vocab["semantic_id_levels"] = levels
        vocab["semantic_id_codebook_sizes"] = (codes.max(axis=0) + 1).tolist() if codes.size else []
    return vocab


def length_summary(rows: pa.Table) -> dict[str, dict[str, float]]:
    out = {}
    for name in ("train", "valid", "test"):
        lengths = pc.list_value_length(rows.filter(pc.equal(rows["split"], name))["item_ids"]).to_numpy(zero_copy_only=False)
        if len(lengths):
            out[name] = {"mean": round(float(lengths.mean()), 3), "p50": float(np.percentile(lengths, 50)), "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max())}
    return out


def leaks(rows: pa.Table, split: seq.SplitConfig) -> int:
    """Rows whose history reaches its cut-off (temporal), or whose training prefix holds a target (LOO)."""
    if rows.num_rows == 0:
        return 0
    last = last_elements(rows["timestamps"])
    if split.kind is seq.SplitKind.TEMPORAL:
        limit = np.where(np.asarray(rows["split"].to_pylist()) == "test", split.valid_end_ms, split.train_end_ms)
        return int((last >= limit).sum())
    targets_first = first_elements(rows["target_timestamps"])
    has_target = pc.list_value_length(rows["target_timestamps"]).to_numpy(zero_copy_only=False) > 0
    return int(((last > targets_first) & has_target).sum())


def last_elements(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    offsets = np.asarray(array.offsets)
    values = array.values.to_numpy(zero_copy_only=False)
    ends = offsets[1:]
    out = np.full(len(array), np.iinfo(np.int64).min, np.int64)
    nonempty = ends > offsets[:-1]
    out[nonempty] = values[ends[nonempty] - 1]
    return out


def first_elements(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    offsets = np.asarray(array.offsets)
    values = array.values.to_numpy(zero_copy_only=False)
    out = np.full(len(array), np.iinfo(np.int64).max, np.int64)
    nonempty = offsets[1:] > offsets[:-1]
    out[nonempty] = values[offsets[:-1][nonempty]]
    return out


def unordered_rows(column: pa.ChunkedArray) -> int:
    array = column.combine_chunks()
    offsets = np.asarray(array.offsets)
    values = array.values.to_numpy(zero_copy_only=False)
    if len(values) < 2:
        return 0
    drops = np.flatnonzero(np.diff(values) < 0) + 1  # positions where the next value is smaller
    starts = set(offsets[1:-1].tolist())
    bad = [p for p in drops.tolist() if p not in starts]  # a drop across a row boundary is fine
    return len({int(np.searchsorted(offsets, p, side="right")) - 1 for p in bad})
