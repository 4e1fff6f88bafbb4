"""Interactions, user sequences, leakage-free splits, two-tower examples and the HGNN graph.

Every relational step is one SQL definition rendered for DuckDB or Spark through
:class:`transforms.engine.Dialect` plus the few per-dialect helpers at the bottom of this module
(ordered struct lists, windowed lists, explode, typed empty lists); parity tests run each on both
engines and compare the outputs exactly.

Correctness does not depend on input order or partitioning (the NVTabular trap): every list is
built with an explicit order key, ``pos``, a per-user ``ROW_NUMBER`` over ``(ts, event_id)``, so ties
in time are broken the same way on every engine, whatever order the rows arrive in.

Leakage rules (DESIGN.md §3.1):

* **Temporal split** with cut-offs ``train_end < valid_end``: training rows hold only events with
  ``ts < train_end``; validation rows have that same history and target the events in
  ``[train_end, valid_end)``; test rows have the history before ``valid_end`` and target the events
  at or after it.
* **Leave-one-out**: per user with ``n >= 3`` events in time order, training holds events
  ``1..n-2``, validation targets event ``n-1`` (history ``1..n-2``), test targets event ``n``
  (history ``1..n-1``).
* Everything derived for training (k-core filtering in the temporal split, two-tower examples, item
  sampling frequencies, graph edges and nodes) reads the **training window** only: ``ts < train_end``
  for temporal splits, each user's ``1..n-2`` prefix for leave-one-out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from transforms.engine import Dialect, Engine
from warehouse import contracts
from warehouse.contracts import EventType

# --- codes and schemas -------------------------------------------------------------------------------

PAD = 0
"""Padding code for event types (and, after the +1 shift of the dataloader, for item ids)."""

EVENT_TYPE_CODES: dict[str, int] = {e.value: i + 1 for i, e in enumerate(EventType)}
"""Event type -> small integer code (0 is padding), in :class:`EventType` order; stable by construction."""

TS = pa.timestamp("ms", tz="UTC")

Source: TypeAlias = pa.Table | Sequence[Path]
"""An input relation: an Arrow table, or the Parquet files of a warehouse table (``Warehouse.files``)."""

INTERACTIONS_SCHEMA = contracts.CORE_INTERACTIONS.schema

SID_TYPE = pa.list_(pa.list_(pa.int32()))

USER_SEQUENCES_SCHEMA = contracts.TRAINING_USER_SEQUENCES.schema

SPLIT_ROWS_SCHEMA = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("user_idx", pa.int64(), nullable=False),
        pa.field("item_ids", pa.list_(pa.int64()), nullable=False),
        pa.field("event_types", pa.list_(pa.int8()), nullable=False),
        pa.field("timestamps", pa.list_(pa.int64()), nullable=False),
        pa.field("weights", pa.list_(pa.float32()), nullable=False),
        pa.field("semantic_ids", SID_TYPE),
        pa.field("target_item_ids", pa.list_(pa.int64()), nullable=False),  # empty for training rows
        pa.field("target_timestamps", pa.list_(pa.int64()), nullable=False),
        pa.field("target_weights", pa.list_(pa.float32()), nullable=False),
    ]
)

TWO_TOWER_SCHEMA = contracts.TRAINING_TWO_TOWER_EXAMPLES.schema

ITEM_FREQUENCIES_SCHEMA = contracts.TRAINING_ITEM_FREQUENCIES.schema

GRAPH_NODES_SCHEMA = contracts.TRAINING_GRAPH_NODES.schema

GRAPH_EDGES_SCHEMA = contracts.TRAINING_GRAPH_EDGES.schema

# Optional inputs, as the transforms expect them (the assets adapt the warehouse tables to these).
LABEL_WEIGHTS_SCHEMA = pa.schema(
    [pa.field("event_id", pa.string(), nullable=False), pa.field("weight", pa.float64(), nullable=False)]
)
ITEM_CODES_SCHEMA = pa.schema(
    [pa.field("item_idx", pa.int64(), nullable=False), pa.field("codes", pa.list_(pa.int32()), nullable=False)]
)
ITEM_EMBEDDINGS_SCHEMA = pa.schema(
    [pa.field("item_idx", pa.int64(), nullable=False), pa.field("embedding", pa.list_(pa.float32()), nullable=False)]
)


# --- configuration -----------------------------------------------------------------------------------


class SplitKind(StrEnum):
    TEMPORAL = "temporal"
    LEAVE_ONE_OUT = "leave_one_out"


class SplitName(StrEnum):
    TRAIN = "train"
    VALID = "valid"
    TEST = "test"


@dataclass(frozen=True)
class SessionConfig:
    """Sessionization: logged session ids are kept; unlogged events split where the gap exceeds ``gap``."""

    gap: dt.timedelta = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class SplitConfig:
    """How to split. Temporal splits need timezone-aware cut-offs ``train_end < valid_end``."""

    kind: SplitKind = SplitKind.TEMPORAL
    train_end: dt.datetime | None = None
    valid_end: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.kind is SplitKind.TEMPORAL:
            if self.train_end is None or self.valid_end is None:
                raise ValueError("a temporal split needs train_end and valid_end")
            if self.train_end.tzinfo is None or self.valid_end.tzinfo is None:
                raise ValueError("train_end and valid_end must be timezone-aware (UTC)")
            if not self.train_end < self.valid_end:
                raise ValueError(f"train_end {self.train_end} must be before valid_end {self.valid_end}")

    @property
    def train_end_ms(self) -> int:
        assert self.train_end is not None
        return _ms(self.train_end)

    @property
    def valid_end_ms(self) -> int:
        assert self.valid_end is not None
        return _ms(self.valid_end)

    def params(self) -> dict[str, object]:
        """The split's parameters, as recorded in manifests and metadata."""
        out: dict[str, object] = {"kind": self.kind.value}
        if self.kind is SplitKind.TEMPORAL:
            out["train_end"] = _iso(self.train_end)
            out["valid_end"] = _iso(self.valid_end)
        else:
            out["rule"] = "per user in time order: train = 1..n-2, valid target = n-1, test target = n; users with n >= 3"
        return out


@dataclass(frozen=True)
class SequenceConfig:
    """What goes into a sequence.

    Attributes:
        max_len: Keep the most recent ``max_len`` events of each history (None: keep all).
        min_len: Minimum events of a training sequence (and of a user sequence).
        k_core: Iteratively drop users and items with fewer than ``k`` distinct partners in the
            training window until none is left (a fixed point); None disables it.
        event_types: Event types that count as interactions (None: all).
    """

    max_len: int | None = 200
    min_len: int = 2
    k_core: int | None = None
    event_types: tuple[EventType, ...] | None = None

    def __post_init__(self) -> None:
        if self.max_len is not None and self.max_len < 1:
            raise ValueError("max_len must be positive")
        if self.min_len < 1:
            raise ValueError("min_len must be at least 1")
        if self.k_core is not None and self.k_core < 1:
            raise ValueError("k_core must be at least 1")

    def params(self) -> dict[str, object]:
        return {
            "max_len": self.max_len,
            "min_len": self.min_len,
            "k_core": self.k_core,
            "event_types": None if self.event_types is None else [e.value for e in self.event_types],
        }


# --- interactions ------------------------------------------------------------------------------------


def build_interactions(
    engine: Engine,
    events: Source,
    id_maps: Source,
    slates: Source | None = None,
    config: SessionConfig = SessionConfig(),
) -> pa.Table:
    """Unified, deduplicated, sessionized interactions with dense ids and session features.

    Events without an item (searches) and events whose user or item is not in the id map are left
    out. Duplicates are the same action (user, item, timestamp, event type) logged more than once;
    the copy with the smallest event id is kept. Events that carry a logged ``session_id`` keep it;
    the others are split into sessions where the gap to the user's previous unlogged event exceeds
    ``config.gap`` and get the id ``gap:<user_id>:<n>``. A session's surface is the surface (from the
    slate of ``request_id``) of its first event that has one.

    Args:
        engine: DuckDB or Spark.
        events: Rows of the ``raw_events`` contract (a table, or its Parquet files: read in place).
        id_maps: Rows of the ``core_id_maps`` contract.
        slates: Rows of ``raw_slates`` (only ``request_id`` and ``surface`` are read), if any.
        config: Sessionization settings.

    Returns:
        A table of :data:`INTERACTIONS_SCHEMA`, sorted by user, time and event id.
    """
    d = engine.dialect
    register_source(engine, "seq_events", events)
    register_source(engine, "seq_id_maps", id_maps)
    if slates is None or (isinstance(slates, (list, tuple)) and not slates):
        slates = pa.table({"request_id": pa.array([], pa.string()), "surface": pa.array([], pa.string())})
    register_source(engine, "seq_slates", slates)
    gap_ms = int(config.gap.total_seconds() * 1000)
    order = "ts_ms, event_id"
    sql = f"""
WITH users AS (SELECT external_id, idx FROM seq_id_maps WHERE entity = 'user'),
items AS (SELECT external_id, idx FROM seq_id_maps WHERE entity = 'item'),
surfaces AS (SELECT request_id, MIN(surface) AS surface FROM seq_slates WHERE surface IS NOT NULL GROUP BY request_id),
ev AS (
    SELECT e.event_id, e.user_id, e.item_id, e.ts, {d.epoch_ms("e.ts")} AS ts_ms, e.event_type, e.value,
           e.request_id, e.session_id, s.surface, u.idx AS user_idx, i.idx AS item_idx
    FROM seq_events e
    JOIN users u ON u.external_id = e.user_id
    JOIN items i ON i.external_id = e.item_id
    LEFT JOIN surfaces s ON s.request_id = e.request_id
    WHERE e.item_id IS NOT NULL
),
ranked AS (
    SELECT ev.*, ROW_NUMBER() OVER (PARTITION BY user_idx, item_idx, ts_ms, event_type ORDER BY event_id) AS copy_no
    FROM ev
),
dedup AS (
    SELECT event_id, user_id, item_id, ts, ts_ms, event_type, value, request_id, session_id, surface, user_idx, item_idx
    FROM ranked WHERE copy_no = 1
),
unlogged AS (
    SELECT event_id, user_idx, user_id, ts_ms,
           CASE WHEN LAG(ts_ms) OVER (PARTITION BY user_idx ORDER BY {order}) IS NULL
                  OR ts_ms - LAG(ts_ms) OVER (PARTITION BY user_idx ORDER BY {order}) > {gap_ms}
                THEN 1 ELSE 0 END AS starts
    FROM dedup WHERE session_id IS NULL
),
gap_sessions AS (
    SELECT event_id, user_idx,
           CONCAT('gap:', user_id, ':',
                  CAST(SUM(starts) OVER (PARTITION BY user_idx ORDER BY {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS STRING)) AS gap_session
    FROM unlogged
),
sessioned AS (
    SELECT d.*, COALESCE(d.session_id, g.gap_session) AS sid
    FROM dedup d LEFT JOIN gap_sessions g ON g.event_id = d.event_id AND g.user_idx = d.user_idx
),
session_stats AS (
    SELECT user_idx, sid, COUNT(*) AS session_length, MIN(ts_ms) AS first_ms, MAX(ts_ms) - MIN(ts_ms) AS session_duration_ms
    FROM sessioned GROUP BY user_idx, sid
),
session_rank AS (
    SELECT user_idx, sid, session_length, session_duration_ms,
           DENSE_RANK() OVER (PARTITION BY user_idx ORDER BY first_ms, sid) - 1 AS session_index
    FROM session_stats
),
first_surface AS (
    SELECT user_idx, sid, surface FROM (
        SELECT user_idx, sid, surface, ROW_NUMBER() OVER (PARTITION BY user_idx, sid ORDER BY {order}) AS rn
        FROM sessioned WHERE surface IS NOT NULL
    ) f WHERE rn = 1
)
SELECT s.event_id, s.user_idx, s.item_idx, s.user_id, s.item_id, s.ts, s.event_type, s.value, s.request_id,
       s.surface, s.sid AS session_id, CAST(r.session_index AS INT) AS session_index,
       CAST(r.session_length AS INT) AS session_length, CAST(r.session_duration_ms AS BIGINT) AS session_duration_ms,
       f.surface AS session_surface
FROM sessioned s
JOIN session_rank r ON r.user_idx = s.user_idx AND r.sid = s.sid
LEFT JOIN first_surface f ON f.user_idx = s.user_idx AND f.sid = s.sid
ORDER BY s.user_idx, s.ts, s.event_id
"""
    return _conform(engine.query(sql), INTERACTIONS_SCHEMA)


# --- k-core ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KCoreResult:
    """Users and items that survive iterative k-core filtering, and how many rounds it took."""

    users: pa.Table  # user_idx
    items: pa.Table  # item_idx
    iterations: int
    pairs: int  # distinct (user, item) pairs left


def k_core(engine: Engine, pairs: pa.Table, k: int, max_iterations: int = 1000) -> KCoreResult:
    """Iterate to the k-core: every kept user has ``>= k`` distinct kept items and vice versa.

    One round drops, at the same time, every user and every item with fewer than ``k`` distinct
    partners among the pairs still kept. Dropping a user can push an item below ``k`` and the other
    way round, so rounds repeat until one removes nothing: that fixed point is the k-core (unique,
    whatever the order of removals).

    Args:
        engine: DuckDB or Spark.
        pairs: ``user_idx, item_idx`` rows (duplicates allowed).
        k: The minimum degree.
        max_iterations: A guard; the loop stops long before it on real data.

    Raises:
        RuntimeError: No fixed point within ``max_iterations`` rounds (cannot happen: each round
            either removes a pair or stops).
    """
    engine.register_arrow("kcore_input", pairs.select(["user_idx", "item_idx"]))
    current = engine.query("SELECT DISTINCT user_idx, item_idx FROM kcore_input")
    for iteration in range(1, max_iterations + 1):
        engine.register_arrow("kcore_pairs", current)
        kept = engine.query(
            f"""
SELECT p.user_idx, p.item_idx FROM kcore_pairs p
JOIN (SELECT user_idx FROM kcore_pairs GROUP BY user_idx HAVING COUNT(*) >= {k}) u ON u.user_idx = p.user_idx
JOIN (SELECT item_idx FROM kcore_pairs GROUP BY item_idx HAVING COUNT(*) >= {k}) i ON i.item_idx = p.item_idx
"""
        )
        if kept.num_rows == current.num_rows:
            users = pa.table({"user_idx": pc.unique(kept["user_idx"]).cast(pa.int64())})
            items = pa.table({"item_idx": pc.unique(kept["item_idx"]).cast(pa.int64())})
            return KCoreResult(users.sort_by("user_idx"), items.sort_by("item_idx"), iteration, kept.num_rows)
        current = kept
    raise RuntimeError(f"k-core did not reach a fixed point in {max_iterations} rounds")


# --- sequences and splits ----------------------------------------------------------------------------


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
        if split is not None and split.kind is SplitKind.TEMPORAL:
            window = f"{engine.dialect.epoch_ms('ts')} < {split.train_end_ms}"
        pairs = engine.query(
            f"SELECT DISTINCT user_idx, item_idx FROM seq_interactions WHERE {window} AND {_event_filter(config)}"
        )
        core = k_core(engine, pairs, config.k_core)
        engine.register_arrow("seq_core_users", core.users)
        engine.register_arrow("seq_core_items", core.items)
    return PreparedInputs(split, config, item_codes is not None, core)


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
    elif split.kind is SplitKind.TEMPORAL:
        in_train = f"ts_ms < {split.train_end_ms}"
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


EVENT_FIELDS = {"item": "item_idx", "code": "event_code", "ts": "ts_ms", "w": "weight"}


def _events_list(d: Dialect, has_sid: bool) -> str:
    """One ordered aggregate per group: the events as structs, sorted once by ``pos`` (one sort per
    group instead of one per output list)."""
    fields = dict(EVENT_FIELDS, **({"sid": "codes"} if has_sid else {}))
    return d.ordered_structs(fields, "pos")


def _lists(d: Dialect, source: str, has_sid: bool) -> str:
    """``item_ids, event_types, timestamps, weights, semantic_ids`` from an events list column."""
    sid = d.list_field(source, "sid") if has_sid else d.null_list("INT", 2)
    return (
        f"{d.list_field(source, 'item')} AS item_ids, {d.list_field(source, 'code')} AS event_types, "
        f"{d.list_field(source, 'ts')} AS timestamps, {d.list_field(source, 'w')} AS weights, {sid} AS semantic_ids"
    )


def build_user_sequences(engine: Engine, prep: PreparedInputs) -> pa.Table:
    """Per user, the time-ordered events (the most recent ``max_len``), for users with ``>= min_len``.

    Args:
        engine: The engine :func:`prepare` registered the inputs on.
        prep: What :func:`prepare` returned (its split is only used for the k-core window).

    Returns:
        A table of :data:`USER_SEQUENCES_SCHEMA`, sorted by user.
    """
    d = engine.dialect
    keep = "TRUE" if prep.config.max_len is None else f"pos > n - {prep.config.max_len}"
    sql = f"""
WITH {_base_cte(d, prep)},
grouped AS (
    SELECT user_idx, {_events_list(d, prep.has_semantic_ids)} AS evs, CAST(COUNT(*) AS INT) AS length, MAX(n) AS total_events
    FROM base WHERE {keep}
    GROUP BY user_idx
    HAVING MAX(n) >= {prep.config.min_len}
)
SELECT user_idx, {_lists(d, "evs", prep.has_semantic_ids)}, length, total_events FROM grouped
ORDER BY user_idx
"""
    return _conform(engine.query(sql), USER_SEQUENCES_SCHEMA)


def build_splits(engine: Engine, prep: PreparedInputs) -> pa.Table:
    """Train, valid and test rows of the split in ``prep`` (see the module docstring for the rules).

    A row is one user's history (the most recent ``max_len`` events before the split's cut-off) and,
    for valid and test rows, the target events. Training rows need ``min_len`` events; valid and
    test rows need at least one history event and one target.

    Returns:
        A table of :data:`SPLIT_ROWS_SCHEMA`, sorted by split then user.
    """
    if prep.split is None:
        raise ValueError("build_splits needs the split in prepare(..., split=...)")
    d = engine.dialect
    split = prep.split
    max_len = prep.config.max_len
    if split.kind is SplitKind.TEMPORAL:
        t, v = split.train_end_ms, split.valid_end_ms
        hist = {"train": f"ts_ms < {t}", "test": f"ts_ms < {v}"}
        target = {"valid": f"ts_ms >= {t} AND ts_ms < {v}", "test": f"ts_ms >= {v}"}
    else:
        hist = {"train": "pos <= n - 2 AND n >= 3", "test": "pos <= n - 1 AND n >= 3"}
        target = {"valid": "pos = n - 1 AND n >= 3", "test": "pos = n AND n >= 3"}
    hist_counts = ", ".join(
        f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) OVER (PARTITION BY user_idx) AS h_{name}" for name, cond in hist.items()
    )

    def history(split_name: str, source: str) -> str:
        recent = "TRUE" if max_len is None else f"pos > h_{source} - {max_len}"
        return f"SELECT '{split_name}' AS split, c.* FROM counted c WHERE {hist[source]} AND {recent}"

    sql = f"""
WITH {_base_cte(d, prep)},
counted AS (SELECT b.*, {hist_counts} FROM base b),
hist_rows AS (
    {history("train", "train")}
    UNION ALL {history("valid", "train")}
    UNION ALL {history("test", "test")}
),
target_rows AS (
    SELECT 'valid' AS split, b.* FROM base b WHERE {target["valid"]}
    UNION ALL SELECT 'test' AS split, b.* FROM base b WHERE {target["test"]}
),
histories AS (
    SELECT split, user_idx, {_events_list(d, prep.has_semantic_ids)} AS evs, COUNT(*) AS hist_len
    FROM hist_rows GROUP BY split, user_idx
),
targets AS (
    SELECT split, user_idx, {d.ordered_structs(EVENT_FIELDS, "pos")} AS evs
    FROM target_rows GROUP BY split, user_idx
)
SELECT h.split, h.user_idx, {_lists(d, "h.evs", prep.has_semantic_ids)},
       COALESCE({d.list_field("t.evs", "item")}, {d.empty_list("BIGINT")}) AS target_item_ids,
       COALESCE({d.list_field("t.evs", "ts")}, {d.empty_list("BIGINT")}) AS target_timestamps,
       COALESCE({d.list_field("t.evs", "w")}, {d.empty_list("DOUBLE")}) AS target_weights
FROM histories h LEFT JOIN targets t ON t.split = h.split AND t.user_idx = h.user_idx
WHERE (h.split = 'train' AND h.hist_len >= {prep.config.min_len})
   OR (h.split <> 'train' AND t.user_idx IS NOT NULL)
ORDER BY CASE h.split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END, h.user_idx
"""
    return _conform(engine.query(sql), SPLIT_ROWS_SCHEMA)


# --- two-tower examples ------------------------------------------------------------------------------


def build_two_tower_examples(engine: Engine, prep: PreparedInputs, history_len: int = 50) -> tuple[pa.Table, pa.Table]:
    """One example per training-window event: the user's previous ``history_len`` items, the positive
    item and its label weight; plus each item's share of the positives, for log-Q correction.

    The history of an example holds only events before it in the training window, so no example
    (and no sampling frequency) reads an event at or after the cut-off.

    Returns:
        ``(examples, item_frequencies)``: tables of :data:`TWO_TOWER_SCHEMA` (sorted by user, time)
        and :data:`ITEM_FREQUENCIES_SCHEMA` (sorted by item).
    """
    if history_len < 1:
        raise ValueError("history_len must be positive")
    d = engine.dialect
    history = d.window_list("item_idx", "user_idx", "pos", history_len)
    sql = f"""
WITH {_base_cte(d, prep)},
train AS (SELECT * FROM base WHERE in_train = 1)
SELECT user_idx, {history} AS history_item_ids,
       CAST(LEAST(ROW_NUMBER() OVER (PARTITION BY user_idx ORDER BY pos) - 1, {history_len}) AS INT) AS history_length,
       ROW_NUMBER() OVER (PARTITION BY user_idx ORDER BY pos) - 1 AS user_prior_events,
       session_surface AS surface, event_type, item_idx, weight, ts
FROM train
ORDER BY user_idx, ts, item_idx
"""
    examples = _conform(engine.query(sql), TWO_TOWER_SCHEMA)
    frequencies = item_frequencies(examples)
    return examples, frequencies


def item_frequencies(examples: pa.Table) -> pa.Table:
    """Each positive item's count and share among ``examples`` (what log-Q correction subtracts)."""
    grouped = examples.group_by("item_idx").aggregate([("item_idx", "count")]).rename_columns(["item_idx", "count"])
    total = max(examples.num_rows, 1)
    grouped = grouped.append_column("probability", pc.divide(pc.cast(grouped["count"], pa.float64()), float(total)))
    return _conform(grouped.sort_by("item_idx"), ITEM_FREQUENCIES_SCHEMA)


# --- graph -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphConfig:
    """Graph settings. Co-occurrence reads the first ``max_session_items`` distinct items of a session,
    which bounds the pairs a session adds (a 10,000-event bot session would add 10^8)."""

    max_session_items: int = 50


def build_graph(
    engine: Engine,
    prep: PreparedInputs,
    items: pa.Table,
    id_maps: pa.Table,
    item_embeddings: pa.Table | None = None,
    config: GraphConfig = GraphConfig(),
) -> tuple[pa.Table, pa.Table]:
    """Node and edge tables of the heterogeneous graph, from the training window only.

    Nodes: users and items with a training-window event (items also when the catalog has them
    available before ``train_end``), categories and brands of those items. Edges: user-item per
    event type (weight = events), item-item co-occurrence within sessions (weight = sessions, both
    directions), item-category and item-brand (weight 1).

    Args:
        engine: The engine :func:`prepare` registered the inputs on.
        prep: Inputs; its split defines the training window.
        items: ``raw_items`` rows (item_id, categories, brand, available_from are read).
        id_maps: ``core_id_maps`` rows.
        item_embeddings: ``item_idx, embedding`` (:data:`ITEM_EMBEDDINGS_SCHEMA`), if built.
        config: Graph settings.

    Returns:
        ``(nodes, edges)`` of :data:`GRAPH_NODES_SCHEMA` and :data:`GRAPH_EDGES_SCHEMA`, sorted.
    """
    d = engine.dialect
    engine.register_arrow("graph_items", items.select(["item_id", "categories", "brand", "available_from"]))
    engine.register_arrow("graph_id_maps", id_maps.select(["entity", "external_id", "idx"]))
    embeddings = item_embeddings if item_embeddings is not None else ITEM_EMBEDDINGS_SCHEMA.empty_table()
    engine.register_arrow("graph_embeddings", embeddings.select(ITEM_EMBEDDINGS_SCHEMA.names).cast(ITEM_EMBEDDINGS_SCHEMA))
    split = prep.split
    catalog_window = "TRUE"
    if split is not None and split.kind is SplitKind.TEMPORAL:
        catalog_window = f"(ci.available_from IS NULL OR {d.epoch_ms('ci.available_from')} < {split.train_end_ms})"
    cte = f"""
WITH {_base_cte(d, prep)},
train AS (SELECT * FROM base WHERE in_train = 1),
item_ids AS (SELECT external_id, idx FROM graph_id_maps WHERE entity = 'item'),
user_ids AS (SELECT external_id, idx FROM graph_id_maps WHERE entity = 'user'),
catalog AS (
    SELECT m.idx AS item_idx, ci.categories, ci.brand, ci.available_from
    FROM graph_items ci JOIN item_ids m ON m.external_id = ci.item_id
    WHERE {catalog_window}
),
node_items AS (
    SELECT DISTINCT item_idx FROM (SELECT item_idx FROM train UNION ALL SELECT item_idx FROM catalog) x
),
item_categories AS (
    SELECT DISTINCT item_idx, category FROM (
        SELECT c.item_idx, {d.explode("c.categories")} AS category
        FROM catalog c JOIN node_items n ON n.item_idx = c.item_idx
    ) x WHERE category IS NOT NULL
),
categories AS (
    SELECT category, DENSE_RANK() OVER (ORDER BY category) - 1 AS category_idx
    FROM (SELECT DISTINCT category FROM item_categories) x
),
item_brands AS (
    SELECT DISTINCT c.item_idx, c.brand FROM catalog c JOIN node_items n ON n.item_idx = c.item_idx WHERE c.brand IS NOT NULL
),
brands AS (
    SELECT brand, DENSE_RANK() OVER (ORDER BY brand) - 1 AS brand_idx FROM (SELECT DISTINCT brand FROM item_brands) x
),
session_items AS (
    SELECT user_idx, session_id, item_idx, ROW_NUMBER() OVER (PARTITION BY user_idx, session_id ORDER BY first_pos) AS item_rank
    FROM (SELECT user_idx, session_id, item_idx, MIN(pos) AS first_pos FROM train GROUP BY user_idx, session_id, item_idx) x
),
capped AS (SELECT * FROM session_items WHERE item_rank <= {config.max_session_items})"""
    nodes_sql = f"""{cte}
SELECT 'user' AS node_type, u.idx AS node_idx, u.external_id AS name, {d.null_list("FLOAT", 1)} AS embedding
FROM user_ids u WHERE u.idx IN (SELECT user_idx FROM train)
UNION ALL
SELECT 'item', n.item_idx, m.external_id, e.embedding
FROM node_items n JOIN item_ids m ON m.idx = n.item_idx LEFT JOIN graph_embeddings e ON e.item_idx = n.item_idx
UNION ALL
SELECT 'category', category_idx, category, {d.null_list("FLOAT", 1)} FROM categories
UNION ALL
SELECT 'brand', brand_idx, brand, {d.null_list("FLOAT", 1)} FROM brands
ORDER BY node_type, node_idx
"""
    edges_sql = f"""{cte}
SELECT CONCAT('user_item:', event_type) AS edge_type, 'user' AS src_type, user_idx AS src_idx, 'item' AS dst_type,
       item_idx AS dst_idx, CAST(COUNT(*) AS DOUBLE) AS weight
FROM train GROUP BY event_type, user_idx, item_idx
UNION ALL
SELECT 'item_item:co_session', 'item', a.item_idx, 'item', b.item_idx, CAST(COUNT(*) AS DOUBLE)
FROM capped a JOIN capped b ON a.user_idx = b.user_idx AND a.session_id = b.session_id AND a.item_idx <> b.item_idx
GROUP BY a.item_idx, b.item_idx
UNION ALL
SELECT 'item_category', 'item', ic.item_idx, 'category', c.category_idx, 1.0
FROM item_categories ic JOIN categories c ON c.category = ic.category
UNION ALL
SELECT 'item_brand', 'item', ib.item_idx, 'brand', b.brand_idx, 1.0
FROM item_brands ib JOIN brands b ON b.brand = ib.brand
ORDER BY edge_type, src_idx, dst_idx
"""
    nodes = _conform(engine.query(nodes_sql), GRAPH_NODES_SCHEMA)
    edges = _conform(engine.query(edges_sql), GRAPH_EDGES_SCHEMA)
    return nodes, edges


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


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast an engine result to ``schema`` (engines differ in integer widths and timestamp units)."""
    return table.select(schema.names).cast(schema)


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
