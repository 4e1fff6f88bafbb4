"""Typed resources. Settings resolve when a run asks for them, never at import time."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

import dagster as dg

from transforms.cutoffs import DEFAULT_TRAIN_SHARE, DEFAULT_VALID_SHARE, Cutoffs, cutoffs_for_days
from transforms.engine import Engine, EngineConfig, EngineKind, open_engine
from warehouse.catalog import refresh_catalog
from warehouse.contracts import RAW_EVENTS, RAW_IMPRESSIONS, TableContract
from warehouse.lock import writer_lock
from warehouse.settings import data_root
from warehouse.store import Warehouse


def shared_fields(settings: dg.Config | dg.ConfigurableResource, config_type: type) -> dict[str, Any]:
    """The Dagster settings' values of the fields they share (by name) with the dataclass ``config_type``.

    A dataclass field the settings do not expose keeps the dataclass's default.
    """
    exposed = type(settings).model_fields
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(config_type) if f.name in exposed}


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse under a data root (``$RECFORGE_HOME`` or ``warehouse/data`` when unset)."""

    builds: ClassVar[tuple[type, ...]] = ()
    own_fields: ClassVar[tuple[str, ...]] = ("home", "landing_dir")  # where the data lives: orchestration only
    home: str | None = None
    landing_dir: str | None = None

    @property
    def root(self) -> Path:
        return data_root(self.home)

    @property
    def landing(self) -> Path:
        """Where raw log files arrive (``<root>/landing`` unless configured)."""
        return Path(self.landing_dir).resolve() if self.landing_dir else self.root / "landing"

    def store(self) -> Warehouse:
        return Warehouse(self.root)

    def refresh_catalog(self) -> Path:
        return refresh_catalog(self.root)

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[WarehouseResource]:
        """Hold the data root's writer lock (:mod:`warehouse.lock`) while a run uses the warehouse.

        So runs launched from the Dagster UI or the daemon serialize with each other and with CLI runs as
        the CLI's do (under the multiprocess executor each step process holds it for its step). Re-entrant:
        a CLI run that already holds the lock runs its assets in-process or in child processes.
        """
        run = context.run.run_id if context.run is not None else "a Dagster run"
        with writer_lock(self.root, command=f"dagster run {run}"):
            yield self


class EngineResource(dg.ConfigurableResource):
    """The relational engine: embedded DuckDB by default, Spark for scale-out."""

    builds: ClassVar[tuple[type, ...]] = (EngineConfig,)
    kind: EngineKind = EngineConfig.kind
    memory_limit: str = EngineConfig.memory_limit
    threads: int = EngineConfig.threads
    spill_dir: str | None = EngineConfig.spill_dir
    spark_master: str = EngineConfig.spark_master

    @contextlib.contextmanager
    def open(self) -> Iterator[Engine]:
        with open_engine(EngineConfig(**shared_fields(self, EngineConfig))) as engine:
            yield engine


class CutoffsResource(dg.ConfigurableResource):
    """The training cut-offs (``train_end``, ``valid_end``): one source of truth for every layer.

    Labels (propensity fits per split), enrichment (user profiles and item descriptions see only data
    before ``train_end``), semantic IDs (the codebook trains on items available before ``train_end``)
    and the temporal split of the training data all resolve their cut-offs here, so one run config
    moves them together. Set both timestamps (ISO-8601, UTC when no zone is given) or neither; when
    neither is set they fall on day boundaries at ``train_share`` and ``train_share + valid_share``
    of the days with raw events or impressions, gaps not counted (:func:`transforms.cutoffs.cutoffs_for_days`).
    """

    builds: ClassVar[tuple[type, ...]] = ()
    # Text timestamps resolved into a Cutoffs (which has no defaults); the shares are the default rule's.
    own_fields: ClassVar[tuple[str, ...]] = ("train_end", "valid_end", "train_share", "valid_share")
    train_end: str | None = None
    valid_end: str | None = None
    train_share: float = DEFAULT_TRAIN_SHARE
    valid_share: float = DEFAULT_VALID_SHARE

    @property
    def explicit(self) -> bool:
        """Whether both cut-offs are configured (they then do not move with the data)."""
        return self.train_end is not None and self.valid_end is not None

    def resolve(self, store: Warehouse) -> Cutoffs:
        """The run's cut-offs: the configured pair, or the default rule over the days with data.

        Raises:
            ValueError: Only one of ``train_end`` / ``valid_end`` is set, a value is not a timestamp
                or they are out of order, or neither is set and no raw events or impressions are staged.
        """
        if (self.train_end is None) != (self.valid_end is None):
            raise ValueError("cutoffs: set both train_end and valid_end, or neither (derived from the data)")
        if self.train_end is not None and self.valid_end is not None:
            return Cutoffs.parse(self.train_end, self.valid_end)
        days = days_with_rows(store, RAW_EVENTS) | days_with_rows(store, RAW_IMPRESSIONS)
        if not days:
            raise ValueError(
                "cutoffs: no days with raw events or impressions: materialize raw/events first or set train_end and valid_end"
            )
        return cutoffs_for_days(sorted(days), self.train_share, self.valid_share)


def days_with_rows(store: Warehouse, contract: TableContract) -> set[dt.date]:
    """The partitions of ``contract`` that hold at least one row (empty partitions mean "no data that day")."""
    recorded = store.manifest(contract)  # one file read, not one Parquet footer per day
    days = set()
    for day in store.partitions(contract):
        entry = recorded.get(day.isoformat())
        rows = cast(int, entry["rows"]) if entry else store.stored_stats(contract, day)[0]
        if rows > 0:
            days.add(day)
    return days
