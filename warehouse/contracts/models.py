"""models: what trained models report (training/, assets/models.py)."""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import TS, Layer, _contract

MODELS_METRICS = _contract(
    Layer.MODELS,
    "metrics",
    [
        pa.field("model", pa.string(), nullable=False),  # mf | relmf | mfdu | two_tower | popularity | item_knn ...
        pa.field("version", pa.string(), nullable=False),  # the checkpoint's content hash (or a baseline's data hash)
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),  # valid | test
        pa.field("protocol", pa.string(), nullable=False),  # e.g. coat_lee2021 (sampled: 16 random items), temporal_test_full
        pa.field("seen_filtered", pa.bool_(), nullable=False),  # items seen in training removed from the ranking
        pa.field("subset", pa.string(), nullable=False),  # all | tail_items | short_history
        pa.field("metric", pa.string(), nullable=False),  # recall | ndcg | map | hr | mrr
        pa.field("k", pa.int32(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("data_versions", pa.string(), nullable=False),  # JSON: input name -> version
        pa.field("created_at", TS, nullable=False),
    ],
    key=("model", "version", "dataset", "split", "protocol", "subset", "metric", "k", "seed"),
    not_null=("model", "version", "dataset", "split", "protocol", "metric", "k", "value", "seed"),
    description="One row per model version, dataset, split, protocol, subset, metric and K: every evaluation in one table.",
)

MODELS_PROMOTED = _contract(
    Layer.MODELS,
    "promoted",
    [
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("checkpoint", pa.string(), nullable=False),  # path under the data root
        pa.field("headline_metric", pa.string(), nullable=False),  # e.g. recall@50
        pa.field("headline_value", pa.float64(), nullable=False),
        pa.field("promoted_at", TS, nullable=False),
    ],
    key=("model",),
    not_null=("model", "version", "checkpoint", "headline_metric", "headline_value", "promoted_at"),
    description="The model registry: per model, the version that passed its promotion checks most recently.",
)
