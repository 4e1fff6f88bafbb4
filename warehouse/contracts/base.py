"""The shared types of the table contracts: layers, event types, the timestamp type, ``TableContract``.

A contract is the single source of truth for a table's columns and types. Writers cast to it, readers
can rely on it, and the DuckDB catalog names the table's view ``<layer>_<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa


class Layer(StrEnum):
    """Warehouse layers, in data-flow order."""

    RAW = "raw"
    QUARANTINE = "quarantine"
    CORE = "core"
    LABELS = "labels"
    ENRICHMENT = "enrichment"
    SEMANTIC_IDS = "semantic_ids"
    TRAINING_DATA = "training_data"
    MODELS = "models"
    EVAL = "eval"


class EventType(StrEnum):
    """Event types the events table accepts; anything else is quarantined."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    PLAY = "play"
    SKIP = "skip"
    RATING = "rating"
    SEARCH = "search"
    LIKE = "like"
    SHARE = "share"


TS = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True)
class TableContract:
    """What a warehouse table is.

    Attributes:
        layer: The layer the table belongs to.
        name: Table name inside the layer.
        schema: Exact Arrow schema of the stored files (without the partition column).
        partitioned: True when the table is split into daily ``date=`` partitions.
        key: Columns that identify a row (checked for uniqueness).
        description: One line for the catalog and the Dagster UI.
        optional: Columns a writer may leave out; they are stored as nulls (the provenance columns of
            rows built in memory rather than read from a file).
    """

    layer: Layer
    name: str
    schema: pa.Schema
    partitioned: bool = False
    key: tuple[str, ...] = ()
    description: str = ""
    not_null: tuple[str, ...] = field(default=())
    optional: tuple[str, ...] = field(default=())

    @property
    def view_name(self) -> str:
        """Name of the table's view in the DuckDB catalog."""
        return f"{self.layer.value}_{self.name}"

    @property
    def path_parts(self) -> tuple[str, str]:
        return (self.layer.value, self.name)


PROVENANCE_FIELDS = (pa.field("source_file", pa.string()), pa.field("line_no", pa.int64()))
"""Where a raw row came from: the file it was read from (``<dataset>/<path>`` or the landing file) and its
1-based line (row) number. Rows logged at the same millisecond keep this order downstream, and a
re-ingest of the same file reproduces them exactly. Null for rows built in memory."""

PROVENANCE = tuple(f.name for f in PROVENANCE_FIELDS)


def _contract(layer: Layer, name: str, fields: list[pa.Field], **kwargs: object) -> TableContract:
    return TableContract(layer=layer, name=name, schema=pa.schema(fields), **kwargs)  # type: ignore[arg-type]
