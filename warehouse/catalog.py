"""The DuckDB catalog: one file in the data root with a view per warehouse table.

Views are named ``<layer>_<table>`` and read the table's Parquet files through a glob, so a new
partition is visible at once; a write of a table that has no view yet rebuilds the catalog (:func:`ensure_view`, called by the store and
by shard-set writers), so new tables appear in the same call that writes them.
The rebuild writes a fresh catalog file aside and swaps it in (:func:`warehouse.atomic.write_aside`): an analyst's open
DuckDB session keeps its (still valid) file, and the next connection sees the new one. Nothing ever
needs the write lock of a catalog that someone has open.

Views hold absolute paths (DuckDB resolves a relative one against the process's working directory, not
the catalog file's), so the catalog records the data root it was built for, in ``recforge.catalog``;
:func:`connect_catalog` and :func:`ensure_view` rebuild it when the root was copied or moved. A DuckDB
client opening a copied root's ``catalog.duckdb`` directly reads the original's files until then:
``recforge catalog --rebuild`` rebuilds it. A table whose files cannot be read does not stop the
rebuild: its view fails, when queried, with the file and the repair (``recforge.broken_tables``).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.atomic import write_aside
from warehouse.contracts import Layer, TableContract, all_contracts
from warehouse.layout import CATALOG_FILE, CURRENT_LINK, PART_FILE

META_SCHEMA = "recforge"  # the catalog's own tables: the data root it was built for, the tables it could not read

_log = logging.getLogger(__name__)


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
                # By name: partitions written before a column was added (provenance) read it as null.
                views[name] = f"read_parquet('{table_dir}/date=*/{PART_FILE}', hive_partitioning = true, hive_types = {{'date': DATE}}, union_by_name = true)"
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
    """Rebuild the catalog file so it has one view per stored table; returns its path.

    A table whose files DuckDB cannot read gets a view that fails, when queried, with a message naming
    the file and how to repair it; the other views are built as usual (:func:`broken_tables` lists them).
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    final = catalog_path(root)
    with _catalog_lock(root):
        with write_aside(final) as staged:
            try:
                con = duckdb.connect(str(staged.path))
                try:
                    con.execute(f"CREATE SCHEMA {META_SCHEMA}")
                    con.execute(f"CREATE TABLE {META_SCHEMA}.catalog (root VARCHAR)")
                    con.execute(f"INSERT INTO {META_SCHEMA}.catalog VALUES (?)", [str(root)])
                    con.execute(f"CREATE TABLE {META_SCHEMA}.broken_tables (view VARCHAR, problem VARCHAR)")
                    for view, source in discover_tables(root).items():
                        try:
                            con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM {source}')
                        except duckdb.Error as exc:
                            problem = _broken_view(con, view, source, exc)
                            con.execute(f"INSERT INTO {META_SCHEMA}.broken_tables VALUES (?, ?)", [view, problem])
                            _log.error("catalog: %s", problem)
                    views = frozenset(row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall())
                finally:
                    con.close()
            finally:
                Path(f"{staged.path}.wal").unlink(missing_ok=True)
        _VIEWS_OF[_file_key(final)] = (root, views)
    return final


def broken_tables(root: Path) -> dict[str, str]:
    """Views whose files could not be read at the last catalog build, with the problem and its repair."""
    path = catalog_path(root)
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            return dict(con.execute(f"SELECT view, problem FROM {META_SCHEMA}.broken_tables ORDER BY 1").fetchall())
        except duckdb.CatalogException:
            return {}


def catalog_root(root: Path) -> Path | None:
    """The data root the catalog at ``root`` was built for (None when unknown: built by an older version)."""
    with duckdb.connect(str(catalog_path(root)), read_only=True) as con:
        return _recorded_root(con)


def ensure_view(root: Path, view: str) -> None:
    """Rebuild the catalog when it has no view named ``view`` (the first write of a table), or was built
    for another data root (this one was copied or moved).

    Views read their table through a glob, so later partitions of a table need no rebuild.
    """
    path = catalog_path(root)
    if path.exists():
        key = _file_key(path)
        if key not in _VIEWS_OF:  # a catalog this process has not built or opened: open it once
            with duckdb.connect(str(path), read_only=True) as con:
                views = frozenset(row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall())
                _VIEWS_OF[key] = (_recorded_root(con), views)
        built_for, views = _VIEWS_OF[key]
        if view in views and built_for == Path(root).resolve():
            return
    refresh_catalog(root)


# The data root and the views of each catalog file this process built or opened, by (file, inode, mtime):
# a write of a table that has a view costs no open of the catalog. A rebuild writes a new file
# (write-aside, then rename), so its inode and mtime differ and it is looked up again.
_VIEWS_OF: dict[tuple[str, int, int], tuple[Path | None, frozenset[str]]] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_ino, stat.st_mtime_ns


def connect_catalog(root: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the catalog: built first when missing or built for another data root
    (views hold absolute paths, so a copied root's catalog would read the original's files)."""
    path = catalog_path(root)
    if not path.exists() or catalog_root(root) != Path(root).resolve():
        refresh_catalog(root)
    return duckdb.connect(str(path), read_only=True)


def repair_hint(view: str) -> str:
    """How to repair a table whose file is damaged (shared by the catalog, the store and ``recforge verify``)."""
    return (
        f"rerun what writes {view} for that partition (recforge materialize/build, or recforge ingest for "
        f"an ingested dataset); if the run cannot read the file either, move it out of the data root first; "
        f"then recforge catalog --rebuild. recforge verify lists every damaged partition."
    )


def _broken_view(con: duckdb.DuckDBPyConnection, view: str, source: str, exc: duckdb.Error) -> str:
    """Create ``view`` as a view that fails with the problem (typed like the table when its contract is known)."""
    files = _unreadable_files(source)
    what = ", ".join(str(f) for f in files) if files else "its files"
    problem = f"{view}: cannot read {what} ({str(exc).splitlines()[0]}). Repair: {repair_hint(view)}"
    columns = "NULL AS error"
    contract = _contract_of(view)
    if contract is not None:
        types = con.from_arrow(contract.schema.empty_table()).types
        columns = ", ".join(f'CAST(NULL AS {t}) AS "{n}"' for n, t in zip(contract.schema.names, types, strict=True))
    literal = problem.replace("'", "''")
    con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT {columns} FROM range(1) WHERE error(\'{literal}\') IS NULL')
    return problem


def _unreadable_files(source: str) -> list[Path]:
    """The files of a view's source (its ``read_parquet`` glob) whose Parquet footer cannot be read."""
    pattern = re.search(r"read_parquet\('([^']*)'", source)
    found = []
    for name in sorted(glob.glob(pattern.group(1))) if pattern else []:
        try:
            pq.read_metadata(name)
        except (OSError, pa.ArrowException):
            found.append(Path(name))
    return found


def _contract_of(view: str) -> TableContract | None:
    return next((c for c in all_contracts() if c.view_name == view), None)


def _recorded_root(con: duckdb.DuckDBPyConnection) -> Path | None:
    try:
        row = con.execute(f"SELECT root FROM {META_SCHEMA}.catalog").fetchone()
    except duckdb.CatalogException:
        return None
    return Path(row[0]) if row else None


@contextlib.contextmanager
def _catalog_lock(root: Path) -> Iterator[None]:
    with open(Path(root) / ".catalog.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
