"""raw: staged logs, typed and deduplicated.

Raw log tables are partitioned by ``date`` (the log day, Hive style ``date=YYYY-MM-DD``); the partition
column lives in the directory name, not in the files. Each log row keeps its provenance
(``source_file``, ``line_no``: :data:`~warehouse.contracts.base.PROVENANCE_FIELDS`).
"""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import PROVENANCE, PROVENANCE_FIELDS, TS, Layer, TableContract, _contract

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
        *PROVENANCE_FIELDS,
    ],
    partitioned=True,
    optional=PROVENANCE,
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
        *PROVENANCE_FIELDS,
    ],
    partitioned=True,
    optional=PROVENANCE,
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
        *PROVENANCE_FIELDS,
    ],
    partitioned=True,
    optional=PROVENANCE,
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
        *PROVENANCE_FIELDS,
    ],
    partitioned=True,
    optional=PROVENANCE,
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
