"""enrichment: LLM/extractive item descriptions and user profiles, text embeddings."""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import TS, Layer, TableContract, _contract

# Provenance carried by every generated row: which generator and model, which prompt, of which input.
# ``generated_at`` is the time of the ORIGINAL generation: a cached row keeps it, so a rerun with
# nothing changed rewrites identical bytes (DESIGN.md rule 2).
ENRICHMENT_PROVENANCE_FIELDS = [
    pa.field("generator_kind", pa.string(), nullable=False),  # openai_http | local_transformers | extractive
    pa.field("model", pa.string(), nullable=False),
    pa.field("prompt_version", pa.string(), nullable=False),
    pa.field("input_hash", pa.string(), nullable=False),
    pa.field("cache_key", pa.string(), nullable=False),  # hash of (input_hash, prompt_version, model, settings)
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
        pa.field("stale", pa.bool_()),  # true: the latest regeneration failed, this is the previous output
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
        pa.field("stale", pa.bool_()),  # true: the latest regeneration failed, this is the previous output
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
