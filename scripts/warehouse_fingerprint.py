"""Fingerprint a data root and compare two fingerprints: proof that a refactor changed no table.

    python scripts/warehouse_fingerprint.py snapshot <data root> before.json
    ... change the code, rebuild the same world into another root ...
    python scripts/warehouse_fingerprint.py snapshot <other root> after.json
    python scripts/warehouse_fingerprint.py compare before.json after.json

A fingerprint holds, for every stored table partition, a hash of its rows, and for every sequence shard
the content hash in the shard manifest. The store's own content hash (in ``_partitions.json``) covers the
file's bytes, so a change of how partitions are laid out (compression, dictionaries, row groups) would
show as a difference although every row is the same; the rows' hash does not. Columns that carry the
wall-clock time of a run (``VOLATILE_COLUMNS``) differ between any two runs, so they are left out of the
hash; the comparison names each table where that was done. Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from warehouse.integrity import hash_batch

# Wall-clock columns: when a row was generated or failed. Everything else must be byte-identical.
VOLATILE_COLUMNS = ("generated_at", "failed_at")
SKIP_DIRS = {"landing", ".dagster", ".work"}


def _rows_hash(path: Path) -> tuple[str, list[str]]:
    """SHA-256 of a partition's rows in order, its volatile columns left out (and named)."""
    table = pq.read_table(path)
    dropped = [c for c in VOLATILE_COLUMNS if c in table.column_names]
    digest = hashlib.sha256()
    for batch in table.drop_columns(dropped).combine_chunks().to_batches():  # one fresh batch: the file's layout is gone
        hash_batch(digest, batch)
    return digest.hexdigest(), dropped


def snapshot(root: Path) -> dict[str, dict[str, object]]:
    """Map ``<table>/<partition>`` (or ``<shard set>/<split>/<file>``) to its hash."""
    entries: dict[str, dict[str, object]] = {}
    for manifest in sorted(root.rglob("_partitions.json")):
        rel = manifest.parent.relative_to(root)
        if rel.parts and rel.parts[0] in SKIP_DIRS:
            continue
        recorded = json.loads(manifest.read_text())
        for partition, stats in sorted(recorded.items()):
            part = manifest.parent / ("part.parquet" if partition == "all" else f"date={partition}/part.parquet")
            rows_hash, dropped = _rows_hash(part) if part.exists() else (str(stats["content_hash"]), [])
            entries[f"{rel}/{partition}"] = {"rows": stats["rows"], "hash": rows_hash, "skipped": dropped}
    for shard_manifest in sorted(root.rglob("current/manifest.json")):
        rel = shard_manifest.parent.parent.relative_to(root)
        manifest = json.loads(shard_manifest.read_text())
        for _split, info in sorted(manifest.get("splits", {}).items()):
            for shard in info.get("shards", []):
                entries[f"{rel}/{shard['path']}"] = {
                    "rows": shard["rows"],
                    "hash": shard["sha256"],
                    "skipped": [],
                }
    return entries


def compare(before: dict[str, dict[str, object]], after: dict[str, dict[str, object]]) -> list[str]:
    """Lines describing every difference (empty when the fingerprints agree)."""
    problems = [f"only before: {k}" for k in sorted(before.keys() - after.keys())]
    problems += [f"only after: {k}" for k in sorted(after.keys() - before.keys())]
    for key in sorted(before.keys() & after.keys()):
        if before[key]["rows"] != after[key]["rows"] or before[key]["hash"] != after[key]["hash"]:
            problems.append(f"differs: {key} ({before[key]} vs {after[key]})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("snapshot")
    snap.add_argument("root", type=Path)
    snap.add_argument("out", type=Path)
    comp = sub.add_parser("compare")
    comp.add_argument("before", type=Path)
    comp.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "snapshot":
        entries = snapshot(args.root.resolve())
        args.out.write_text(json.dumps(entries, indent=1, sort_keys=True))
        print(f"{len(entries)} partitions and shards fingerprinted into {args.out}")
        return 0
    before = json.loads(args.before.read_text())
    after = json.loads(args.after.read_text())
    problems = compare(before, after)
    skipped = sorted({f"{k.rsplit('/', 1)[0]} ({', '.join(v['skipped'])})" for k, v in before.items() if v["skipped"]})
    for line in skipped:
        print(f"compared without volatile columns: {line}")
    for line in problems:
        print(line)
    print(f"{len(before)} entries compared: {'identical' if not problems else f'{len(problems)} differences'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
