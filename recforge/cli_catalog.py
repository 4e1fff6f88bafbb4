"""``recforge catalog [--rebuild]``: show the DuckDB catalog's state, or rebuild it from the files."""

from __future__ import annotations

import argparse
from typing import Any

from warehouse.settings import data_root


def register(subparsers: Any) -> None:
    """Add ``recforge catalog``."""
    parser = subparsers.add_parser(
        "catalog",
        help="show the catalog (its data root, views, unreadable tables); --rebuild rebuilds it from the files",
        description="The catalog (catalog.duckdb in the data root) has one view per table. It records the data root "
        "it was built for and is rebuilt by recforge when the root was copied or moved; --rebuild rebuilds it now "
        "(before opening a copied root's catalog with another DuckDB client). Exits 1 when a table's files cannot be read.",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the catalog from the files under the data root")
    parser.set_defaults(func=_cmd_catalog)


def _cmd_catalog(args: argparse.Namespace) -> int:
    from warehouse.catalog import broken_tables, catalog_path, catalog_root, connect_catalog, refresh_catalog

    root = data_root()
    path = catalog_path(root)
    if args.rebuild:
        refresh_catalog(root)
        print(f"recforge catalog: rebuilt {path}")
    elif path.exists() and catalog_root(root) != root:
        print(f"recforge catalog: {path} was built for {catalog_root(root)}; rebuilding it for {root}")
    with connect_catalog(root) as con:
        views = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]
    broken = broken_tables(root)
    print(f"  data root {root}: {len(views)} views, {len(broken)} unreadable")
    for problem in broken.values():
        print(f"  UNREADABLE {problem}")
    return 1 if broken else 0
