"""Typed resources. Settings resolve when a run asks for them, never at import time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from transforms.engine import Engine, EngineConfig, EngineKind, open_engine
from warehouse.catalog import refresh_catalog
from warehouse.settings import data_root
from warehouse.store import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse under a data root (``$RECFORGE_HOME`` or ``warehouse/data`` when unset)."""

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


class EngineResource(dg.ConfigurableResource):
    """The relational engine: embedded DuckDB by default, Spark for scale-out."""

    kind: EngineKind = EngineKind.DUCKDB
    memory_limit: str = "4GB"
    threads: int = 2
    spill_dir: str | None = None
    spark_master: str = "local[2]"

    @contextlib.contextmanager
    def open(self) -> Iterator[Engine]:
        config = EngineConfig(
            kind=self.kind,
            memory_limit=self.memory_limit,
            threads=self.threads,
            spill_dir=self.spill_dir,
            spark_master=self.spark_master,
        )
        with open_engine(config) as engine:
            yield engine
