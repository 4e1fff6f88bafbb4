"""The ``recforge`` command line: ``world``, ``demo``, ``sql``, ``materialize`` (``build``, ``ingest``,
``export`` come from the ``recforge/cli_*.py`` modules).

Errors end the command with one line on stderr and exit status 1; ``--verbose`` (on any command) shows
the Dagster log and the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from warehouse.settings import data_root

QUIET_LOG_LEVEL = "CRITICAL"  # Dagster's console log without --verbose: a failure is our one line, not its traceback
VERBOSE_LOG_LEVEL = "INFO"


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_library_noise()
    parser = argparse.ArgumentParser(prog="recforge", description="Offline data pipelines for recommender systems.")
    sub = parser.add_subparsers(dest="command", required=True)

    world = sub.add_parser("world", help="generate a sample world of raw logs with known ground truth")
    _world_args(world)
    world.add_argument("--out", type=Path, required=True, help="output directory")
    world.set_defaults(func=_cmd_world)

    demo = sub.add_parser("demo", help="generate a sample world, materialize every data asset, train small two-tower and MF models")
    _world_args(demo)
    demo.add_argument("--no-models", action="store_true", help="stop after the data layers (train no model)")
    demo.set_defaults(func=_cmd_demo)

    mat = sub.add_parser("materialize", help="materialize every asset over a date range of the landing zone")
    mat.add_argument("--start", type=dt.date.fromisoformat, required=True)
    mat.add_argument("--end", type=dt.date.fromisoformat, required=True, help="last day, inclusive")
    mat.set_defaults(func=_cmd_materialize)

    sql = sub.add_parser("sql", help="query the warehouse catalog with DuckDB (a shell when no query is given)")
    sql.add_argument("query", nargs="?", help="one query to run; omit for an interactive shell")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.set_defaults(func=_cmd_sql)

    for extension in _extensions():
        extension(sub)
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true", help="show the Dagster log, and the traceback on errors")

    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:  # any failure becomes one line unless --verbose asks for the traceback
        if args.verbose:
            raise
        print(f"recforge {args.command}: {one_line_error(exc)}", file=sys.stderr)
        print("(run again with --verbose for the log and the traceback)", file=sys.stderr)
        return 1


def one_line_error(exc: BaseException) -> str:
    """The root cause of ``exc`` on one line, with the Dagster step that raised it when there is one."""
    step = getattr(exc, "step_key", None)
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = " ".join(str(root).split()) or type(root).__name__
    where = f"{step}: " if step else ""
    return f"{where}{type(root).__name__}: {text}"


def dagster_log_level(args: argparse.Namespace) -> str:
    """Dagster's console log level for this command (quiet unless ``--verbose``)."""
    return VERBOSE_LOG_LEVEL if getattr(args, "verbose", False) else QUIET_LOG_LEVEL


def _quiet_library_noise() -> None:
    """Silence import-time chatter that says nothing about the user's data.

    Apache Beam logs "apitools not found" on the root logger when its GCP extras are absent (they are
    not needed here), and Dagster warns that parameters such as ``backfill_policy`` are in beta.
    """
    logging.getLogger().addFilter(lambda record: "apitools" not in record.getMessage())
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")


def _extensions() -> list:
    """Sub-commands contributed by other modules (connectors, exports, training)."""
    from recforge import cli_extensions

    return cli_extensions.registered()


def _world_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-date", type=dt.date.fromisoformat, default=dt.date(2026, 1, 1))
    parser.add_argument("--bad-share", type=float, default=0.002, help="share of malformed lines to inject")
    parser.add_argument("--catalog-format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="processes that generate days in parallel (the world does not depend on it)")


def _world_config(args: argparse.Namespace):
    from sample_world import CatalogFormat, WorldConfig

    return WorldConfig(
        users=args.users,
        items=args.items,
        days=args.days,
        seed=args.seed,
        start_date=args.start_date,
        bad_share=args.bad_share,
        catalog_format=CatalogFormat(args.catalog_format),
    )


def _cmd_world(args: argparse.Namespace) -> int:
    from sample_world import generate_world

    summary = generate_world(_world_config(args), args.out, workers=args.workers)
    print(json.dumps(_summary_dict(summary), indent=2, default=str))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from sample_world import generate_world

    root = data_root()
    landing = root / "landing"
    started = time.perf_counter()
    config = _world_config(args)
    print(f"recforge demo: data root {root}")
    summary = generate_world(config, landing, workers=args.workers)
    print(f"  sample world: {args.users} users, {args.items} items, {args.days} days -> {landing}")
    last = config.start_date + dt.timedelta(days=config.days - 1)
    _materialize(root, config.start_date, last, dagster_log_level(args))
    trained = None if args.no_models else _train_demo_models(root, dagster_log_level(args))
    _print_summary(root, time.perf_counter() - started)
    if trained is not None:
        from recforge.demo import print_demo_metrics

        print_demo_metrics(root, trained)
    del summary
    return 0


def _train_demo_models(root: Path, log_level: str) -> float:
    """Train the demo's small two-tower and MF models (recforge/demo.py); returns the seconds it took."""
    from recforge.definitions import defs
    from recforge.demo import train_demo_models

    print("  training small two-tower and MF models (and the baselines) on the training data ...")
    started = time.perf_counter()
    train_demo_models(defs, root, log_level=log_level)
    return time.perf_counter() - started


def _cmd_materialize(args: argparse.Namespace) -> int:
    if args.end < args.start:
        print(f"recforge materialize: --end {args.end} is before --start {args.start}; nothing would be ingested", file=sys.stderr)
        return 2
    root = data_root()
    started = time.perf_counter()
    _materialize(root, args.start, args.end, dagster_log_level(args))
    _print_summary(root, time.perf_counter() - started)
    return 0


def _materialize(root: Path, first: dt.date, last: dt.date, log_level: str) -> None:
    from recforge.definitions import defs
    from recforge.materialize import materialize_everything

    for result in materialize_everything(defs, root, first, last, log_level=log_level):
        if not result.success:
            raise SystemExit("materialization failed; see the Dagster log above")


def print_summary(root: Path, seconds: float) -> None:
    """Every catalog view with its row count."""
    _print_summary(root, seconds)


def _print_summary(root: Path, seconds: float) -> None:
    from warehouse.catalog import connect_catalog, refresh_catalog

    refresh_catalog(root)
    con = connect_catalog(root)
    views = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]
    print(f"\nMaterialized in {seconds:.1f}s. Tables in {root / 'catalog.duckdb'}:")
    width = max((len(v) for v in views), default=10)
    for view in views:
        (count,) = con.execute(f'SELECT count(*) FROM "{view}"').fetchone() or (0,)
        print(f"  {view:<{width}}  {count:>12,} rows")
    con.close()
    print('\nQuery it:  recforge sql "select event_type, count(*) from raw_events group by 1"')
    print("Open the UI:  make dev")


def _cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from warehouse.catalog import connect_catalog

    con = connect_catalog(data_root())
    try:
        if args.query:
            try:
                _run_query(con, args.query, args.format)
            except duckdb.Error as exc:
                print(f"Error: {exc}", file=sys.stderr)
                return 1
            return 0
        return _shell(con, args.format)
    finally:
        con.close()


def _run_query(con, query: str, fmt: str) -> None:
    relation = con.sql(query)
    if relation is None:
        return
    if fmt == "csv":
        relation.to_df().to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(json.dumps(relation.to_arrow_table().to_pylist(), default=str, indent=2))
    else:
        relation.show(max_width=200, max_rows=100)


def _shell(con, fmt: str) -> int:
    import duckdb

    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    print("recforge sql: DuckDB on the warehouse catalog. End statements with ';'. '.tables' lists views, '.quit' exits.")
    buffer: list[str] = []
    while True:
        try:
            line = input("recforge> " if not buffer else "      ...> ")
        except EOFError:
            print()
            return 0
        stripped = line.strip()
        if not buffer and stripped in {".quit", ".exit"}:
            return 0
        if not buffer and stripped == ".tables":
            _run_query(con, "SELECT view_name AS table FROM duckdb_views() WHERE NOT internal ORDER BY 1", fmt)
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            try:
                _run_query(con, "\n".join(buffer), fmt)
            except duckdb.Error as exc:
                print(f"Error: {exc}")
            buffer = []


def _summary_dict(summary: object) -> dict[str, object]:
    from dataclasses import asdict, is_dataclass

    return asdict(summary) if is_dataclass(summary) and not isinstance(summary, type) else {"summary": str(summary)}


if __name__ == "__main__":
    raise SystemExit(main())
