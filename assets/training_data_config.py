"""The run configuration every training-data asset reads (:mod:`assets.training_data`), so their splits agree."""

from __future__ import annotations

from typing import ClassVar

import dagster as dg

from transforms import sequences as seq
from transforms.cutoffs import Cutoffs
from warehouse.contracts import EventType
from warehouse.shards import ShardConfig


def event_types_of(names: list[str] | None) -> tuple[EventType, ...] | None:
    """A run config's ``event_types`` (their values; None: every type) as the sequence settings take them."""
    return None if names is None else tuple(EventType(e) for e in names)


class SequenceDataConfig(dg.Config):
    """Run configuration shared by the training-data assets (keep them equal across one run).

    Defaults are those of the dataclasses it builds. ``event_types`` are the event types that count as
    interactions (None: all); ``estimand`` is what the label weights of every training table estimate
    (``auto``, ``position``, ``logged``, ``popularity``, ``none``; recorded in the shard manifest).
    ``split_kind`` is ``temporal``, ``leave_one_out`` or ``session`` (``recforge build`` accepts the values
    as the docs spell them and Dagster's member names).
    """

    builds: ClassVar[tuple[type, ...]] = (
        seq.SequenceConfig, seq.SplitConfig, seq.WeightConfig, seq.TwoTowerConfig, seq.GraphConfig, ShardConfig,
    )
    own_fields: ClassVar[tuple[str, ...]] = ("split_kind", "session_gap_minutes", "shard_seed")

    split_kind: seq.SplitKind = seq.SplitKind.TEMPORAL  # temporal cut-offs: the ``cutoffs`` resource
    max_len: int | None = seq.SequenceConfig.max_len
    min_len: int = seq.SequenceConfig.min_len
    k_core: int | None = seq.SequenceConfig.k_core
    event_types: list[str] | None = None
    estimand: seq.WeightEstimand = seq.WeightConfig.estimand
    clip_min: float = seq.WeightConfig.clip_min
    session_test_days: int = seq.SplitConfig.session_test_days
    session_valid_days: int = seq.SplitConfig.session_valid_days
    session_gap_minutes: int = 30
    world_size: int = ShardConfig.world_size
    shards_per_rank: int = ShardConfig.shards_per_rank
    row_group_rows: int = ShardConfig.row_group_rows
    shard_seed: int = ShardConfig.seed
    two_tower_history: int = seq.TwoTowerConfig.two_tower_history
    max_session_items: int = seq.GraphConfig.max_session_items

    @property
    def kind(self) -> seq.SplitKind:
        return seq.SplitKind.parse(self.split_kind)

    def sequence_config(self) -> seq.SequenceConfig:
        return seq.SequenceConfig(max_len=self.max_len, min_len=self.min_len, k_core=self.k_core, event_types=event_types_of(self.event_types))

    def weight_config(self) -> seq.WeightConfig:
        return seq.WeightConfig(estimand=seq.WeightEstimand(self.estimand), clip_min=self.clip_min)

    def split_config(self, cutoffs: Cutoffs | None) -> seq.SplitConfig:
        """Leave-one-out, or the temporal or session split at ``cutoffs`` (required then)."""
        if self.kind is seq.SplitKind.LEAVE_ONE_OUT:
            return seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT)
        if cutoffs is None:
            raise ValueError(f"a {self.kind.value} split needs its cut-offs")
        return seq.SplitConfig(kind=self.kind, cutoffs=cutoffs, session_test_days=self.session_test_days,
                               session_valid_days=self.session_valid_days)
