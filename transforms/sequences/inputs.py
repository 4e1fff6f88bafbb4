"""Preparing the inputs of the sequence builders: registered sources, label weights, semantic IDs,
item embeddings, the k-core of the training window and the ``base`` relation every builder reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from transforms.cutoffs import Cutoffs, Split
from transforms.engine import Dialect, Engine
from transforms.sequences.config import (
    EVENT_TYPE_CODES,
    ITEM_CODES_SCHEMA,
    ITEM_EMBEDDINGS_SCHEMA,
    LABEL_WEIGHTS_SCHEMA,
    PAD,
    SequenceConfig,
    Source,
    SplitConfig,
    _conform,
)
from transforms.sequences.kcore import KCoreResult, k_core

# --- prepared inputs and the base relation -----------------------------------------------------------


@dataclass(frozen=True)
class PreparedInputs:
    """What :func:`prepare` registered, for the builders that follow."""

    split: SplitConfig | None
    config: SequenceConfig
    has_semantic_ids: bool
    k_core: KCoreResult | None


def prepare(
    engine: Engine,
    interactions: Source,
    config: SequenceConfig,
    split: SplitConfig | None = None,
    label_weights: pa.Table | None = None,
    item_codes: pa.Table | None = None,
) -> PreparedInputs:
    """Register the inputs of the sequence builders and run the k-core filter (on the training window).

    Args:
        engine: DuckDB or Spark.
        interactions: Rows of :data:`INTERACTIONS_SCHEMA` (a table or its Parquet files).
        config: Sequence settings.
        split: The split whose training window the k-core is computed on (None: all events).
        label_weights: ``event_id, weight`` (:data:`LABEL_WEIGHTS_SCHEMA`) from the debiased labels;
            events without one weigh 1.
        item_codes: ``item_idx, codes`` (:data:`ITEM_CODES_SCHEMA`): semantic IDs, if built.
    """
    register_source(engine, "seq_interactions", interactions)
    weights = label_weights if label_weights is not None else LABEL_WEIGHTS_SCHEMA.empty_table()
    engine.register_arrow("seq_label_weights", weights.select(LABEL_WEIGHTS_SCHEMA.names).cast(LABEL_WEIGHTS_SCHEMA))
    codes = item_codes if item_codes is not None else ITEM_CODES_SCHEMA.empty_table()
    engine.register_arrow("seq_item_codes", codes.select(ITEM_CODES_SCHEMA.names).cast(ITEM_CODES_SCHEMA))
    core = None
    if config.k_core is not None:
        window = "TRUE"
        if split is not None and split.cutoffs is not None:
            window = _in_train(split.cutoffs, engine.dialect.epoch_ms("ts"))
        pairs = engine.query(
            f"SELECT DISTINCT user_idx, item_idx FROM seq_interactions WHERE {window} AND {_event_filter(config)}"
        )
        core = k_core(engine, pairs, config.k_core)
        engine.register_arrow("seq_core_users", core.users)
        engine.register_arrow("seq_core_items", core.items)
    return PreparedInputs(split, config, item_codes is not None, core)


def _in_train(cutoffs: Cutoffs, ts_ms: str) -> str:
    """SQL: the event at ``ts_ms`` (epoch milliseconds) is in the train split of ``cutoffs``."""
    return f"{cutoffs.split_sql(ts_ms, epoch_ms=True)} = '{Split.TRAIN}'"


def _event_filter(config: SequenceConfig, column: str = "event_type") -> str:
    if config.event_types is None:
        return "TRUE"
    names = ", ".join(f"'{e.value}'" for e in config.event_types)
    return f"{column} IN ({names})"


def _event_code(column: str) -> str:
    whens = " ".join(f"WHEN '{name}' THEN {code}" for name, code in EVENT_TYPE_CODES.items())
    return f"CAST(CASE {column} {whens} ELSE {PAD} END AS INT)"


def _base_cte(d: Dialect, prep: PreparedInputs) -> str:
    """``base``: the kept events with position ``pos`` (1-based, per user, by time then event id),
    the user's event count ``n`` and the training-window flag ``in_train``."""
    core_join = ""
    if prep.k_core is not None:
        core_join = (
            "JOIN seq_core_users cu ON cu.user_idx = i.user_idx JOIN seq_core_items ci ON ci.item_idx = i.item_idx"
        )
    sid = "c.codes" if prep.has_semantic_ids else d.null_list("INT", 1)
    split = prep.split
    if split is None:
        in_train = "TRUE"
    elif split.cutoffs is not None:
        in_train = _in_train(split.cutoffs, "ts_ms")
    else:
        in_train = "pos <= n - 2"
    return f"""
filtered AS (
    SELECT i.event_id, i.user_idx, i.item_idx, {d.epoch_ms("i.ts")} AS ts_ms, i.ts, i.event_type,
           {_event_code("i.event_type")} AS event_code, i.session_id, i.session_surface,
           CAST(COALESCE(w.weight, 1.0) AS DOUBLE) AS weight, {sid} AS codes
    FROM seq_interactions i
    {core_join}
    LEFT JOIN seq_label_weights w ON w.event_id = i.event_id
    LEFT JOIN seq_item_codes c ON c.item_idx = i.item_idx
    WHERE {_event_filter(prep.config, "i.event_type")}
),
positioned AS (
    SELECT f.*, ROW_NUMBER() OVER (PARTITION BY user_idx ORDER BY ts_ms, event_id) AS pos,
           COUNT(*) OVER (PARTITION BY user_idx) AS n
    FROM filtered f
),
base AS (
    SELECT p.*, CASE WHEN {in_train} THEN 1 ELSE 0 END AS in_train FROM positioned p
)"""



# --- optional inputs: debiased labels, semantic IDs, item embeddings ----------------------------------


def label_weights_from_debiased(engine: Engine, interactions: Source, labels: Source) -> pa.Table:
    """Each interaction's weight from the debiased labels (``labels_debiased_labels``).

    An event matches the label rows of its observed positive: same request, user and item (slate
    logs), or, for ratings-only data without requests, same user, item and timestamp. Its weight is
    the clipped inverse-propensity weight ``ips_weight`` (the mean, if several slots match).

    Returns:
        ``event_id, weight`` rows (:data:`LABEL_WEIGHTS_SCHEMA`) for the events that have a label.
    """
    register_source(engine, "lw_events", interactions)
    register_source(engine, "lw_labels", labels)
    result = engine.query(
        """
WITH matched AS (
    SELECT e.event_id, l.ips_weight FROM lw_events e
    JOIN lw_labels l ON l.request_id = e.request_id AND l.user_id = e.user_id AND l.item_id = e.item_id
    WHERE l.observed = 1
    UNION ALL
    SELECT e.event_id, l.ips_weight FROM lw_events e
    JOIN lw_labels l ON l.user_id = e.user_id AND l.item_id = e.item_id AND l.ts = e.ts
    WHERE l.observed = 1 AND l.request_id IS NULL AND e.request_id IS NULL
)
SELECT event_id, AVG(ips_weight) AS weight FROM matched GROUP BY event_id ORDER BY event_id
"""
    )
    return _conform(result, LABEL_WEIGHTS_SCHEMA)


def _by_item_idx(table: pa.Table, id_maps: pa.Table) -> pa.Table:
    """``table`` with an ``item_idx`` column: kept when present, else joined from the id map on ``item_id``."""
    if "item_idx" in table.column_names:
        return table
    items = id_maps.filter(pc.equal(id_maps["entity"], "item"))
    position = pc.index_in(table["item_id"], value_set=items["external_id"].combine_chunks())
    known = pc.is_valid(position)
    table = table.filter(known)
    return table.append_column("item_idx", items["idx"].take(position.filter(known)))


def item_codes_from_semantic_ids(semantic_ids: pa.Table, id_maps: pa.Table) -> pa.Table:
    """``item_idx, codes`` from a semantic-ID table keyed by ``item_id`` (or ``item_idx``) with a
    ``codes`` list column (``semantic_id`` is accepted as its name too)."""
    table = _by_item_idx(semantic_ids, id_maps)
    column = "codes" if "codes" in table.column_names else "semantic_id"
    if column not in table.column_names:
        raise ValueError(f"semantic-ID table has no codes column (expected 'codes'); got {table.column_names}")
    codes = table[column]
    if pa.types.is_fixed_size_list(codes.type):
        codes = codes.cast(pa.list_(codes.type.value_type))
    out = pa.table({"item_idx": table["item_idx"], "codes": codes})
    return out.select(ITEM_CODES_SCHEMA.names).cast(ITEM_CODES_SCHEMA).sort_by("item_idx")


def item_embeddings_by_idx(embeddings: pa.Table, id_maps: pa.Table) -> pa.Table:
    """``item_idx, embedding`` (variable-size float32 lists) from ``enrichment_item_embeddings``."""
    table = _by_item_idx(embeddings, id_maps)
    vectors = table["embedding"]
    if pa.types.is_fixed_size_list(vectors.type):
        vectors = vectors.cast(pa.list_(pa.float32()))
    out = pa.table({"item_idx": table["item_idx"], "embedding": vectors})
    return out.cast(ITEM_EMBEDDINGS_SCHEMA).sort_by("item_idx")



# --- small helpers -----------------------------------------------------------------------------------


def register_source(engine: Engine, name: str, source: Source) -> None:
    """Register an Arrow table, or Parquet files read in place (nothing loaded into Python memory)."""
    if isinstance(source, pa.Table):
        engine.register_arrow(name, source)
    else:
        engine.register_parquet(name, [Path(p) for p in source])
