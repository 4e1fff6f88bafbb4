"""Table contracts: the Arrow schema, layer, name and keys of every warehouse table, in one module.

A contract is the single source of truth for a table's columns and types. Writers cast to it, readers
can rely on it, and the DuckDB catalog names the table's view ``<layer>_<name>``.

Raw log tables are partitioned by ``date`` (the log day, Hive style ``date=YYYY-MM-DD``); the partition
column lives in the directory name, not in the files.
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
    """

    layer: Layer
    name: str
    schema: pa.Schema
    partitioned: bool = False
    key: tuple[str, ...] = ()
    description: str = ""
    not_null: tuple[str, ...] = field(default=())

    @property
    def view_name(self) -> str:
        """Name of the table's view in the DuckDB catalog."""
        return f"{self.layer.value}_{self.name}"

    @property
    def path_parts(self) -> tuple[str, str]:
        return (self.layer.value, self.name)


def _contract(layer: Layer, name: str, fields: list[pa.Field], **kwargs: object) -> TableContract:
    return TableContract(layer=layer, name=name, schema=pa.schema(fields), **kwargs)  # type: ignore[arg-type]


# --- raw: staged logs, typed and deduplicated --------------------------------------------------------

RAW_SLATES = _contract(
    Layer.RAW,
    "slates",
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("surface", pa.string()),
        pa.field("item_ids", pa.list_(pa.string()), nullable=False),
        pa.field("policy", pa.string()),
        pa.field("propensities", pa.list_(pa.float64())),
    ],
    partitioned=True,
    key=("request_id",),
    not_null=("request_id", "user_id", "ts", "item_ids"),
    description="Served slates: one row per request, items in slot order, logged per-slot propensities.",
)

RAW_IMPRESSIONS = _contract(
    Layer.RAW,
    "impressions",
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("propensity", pa.float64()),
    ],
    partitioned=True,
    key=("request_id", "item_id", "position"),
    not_null=("request_id", "user_id", "item_id", "position", "ts"),
    description="What was rendered in the viewport: one row per (request, item, position).",
)

RAW_EVENTS = _contract(
    Layer.RAW,
    "events",
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("item_id", pa.string()),
        pa.field("request_id", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("session_id", pa.string()),
    ],
    partitioned=True,
    key=("event_id",),
    not_null=("event_id", "user_id", "ts", "event_type"),
    description="User activity, one row per event (view, click, add_to_cart, purchase, rating, ...).",
)

RAW_REVIEWS = _contract(
    Layer.RAW,
    "reviews",
    [
        pa.field("review_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("rating", pa.float64()),
        pa.field("title", pa.string()),
        pa.field("text", pa.string()),
        pa.field("helpful_votes", pa.int64()),
    ],
    partitioned=True,
    key=("review_id",),
    not_null=("review_id", "user_id", "item_id", "ts"),
    description="Reviews with rating, title, text and helpful votes.",
)

RAW_ITEMS = _contract(
    Layer.RAW,
    "items",
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("description", pa.string()),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("brand", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("attributes", pa.string()),  # a JSON object as text: free-form, engine-portable
        pa.field("available_from", TS),
    ],
    key=("item_id",),
    not_null=("item_id",),
    description="Item catalog snapshot.",
)

RAW_USERS = _contract(
    Layer.RAW,
    "users",
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("attributes", pa.string()),  # a JSON object as text
    ],
    key=("user_id",),
    not_null=("user_id",),
    description="Users and their optional attributes.",
)

RAW_TABLES: tuple[TableContract, ...] = (
    RAW_SLATES,
    RAW_IMPRESSIONS,
    RAW_EVENTS,
    RAW_REVIEWS,
    RAW_ITEMS,
    RAW_USERS,
)

# --- quarantine: one table per raw table, same partitioning --------------------------------------------

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

# --- core -------------------------------------------------------------------------------------------

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


def all_contracts() -> tuple[TableContract, ...]:
    """Every contract declared in this module (found by type, so a new table needs no registration)."""
    return tuple(v for v in globals().values() if isinstance(v, TableContract)) + QUARANTINE_TABLES


def contract_for(layer: str, name: str) -> TableContract:
    """Look a contract up by layer and name."""
    for c in all_contracts():
        if c.layer.value == layer and c.name == name:
            return c
    raise KeyError(f"no table contract for {layer}/{name}")


# Contracts of later layers follow, one section per layer. Declare each table as a module-level
# TableContract constant; all_contracts() finds it.
