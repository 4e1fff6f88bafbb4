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

# --- eval: randomly-exposed ratings from public datasets (connectors; never training data) -------------

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

# --- enrichment: LLM/extractive item descriptions and user profiles, text embeddings ------------------

# Provenance carried by every generated row: which generator and model, which prompt, of which input.
# ``generated_at`` is the time of the ORIGINAL generation: a cached row keeps it, so a rerun with
# nothing changed rewrites identical bytes (DESIGN.md rule 2).
ENRICHMENT_PROVENANCE_FIELDS = [
    pa.field("generator_kind", pa.string(), nullable=False),  # openai_http | local_transformers | extractive
    pa.field("model", pa.string(), nullable=False),
    pa.field("prompt_version", pa.string(), nullable=False),
    pa.field("input_hash", pa.string(), nullable=False),
    pa.field("cache_key", pa.string(), nullable=False),  # hash of (input_hash, prompt_version, model)
    pa.field("generated_at", TS, nullable=False),
    pa.field("prompt_tokens", pa.int64(), nullable=False),
    pa.field("completion_tokens", pa.int64(), nullable=False),
    pa.field("cost_usd", pa.float64(), nullable=False),
]

ENRICHMENT_FAILURE_FIELDS = [
    pa.field("generator_kind", pa.string(), nullable=False),
    pa.field("model", pa.string(), nullable=False),
    pa.field("prompt_version", pa.string(), nullable=False),
    pa.field("input_hash", pa.string(), nullable=False),
    pa.field("failure_kind", pa.string(), nullable=False),  # see transforms.enrichment.types.FailureKind
    pa.field("error", pa.string(), nullable=False),
    pa.field("attempts", pa.int64(), nullable=False),
    pa.field("prompt_tokens", pa.int64(), nullable=False),
    pa.field("completion_tokens", pa.int64(), nullable=False),
    pa.field("cost_usd", pa.float64(), nullable=False),
    pa.field("failed_at", TS, nullable=False),
]

ENRICHMENT_ITEM_DESCRIPTIONS = _contract(
    Layer.ENRICHMENT,
    "item_descriptions",
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("highlights", pa.list_(pa.string()), nullable=False),
        *ENRICHMENT_PROVENANCE_FIELDS,
    ],
    key=("item_id",),
    not_null=("item_id", "description", "model", "prompt_version", "input_hash"),
    description="Item descriptions from catalog fields and pre-cut-off reviews (LLM or extractive), with provenance.",
)

ENRICHMENT_USER_PROFILES = _contract(
    Layer.ENRICHMENT,
    "user_profiles",
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("profile", pa.string(), nullable=False),
        pa.field("likes", pa.list_(pa.string()), nullable=False),
        pa.field("dislikes", pa.list_(pa.string()), nullable=False),
        pa.field("intents", pa.list_(pa.string()), nullable=False),
        pa.field("cutoff", TS, nullable=False),
        *ENRICHMENT_PROVENANCE_FIELDS,
    ],
    key=("user_id",),
    not_null=("user_id", "profile", "cutoff", "model", "prompt_version", "input_hash"),
    description="User preference profiles from history strictly before the training cut-off, with provenance.",
)

ENRICHMENT_ITEM_DESCRIPTION_FAILURES = _contract(
    Layer.ENRICHMENT,
    "item_description_failures",
    [pa.field("item_id", pa.string(), nullable=False), *ENRICHMENT_FAILURE_FIELDS],
    key=("item_id",),
    not_null=("item_id", "failure_kind", "error"),
    description="Items whose description failed after retries in the latest run, with the error.",
)

ENRICHMENT_USER_PROFILE_FAILURES = _contract(
    Layer.ENRICHMENT,
    "user_profile_failures",
    [pa.field("user_id", pa.string(), nullable=False), *ENRICHMENT_FAILURE_FIELDS],
    key=("user_id",),
    not_null=("user_id", "failure_kind", "error"),
    description="Users whose profile failed after retries in the latest run, with the error.",
)

ENRICHMENT_EMBEDDING_DIM = 384  # all-MiniLM-L6-v2, the default embedding model


def embedding_contract(entity: str, dim: int = ENRICHMENT_EMBEDDING_DIM) -> TableContract:
    """Contract of ``enrichment_<entity>_embeddings`` for vectors of ``dim`` (384 for the default model).

    Columns: ``<entity>_id`` string, ``embedding`` fixed_size_list<float32>[dim] (L2-normalised),
    ``text_hash`` string (SHA-256 of the embedded text), ``model`` string.
    """
    return _contract(
        Layer.ENRICHMENT,
        f"{entity}_embeddings",
        [
            pa.field(f"{entity}_id", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False),
            pa.field("text_hash", pa.string(), nullable=False),
            pa.field("model", pa.string(), nullable=False),
        ],
        key=(f"{entity}_id",),
        not_null=(f"{entity}_id", "embedding", "text_hash", "model"),
        description=f"Normalised float32 sentence embeddings of each {entity}'s generated text, cached by text hash.",
    )


ENRICHMENT_ITEM_EMBEDDINGS = embedding_contract("item")
ENRICHMENT_USER_EMBEDDINGS = embedding_contract("user")

# --- labels: MNAR-debiased labels (transforms/labels/) ---------------------------------------------

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

# --- core/interactions and training_data (transforms/sequences/, warehouse/shards.py) ----------------

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
    ],
    key=("event_id",),
    not_null=("event_id", "user_idx", "item_idx", "ts", "event_type", "session_id"),
    description="Unified, deduplicated, sessionized item events with dense ids and session features.",
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

# --- semantic_ids: residual-quantized item IDs (transforms/semantic_ids) --------------------------------

# Level letters of a semantic ID: token ``<a_12><b_7><c_201><d_0>``, columns code_a, code_b, ...
SEMANTIC_ID_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def semantic_id_code_columns(id_length: int) -> list[str]:
    """Per-level code columns of an item_semantic_ids table whose IDs have ``id_length`` codes."""
    return [f"code_{SEMANTIC_ID_LETTERS[i]}" for i in range(id_length)]


SEMANTIC_IDS_CODEBOOKS = _contract(
    Layer.SEMANTIC_IDS,
    "codebooks",
    [
        pa.field("version", pa.int32(), nullable=False),
        pa.field("parent_version", pa.int32()),  # the version a full rebuild replaced
        pa.field("quantizer", pa.string(), nullable=False),  # residual_kmeans | rq_vae
        pa.field("levels", pa.int32(), nullable=False),
        pa.field("codes_per_level", pa.int32(), nullable=False),
        pa.field("id_length", pa.int32(), nullable=False),  # levels, plus one with the extra disambiguating level
        pa.field("disambiguation", pa.string(), nullable=False),  # extra_level | reassign_last
        pa.field("embedding_dim", pa.int32(), nullable=False),
        pa.field("code_dim", pa.int32(), nullable=False),  # = embedding_dim for k-means, the latent size for RQ-VAE
        pa.field("embedding_model", pa.string()),
        pa.field("trained_items", pa.int64(), nullable=False),
        pa.field("input_fingerprint", pa.string(), nullable=False),
        pa.field("config", pa.string(), nullable=False),  # JSON of SemanticIdConfig: what loading uses
        pa.field("centroids", pa.list_(pa.list_(pa.list_(pa.float32()))), nullable=False),  # level -> code -> vector
        pa.field("code_bias", pa.list_(pa.list_(pa.float32())), nullable=False),  # level -> code (balanced offsets)
        pa.field("networks", pa.binary()),  # RQ-VAE encoder + decoder weights; null for residual k-means
    ],
    key=("version",),
    not_null=("version", "quantizer", "levels", "codes_per_level", "config", "centroids"),
    description="Semantic-ID codebooks, one immutable row per version; IDs are only comparable within a version.",
)


def item_semantic_ids_contract(id_length: int = 4) -> TableContract:
    """The item -> semantic ID table for IDs of ``id_length`` codes (default: 3 levels + 1 disambiguating)."""
    return _contract(
        Layer.SEMANTIC_IDS,
        "item_semantic_ids",
        [
            pa.field("item_id", pa.string(), nullable=False),
            pa.field("semantic_id", pa.string(), nullable=False),  # <a_12><b_7><c_201><d_0>
            pa.field("codes", pa.list_(pa.int32()), nullable=False),
            *[pa.field(c, pa.int32(), nullable=False) for c in semantic_id_code_columns(id_length)],
            pa.field("codebook_version", pa.int32(), nullable=False),
            pa.field("text_hash", pa.string()),  # hash of the text whose embedding was encoded
        ],
        key=("item_id",),
        not_null=("item_id", "semantic_id", "codes", "codebook_version"),
        description="Each item's semantic ID (codes per level and token string); never changes within a codebook version.",
    )


SEMANTIC_IDS_ITEM_SEMANTIC_IDS = item_semantic_ids_contract(4)

SEMANTIC_IDS_ID_LOOKUP = _contract(
    Layer.SEMANTIC_IDS,
    "id_lookup",
    [
        pa.field("semantic_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("codes", pa.list_(pa.int32()), nullable=False),
        pa.field("codebook_version", pa.int32(), nullable=False),
    ],
    key=("semantic_id",),
    not_null=("semantic_id", "item_id", "codes", "codebook_version"),
    description="Inverse lookup semantic ID -> item, sorted by codes so that a prefix is one contiguous range.",
)

SEMANTIC_IDS_ID_MAPPING = _contract(
    Layer.SEMANTIC_IDS,
    "id_mapping",
    [
        pa.field("from_version", pa.int32(), nullable=False),
        pa.field("to_version", pa.int32(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("old_semantic_id", pa.string()),  # null: the item is new in to_version
        pa.field("new_semantic_id", pa.string()),  # null: the item has no embedding any more
        pa.field("old_codes", pa.list_(pa.int32())),
        pa.field("new_codes", pa.list_(pa.int32())),
    ],
    key=("to_version", "item_id"),
    not_null=("from_version", "to_version", "item_id"),
    description="Old -> new semantic ID of every item, written by each explicit full rebuild of the codebooks.",
)
