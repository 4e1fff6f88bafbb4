"""``recforge export hstu|sasrec|recbole``: the current sequence shards in other trainers' formats."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.settings import data_root


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export the current sequence shards for HSTU / SASRec / RecBole trainers")
    formats = export.add_subparsers(dest="format", required=True)

    hstu = formats.add_parser("hstu", help="HSTU CSV, one line per user with the full ordered history (leave-one-out shards)")
    hstu.add_argument("--out", type=Path, required=True, help="output CSV file")
    _shards_arg(hstu)
    hstu.set_defaults(func=_cmd_hstu)

    sasrec = formats.add_parser("sasrec", help="SASRec 'user item' lines in time order (leave-one-out shards)")
    sasrec.add_argument("--out", type=Path, required=True, help="output text file")
    _shards_arg(sasrec)
    sasrec.set_defaults(func=_cmd_sasrec)

    recbole = formats.add_parser("recbole", help="RecBole atomic files <name>.{train,valid,test}.inter (+ <name>.item)")
    recbole.add_argument("--out", type=Path, required=True, help="output folder (RecBole data_path/<name>)")
    recbole.add_argument("--name", default="recforge", help="dataset name (file prefix)")
    recbole.add_argument("--no-items", action="store_true", help="do not write the .item file")
    _shards_arg(recbole)
    recbole.set_defaults(func=_cmd_recbole)


def _shards_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", type=Path, default=None, help="shard root or version folder (default: the warehouse's current shards)")


def _version_dir(args: argparse.Namespace) -> Path:
    from warehouse.shards import current_version_dir, shard_root

    if args.shards is not None:
        return args.shards if (args.shards / "manifest.json").exists() else current_version_dir(args.shards)
    return current_version_dir(shard_root(data_root()))


def _batches(version_dir: Path, split: str) -> Iterator[pa.RecordBatch]:
    from warehouse.shards import read_manifest

    manifest = read_manifest(version_dir)
    for shard in manifest["splits"].get(split, {}).get("shards", []):
        yield from pq.ParquetFile(version_dir / shard["path"]).iter_batches()


def _loo_sequences(args: argparse.Namespace):
    from transforms.sequences import SplitKind
    from transforms.sequences.exports import full_sequences_from_leave_one_out
    from warehouse.shards import read_manifest

    version = _version_dir(args)
    kind = read_manifest(version)["params"].get("split", {}).get("kind")
    if kind != SplitKind.LEAVE_ONE_OUT.value:
        raise SystemExit(
            f"the shards at {version} hold a {kind!r} split; HSTU and SASRec files hold full histories and their "
            "trainers hold out the last items themselves: materialize training_data/sequence_shards with "
            "split_kind=leave_one_out first"
        )
    return version, full_sequences_from_leave_one_out(_batches(version, "test"))


def _cmd_hstu(args: argparse.Namespace) -> int:
    from transforms.sequences.exports import write_hstu

    version, sequences = _loo_sequences(args)
    report = write_hstu(sequences, args.out)
    print(f"wrote {report.users} users, {report.events} events from {version} -> {args.out}")
    return 0


def _cmd_sasrec(args: argparse.Namespace) -> int:
    from transforms.sequences.exports import write_sasrec

    version, sequences = _loo_sequences(args)
    report = write_sasrec(sequences, args.out)
    print(f"wrote {report.users} users, {report.events} events from {version} -> {args.out}")
    return 0


def _cmd_recbole(args: argparse.Namespace) -> int:
    from transforms.sequences.exports import write_recbole
    from warehouse.contracts import CORE_ID_MAPS, RAW_ITEMS
    from warehouse.store import Warehouse

    version = _version_dir(args)
    items = id_maps = None
    if not args.no_items:
        store = Warehouse(data_root())
        if store.exists(RAW_ITEMS):
            items, id_maps = store.read(RAW_ITEMS), store.read(CORE_ID_MAPS)
    splits = {name: _batches(version, name) for name in ("train", "valid", "test")}
    report = write_recbole(splits, args.out, args.name, items, id_maps)  # type: ignore[arg-type]
    print(f"wrote {', '.join(str(f) for f in report.files)} ({report.users} users, {report.events} events) from {version}")
    return 0
