"""Codes, schemas and the frozen configuration of the sequence transforms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeAlias

import pyarrow as pa

from transforms.cutoffs import Cutoffs
from warehouse import contracts
from warehouse.contracts import EventType

# --- codes and schemas -------------------------------------------------------------------------------

PAD = 0
"""Padding code for event types (and, after the +1 shift of the dataloader, for item ids)."""

EVENT_TYPE_CODES: dict[str, int] = {e.value: i + 1 for i, e in enumerate(EventType)}
"""Event type -> small integer code (0 is padding), in :class:`EventType` order; stable by construction."""

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
        pa.field("event_type_masks", pa.list_(pa.int16()), nullable=False),  # each step's event types (EVENT_TYPE_BITS)
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
    """How rows are split: ``temporal`` (the run's cut-offs), ``leave_one_out`` (per user), ``session``
    (the sessions of the last days are the test set; next item within a session from its prefix)."""

    TEMPORAL = "temporal"
    LEAVE_ONE_OUT = "leave_one_out"
    SESSION = "session"

    @classmethod
    def parse(cls, text: str | SplitKind) -> SplitKind:
        """A kind from any spelling people write: ``leave_one_out``, ``LEAVE_ONE_OUT``, ``leave-one-out``."""
        value = str(text.value if isinstance(text, SplitKind) else text).strip().lower().replace("-", "_")
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown split kind {text!r}; one of {[k.value for k in cls]}") from None


EVENT_STRENGTH: tuple[EventType, ...] = (
    EventType.SKIP,
    EventType.SEARCH,
    EventType.VIEW,
    EventType.PLAY,
    EventType.CLICK,
    EventType.LIKE,
    EventType.SHARE,
    EventType.RATING,
    EventType.ADD_TO_CART,
    EventType.PURCHASE,
)
"""Event types from weakest to strongest: an interaction's event type is its strongest event's."""

EVENT_TYPE_BITS: dict[str, int] = {name: 1 << code for name, code in EVENT_TYPE_CODES.items()}
"""An interaction's event types as a feature: the OR of ``1 << code`` over its events (``event_type_masks``)."""


class WeightEstimand(StrEnum):
    """What the label weights of a training table estimate: ONE choice per table, recorded in the manifest.

    ``position``: ``1 / max(examination, M)`` for every exposure row (logged or click-model rows alike):
    debiased for position only, towards the relevance of what was served. ``logged``: the labels'
    ``ips_weight`` (policy propensity x examination), only when every label row used is ``logged``.
    ``popularity``: the labels' ``ips_weight``, only when every label row used is ``popularity``
    (ratings-only data). ``none``: no label weights, every interaction weighs 1. ``auto``:
    ``popularity`` when the labels hold only popularity rows, else ``position``.
    """

    AUTO = "auto"
    POSITION = "position"
    LOGGED = "logged"
    POPULARITY = "popularity"
    NONE = "none"


@dataclass(frozen=True)
class SessionConfig:
    """Sessionization: logged session ids are kept; unlogged events split where the gap exceeds ``gap``."""

    gap: dt.timedelta = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class SplitConfig:
    """How to split: temporal at ``cutoffs``, or leave-one-out (which takes no cut-offs).

    The cut-offs are the run's :class:`transforms.cutoffs.Cutoffs`, with its validity rule
    (``train_end <= valid_end``; equal cut-offs leave the validation window empty).
    """

    kind: SplitKind = SplitKind.TEMPORAL
    cutoffs: Cutoffs | None = None
    session_test_days: int = 1
    session_valid_days: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SplitKind.parse(self.kind))
        if self.kind is not SplitKind.LEAVE_ONE_OUT and self.cutoffs is None:
            raise ValueError(f"a {self.kind.value} split needs cutoffs (session: from session_cutoffs)")
        if self.kind is SplitKind.LEAVE_ONE_OUT and self.cutoffs is not None:
            raise ValueError("a leave-one-out split takes no cutoffs")
        if self.session_test_days < 1 or self.session_valid_days < 0:
            raise ValueError("session_test_days must be positive and session_valid_days non-negative")

    def params(self) -> dict[str, object]:
        """The split's parameters, as recorded in manifests and metadata."""
        out: dict[str, object] = {"kind": self.kind.value}
        if self.cutoffs is not None:
            out["train_end"] = _iso(self.cutoffs.train_end)
            out["valid_end"] = _iso(self.cutoffs.valid_end)
        if self.kind is SplitKind.SESSION:
            out["rule"] = (
                f"sessions as sequences, by the time of their last interaction: test = the last {self.session_test_days} day(s) "
                f"(from valid_end), valid = the {self.session_valid_days} day(s) before (from train_end), train = earlier sessions; "
                "valid and test rows predict each next interaction of a session from its prefix"
            )
        elif self.cutoffs is None:
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
        event_types: Event types that count as interactions (None: all). Consecutive events of a user
            on the same item are ONE interaction (a step of a sequence) carrying its strongest event
            type (:data:`EVENT_STRENGTH`) and all its event types (:data:`EVENT_TYPE_BITS`).
    """

    max_len: int | None = 200
    min_len: int = 2
    k_core: int | None = None
    event_types: tuple[EventType, ...] | None = None

    def __post_init__(self) -> None:
        if self.event_types is not None:
            object.__setattr__(self, "event_types", tuple(EventType(e) for e in self.event_types))
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
            "interactions": "consecutive events of a user on the same item are one step (its strongest event type)",
        }


@dataclass(frozen=True)
class WeightConfig:
    """Which label weights the training tables carry (one estimand per table).

    Attributes:
        estimand: :class:`WeightEstimand`.
        clip_min: ``M`` of ``position``'s ``1 / max(examination, M)`` (the labels' default).
    """

    estimand: WeightEstimand = WeightEstimand.AUTO
    clip_min: float = 0.01

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimand", WeightEstimand(str(self.estimand).lower()))
        if not 0.0 < self.clip_min <= 1.0:
            raise ValueError(f"clip_min (M) must be in (0, 1], got {self.clip_min}")


@dataclass(frozen=True)
class TwoTowerConfig:
    """Two-tower examples: how many previous interactions an example's history holds."""

    two_tower_history: int = 50

    def __post_init__(self) -> None:
        if self.two_tower_history < 1:
            raise ValueError("two_tower_history must be positive")



# --- small helpers -----------------------------------------------------------------------------------


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast an engine result to ``schema`` (engines differ in integer widths and timestamp units)."""
    return table.select(schema.names).cast(schema)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
