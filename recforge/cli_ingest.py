"""``recforge ingest <format> --path PATH [--name NAME]``: stage a public dataset or your own logs."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pipelines.ingestion import LandingRules as ConnectRulesDefaults
from warehouse.settings import data_root

FORMAT_HELP = {
    "movielens": "ml-100k, ml-1m/ml-10m (.dat) or ml-latest (CSV) folder",
    "amazon": "Amazon Reviews 2014/2018/2023 review and meta_* files (file or folder)",
    "obd": "Open Bandit Dataset folder (<policy>/<campaign>/<campaign>.csv, item_context.csv)",
    "mind": "MIND folder (behaviors.tsv, news.tsv)",
    "coat": "Coat folder (train.ascii, test.ascii, propensities.ascii, user_item_features/)",
    "yahoo-r3": "Yahoo! R3 folder (ydata-ymusic-rating-study-v1_0-{train,test}.txt)",
    "diginetica": "DIGINETICA folder (train-item-views.csv, train-purchases.csv, product-categories.csv)",
    "yoochoose": "YooChoose folder (yoochoose-clicks.dat, yoochoose-buys.dat, or session-rec/GRU4Rec SessionId/ItemId/Time .txt)",
    "finn": "FINN.no slates folder (data.npz, itemattr.npz)",
    "sequences": "ordered item lists without times (*.inter.json, optional *.index.json; the TIGER Beauty split)",
    "tabular": "your CSV/TSV/JSONL/Parquet (.txt/.dat with format: in the mapping) file or folder, with --mapping YAML",
}


def register(subparsers: Any) -> None:
    """Add ``recforge ingest``."""
    parser = subparsers.add_parser(
        "ingest",
        help="stage a public dataset or your own logs into the raw tables",
        description="Read a dataset in FORMAT, stage it into the raw tables (quarantining bad lines with their "
        "file and line number), and extend the id map. Re-running on the same files changes nothing.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="formats:\n" + "\n".join(f"  {k:<11} {v}" for k, v in FORMAT_HELP.items()),
    )
    parser.add_argument("format", choices=sorted(FORMAT_HELP), metavar="FORMAT", help="one of: " + ", ".join(FORMAT_HELP))
    parser.add_argument("--path", type=Path, required=True, help="the dataset folder or file")
    parser.add_argument("--name", help="dataset name (prefixes source files and synthetic ids; default: the folder name)")
    parser.add_argument("--mapping", type=Path, help="tabular only: the YAML mapping (default: mapping.yaml beside the data)")
    parser.add_argument("--chunk-lines", type=int, default=1_000_000, help="lines staged at a time per table (memory bound)")
    parser.add_argument(
        "--max-bad-share",
        type=float,
        default=ConnectRulesDefaults.max_bad_share,
        help="exit 1 (after staging and writing the quarantine) when a table's share of bad rows passes this "
        f"(default {ConnectRulesDefaults.max_bad_share:g}; 1 accepts any share)",
    )
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=_cmd_ingest)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from pipelines.connect import ConnectReport, ConnectRules, ingest_dataset
    from pipelines.ingestion import BadRowShareExceeded
    from transforms.connectors import ConnectorError, connector_for
    from transforms.engine import EngineConfig, EngineKind, open_engine
    from warehouse.catalog import refresh_catalog
    from warehouse.store import Warehouse

    root = data_root()
    try:
        connector = connector_for(args.format, args.path, args.name, args.mapping)
    except ConnectorError as exc:
        raise SystemExit(f"recforge ingest: {exc}") from exc
    rules = ConnectRules(chunk_lines=args.chunk_lines, max_bad_share=args.max_bad_share)
    started = time.perf_counter()
    failure: BadRowShareExceeded | None = None
    with open_engine(EngineConfig(kind=EngineKind(args.engine), spill_dir=str(root / ".spill"))) as engine:
        try:
            report = ingest_dataset(connector, Warehouse(root), engine, rules, work_dir=root)
        except ConnectorError as exc:
            raise SystemExit(f"recforge ingest: {exc}") from exc
        except BadRowShareExceeded as exc:
            # Staged and quarantined all the same: print what was written, then fail.
            failure = exc
            report = exc.report
    refresh_catalog(root)
    if not isinstance(report, ConnectReport):
        raise SystemExit(f"recforge ingest: {failure}")
    if args.json:
        print(json.dumps(report.summary(), indent=2, default=str))
    else:
        _print_report(args.format, report, connector, root, time.perf_counter() - started)
    read = sum(t.read for t in report.tables.values())
    if read and not any(t.staged for t in report.tables.values()):
        raise SystemExit(f"recforge ingest: nothing staged: every one of {read:,} rows was quarantined (see the quarantine_* tables)")
    if failure is not None:
        raise SystemExit(f"recforge ingest: {failure}")
    return 0


def _print_report(fmt: str, report: Any, connector: Any, root: Path, seconds: float) -> None:
    print(f"recforge ingest {fmt} {report.name} -> {root} ({seconds:.1f}s)\n")
    print(f"  {'table':<24} {'read':>12} {'staged':>12} {'quarantined':>12}  reasons")
    for name, counts in report.tables.items():
        reasons = ", ".join(f"{r} {n:,}" for r, n in counts.reasons.items()) or "-"
        print(f"  {name:<24} {counts.read:>12,} {counts.staged:>12,} {counts.quarantined:>12,}  {reasons}")
    print(f"\n  id map: {report.users:,} users, {report.items:,} items ({report.new_ids:,} new)")
    examples = [(name, e) for name, counts in report.tables.items() for e in counts.examples]
    if examples:
        print("\n  first quarantined lines:")
        for name, example in examples:
            why = connector.explain(name, example.reason, example.line or "")
            print(f"    {example.source_file}:{example.line_no} [{name}] {example.reason}" + (f": {why}" if why else ""))
    print("\n  next: recforge build   (every layer below raw, from these tables)")
