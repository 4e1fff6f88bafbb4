"""``recforge train <model> [--config file] [--set section.key=value ...]``: a thin CLI over
``training.train.train`` with a progress bar (steps, loss, examples/s, ETA) and a one-line summary.

Models: ``mf``, ``relmf``, ``mfdu`` (MF with that loss), ``two_tower`` and ``hgnn`` (2T-HGNN: the item graph's
HGNN under the two towers; it also reads ``training_data/graph_nodes`` and ``graph_edges``). ``--metrics`` appends the
test metrics to ``models/metrics`` in the warehouse.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MODELS = {"mf": {"model": "mf", "mf.loss": "naive"}, "relmf": {"model": "mf", "mf.loss": "relmf"},
          "mfdu": {"model": "mf", "mf.loss": "mfdu"}, "two_tower": {"model": "two_tower", "data.source": "two_tower", "run.valid_k": "50"},
          "hgnn": {"model": "hgnn", "data.source": "two_tower", "run.valid_k": "50"},
          "sasrec": {"model": "sasrec"}, "hstu": {"model": "hstu"}, "tiger": {"model": "tiger"}}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model (mf, relmf, mfdu, two_tower, hgnn, sasrec, hstu, tiger) and print its metrics")
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--config", type=Path, default=None, help="a JSON config (TrainConfig.to_dict layout)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set mf.lr=0.01 --set run.max_epochs=20 (repeatable)")
    parser.add_argument("--preset", choices=["benchmark"], default=None,
                        help="sasrec, hstu, tiger: start from the settings of the benchmark's Beauty runs (sized for a CPU; "
                             "TIGER 2 + 2 layers in bfloat16 where that is fast); --set applies on top")
    parser.add_argument("--metrics", action="store_true", help="append the test metrics to models/metrics")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=_cmd_train)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    if args.model in GENERATIVE_MODELS:
        return _cmd_train_generative(args)
    if args.preset is not None:
        raise SystemExit(f"--preset {args.preset} is for sasrec, hstu and tiger; {args.model} takes --config and --set")
    from tqdm import tqdm

    from training.config import load_config
    from training.report import checkpoint_version, metrics_rows
    from training.train import train

    preset = dict(MODELS[args.model])
    model = preset.pop("model")
    cfg = load_config(args.config, preset | parse_overrides(args.overrides), model=model)
    bar = None if args.no_progress else tqdm(unit="step", dynamic_ncols=True, mininterval=0.5)

    def progress(step: int, total: int, loss: float, rate: float) -> None:
        if bar is None:
            return
        bar.total = total
        bar.set_postfix(loss=f"{loss:.4f}", ex_s=f"{rate:,.0f}", refresh=False)
        bar.update(step - bar.n)  # tqdm redraws at most every mininterval

    result = train(cfg, progress=progress)
    if bar is not None:
        bar.close()
    headline = {k: round(v, 4) for k, v in result.test.items() if "@" in k and not k.startswith(("tail_", "short_"))
                and k.split("@")[0] in ("ndcg", "recall", "map")}
    print(f"{args.model}: {result.epochs} epochs, {result.steps} steps, best epoch {result.best_epoch}, "
          f"{result.examples_per_second:,.0f} ex/s, test {json.dumps(headline)}")
    if args.metrics:
        from warehouse import contracts as C
        from warehouse.settings import data_root
        from warehouse.store import Warehouse

        store = Warehouse(data_root())
        split = "coat_lee2021" if cfg.model == "mf" else "temporal_test_full_seen_filtered"
        rows = metrics_rows(result.test, model=args.model, version=checkpoint_version(result.checkpoint), dataset=cfg.data.dataset,
                            split="test", protocol=split, seen_filtered=cfg.model != "mf", seed=cfg.run.seed, data_versions=result.versions)
        existing = store.read(C.MODELS_METRICS) if store.exists(C.MODELS_METRICS) else rows.schema.empty_table()
        import pyarrow as pa

        store.write(C.MODELS_METRICS, pa.concat_tables([existing, rows]))
    return 0


GENERATIVE_MODELS = ("sasrec", "hstu", "tiger")  # trained by training.generative.train_generative (GenerativeConfig)


def _cmd_train_generative(args: argparse.Namespace) -> int:
    """``recforge train sasrec|hstu|tiger``: the warehouse's leave-one-out sequence shards by default
    (``recforge build --split leave-one-out``), or ``--set data.source=beauty|movielens --set data.path=...``."""
    from tqdm import tqdm

    from training.generative.config import GenerativeConfig, benchmark_preset
    from training.generative.train import train_generative
    from training.report import checkpoint_version, metrics_rows

    cfg = GenerativeConfig.from_dict(json.loads(args.config.read_text())) if args.config else GenerativeConfig()
    overrides = parse_overrides(args.overrides)
    preset = benchmark_preset(args.model, overrides.get("run.device", cfg.run.device)) if args.preset else {}
    cfg = cfg.with_overrides({"model": args.model} | preset | overrides)
    if hint := _cpu_hint(cfg):
        print(hint, file=sys.stderr)
    bar = None if args.no_progress else tqdm(unit="step", dynamic_ncols=True, mininterval=0.5)

    def progress(step: int, total: int, loss: float, rate: float) -> None:
        if bar is not None:
            bar.total = total
            bar.set_postfix(loss=f"{loss:.4f}", ex_s=f"{rate:,.0f}", refresh=False)
            bar.update(step - bar.n)

    result = train_generative(cfg, progress=progress)
    if bar is not None:
        bar.close()
    headline = {k: round(v, 4) for k, v in result.test.items() if k.split("@")[0] in ("hr", "recall", "ndcg") and k.endswith(("@10", "@50"))}
    print(f"{args.model}: {result.epochs} epochs, {result.steps} steps, best epoch {result.best_epoch}, "
          f"{result.examples_per_second:,.0f} ex/s, {result.seconds:.0f} s, test ({result.protocol}) {json.dumps(headline)}")
    if args.metrics:
        import pyarrow as pa

        from warehouse import contracts as C
        from warehouse.settings import data_root
        from warehouse.store import Warehouse

        store = Warehouse(data_root())
        rows = metrics_rows(result.test, model=args.model, version=checkpoint_version(result.checkpoint), dataset=cfg.data.dataset or cfg.data.source.value,
                            split="test", protocol=result.protocol, seen_filtered=cfg.data.filter_seen, seed=cfg.run.seed, data_versions=result.versions)
        existing = store.read(C.MODELS_METRICS) if store.exists(C.MODELS_METRICS) else rows.schema.empty_table()
        store.write(C.MODELS_METRICS, pa.concat_tables([existing, rows]))
    return 0


def _cpu_hint(cfg) -> str:  # type: ignore[no-untyped-def]
    """A note when TIGER is about to train at the paper's size without a GPU: there it runs several times slower
    than the benchmark's configuration (``--preset benchmark``)."""
    from training.device import uses_cuda
    from training.generative.config import GenerativeKind, TIGERConfig

    paper = TIGERConfig()
    if cfg.model is not GenerativeKind.TIGER or uses_cuda(cfg.run.device) or (cfg.tiger.layers, cfg.tiger.ff) != (paper.layers, paper.ff):
        return ""
    return (f"note: TIGER at the paper's size ({paper.layers} + {paper.layers} layers, feed-forward {paper.ff}) on a CPU; "
            "--preset benchmark trains the benchmark's configuration (2 + 2 layers, feed-forward 512, bfloat16 where fast), "
            "several times faster")
