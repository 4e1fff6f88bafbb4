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

    def __post_init__(self) -> None:
        if self.kind is SplitKind.TEMPORAL and self.cutoffs is None:
            raise ValueError("a temporal split needs cutoffs")
        if self.kind is SplitKind.LEAVE_ONE_OUT and self.cutoffs is not None:
            raise ValueError("a leave-one-out split takes no cutoffs")

    def params(self) -> dict[str, object]:
        """The split's parameters, as recorded in manifests and metadata."""
        out: dict[str, object] = {"kind": self.kind.value}
        if self.cutoffs is not None:
            out["train_end"] = _iso(self.cutoffs.train_end)
            out["valid_end"] = _iso(self.cutoffs.valid_end)
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



# --- small helpers -----------------------------------------------------------------------------------


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast an engine result to ``schema`` (engines differ in integer widths and timestamp units)."""
    return table.select(schema.names).cast(schema)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
