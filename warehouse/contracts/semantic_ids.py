"""semantic_ids: residual-quantized item IDs (transforms/semantic_ids)."""

from __future__ import annotations

import pyarrow as pa

from warehouse.contracts.base import Layer, TableContract, _contract

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
            pa.field("embedding_source", pa.string()),  # text | cooccurrence | id_hash (where the vector came from)
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
