"""Fault 14.15: a copied or moved data root's catalog reads its own files, and ``recforge catalog --rebuild`` exists."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb

from tests.faults.helpers import events, recforge
from warehouse.catalog import catalog_path, catalog_root, connect_catalog, refresh_catalog
from warehouse.contracts import RAW_EVENTS
from warehouse.store import Warehouse

DAY = dt.date(2026, 1, 1)


def _root(path: Path, rows: int) -> Path:
    Warehouse(path).write(RAW_EVENTS, events(DAY, rows), DAY)
    refresh_catalog(path)
    return path


def _count(con: duckdb.DuckDBPyConnection) -> int:
    (count,) = con.execute("SELECT count(*) FROM raw_events").fetchone() or (0,)
    return count


def test_a_copied_root_reads_its_own_files_not_the_originals(tmp_path: Path) -> None:
    original = _root(tmp_path / "original", 10)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    Warehouse(original).write(RAW_EVENTS, events(DAY, 99), DAY)  # the original moves on

    with connect_catalog(copy) as con:
        assert _count(con) == 10
    assert catalog_root(copy) == copy.resolve()


def test_a_moved_root_works_without_deleting_its_catalog(tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    _root(tmp_path / "root", 10).rename(moved)
    with connect_catalog(moved) as con:
        assert _count(con) == 10
    Warehouse(moved).write(RAW_EVENTS, events(DAY + dt.timedelta(days=1), 5), DAY + dt.timedelta(days=1))
    with connect_catalog(moved) as con:
        assert _count(con) == 15


def test_recforge_catalog_rebuild_makes_a_copied_catalog_safe_for_any_duckdb_client(tmp_path: Path) -> None:
    original = _root(tmp_path / "original", 10)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original)

    cli = recforge("catalog", "--rebuild", root=copy)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "1 views, 0 unreadable" in cli.stdout
    with duckdb.connect(str(catalog_path(copy)), read_only=True) as con:  # a plain DuckDB client
        assert _count(con) == 10
