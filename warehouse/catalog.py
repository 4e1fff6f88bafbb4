"""The DuckDB catalog: one file in the data root with a view per warehouse table.

Views are named ``<layer>_<table>`` and read the table's Parquet files through a glob, so a new
partition is visible at once; a write of a table that has no view yet rebuilds the catalog (:func:`ensure_view`, called by the store and
by shard-set writers), so new tables appear in the same call that writes them.
The rebuild writes a fresh catalog file aside and swaps it in (:func:`warehouse.atomic.write_aside`): an analyst's open
DuckDB session keeps its (still valid) file, and the next connection sees the new one. Nothing ever
needs the write lock of a catalog that someone has open.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import duckdb

from warehouse.atomic import write_aside
from warehouse.contracts import Layer
from warehouse.layout import CATALOG_FILE, CURRENT_LINK, PART_FILE


def catalog_path(root: Path) -> Path:
    return Path(root) / CATALOG_FILE


def discover_tables(root: Path) -> dict[str, str]:
    """Map view name to the Parquet glob of every table stored under ``root``.

    A table is a ``<layer>/<table>`` folder (``<layer>`` one of :class:`Layer`) holding ``part.parquet``
    files, either directly or in ``date=`` partitions, or a set of Parquet files read as one dataset;
    other folders (the landing zone, the Dagster instance) are not tables.
    """
    views: dict[str, str] = {}
    layers = {layer.value for layer in Layer}
    for layer_dir in sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name in layers):
        for table_dir in sorted(p for p in layer_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            name = f"{layer_dir.name}_{table_dir.name}"
            if any(table_dir.glob(f"date=*/{PART_FILE}")):
                views[name] = f"read_parquet('{table_dir}/date=*/{PART_FILE}', hive_partitioning = true, hive_types = {{'date': DATE}})"
            elif (table_dir / PART_FILE).exists():
                views[name] = f"read_parquet('{table_dir / PART_FILE}')"
            elif (table_dir / CURRENT_LINK).is_dir():
                # A versioned file set (sequence shards): one view per split folder, read through the
                # `current` link so that the atomic swap of a new version is followed.
                for split_dir in sorted(p for p in (table_dir / CURRENT_LINK).iterdir() if p.is_dir()):
                    if any(split_dir.glob("*.parquet")):
                        views[f"{name}_{split_dir.name}"] = (
                            f"read_parquet('{table_dir / CURRENT_LINK / split_dir.name}/*.parquet')"
                        )
            elif any(table_dir.glob("*.parquet")):
                # Multi-file tables (e.g. sequence shards) are read as one dataset.
                views[name] = f"read_parquet('{table_dir}/*.parquet')"
    return views


def refresh_catalog(root: Path) -> Path:
    """Rebuild the catalog file so it has one view per stored table; returns its path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = catalog_path(root)
    with _catalog_lock(root), write_aside(final) as staged:
        try:
            con = duckdb.connect(str(staged.path))
            try:
                for view, source in discover_tables(root).items():
                    con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM {source}')
            finally:
                con.close()
        finally:
            Path(f"{staged.path}.wal").unlink(missing_ok=True)
    return final


def ensure_view(root: Path, view: str) -> None:
    """Rebuild the catalog when it has no view named ``view`` (the first write of a table).

    Views read their table through a glob, so later partitions of a table need no rebuild.
    """
    path = catalog_path(root)
    if path.exists():
        with duckdb.connect(str(path), read_only=True) as con:
            found = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [view]).fetchone()
        if found and found[0]:
            return
    refresh_catalog(root)


def connect_catalog(root: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the catalog (created first if it does not exist yet)."""
    path = catalog_path(root)
    if not path.exists():
        refresh_catalog(root)
    return duckdb.connect(str(path), read_only=True)


@contextlib.contextmanager
def _catalog_lock(root: Path) -> Iterator[None]:
    with open(Path(root) / ".catalog.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
