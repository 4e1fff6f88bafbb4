"""Semantic IDs: residual-quantized item IDs that never collide, map back to their item, and stay
stable across nightly runs (see ``docs/semantic_ids.md``).

Public API::

    SemanticIdConfig, QuantizerKind, Disambiguation, RqVaeConfig     configuration
    build_semantic_ids(item_ids, embeddings, config, available_from=)  train version 1 + assign IDs
    SemanticIdConfig(train_end=...), available_before(...)           train only on items available before the
                                                                     cut-off; encode all (InsufficientTrainingItemsError)
    assign_semantic_ids(codebook, item_ids, embeddings, existing=)   incremental: no retraining
    rebuild_semantic_ids(previous, version, item_ids, embeddings, config)  new version + old->new mapping
    id_lookup(ids), SemanticIdIndex(table)                           inverse lookup ID -> item
    format_semantic_id, parse_semantic_id                            "<a_12><b_7><c_201><d_0>"
    codebook_row, append_codebook, load_codebook, latest_version     versioned storage rows
    semantic_id_report(...)                                          utilization, perplexity, collisions, purity
    item_embeddings, train_next_version, update_semantic_ids         one run of the assets, without Dagster
"""

from transforms.semantic_ids.assign import (
    SemanticIdAssignment,
    StaleSemanticIdsError,
    assign_semantic_ids,
    build_semantic_ids,
    contract_for_codebook,
    id_lookup,
    id_mapping,
    rebuild_semantic_ids,
)
from transforms.semantic_ids.codebook import (
    Codebook,
    InsufficientTrainingItemsError,
    Quantized,
    available_before,
    codes_for_catalog,
    quantize,
    train_codebook,
)
from transforms.semantic_ids.config import Disambiguation, QuantizerKind, RqVaeConfig, SemanticIdConfig
from transforms.semantic_ids.disambiguate import SemanticIdCapacityError
from transforms.semantic_ids.inputs import (
    ItemEmbeddings,
    SemanticIdInputsError,
    TrainingRows,
    item_embeddings,
)
from transforms.semantic_ids.metrics import SemanticIdReport, semantic_id_report
from transforms.semantic_ids.nightly import IdUpdate, TrainedVersion, train_next_version, update_semantic_ids
from transforms.semantic_ids.storage import append_codebook, codebook_row, latest_version, load_codebook
from transforms.semantic_ids.tokens import (
    SemanticIdIndex,
    codes_matrix,
    format_semantic_id,
    parse_semantic_id,
    semantic_id_strings,
)

__all__ = [
    "Codebook",
    "Disambiguation",
    "IdUpdate",
    "InsufficientTrainingItemsError",
    "ItemEmbeddings",
    "Quantized",
    "QuantizerKind",
    "RqVaeConfig",
    "SemanticIdAssignment",
    "SemanticIdCapacityError",
    "SemanticIdConfig",
    "SemanticIdIndex",
    "SemanticIdInputsError",
    "SemanticIdReport",
    "StaleSemanticIdsError",
    "TrainedVersion",
    "TrainingRows",
    "append_codebook",
    "assign_semantic_ids",
    "available_before",
    "build_semantic_ids",
    "codebook_row",
    "codes_for_catalog",
    "codes_matrix",
    "contract_for_codebook",
    "format_semantic_id",
    "id_lookup",
    "id_mapping",
    "item_embeddings",
    "latest_version",
    "load_codebook",
    "parse_semantic_id",
    "quantize",
    "rebuild_semantic_ids",
    "semantic_id_report",
    "semantic_id_strings",
    "train_codebook",
    "train_next_version",
    "update_semantic_ids",
]
