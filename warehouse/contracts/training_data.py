"""core/interactions and training_data (transforms/sequences/, warehouse/shards.py)."""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import PROVENANCE, PROVENANCE_FIELDS, TS, Layer, _contract

CORE_INTERACTIONS = _contract(
    Layer.CORE,
    "interactions",
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_idx", pa.int64(), nullable=False),
        pa.field("item_idx", pa.int64(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("request_id", pa.string()),
        pa.field("surface", pa.string()),  # surface of the slate the event came from, when known
        pa.field("session_id", pa.string(), nullable=False),  # logged id, or gap:<user_id>:<n>
        pa.field("session_index", pa.int32(), nullable=False),  # 0-based, per user, by session start
        pa.field("session_length", pa.int32(), nullable=False),
        pa.field("session_duration_ms", pa.int64(), nullable=False),
        pa.field("session_surface", pa.string()),  # surface of the session's first event that has one
        *PROVENANCE_FIELDS,  # the raw event's file and line: the order of events at the same millisecond
    ],
    key=("event_id",),
    not_null=("event_id", "user_idx", "item_idx", "ts", "event_type", "session_id"),
    optional=PROVENANCE,
    description="Unified, deduplicated, sessionized item events with dense ids and session features.",
)

TRAINING_WINDOW = _contract(
    Layer.TRAINING_DATA,
    "training_window",
    [
        *CORE_INTERACTIONS.schema,
        pa.field("label_weight", pa.float64()),  # debiased label weight; null without one (weighs 1)
        pa.field("semantic_id", pa.list_(pa.int32())),  # the item's semantic-ID codes, when built
    ],
    key=("event_id",),
    not_null=CORE_INTERACTIONS.not_null,
    optional=CORE_INTERACTIONS.optional,
    description="The interactions the training data is built from: k-cored on the training window, with label weights and semantic IDs.",
)

TRAINING_USER_SEQUENCES = _contract(
    Layer.TRAINING_DATA,
    "user_sequences",
    [
        pa.field("user_idx", pa.int64(), nullable=False),
        pa.field("item_ids", pa.list_(pa.int64()), nullable=False),  # oldest first
        pa.field("event_types", pa.list_(pa.int8()), nullable=False),  # transforms.sequences.EVENT_TYPE_CODES
        pa.field("timestamps", pa.list_(pa.int64()), nullable=False),  # epoch milliseconds
        pa.field("weights", pa.list_(pa.float32()), nullable=False),  # debiased label weight per event (1 without one)
        pa.field("semantic_ids", pa.list_(pa.list_(pa.int32()))),  # per event, the item's semantic-ID codes
        pa.field("length", pa.int32(), nullable=False),
        pa.field("total_events", pa.int64(), nullable=False),  # before truncation to max_len
    ],
    key=("user_idx",),
    not_null=("user_idx", "item_ids", "length"),
    description="Per user, the time-ordered interactions (most recent max_len), with event types, timestamps, label weights, semantic IDs.",
)

TRAINING_TWO_TOWER_EXAMPLES = _contract(
    Layer.TRAINING_DATA,
    "two_tower_examples",
    [
        pa.field("user_idx", pa.int64(), nullable=False),
        pa.field("history_item_ids", pa.list_(pa.int64()), nullable=False),  # most recent last
        pa.field("history_length", pa.int32(), nullable=False),
        pa.field("user_prior_events", pa.int64(), nullable=False),
        pa.field("surface", pa.string()),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("item_idx", pa.int64(), nullable=False),  # the positive
        pa.field("weight", pa.float32(), nullable=False),
        pa.field("ts", TS, nullable=False),
    ],
    not_null=("user_idx", "item_idx", "weight", "ts"),
    description="Two-tower training rows from the training window: user history, positive item, label weight.",
)

TRAINING_ITEM_FREQUENCIES = _contract(
    Layer.TRAINING_DATA,
    "item_frequencies",
    [
        pa.field("item_idx", pa.int64(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("probability", pa.float64(), nullable=False),
    ],
    key=("item_idx",),
    not_null=("item_idx", "count", "probability"),
    description="Each item's share of the two-tower positives (training window): the sampling probability for log-Q correction.",
)

TRAINING_GRAPH_NODES = _contract(
    Layer.TRAINING_DATA,
    "graph_nodes",
    [
        pa.field("node_type", pa.string(), nullable=False),  # user | item | category | brand
        pa.field("node_idx", pa.int64(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32())),  # items: text embedding when built
    ],
    key=("node_type", "node_idx"),
    not_null=("node_type", "node_idx", "name"),
    description="Heterogeneous graph nodes (users, items, categories, brands) from the training window.",
)

TRAINING_GRAPH_EDGES = _contract(
    Layer.TRAINING_DATA,
    "graph_edges",
    [
        pa.field("edge_type", pa.string(), nullable=False),  # user_item:<event_type> | item_item:co_session | item_category | item_brand
        pa.field("src_type", pa.string(), nullable=False),
        pa.field("src_idx", pa.int64(), nullable=False),
        pa.field("dst_type", pa.string(), nullable=False),
        pa.field("dst_idx", pa.int64(), nullable=False),
        pa.field("weight", pa.float64(), nullable=False),
    ],
    key=("edge_type", "src_idx", "dst_idx"),
    not_null=("edge_type", "src_idx", "dst_idx", "weight"),
    description="Heterogeneous graph edges from the training window only (user-item by event type, co-session, content).",
)
