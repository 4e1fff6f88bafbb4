"""Interactions, user sequences, leakage-free splits, two-tower examples and the HGNN graph.

Every relational step is one SQL definition rendered for DuckDB or Spark through
:class:`transforms.engine.Dialect` (which also covers ordered struct lists, windowed lists, explode
and typed empty lists); parity tests run each on both engines and compare the outputs exactly.

Modules: ``config`` (codes, schemas, the frozen configs), ``interactions`` (dedupe, sessions, dense
ids), ``kcore``, ``inputs`` (registered sources, label weights, semantic IDs, item embeddings, the
k-core and the ``base`` relation), ``splits`` (user sequences and split rows), ``two_tower``,
``graph``; this package re-exports their public names. ``exports`` (HSTU, SASRec, RecBole files),
``window``, ``label_weights`` and ``summaries`` build on them and are imported by their own path.

Correctness does not depend on input order or partitioning (the NVTabular trap): every list is
built with an explicit order key, ``pos``, a per-user ``ROW_NUMBER`` over ``(ts, event_id)``, so ties
in time are broken the same way on every engine, whatever order the rows arrive in.

Leakage rules (DESIGN.md §3.1):

* **Temporal split** at the run's :class:`transforms.cutoffs.Cutoffs` (``train_end <= valid_end``;
  an event's split is ``Cutoffs.split_sql``'s, nowhere spelled again): training rows hold only
  events with ``ts < train_end``; validation rows have that same history and target the events in
  ``[train_end, valid_end)`` (none when the cut-offs are equal); test rows have the history before
  ``valid_end`` and target the events at or after it.
* **Leave-one-out**: per user with ``n >= 3`` events in time order, training holds events
  ``1..n-2``, validation targets event ``n-1`` (history ``1..n-2``), test targets event ``n``
  (history ``1..n-1``).
* Everything derived for training (k-core filtering in the temporal split, two-tower examples, item
  sampling frequencies, graph edges and nodes) reads the **training window** only: ``ts < train_end``
  for temporal splits, each user's ``1..n-2`` prefix for leave-one-out.
"""

from __future__ import annotations

from transforms.sequences.config import (
    EVENT_STRENGTH,
    EVENT_TYPE_BITS,
    EVENT_TYPE_CODES,
    GRAPH_EDGES_SCHEMA,
    GRAPH_NODES_SCHEMA,
    INTERACTIONS_SCHEMA,
    ITEM_CODES_SCHEMA,
    ITEM_EMBEDDINGS_SCHEMA,
    ITEM_FREQUENCIES_SCHEMA,
    LABEL_WEIGHTS_SCHEMA,
    PAD,
    SID_TYPE,
    SPLIT_ROWS_SCHEMA,
    TWO_TOWER_SCHEMA,
    USER_SEQUENCES_SCHEMA,
    SequenceConfig,
    SessionConfig,
    Source,
    SplitConfig,
    SplitKind,
    TwoTowerConfig,
    WeightConfig,
    WeightEstimand,
)
from transforms.sequences.graph import GraphConfig, build_graph
from transforms.sequences.inputs import (
    TIE_ORDER,
    PreparedInputs,
    item_codes_from_semantic_ids,
    item_embeddings_by_idx,
    label_weights_from_debiased,
    prepare,
    register_rows,
    register_source,
    steps_ctes,
    training_core,
    training_pairs,
)
from transforms.sequences.interactions import build_interactions
from transforms.sequences.kcore import KCoreResult, k_core
from transforms.sequences.splits import EVENT_FIELDS, build_splits, build_user_sequences, session_cutoffs
from transforms.sequences.two_tower import build_two_tower_examples, item_frequencies

__all__ = [
    "EVENT_FIELDS",
    "EVENT_STRENGTH",
    "EVENT_TYPE_BITS",
    "EVENT_TYPE_CODES",
    "GRAPH_EDGES_SCHEMA",
    "GRAPH_NODES_SCHEMA",
    "INTERACTIONS_SCHEMA",
    "ITEM_CODES_SCHEMA",
    "ITEM_EMBEDDINGS_SCHEMA",
    "ITEM_FREQUENCIES_SCHEMA",
    "LABEL_WEIGHTS_SCHEMA",
    "PAD",
    "SID_TYPE",
    "SPLIT_ROWS_SCHEMA",
    "TIE_ORDER",
    "TWO_TOWER_SCHEMA",
    "USER_SEQUENCES_SCHEMA",
    "GraphConfig",
    "KCoreResult",
    "PreparedInputs",
    "SequenceConfig",
    "SessionConfig",
    "Source",
    "SplitConfig",
    "SplitKind",
    "TwoTowerConfig",
    "WeightConfig",
    "WeightEstimand",
    "build_graph",
    "build_interactions",
    "build_splits",
    "build_two_tower_examples",
    "build_user_sequences",
    "item_codes_from_semantic_ids",
    "item_embeddings_by_idx",
    "item_frequencies",
    "k_core",
    "label_weights_from_debiased",
    "prepare",
    "register_rows",
    "register_source",
    "session_cutoffs",
    "steps_ctes",
    "training_core",
    "training_pairs",
]
