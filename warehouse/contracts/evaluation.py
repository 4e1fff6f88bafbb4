"""eval: randomly-exposed ratings from public datasets (connectors; never training data)."""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import Layer, _contract
from warehouse.contracts.quarantine import quarantine_contract

EVAL_RANDOM_RATINGS = _contract(
    Layer.EVAL,
    "random_exposure_ratings",
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("rating", pa.float64(), nullable=False),
    ],
    key=("dataset", "user_id", "item_id"),
    not_null=("dataset", "user_id", "item_id", "rating"),
    description="Ratings on randomly exposed items (Coat, Yahoo! R3 test sets): for unbiased evaluation only.",
)

QUARANTINE_RANDOM_EXPOSURE_RATINGS = quarantine_contract(EVAL_RANDOM_RATINGS)
