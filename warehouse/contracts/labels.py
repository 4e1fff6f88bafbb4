"""labels: MNAR-debiased labels (transforms/labels/)."""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import TS, Layer, _contract

LABELS_POSITION_BIAS = _contract(
    Layer.LABELS,
    "position_bias",
    [
        pa.field("split", pa.string(), nullable=False),  # the split whose rows use this fit
        pa.field("fitted_until", TS),  # exclusive end of the data the fit saw; null = all data
        pa.field("surface", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("examination", pa.float64(), nullable=False),  # P(examined | position), 1 at position 0
        pa.field("impressions", pa.int64(), nullable=False),
        pa.field("clicks", pa.int64(), nullable=False),
        pa.field("click_rate", pa.float64()),
        pa.field("pooled", pa.bool_(), nullable=False),  # shares the tail parameter (too few impressions)
        pa.field("iterations", pa.int32(), nullable=False),
        pa.field("converged", pa.bool_(), nullable=False),
    ],
    key=("split", "surface", "position"),
    not_null=("split", "surface", "position", "examination"),
    description="Examination probability per surface and position from a position-based click model (EM), per split scope.",
)

LABELS_EXPOSURE_PROPENSITIES = _contract(
    Layer.LABELS,
    "exposure_propensities",
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("fitted_until", TS),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("exposures", pa.int64(), nullable=False),  # n_i: impressions, or observed ratings
        pa.field("propensity", pa.float64(), nullable=False),  # (n_i / max n) ** eta
        pa.field("basis", pa.string(), nullable=False),  # impressions | ratings
    ],
    key=("split", "item_id"),
    not_null=("split", "item_id", "exposures", "propensity"),
    description="Item exposure counts and popularity propensities (n_i / max n) ** eta, per split scope.",
)

LABELS_DEBIASED_LABELS = _contract(
    Layer.LABELS,
    "debiased_labels",
    [
        pa.field("request_id", pa.string()),  # null for ratings-only data
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("surface", pa.string()),
        pa.field("position", pa.int32()),
        pa.field("split", pa.string(), nullable=False),  # train | valid | test by the run's cut-offs
        pa.field("observed", pa.int32(), nullable=False),  # Y: clicked, or an observed positive rating
        pa.field("relevance_grade", pa.int32(), nullable=False),
        pa.field("policy_propensity", pa.float64()),  # logged policy probability of the slot, when logged
        pa.field("examination", pa.float64()),  # click-model P(examined | surface, position)
        pa.field("propensity", pa.float64(), nullable=False),  # theta, before clipping
        pa.field("propensity_source", pa.string(), nullable=False),  # logged | click_model | popularity
        pa.field("clipped", pa.bool_(), nullable=False),  # theta < M
        pa.field("ips_weight", pa.float64(), nullable=False),  # 1 / max(theta, M), SNIPS-scaled if asked
        pa.field("weight_positive", pa.float64(), nullable=False),  # Y / theta
        pa.field("weight_negative", pa.float64(), nullable=False),  # 1 - Y / theta (below 0 for positives)
    ],
    partitioned=True,
    key=("request_id", "user_id", "item_id", "position", "ts"),
    not_null=("user_id", "item_id", "ts", "split", "observed", "propensity", "propensity_source", "ips_weight"),
    description="One row per exposure (or observed positive): Y, graded relevance, propensity and its estimator, clipped IPS weights, split.",
)
