"""``recforge verify``: check every stored partition and the current shard set against their stored hashes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from warehouse.settings import data_root


def register(subparsers: Any) -> None:
    """Add ``recforge verify``."""
    parser = subparsers.add_parser(
        "verify",
        help="check every partition against its stored row count and content hash (exit 1 when one is damaged)",
        description="Re-read every partition of every table and compare its rows with the row count and content "
        "hash stored in the file; check each table's _partitions.json and the current sequence shard set (every "
        "shard re-hashed). Prints the damaged ones and how to repair them; exits 1 when there is one.",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.set_defaults(func=_cmd_verify)


def _cmd_verify(args: argparse.Namespace) -> int:
    from warehouse.catalog import repair_hint
    from warehouse.contracts import all_contracts
    from warehouse.integrity import table_files, verify_table
    from warehouse.layout import CURRENT_LINK
    from warehouse.shards import shard_root, verify_shard_set

    root = data_root()
    damaged = []
    checked = 0
    for contract in all_contracts():
        checked += len(table_files(root, contract))
        damaged.extend(verify_table(root, contract))
    shards = shard_root(root)
    shard_problems = verify_shard_set((shards / CURRENT_LINK).resolve()) if (shards / CURRENT_LINK).exists() else []
    if args.json:
        print(json.dumps({
            "root": str(root),
            "partitions_checked": checked,
            "damaged": [{"table": d.table, "partition": d.partition, "path": str(d.path), "problem": d.problem} for d in damaged],
            "shard_problems": shard_problems,
        }, indent=2))
    else:
        print(f"recforge verify {root}: {checked} partitions checked, {len(damaged)} damaged"
              + (f"; sequence shards: {len(shard_problems)} problems" if (shards / CURRENT_LINK).exists() else ""))
        for damage in damaged:
            print(f"  DAMAGED {damage}")
        for problem in shard_problems:
            print(f"  DAMAGED sequence shards: {problem}")
        for table in sorted({d.table for d in damaged}):
            print(f"  repair {table}: {repair_hint(table)}")
        if shard_problems:
            print("  repair the sequence shards: rematerialize training_data/sequence_shards (recforge build)")
    return 1 if damaged or shard_problems else 0
