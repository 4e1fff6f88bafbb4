"""``recforge export hstu|sasrec|recbole``: the training data in other trainers' formats.

Every export holds FULL histories: they are built from the stored training window (the interactions
the shards were built from, k-core and estimand included) with no ``max_len``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.compute as pc

from warehouse.settings import data_root


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export the current sequence shards for HSTU / SASRec / RecBole trainers")
    formats = export.add_subparsers(dest="format", required=True)

    hstu = formats.add_parser("hstu", help="HSTU CSV, one line per user with the full ordered history (leave-one-out shards)")
    hstu.add_argument("--out", type=Path, required=True, help="output CSV file")
    hstu.set_defaults(func=_cmd_hstu)

    sasrec = formats.add_parser("sasrec", help="SASRec 'user item' lines in time order (leave-one-out shards)")
    sasrec.add_argument("--out", type=Path, required=True, help="output text file")
    sasrec.set_defaults(func=_cmd_sasrec)

    recbole = formats.add_parser("recbole", help="RecBole atomic files <name>.{train,valid,test}.inter (+ <name>.item)")
    recbole.add_argument("--out", type=Path, required=True, help="output folder (RecBole data_path/<name>)")
    recbole.add_argument("--name", default="recforge", help="dataset name (file prefix)")
    recbole.add_argument("--no-items", action="store_true", help="do not write the .item file")
    recbole.set_defaults(func=_cmd_recbole)


def _window_prep(engine, leave_one_out: bool):
    """The stored training window, registered for the builders with no ``max_len`` (full histories)."""
    import json

    from assets.training_data import WINDOW_PARAMS_FILE
    from transforms import sequences as seq
    from transforms.cutoffs import Cutoffs
    from transforms.sequences.window import WindowParams, prepare_window
    from warehouse.contracts import TRAINING_WINDOW
    from warehouse.store import Warehouse

    store = Warehouse(data_root())
    files = store.files(TRAINING_WINDOW)
    path = store.table_dir(TRAINING_WINDOW) / WINDOW_PARAMS_FILE
    if not files or not path.exists():
        raise SystemExit("training_data/training_window is missing: materialize it (and training_data/sequence_shards) first")
    params = WindowParams.from_json(json.loads(path.read_text()))
    kind = seq.SplitKind.parse(params.split["kind"])
    if leave_one_out and kind is not seq.SplitKind.LEAVE_ONE_OUT:
        raise SystemExit(
            f"the training window holds a {kind.value!r} split; HSTU and SASRec files hold full histories and their "
            "trainers hold out the last items themselves: materialize training_data/training_window and "
            "training_data/sequence_shards with split_kind=leave_one_out first"
        )
    cutoffs = None if kind is seq.SplitKind.LEAVE_ONE_OUT else Cutoffs.parse(params.split["train_end"], params.split["valid_end"])
    split = seq.SplitConfig(kind=kind, cutoffs=cutoffs)
    types = None if params.event_types is None else tuple(params.event_types)
    config = seq.SequenceConfig(max_len=None, min_len=1, k_core=params.k_core, event_types=types)  # type: ignore[arg-type]
    return prepare_window(engine, files, params, config, split), str(path.parent)


def _loo_sequences(args: argparse.Namespace):
    from transforms.engine import EngineConfig, open_engine
    from transforms.sequences.exports import full_histories

    with open_engine(EngineConfig()) as engine:
        prep, where = _window_prep(engine, leave_one_out=True)
        return where, full_histories(engine, prep)


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
    from transforms import sequences as seq
    from transforms.engine import EngineConfig, open_engine
    from transforms.sequences.exports import write_recbole
    from warehouse.contracts import CORE_ID_MAPS, RAW_ITEMS
    from warehouse.store import Warehouse

    with open_engine(EngineConfig()) as engine:
        prep, version = _window_prep(engine, leave_one_out=False)
        rows = seq.build_splits(engine, prep)  # full histories: the window's split with no max_len
    items = id_maps = None
    if not args.no_items:
        store = Warehouse(data_root())
        if store.exists(RAW_ITEMS):
            items, id_maps = store.read(RAW_ITEMS), store.read(CORE_ID_MAPS)
    splits = {name: [rows.filter(pc.equal(rows["split"], name))] for name in ("train", "valid", "test")}
    report = write_recbole(splits, args.out, args.name, items, id_maps)  # type: ignore[arg-type]
    print(f"wrote {', '.join(str(f) for f in report.files)} ({report.users} users, {report.events} events) from {version}")
    return 0
