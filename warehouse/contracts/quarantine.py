"""quarantine: one table per raw table, same partitioning."""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import Layer, TableContract, _contract
from warehouse.contracts.raw import RAW_TABLES

QUARANTINE_FIELDS = [
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("line_no", pa.int64(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("line", pa.string()),
]


def quarantine_contract(raw: TableContract) -> TableContract:
    """The quarantine table that holds the rejected rows of ``raw``."""
    return _contract(
        Layer.QUARANTINE,
        raw.name,
        list(QUARANTINE_FIELDS),
        partitioned=raw.partitioned,
        key=("source_file", "line_no"),
        description=f"Rejected input rows of raw_{raw.name}, with the reason and the source location.",
    )


QUARANTINE_TABLES = tuple(quarantine_contract(t) for t in RAW_TABLES)
