"""The training window: the interactions every training-data table is built from, prepared once.

Building user sequences, split rows, two-tower examples and the graph all start the same way: the
interactions, k-cored on the training window, each event with its label weight and its item's
semantic ID. :func:`build_training_window` does that once and returns the prepared events (the
``training_data/training_window`` table); :func:`prepare_window` registers a stored window for the
builders, which then join nothing again and run no second k-core::

    core/interactions ─┐
    label weights ─────┼─ build_training_window ─> training window ─ prepare_window ─> build_user_sequences
    semantic IDs ──────┘   (k-core on the train split)                                build_splits, ...

A window is only valid for the split and k-core it was built with: :class:`WindowParams` records
them, and :func:`check_window` refuses a window built with others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from transforms import sequences as seq
from transforms.cutoffs import Cutoffs
from transforms.engine import Engine
from transforms.sequences.label_weights import label_weights_for_split, select_estimand
from warehouse.contracts import CORE_INTERACTIONS, TRAINING_WINDOW

WINDOW_SCHEMA = TRAINING_WINDOW.schema


@dataclass(frozen=True)
class TrainingWindow:
    """The prepared events (:data:`WINDOW_SCHEMA`, sorted by user, time, event id), the k-core run and
    the estimand of the label weights (``none`` without labels)."""

    events: pa.Table
    k_core: seq.KCoreResult | None
    estimand: seq.WeightEstimand = seq.WeightEstimand.NONE


@dataclass(frozen=True)
class WindowParams:
    """What a stored training window was built with, for the builders that read it.

    Attributes:
        split: The split's parameters (:meth:`transforms.sequences.SplitConfig.params`).
        k_core: The k-core's ``k`` (None: none was run).
        event_types: The event types kept (None: all).
        k_core_iterations: Rounds the k-core took (0 without one).
        has_label_weights: Debiased labels were joined.
        has_semantic_ids: Semantic IDs were joined (a window without a matching item still has them).
        id_space: Sizes of the id map's dense ids, ``users`` and ``items`` (the shards' vocabulary).
        sources: Content hash of each input table's snapshot (recorded in the shard manifest).
        content_hash: The stored window's content hash, so a reader knows these parameters are its own.
        weights: The label weights' setting (``estimand`` asked, ``clip_min``) and the ``resolved``
            estimand every weight of the window estimates (``none`` without labels).
        semantic_id_codebook_sizes: The true size of each semantic-ID level (the codebook's codes per
            level; the disambiguating level: its largest code over the whole ID table + 1).
    """

    split: dict[str, Any]
    k_core: int | None
    event_types: list[str] | None
    k_core_iterations: int
    has_label_weights: bool
    has_semantic_ids: bool
    id_space: dict[str, int]
    sources: dict[str, str]
    content_hash: str = ""
    weights: dict[str, Any] = dataclasses.field(default_factory=dict)
    semantic_id_codebook_sizes: list[int] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> WindowParams:
        return cls(**payload)


def build_training_window(
    engine: Engine,
    interactions: seq.Source,
    config: seq.SequenceConfig,
    split: seq.SplitConfig,
    labels: pa.Table | None = None,
    item_codes: pa.Table | None = None,
    weights: seq.WeightConfig = seq.WeightConfig(),
    label_cutoffs: Cutoffs | None = None,
) -> TrainingWindow:
    """The interactions of the training data: k-cored, with label weights and semantic IDs.

    Args:
        engine: DuckDB or Spark.
        interactions: Rows of ``core_interactions`` (a table or its Parquet files).
        config: Sequence settings: ``k_core`` and ``event_types`` are applied here.
        split: The k-core reads its training window (the train split; the train sessions; under
            leave-one-out each user's training prefix, in interactions). A temporal split's label
            weights come from label rows of an event's split or earlier; leave-one-out and session
            splits take a weight only from label rows fitted before the user's held-out data
            (:func:`transforms.sequences.label_weights.label_weights_for_split`).
        labels: ``labels_debiased_labels`` rows, if built (``request_id, user_id, item_id, ts,
            observed, ips_weight, split``, and ``propensity_source, examination`` for the estimand).
        item_codes: ``item_idx, codes`` (:data:`transforms.sequences.ITEM_CODES_SCHEMA`), if built.
        weights: Which estimand the label weights carry (:func:`select_estimand`).
        label_cutoffs: The cut-offs the labels were built with (leave-one-out and session splits;
            a temporal split's are its own).

    Returns:
        The kept events with ``label_weight`` (null without a label) and ``semantic_id`` (null without
        one), the k-core result (None when ``config.k_core`` is None) and the estimand.

    Raises:
        ValueError: The labels were built with other cut-offs, or cannot give the chosen estimand.
    """
    events, core = _kept_events(engine, interactions, config, split, "tw")
    columns = ", ".join(f"i.{name}" for name in seq.INTERACTIONS_SCHEMA.names)
    label_weights = seq.LABEL_WEIGHTS_SCHEMA.empty_table()
    estimand = seq.WeightEstimand.NONE
    if labels is not None:
        rows, estimand = select_estimand(labels, weights)
        if rows is not None:
            cutoffs = split.cutoffs if split.kind is seq.SplitKind.TEMPORAL else label_cutoffs
            label_weights = label_weights_for_split(engine, events, rows, cutoffs, split, horizon_source="tw_kept")
    engine.register_arrow("tw_label_weights", label_weights)
    codes = item_codes if item_codes is not None else seq.ITEM_CODES_SCHEMA.empty_table()
    engine.register_arrow("tw_item_codes", codes.select(seq.ITEM_CODES_SCHEMA.names).cast(seq.ITEM_CODES_SCHEMA))
    result = engine.query(f"""
SELECT * FROM (
    SELECT {columns}, w.weight AS label_weight, c.codes AS semantic_id
    FROM tw_kept i
    LEFT JOIN tw_label_weights w ON w.event_id = i.event_id
    LEFT JOIN tw_item_codes c ON c.item_idx = i.item_idx
) window_rows
ORDER BY user_idx, ts, {seq.TIE_ORDER}""")
    return TrainingWindow(result.select(WINDOW_SCHEMA.names).cast(WINDOW_SCHEMA), core, estimand)


def _kept_events(engine: Engine, interactions: seq.Source, config: seq.SequenceConfig, split: seq.SplitConfig,
                 prefix: str) -> tuple[pa.Table, seq.KCoreResult | None]:
    """The interactions the training data keeps (``config.event_types``, k-cored on the split's training
    window), registered as ``<prefix>_kept``, and the k-core run (None without one)."""
    seq.register_rows(engine, f"{prefix}_interactions", interactions, CORE_INTERACTIONS)
    core = None
    core_join = ""
    if config.k_core is not None:
        core = seq.training_core(engine, f"{prefix}_interactions", config, split)
        engine.register_arrow(f"{prefix}_core_users", core.users)
        engine.register_arrow(f"{prefix}_core_items", core.items)
        core_join = (f"JOIN {prefix}_core_users cu ON cu.user_idx = i.user_idx "
                     f"JOIN {prefix}_core_items ci ON ci.item_idx = i.item_idx")
    columns = ", ".join(f"i.{name}" for name in seq.INTERACTIONS_SCHEMA.names)
    events = engine.query(f"SELECT {columns} FROM {prefix}_interactions i {core_join} WHERE {_event_filter(config, 'i.event_type')}")
    engine.register_arrow(f"{prefix}_kept", events)
    return events, core


HELD_OUT_SCHEMA = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("horizon", pa.timestamp("ms", tz="UTC"))])


def held_out_steps(engine: Engine, interactions: seq.Source, config: seq.SequenceConfig) -> pa.Table:
    """What a leave-one-out split of these interactions holds out, for data built before the split (the
    generated item and user text) to leave it out too: one row per user and item of the user's
    validation and test steps (:data:`HELD_OUT_SCHEMA`), with ``horizon``, the time the user's held-out
    data starts (the first event of the validation step).

    The steps are the split's own (:func:`transforms.sequences.inputs.steps_ctes` over the events the
    training window keeps: ``config.event_types``, the k-core on each user's training prefix), so a
    step of several events on one item, a filtered event type or a k-cored item moves the horizon as it
    moves the split. Users with fewer than three steps have no held-out rows (the split makes no
    query of them).
    """
    split = seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT)
    _kept_events(engine, interactions, config, split, "ho")
    ctes = seq.steps_ctes(engine.dialect, config, split, source="ho_kept", weights=None, codes=None)
    held = engine.query(f"""
WITH {ctes},
held AS (
    SELECT user_idx, item_idx, MIN(CASE WHEN pos = n - 1 THEN ts_ms END) OVER (PARTITION BY user_idx) AS horizon_ms
    FROM base WHERE n >= 3 AND pos >= n - 1
),
users AS (SELECT DISTINCT user_idx, user_id FROM ho_kept),
items AS (SELECT DISTINCT item_idx, item_id FROM ho_kept)
SELECT DISTINCT u.user_id, i.item_id, h.horizon_ms FROM held h
JOIN users u ON u.user_idx = h.user_idx JOIN items i ON i.item_idx = h.item_idx
ORDER BY u.user_id, i.item_id""")
    horizon = held["horizon_ms"].cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return pa.table([held["user_id"].cast(pa.string()), held["item_id"].cast(pa.string()), horizon], schema=HELD_OUT_SCHEMA)


@dataclass(frozen=True)
class HeldOutSettings:
    """The settings that decide which steps :func:`held_out_steps` holds out: the split kind, the k-core and the
    event types. Generated text records the settings it left out the steps of, and the training window
    compares them with its own (:meth:`leak_against`): text built for another split keeps steps this one holds out.
    """

    split_kind: seq.SplitKind
    k_core: int | None = None
    event_types: tuple[str, ...] | None = None  # sorted; None: every type

    @classmethod
    def of(cls, split_kind: seq.SplitKind | str, config: seq.SequenceConfig) -> HeldOutSettings:
        types = None if config.event_types is None else tuple(sorted(str(t.value) for t in config.event_types))
        return cls(seq.SplitKind.parse(split_kind), config.k_core, types)

    def to_json(self) -> dict[str, Any]:
        return {"split_kind": self.split_kind.value, "k_core": self.k_core,
                "event_types": None if self.event_types is None else list(self.event_types)}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> HeldOutSettings:
        types = payload.get("event_types")
        return cls(seq.SplitKind.parse(payload["split_kind"]), payload.get("k_core"), None if types is None else tuple(sorted(types)))

    def leak_against(self, window: HeldOutSettings) -> str | None:
        """Why text generated under these settings keeps interactions that ``window``'s split holds out (None: it
        does not). Only a leave-one-out window holds out per user; under the other splits the global cut-off,
        which the text also respects, is the whole boundary."""
        if window.split_kind is not seq.SplitKind.LEAVE_ONE_OUT or self == window:
            return None
        if self.split_kind is not seq.SplitKind.LEAVE_ONE_OUT:
            return (f"the text was generated under a {self.split_kind.value} split, so it keeps each user's validation and "
                    "test interactions, which this leave-one-out window holds out")
        return (f"the text left out the held-out steps of k_core={self.k_core}, event_types={_types(self.event_types)}; "
                f"this window holds out those of k_core={window.k_core}, event_types={_types(window.event_types)}")


def _types(types: tuple[str, ...] | None) -> str:
    return "all" if types is None else ",".join(types)


def window_params(
    window: TrainingWindow,
    config: seq.SequenceConfig,
    split: seq.SplitConfig,
    id_space: dict[str, int],
    sources: dict[str, str],
    has_label_weights: bool,
    has_semantic_ids: bool,
    weights: seq.WeightConfig = seq.WeightConfig(),
    semantic_id_codebook_sizes: list[int] | None = None,
) -> WindowParams:
    """What ``window`` was built with (its ``content_hash`` is filled in once it is stored)."""
    return WindowParams(
        weights=_weights_params(weights, window.estimand),
        semantic_id_codebook_sizes=list(semantic_id_codebook_sizes or []),
        split=split.params(),
        k_core=config.k_core,
        event_types=config.params()["event_types"],  # type: ignore[arg-type]
        k_core_iterations=window.k_core.iterations if window.k_core else 0,
        has_label_weights=has_label_weights,
        has_semantic_ids=has_semantic_ids,
        id_space=id_space,
        sources=sources,
    )


def _weights_params(weights: seq.WeightConfig, resolved: seq.WeightEstimand) -> dict[str, Any]:
    return {"estimand": weights.estimand.value, "clip_min": weights.clip_min, "resolved": resolved.value}


def check_window(
    params: WindowParams, config: seq.SequenceConfig, split: seq.SplitConfig, weights: seq.WeightConfig | None = None
) -> None:
    """Refuse a training window built with another split, k-core, event types or estimand than this run's.

    Raises:
        ValueError: Naming what differs; rematerialize ``training_data/training_window`` with this run's
            settings and ``cutoffs``.
    """
    wanted = {"split": split.params(), "k_core": config.k_core, "event_types": config.params()["event_types"]}
    built = {"split": params.split, "k_core": params.k_core, "event_types": params.event_types}
    if weights is not None and params.weights:
        wanted["weights"] = {"estimand": weights.estimand.value, "clip_min": weights.clip_min}
        built["weights"] = {k: params.weights.get(k) for k in ("estimand", "clip_min")}
    differ = {name: {"window": built[name], "run": value} for name, value in wanted.items() if built[name] != value}
    if differ:
        raise ValueError(
            f"training_data/training_window was built with other cut-offs or settings ({differ}): "
            "rematerialize it with this run's config and cutoffs resource"
        )


def prepare_window(
    engine: Engine,
    window: seq.Source,
    params: WindowParams,
    config: seq.SequenceConfig,
    split: seq.SplitConfig,
    weights: seq.WeightConfig | None = None,
) -> seq.PreparedInputs:
    """Register a stored training window for the builders (:func:`transforms.sequences.build_user_sequences`, ...).

    The window's events are k-cored already: nothing is filtered again, and the label weights and
    semantic IDs the builders join are the window's own.

    Raises:
        ValueError: The window was built with another split, k-core or event types (:func:`check_window`).
    """
    check_window(params, config, split, weights)
    seq.register_source(engine, "tw_window", window)
    weights = engine.query("SELECT event_id, label_weight AS weight FROM tw_window WHERE label_weight IS NOT NULL")
    codes = None
    if params.has_semantic_ids:
        codes = engine.query("""
SELECT item_idx, codes FROM (
    SELECT item_idx, semantic_id AS codes, ROW_NUMBER() OVER (PARTITION BY item_idx ORDER BY event_id) AS rn
    FROM tw_window WHERE semantic_id IS NOT NULL
) c WHERE rn = 1""")
    prep = seq.prepare(engine, window, dataclasses.replace(config, k_core=None), split, weights, codes)
    return dataclasses.replace(prep, config=config)


def _event_filter(config: seq.SequenceConfig, column: str) -> str:
    if config.event_types is None:
        return "TRUE"
    names = ", ".join(f"'{e.value}'" for e in config.event_types)
    return f"{column} IN ({names})"
