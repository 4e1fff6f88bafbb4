"""core: stable dense ids (the interactions table is declared with the training data, which it feeds)."""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import TS, Layer, _contract

CORE_ID_MAPS = _contract(
    Layer.CORE,
    "id_maps",
    [
        pa.field("entity", pa.string(), nullable=False),  # "user" | "item"
        pa.field("external_id", pa.string(), nullable=False),
        pa.field("idx", pa.int64(), nullable=False),
        pa.field("first_seen", TS),
    ],
    key=("entity", "external_id"),
    not_null=("entity", "external_id", "idx"),
    description="Stable dense integer ids: appended to, never renumbered; the external id is kept.",
)
