"""Shared fixtures: engines and throwaway warehouses.

The Spark session is started once per test session (JVM start-up costs seconds) and only when a test
asks for it; tests that use it carry the ``spark`` marker.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from transforms.engine import DuckDBEngine, EngineConfig, EngineKind, SparkEngine
from warehouse.store import Warehouse

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(autouse=True, scope="session")
def _offline_models() -> None:
    # Nothing may download weights at run time: make any attempt fail fast instead of hanging.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture()
def duckdb_engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    with DuckDBEngine(EngineConfig(memory_limit="1GB", spill_dir=str(tmp_path / "spill"))) as engine:
        yield engine


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[SparkEngine]:
    if shutil.which("java") is None:
        pytest.fail("Spark tests need Java 17 on PATH (.ci/run installs it)")
    engine = SparkEngine(EngineConfig(kind=EngineKind.SPARK, spark_master="local[2]", spark_shuffle_partitions=2))
    yield engine
    engine.session.stop()


@pytest.fixture()
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "home")


@pytest.fixture()
def shared_datasets() -> Path:
    """``../shared/datasets``; tests that need it skip when it is absent (licences forbid copying it)."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets is not present on this machine")
    return SHARED_DATASETS
