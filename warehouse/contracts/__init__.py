"""Table contracts: the Arrow schema, layer, name and keys of every warehouse table, one module per layer.

A contract is the single source of truth for a table's columns and types. Writers cast to it, readers
can rely on it, and the DuckDB catalog names the table's view ``<layer>_<name>``.

Raw log tables are partitioned by ``date`` (the log day, Hive style ``date=YYYY-MM-DD``); the partition
column lives in the directory name, not in the files.

Declare a new table as a module-level ``TableContract`` constant in its layer's module (``all_contracts()``
finds it) and re-export it here, so that ``from warehouse.contracts import X`` keeps working.
"""

from warehouse.contracts.base import PROVENANCE, PROVENANCE_FIELDS, TS, EventType, Layer, TableContract
from warehouse.contracts.core import CORE_ID_MAPS
from warehouse.contracts.enrichment import (
    ENRICHMENT_EMBEDDING_DIM,
    ENRICHMENT_FAILURE_FIELDS,
    ENRICHMENT_ITEM_DESCRIPTION_FAILURES,
    ENRICHMENT_ITEM_DESCRIPTIONS,
    ENRICHMENT_ITEM_EMBEDDINGS,
    ENRICHMENT_PROVENANCE_FIELDS,
    ENRICHMENT_USER_EMBEDDINGS,
    ENRICHMENT_USER_PROFILE_FAILURES,
    ENRICHMENT_USER_PROFILES,
    embedding_contract,
)
from warehouse.contracts.evaluation import EVAL_RANDOM_RATINGS, QUARANTINE_RANDOM_EXPOSURE_RATINGS
from warehouse.contracts.labels import (
    LABELS_DEBIASED_LABELS,
    LABELS_EXPOSURE_PROPENSITIES,
    LABELS_POSITION_BIAS,
)
from warehouse.contracts.models import MODELS_METRICS, MODELS_PROMOTED
from warehouse.contracts.quarantine import QUARANTINE_FIELDS, QUARANTINE_TABLES, quarantine_contract
from warehouse.contracts.raw import (
    RAW_EVENTS,
    RAW_IMPRESSIONS,
    RAW_ITEMS,
    RAW_REVIEWS,
    RAW_SLATES,
    RAW_TABLES,
    RAW_USERS,
)
from warehouse.contracts.registry import LAYER_MODULES, all_contracts, contract_for
from warehouse.contracts.semantic_ids import (
    SEMANTIC_ID_LETTERS,
    SEMANTIC_IDS_CODEBOOKS,
    SEMANTIC_IDS_ID_LOOKUP,
    SEMANTIC_IDS_ID_MAPPING,
    SEMANTIC_IDS_ITEM_SEMANTIC_IDS,
    item_semantic_ids_contract,
    semantic_id_code_columns,
)
from warehouse.contracts.training_data import (
    CORE_INTERACTIONS,
    TRAINING_GRAPH_EDGES,
    TRAINING_GRAPH_NODES,
    TRAINING_ITEM_FREQUENCIES,
    TRAINING_TWO_TOWER_EXAMPLES,
    TRAINING_USER_SEQUENCES,
    TRAINING_WINDOW,
)

__all__ = [
    "CORE_ID_MAPS",
    "CORE_INTERACTIONS",
    "ENRICHMENT_EMBEDDING_DIM",
    "ENRICHMENT_FAILURE_FIELDS",
    "ENRICHMENT_ITEM_DESCRIPTIONS",
    "ENRICHMENT_ITEM_DESCRIPTION_FAILURES",
    "ENRICHMENT_ITEM_EMBEDDINGS",
    "ENRICHMENT_PROVENANCE_FIELDS",
    "ENRICHMENT_USER_EMBEDDINGS",
    "ENRICHMENT_USER_PROFILES",
    "ENRICHMENT_USER_PROFILE_FAILURES",
    "EVAL_RANDOM_RATINGS",
    "LABELS_DEBIASED_LABELS",
    "LABELS_EXPOSURE_PROPENSITIES",
    "LABELS_POSITION_BIAS",
    "LAYER_MODULES",
    "MODELS_METRICS",
    "MODELS_PROMOTED",
    "PROVENANCE",
    "PROVENANCE_FIELDS",
    "QUARANTINE_FIELDS",
    "QUARANTINE_RANDOM_EXPOSURE_RATINGS",
    "QUARANTINE_TABLES",
    "RAW_EVENTS",
    "RAW_IMPRESSIONS",
    "RAW_ITEMS",
    "RAW_REVIEWS",
    "RAW_SLATES",
    "RAW_TABLES",
    "RAW_USERS",
    "SEMANTIC_IDS_CODEBOOKS",
    "SEMANTIC_IDS_ID_LOOKUP",
    "SEMANTIC_IDS_ID_MAPPING",
    "SEMANTIC_IDS_ITEM_SEMANTIC_IDS",
    "SEMANTIC_ID_LETTERS",
    "TRAINING_GRAPH_EDGES",
    "TRAINING_GRAPH_NODES",
    "TRAINING_ITEM_FREQUENCIES",
    "TRAINING_TWO_TOWER_EXAMPLES",
    "TRAINING_USER_SEQUENCES",
    "TRAINING_WINDOW",
    "TS",
    "EventType",
    "Layer",
    "TableContract",
    "all_contracts",
    "contract_for",
    "embedding_contract",
    "item_semantic_ids_contract",
    "quarantine_contract",
    "semantic_id_code_columns",
]
