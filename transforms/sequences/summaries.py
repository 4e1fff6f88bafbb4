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
from transforms.cutoffs import Cutoffs, Split


def id_space(id_maps: pa.Table) -> dict[str, int]:
    """The size of each entity's dense id space in ``core_id_maps`` (largest ``idx`` + 1): ``users``, ``items``."""

    def size(entity: str) -> int:
        idx = id_maps.filter(pc.equal(id_maps["entity"], entity))["idx"]
        return int(pc.max(idx).as_py()) + 1 if len(idx) else 0

    return {"users": size("user"), "items": size("item")}


def codebook_sizes(semantic_ids: pa.Table | None, codebooks: pa.Table | None) -> list[int]:
    """The true size of each semantic-ID level: the codebook's ``codes_per_level`` for its ``levels``
    quantized levels, and for a disambiguating level beyond them the largest code of the whole ID table
    + 1 (it counts collisions, it has no fixed size). Without the codebook row, every level's largest
    code over the whole ID table + 1. Empty without semantic IDs."""
    if semantic_ids is None or semantic_ids.num_rows == 0:
        return []
    codes = pc.list_flatten(semantic_ids["codes"])
    length = int(pc.max(pc.list_value_length(semantic_ids["codes"])).as_py() or 0)
    matrix = np.asarray(codes.to_numpy(zero_copy_only=False)).reshape(-1, max(length, 1))
    sizes = (matrix.max(axis=0) + 1).tolist() if matrix.size else [0] * length
    if codebooks is not None and "codebook_version" in semantic_ids.column_names and codebooks.num_rows:
        version = pc.max(semantic_ids["codebook_version"]).as_py()
        row = codebooks.filter(pc.equal(codebooks["version"], version)).to_pylist()
        if row:
            levels = min(int(row[0]["levels"]), length)
            sizes[:levels] = [int(row[0]["codes_per_level"])] * levels
    return [int(v) for v in sizes]


def vocab(id_space: dict[str, int], has_semantic_ids: bool, rows: pa.Table, codebook_sizes: list[int] | None = None) -> dict[str, Any]:
    """The shard manifest's vocabulary: id-space sizes, event-type codes, padding and semantic-ID levels.

    Args:
        id_space: :func:`id_space` of the id map the rows were numbered with.
        has_semantic_ids: Whether the rows carry semantic IDs.
        rows: Split rows (:data:`transforms.sequences.SPLIT_ROWS_SCHEMA`).
        codebook_sizes: The true size of each level (:func:`codebook_sizes`); without them, the
            largest code seen in the rows + 1 (a lower bound).

    Raises:
        ValueError: Items have semantic IDs of different lengths.
    """
    vocab: dict[str, Any] = {
        "items": id_space["items"],
        "users": id_space["users"],
        "event_types": seq.EVENT_TYPE_CODES,
        "pad": seq.PAD,
        "loader_item_shift": 1,
        "semantic_id_levels": 0,
        "semantic_id_codebook_sizes": [],
    }
    if has_semantic_ids and rows.num_rows:
        inner = pc.list_flatten(rows["semantic_ids"])
        inner = inner.filter(pc.is_valid(inner))  # events of items without a semantic ID have none (the loader pads them)
        lengths = pc.list_value_length(inner)
        levels = int(pc.max(lengths).as_py() or 0)
        if levels and pc.min(lengths).as_py() != levels:
            raise ValueError("semantic IDs of different lengths; the shards need one length per item")
        codes = np.asarray(pc.list_flatten(inner).to_numpy(zero_copy_only=False)).reshape(-1, max(levels, 1))
        vocab["semantic_id_levels"] = levels
        seen = (codes.max(axis=0) + 1).tolist() if codes.size else []
        vocab["semantic_id_codebook_sizes"] = list(codebook_sizes) if codebook_sizes and len(codebook_sizes) == levels else seen
    return vocab


def length_summary(rows: pa.Table) -> dict[str, dict[str, float]]:
    """Per split, the history lengths' mean, median, 95th percentile and maximum."""
    out = {}
    for name in ("train", "valid", "test"):
        lengths = pc.list_value_length(rows.filter(pc.equal(rows["split"], name))["item_ids"]).to_numpy(zero_copy_only=False)
        if len(lengths):
            out[name] = {"mean": round(float(lengths.mean()), 3), "p50": float(np.percentile(lengths, 50)), "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max())}
    return out


def leaking_rows(rows: pa.Table, cutoffs: Cutoffs | None) -> int:
    """Rows whose history reaches its cut-off (temporal), or whose training prefix holds a target (LOO).

    Args:
        rows: Split rows (:data:`transforms.sequences.SPLIT_ROWS_SCHEMA`).
        cutoffs: The temporal split's cut-offs: a train or valid row's history must lie in the train
            split, a test row's in train or valid. None for leave-one-out: no history event may come
            after the row's first target.
    """
    if rows.num_rows == 0:
        return 0
    last = last_elements(rows["timestamps"])
    if cutoffs is not None:
        # An empty history's "last event" is the smallest int64, which lies in the train split.
        history_split = np.asarray(cutoffs.split_array(pa.array(last)).to_pylist())
        row_split = np.asarray(rows["split"].to_pylist())
        leaking = np.where(row_split == str(Split.TEST), history_split == str(Split.TEST), history_split != str(Split.TRAIN))
        return int(leaking.sum())
    targets_first = first_elements(rows["target_timestamps"])
    has_target = pc.list_value_length(rows["target_timestamps"]).to_numpy(zero_copy_only=False) > 0
    return int(((last > targets_first) & has_target).sum())


def last_elements(column: pa.ChunkedArray) -> np.ndarray:
    """Each list's last value (int64; the smallest int64 for an empty list)."""
    array = column.combine_chunks()
    offsets = np.asarray(array.offsets)
    values = array.values.to_numpy(zero_copy_only=False)
    ends = offsets[1:]
    out = np.full(len(array), np.iinfo(np.int64).min, np.int64)
    nonempty = ends > offsets[:-1]
    out[nonempty] = values[ends[nonempty] - 1]
    return out


def first_elements(column: pa.ChunkedArray) -> np.ndarray:
    """Each list's first value (int64; the largest int64 for an empty list)."""
    array = column.combine_chunks()
    offsets = np.asarray(array.offsets)
    values = array.values.to_numpy(zero_copy_only=False)
    out = np.full(len(array), np.iinfo(np.int64).max, np.int64)
    nonempty = offsets[1:] > offsets[:-1]
    out[nonempty] = values[offsets[:-1][nonempty]]
    return out


def unordered_rows(column: pa.ChunkedArray) -> int:
    """Lists whose values are not in non-decreasing order (time-ordered sequences have none)."""
    array = column.combine_chunks()
    offsets = np.asarray(array.offsets)
    values = array.values.to_numpy(zero_copy_only=False)
    if len(values) < 2:
        return 0
    drops = np.flatnonzero(np.diff(values) < 0) + 1  # positions where the next value is smaller
    starts = set(offsets[1:-1].tolist())
    bad = [p for p in drops.tolist() if p not in starts]  # a drop across a row boundary is fine
    return len({int(np.searchsorted(offsets, p, side="right")) - 1 for p in bad})


def rows_after_training(ts: pa.ChunkedArray | pa.Array, cutoffs: Cutoffs | None) -> int:
    """Timestamps outside the train split of ``cutoffs`` (none for leave-one-out, ``cutoffs`` None)."""
    if cutoffs is None or len(ts) == 0:
        return 0
    return int(pc.sum(pc.not_equal(cutoffs.split_array(ts), str(Split.TRAIN))).as_py() or 0)


def dangling_edges(nodes: pa.Table, edges: pa.Table) -> int:
    """Edges with an endpoint ``(type, idx)`` that is not a node."""
    known = set(zip(nodes["node_type"].to_pylist(), nodes["node_idx"].to_pylist(), strict=True))
    ends = zip(edges["src_type"].to_pylist(), edges["src_idx"].to_pylist(), edges["dst_type"].to_pylist(), edges["dst_idx"].to_pylist(), strict=True)
    return sum((s, si) not in known or (d, di) not in known for s, si, d, di in ends)


def duplicate_rows(table: pa.Table, key: list[str]) -> int:
    """Rows beyond the first of each ``key`` value."""
    return table.num_rows - table.group_by(key).aggregate([]).num_rows


def k_core_violations(events: pa.Table, k: int | None, cutoffs: Cutoffs | None, pairs: pa.Table | None = None) -> int:
    """Users and items of ``events`` with fewer than ``k`` distinct partners in the training window.

    The training window is the train split of ``cutoffs``, or ``pairs`` when given (the distinct
    ``user_idx, item_idx`` of the training window of the interactions the core was computed on,
    :func:`transforms.sequences.training_pairs`: what leave-one-out and session splits need; only those
    of kept users and items count), as in the k-core filter; a k-cored table has none. Always 0 when
    ``k`` is None.
    """
    if k is None or events.num_rows == 0:
        return 0
    if pairs is None:
        train = events
        if cutoffs is not None:
            train = events.filter(pc.equal(cutoffs.split_array(events["ts"]), str(Split.TRAIN)))
        pairs = train.group_by(["user_idx", "item_idx"]).aggregate([])
    else:
        kept = pc.and_(pc.is_in(pairs["user_idx"], value_set=pc.unique(events["user_idx"])),
                       pc.is_in(pairs["item_idx"], value_set=pc.unique(events["item_idx"])))
        pairs = pairs.filter(kept)
    return sum(_below(events[side], pairs[side], k) for side in ("user_idx", "item_idx"))


def _below(ids: pa.ChunkedArray, pair_ids: pa.ChunkedArray, k: int) -> int:
    """Distinct ``ids`` that occur in fewer than ``k`` of the pairs (``pair_ids``)."""
    counts = pc.value_counts(pair_ids)
    enough = pc.filter(counts.field("values"), pc.greater_equal(counts.field("counts"), k))
    return int(pc.sum(pc.invert(pc.is_in(pc.unique(ids), value_set=enough))).as_py() or 0)
