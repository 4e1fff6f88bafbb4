"""Preparing the inputs of the sequence builders: registered sources, label weights, semantic IDs,
item embeddings, the k-core of the training window and the ``base`` relation every builder reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from transforms.cutoffs import Cutoffs, Split
from transforms.engine import Dialect, Engine
from transforms.sequences.config import (
    EVENT_STRENGTH,
    EVENT_TYPE_BITS,
    EVENT_TYPE_CODES,
    ITEM_CODES_SCHEMA,
    ITEM_EMBEDDINGS_SCHEMA,
    LABEL_WEIGHTS_SCHEMA,
    PAD,
    SequenceConfig,
    Source,
    SplitConfig,
    SplitKind,
    _conform,
)
from transforms.sequences.kcore import KCoreResult, k_core
from warehouse import contracts
from warehouse.store import with_optional_columns

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
    register_rows(engine, "seq_interactions", interactions, contracts.CORE_INTERACTIONS)
    weights = label_weights if label_weights is not None else LABEL_WEIGHTS_SCHEMA.empty_table()
    engine.register_arrow("seq_label_weights", weights.select(LABEL_WEIGHTS_SCHEMA.names).cast(LABEL_WEIGHTS_SCHEMA))
    codes = item_codes if item_codes is not None else ITEM_CODES_SCHEMA.empty_table()
    engine.register_arrow("seq_item_codes", codes.select(ITEM_CODES_SCHEMA.names).cast(ITEM_CODES_SCHEMA))
    core = None
    if config.k_core is not None:
        core = training_core(engine, "seq_interactions", config, split)
        engine.register_arrow("seq_core_users", core.users)
        engine.register_arrow("seq_core_items", core.items)
    return PreparedInputs(split, config, item_codes is not None, core)


def training_pairs(engine: Engine, source: str, config: SequenceConfig, split: SplitConfig | None) -> pa.Table:
    """The distinct ``user_idx, item_idx`` pairs of the training window (what the k-core reads).

    The training window in interactions: the train split of a temporal split, the train sessions of a
    session split, and each user's training prefix (steps ``1..n-2``) under leave-one-out, so held-out
    targets never keep a user or an item in the core.
    """
    d = engine.dialect
    ctes = steps_ctes(d, config, split, source=source, weights=None, codes=None)
    return engine.query(f"WITH {ctes} SELECT DISTINCT user_idx, item_idx FROM base WHERE in_train = 1")


def training_core(engine: Engine, source: str, config: SequenceConfig, split: SplitConfig | None) -> KCoreResult:
    """The k-core (``config.k_core``) of the training window of the registered relation ``source``
    (:func:`training_pairs`: under leave-one-out each user's training prefix, so held-out targets never
    keep a user or an item in the core). One pass: the prefixes are those of the unfiltered sequences."""
    assert config.k_core is not None
    return k_core(engine, training_pairs(engine, source, config, split), config.k_core)


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


TIE_ORDER = "source_file NULLS LAST, line_no NULLS LAST, LENGTH(event_id), event_id"
"""How events at the same millisecond are ordered: as they were read (source file, then line), so a
dataset's own order of same-second ratings decides which one is the leave-one-out target. Events
without provenance (built in memory, or staged before raw rows kept it) come after, by event id,
shorter first, so ids that number lines (``click:6`` before ``click:35``) keep their line order."""

def steps_ctes(
    d: Dialect,
    config: SequenceConfig,
    split: SplitConfig | None,
    source: str = "seq_interactions",
    core_join: str = "",
    weights: str | None = "seq_label_weights",
    codes: str | None = "seq_item_codes",
) -> str:
    """CTEs ending in ``base``: one row per interaction (step), numbered ``pos`` per user.

    Consecutive events of a user on the same item (among ``config.event_types``) are one step, which
    never crosses a split boundary (the temporal split of its events; its session under a session
    split). A step carries its first event's ``event_id``, time, session and session surface, its
    strongest event type (:data:`EVENT_STRENGTH`, as ``event_type`` and ``event_code``), all its event
    types (``event_mask``), one weight (the largest label weight among its events, 1 without one: all
    events of an interaction share it), its ``rating`` (the largest rating value, null without a
    rating), the user's step count ``n`` (and, under a temporal split, its train and test steps
    ``n_train``, ``n_test``) and the training flag ``in_train``.
    """
    strength = " ".join(f"WHEN '{e.value}' THEN {k}" for k, e in enumerate(EVENT_STRENGTH, start=1))
    code_of = " ".join(f"WHEN {k} THEN {EVENT_TYPE_CODES[e.value]}" for k, e in enumerate(EVENT_STRENGTH, start=1))
    type_of = " ".join(f"WHEN {k} THEN '{e.value}'" for k, e in enumerate(EVENT_STRENGTH, start=1))
    bits = [f"CASE WHEN event_type = '{name}' THEN {bit} ELSE 0 END" for name, bit in EVENT_TYPE_BITS.items()]
    mask, one_event_mask = " + ".join(f"MAX({b})" for b in bits), " + ".join(bits)
    order = f"ts_ms, {TIE_ORDER}"
    # The same window as the running step count (one pass computes both), over the whole partition.
    everything = "PARTITION BY user_idx ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
    weight = "w.weight" if weights else "CAST(NULL AS DOUBLE)"
    weight_join = f"LEFT JOIN {weights} w ON w.event_id = i.event_id" if weights else ""
    sid = "c.codes" if codes else d.null_list("INT", 1)
    codes_join = f"LEFT JOIN {codes} c ON c.item_idx = s.item_idx" if codes else ""
    kind = None if split is None else split.kind
    # A session's end (the session split's membership); a window only that split pays for.
    session_end = "MAX(s.ts_ms) OVER (PARTITION BY s.user_idx, s.session_id)" if kind is SplitKind.SESSION else "s.ts_ms"
    if kind is SplitKind.TEMPORAL:
        part = split.cutoffs.split_sql("ts_ms", epoch_ms=True)  # type: ignore[union-attr]
    elif kind is SplitKind.SESSION:
        part = "session_id"
    else:
        part = "''"
    if split is None:
        in_train = "TRUE"
    elif kind is SplitKind.TEMPORAL:
        in_train = f"part = '{Split.TRAIN}'"
    elif kind is SplitKind.SESSION:
        in_train = f"{split.cutoffs.split_sql('session_end_ms', epoch_ms=True)} = '{Split.TRAIN}'"  # type: ignore[union-attr]
    else:
        in_train = "pos <= n - 2"
    return f"""
ev AS (
    SELECT i.event_id, i.user_idx, i.item_idx, {d.epoch_ms("i.ts")} AS ts_ms, i.ts, i.event_type, i.value, i.session_id,
           i.session_surface, i.source_file, i.line_no, {weight} AS label_weight
    FROM {source} i
    {core_join}
    {weight_join}
    WHERE {_event_filter(config, "i.event_type")}
),
keyed AS (SELECT e.*, {part} AS part FROM ev e),
marked AS (
    -- One sort by the full event order: each event's rank and whether it starts (or its successor
    -- starts) a step; the running step count then sorts by the integer rank alone.
    SELECT k.*, ROW_NUMBER() OVER (PARTITION BY user_idx ORDER BY {order}) AS rn,
           CASE WHEN LAG(item_idx) OVER (PARTITION BY user_idx ORDER BY {order}) = item_idx
                 AND LAG(part) OVER (PARTITION BY user_idx ORDER BY {order}) = part THEN 0 ELSE 1 END AS starts,
           CASE WHEN LEAD(item_idx) OVER (PARTITION BY user_idx ORDER BY {order}) = item_idx
                 AND LEAD(part) OVER (PARTITION BY user_idx ORDER BY {order}) = part THEN 0 ELSE 1 END AS next_starts
    FROM keyed k
),
stepped AS (
    SELECT m.*, SUM(starts) OVER (PARTITION BY user_idx ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS pos,
           SUM(starts) OVER ({everything}) AS n,
           SUM(CASE WHEN part = '{Split.TRAIN}' THEN starts ELSE 0 END) OVER ({everything}) AS n_train,
           SUM(CASE WHEN part = '{Split.TEST}' THEN starts ELSE 0 END) OVER ({everything}) AS n_test
    FROM marked m
),
steps AS (
    -- Most steps are one event: those pass through row by row; only the steps of several events are
    -- aggregated (the same values either way: a one-event aggregate is its event).
    SELECT user_idx, pos, n, n_train, n_test, item_idx, ts_ms, ts, part, CASE event_type {strength} ELSE 0 END AS strength,
           {one_event_mask} AS event_mask, CAST(COALESCE(label_weight, 1.0) AS DOUBLE) AS weight,
           CASE WHEN event_type = 'rating' THEN value END AS rating, event_id, session_id, session_surface
    FROM stepped WHERE starts = 1 AND next_starts = 1
    UNION ALL
    SELECT user_idx, pos, MIN(n) AS n, MIN(n_train) AS n_train, MIN(n_test) AS n_test, MIN(item_idx) AS item_idx, MIN(ts_ms) AS ts_ms, MIN(ts) AS ts, MIN(part) AS part,
           MAX(CASE event_type {strength} ELSE 0 END) AS strength, {mask} AS event_mask,
           CAST(COALESCE(MAX(label_weight), 1.0) AS DOUBLE) AS weight,
           MAX(CASE WHEN event_type = 'rating' THEN value END) AS rating,
           MAX(CASE WHEN starts = 1 THEN event_id END) AS event_id,
           MAX(CASE WHEN starts = 1 THEN session_id END) AS session_id,
           MAX(CASE WHEN starts = 1 THEN session_surface END) AS session_surface
    FROM stepped WHERE NOT (starts = 1 AND next_starts = 1) GROUP BY user_idx, pos
),
positioned AS (
    SELECT s.user_idx, s.pos, s.n, s.n_train, s.n_test, s.item_idx, s.ts_ms, s.ts, s.part, CAST(s.event_mask AS SMALLINT) AS event_mask, s.weight, s.rating,
           s.event_id, s.session_id, s.session_surface,
           CAST(CASE s.strength {code_of} ELSE {PAD} END AS INT) AS event_code,
           CASE s.strength {type_of} END AS event_type, {sid} AS codes,
           {session_end} AS session_end_ms
    FROM steps s {codes_join}
),
base AS (
    SELECT p.*, CASE WHEN {in_train} THEN 1 ELSE 0 END AS in_train FROM positioned p
)"""


def _base_cte(d: Dialect, prep: PreparedInputs) -> str:
    """``base``: the kept interactions (:func:`steps_ctes`) with position ``pos`` (1-based, per user, by
    time), the user's step count ``n`` and the training-window flag ``in_train``."""
    core_join = ""
    if prep.k_core is not None:
        core_join = (
            "JOIN seq_core_users cu ON cu.user_idx = i.user_idx JOIN seq_core_items ci ON ci.item_idx = i.item_idx"
        )
    return steps_ctes(d, prep.config, prep.split, core_join=core_join, codes="seq_item_codes" if prep.has_semantic_ids else None)



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


def register_rows(engine: Engine, name: str, source: Source, contract: contracts.TableContract) -> None:
    """:func:`register_source` for rows of ``contract``, whose optional columns (the provenance
    ``source_file``, ``line_no``) are null where absent: in a table built in memory, or in files written
    before the columns existed (files are read in place and by name: a file without a column reads it as
    null, a column that no file has is added as typed nulls)."""
    if isinstance(source, pa.Table):
        register_source(engine, name, with_optional_columns(source, contract))
        return
    files = [Path(p) for p in source]
    present = set().union(*(pq.read_schema(f).names for f in files)) if files else set()
    missing = [contract.schema.field(c) for c in contract.optional if c not in present]
    engine.register_parquet(name, files, missing)


def register_source(engine: Engine, name: str, source: Source) -> None:
    """Register an Arrow table, or Parquet files read in place (nothing loaded into Python memory)."""
    if isinstance(source, pa.Table):
        engine.register_arrow(name, source)
    else:
        engine.register_parquet(name, [Path(p) for p in source])
