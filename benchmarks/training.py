"""Training benchmarks (issue 15).

1. Data path: examples/s of shards -> loader -> model step against the same model fed from in-memory
   tensors (``data_path_ratio`` = full / in-memory; the target is >= 0.9).
2. Coat under the protocol of Lee et al. (SIGIR 2021): MF, Rel-MF and MF-DU with the published
   hyper-parameters (dim 128; MF lr 0.005 l2 1e-9; Rel-MF lr 0.005 l2 1e-5; MF-DU lr 0.01 l2 1e-7;
   batch 1024; early stopping on validation MAP@3, patience 5), mean and std over seeds 1..10; the
   popularity and item-kNN baselines under the same protocol; and Rel-MF trained from recforge's own
   label table after ``recforge ingest coat`` and ``recforge build --select core,labels`` (``coat_relmf_from_labels_*``).
3. Two-tower retrieval (with and without log-Q, with SSL) against popularity and item-kNN on ML-100K
   and Amazon Beauty (LETTER's 5-core sequences): Recall@50 overall, on tail items and on short-history
   users, full-catalogue ranking with seen items filtered, temporal split of the examples.
4. ``ann``: the same two-tower model served by a faiss index (HNSW, and a coarse IVF) beside the exact
   top-K: ``<dataset>_two_tower_ann_recall_vs_exact`` (the share of the exact top-50 the index returns).
5. ``ips``: two-tower with and without the debiased labels' IPS example weights, on the examples the
   pipeline builds (``recforge ingest``, ``recforge build --select core,labels,training_data``; the
   weights are the labels' popularity-propensity IPS weights): ``<dataset>_two_tower_ips_recall50`` and
   ``<dataset>_two_tower_noips_recall50`` with their ``_tail_`` / ``_short_`` companions.
6. ``content``: the two-tower model with item content (semantic-ID codes, text embedding, genres) against ids
   only on ML-100K through the pipeline, settings chosen on validation (benchmarks/two_tower_content.py):
   ``ml100k_two_tower_content_recall50`` with ``_cold_`` / ``_new_`` companions, ``ml100k_two_tower_idonly_*`` beside.

Usage: ``python benchmarks/training.py [--quick] [--sections ...] [--datasets ml100k,...]`` (``--quick``:
3 seeds, smaller data path); writes ``benchmarks/results/training.json`` (``training_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import print_table, write_results

from training.baselines import item_knn, popularity
from training.config import DataConfig, TrainConfig
from training.data import LoaderConfig, make_dataloader
from training.data.coat import load_coat
from training.evaluate import evaluate
from training.train import train
from warehouse import contracts as C
from warehouse.store import Warehouse

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PUBLISHED = {"mf": 0.3714, "relmf": 0.3922, "mfdu": 0.3984}
HYPER = {"mf": {"mf.loss": "naive", "mf.lr": 0.005, "mf.l2": 1e-9}, "relmf": {"mf.loss": "relmf", "mf.lr": 0.005, "mf.l2": 1e-5},
         "mfdu": {"mf.loss": "mfdu", "mf.lr": 0.01, "mf.l2": 1e-7}}


# --- 1. data path ----------------------------------------------------------------------------------


def data_path_section(tmp: Path, quick: bool) -> dict[str, object]:
    torch.set_num_threads(1)  # both paths on one thread: the ratio is then about the data path, not thread contention
    from transforms.sequences import SPLIT_ROWS_SCHEMA
    from warehouse.shards import ShardConfig, write_shard_set

    users, items, length = (4000 if quick else 20000), 5000, 50
    rng = np.random.default_rng(0)
    rows = []
    for u in range(users):
        seq = rng.integers(0, items, length).tolist()
        rows.append({"split": "train", "user_idx": u, "item_ids": seq, "event_types": [1] * length, "timestamps": list(range(length)),
                     "weights": [1.0] * length, "semantic_ids": None, "target_item_ids": [seq[-1]], "target_timestamps": [0], "target_weights": [1.0]})
    write_shard_set(tmp / "shards", pa.Table.from_pylist(rows, schema=SPLIT_ROWS_SCHEMA), ShardConfig(world_size=1, shards_per_rank=4, row_group_rows=1000),
                    vocab={"items": items})
    config = LoaderConfig(batch_size=256, max_len=length, semantic_ids=False)
    torch.manual_seed(0)
    embed = torch.nn.EmbeddingBag(items + 1, 64, mode="mean", padding_idx=0)
    head = torch.nn.Linear(64, items + 1)
    optim = torch.optim.Adam([*embed.parameters(), *head.parameters()], lr=1e-3)

    def step(batch: dict[str, torch.Tensor]) -> None:
        # Next-item step on the history (the last item is the target): a small model, so the data path shows.
        logits = head(embed(batch["item_ids"][:, :-1].long()))
        loss = torch.nn.functional.cross_entropy(logits, batch["item_ids"][:, -1].long())
        optim.zero_grad()
        loss.backward()
        optim.step()

    batches = list(make_dataloader(tmp / "shards", "train", config))
    for batch in batches[:3]:
        step(batch)  # warm-up: the first steps pay one-time allocation costs

    def in_memory() -> float:
        started = time.perf_counter()
        for batch in batches:
            step(batch)
        return users / (time.perf_counter() - started)

    def full_path() -> float:
        started = time.perf_counter()
        for batch in make_dataloader(tmp / "shards", "train", config):
            step(batch)
        return users / (time.perf_counter() - started)

    # Alternate the two, best of three each: the machine is shared, so take each path at its least disturbed.
    memory = full = 0.0
    for _ in range(3):
        memory = max(memory, in_memory())
        full = max(full, full_path())
    return {"data_path_examples_per_s": round(full), "in_memory_examples_per_s": round(memory), "data_path_ratio": round(full / memory, 3)}


# --- 2. Coat ---------------------------------------------------------------------------------------


def _seeds_summary(prefix: str, results: list[dict[str, float]], figures: dict[str, object]) -> None:
    for metric in ("ndcg5", "recall5", "map5"):
        values = [r[f"{metric[:-1]}@5"] for r in results]
        suffix = "" if metric == "ndcg5" else f"_{metric}"
        key = f"{prefix}_ndcg5" if metric == "ndcg5" else f"{prefix}{suffix}"
        figures[key] = round(float(np.mean(values)), 4)
        figures[f"{key}_std"] = round(float(np.std(values)), 4)


def _run_seeds(data: object, overrides: dict[str, object], seeds: list[int]) -> list[dict[str, float]]:
    out = []
    for seed in seeds:
        cfg = TrainConfig().with_overrides({**overrides, "run.seed": seed, "run.threads": 1})
        out.append(train(cfg, data).test)  # type: ignore[arg-type]
    return out


def coat_section(seeds: list[int]) -> dict[str, object]:
    folder = DATASETS / "coat"
    if not (folder / "train.ascii").exists():
        return {"coat_present": False}
    data = load_coat(folder)
    figures: dict[str, object] = {"coat_present": True, "coat_seeds": len(seeds)}
    for name, overrides in HYPER.items():
        started = time.perf_counter()
        _seeds_summary(f"coat_{name}", _run_seeds(data, overrides, seeds), figures)
        figures[f"coat_{name}_published_ndcg5"] = PUBLISHED[name]
        figures[f"coat_{name}_seconds"] = round(time.perf_counter() - started, 1)
    for name, make in (("popularity", popularity), ("itemknn", item_knn)):
        result = evaluate(make(data), data.test, [5])
        _seeds_summary(f"coat_{name}", [result], figures)
    return figures


def coat_from_labels_section(tmp: Path, seeds: list[int]) -> dict[str, object]:
    """The user's path: ``recforge ingest coat`` and ``recforge build --select core,labels`` into a fresh
    warehouse, then MF and Rel-MF on its ``labels/debiased_labels`` (``data.source=labels``) under the same protocol."""
    from training.config import DataSource
    from training.train import load_data

    folder = DATASETS / "coat"
    if not (folder / "train.ascii").exists():
        return {}
    home = tmp / "home"
    env = {**os.environ, "RECFORGE_HOME": str(home)}
    started = time.perf_counter()
    for command in (["ingest", "coat", "--path", str(folder)], ["build", "--select", "core,labels"]):
        subprocess.run([sys.executable, "-m", "recforge.cli", *command], check=True, env=env, capture_output=True)
    cfg = TrainConfig(data=DataConfig(source=DataSource.LABELS, path=str(home)))
    data = load_data(cfg)
    labels = Warehouse(home).read(C.LABELS_DEBIASED_LABELS)
    sources = labels["propensity_source"].value_counts().to_pylist()
    figures: dict[str, object] = {"coat_labels_rows": labels.num_rows, "coat_labels_positives": int(np.asarray(labels["observed"]).sum()),
                                  "coat_labels_propensity_sources": {s["values"]: s["counts"] for s in sources},
                                  "coat_labels_train_positives": int(data.labels.sum()),
                                  "coat_labels_build_seconds": round(time.perf_counter() - started, 1)}
    _seeds_summary("coat_relmf_from_labels", _run_seeds(data, HYPER["relmf"], seeds), figures)
    _seeds_summary("coat_mf_from_labels", _run_seeds(data, HYPER["mf"], seeds), figures)
    return figures


# --- 3. Two-tower on public datasets ----------------------------------------------------------------

TT_HISTORY = 20  # a CPU-sized two-tower: 20 history items, width 64, 32-d outputs
TT_VARIANTS = {"two_tower": {}, "two_tower_nologq": {"two_tower.logq": False}, "two_tower_ssl": {"two_tower.ssl_weight": 0.3}}


def examples_from_sequences(sequences: dict[int, list[tuple[int, int]]], history: int = 50) -> pa.Table:
    """``training_data/two_tower_examples`` rows from time-ordered (item, ts) lists: one row per event, the
    history being the user's earlier items (built here, not by the pipeline: the benchmark measures the model)."""
    from warehouse.contracts import TRAINING_TWO_TOWER_EXAMPLES

    cols: dict[str, list[object]] = {f.name: [] for f in TRAINING_TWO_TOWER_EXAMPLES.schema}
    for user, events in sequences.items():
        items = [i for i, _ in events]
        for n, (item, ts) in enumerate(events):
            cols["user_idx"].append(user)
            cols["history_item_ids"].append(items[max(0, n - history) : n])
            cols["history_length"].append(min(n, history))
            cols["user_prior_events"].append(n)
            cols["surface"].append(None)
            cols["event_type"].append("rating")
            cols["item_idx"].append(item)
            cols["weight"].append(1.0)
            cols["ts"].append(ts)
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))  # type: ignore[assignment]
    return pa.table(cols, schema=TRAINING_TWO_TOWER_EXAMPLES.schema)


def _movielens() -> dict[int, list[tuple[int, int]]] | None:
    path = DATASETS / "movielens-100k" / "ml-100k" / "u.data"
    if not path.exists():
        return None
    rows = np.loadtxt(path, dtype=np.int64)
    out: dict[int, list[tuple[int, int]]] = {}
    for user, item, _, ts in rows[np.lexsort((rows[:, 1], rows[:, 3]))]:
        out.setdefault(int(user) - 1, []).append((int(item) - 1, int(ts) * 1000))
    return out


def _beauty() -> dict[int, list[tuple[int, int]]] | None:
    path = DATASETS / "amazon2014-beauty-sequences" / "Beauty.inter.json"
    if not path.exists():
        return None
    # No timestamps: order is all there is, so an event's position is its time (one step = one second).
    return {int(u): [(int(i), n * 1000) for n, i in enumerate(items)] for u, items in json.loads(path.read_text()).items()}


def _tt_config(quick: bool, overrides: dict[str, object]) -> TrainConfig:
    """The benchmark's CPU-sized two-tower (early stopping on validation Recall@50)."""
    return TrainConfig().with_overrides({"model": "two_tower", "run.valid_k": 50, "run.batch_size": 1024, "run.threads": 2,
                                         "two_tower.max_history": TT_HISTORY, "two_tower.hidden": 64, "two_tower.dim": 32,
                                         "run.max_epochs": 2 if quick else 12, "run.patience": 2, **overrides})


def _benchmark_data(datasets: set[str]):  # -> Iterator[tuple[str, TwoTowerData]]
    from training.data.two_tower import two_tower_data

    for name, load in (("ml100k", _movielens), ("beauty", _beauty)):
        sequences = load() if name in datasets else None
        if sequences is not None:
            yield name, two_tower_data(examples_from_sequences(sequences, TT_HISTORY), None, max_history=TT_HISTORY, dataset=name)


def _baselines(prefix: str, data: object, figures: dict[str, object]) -> None:
    for model, make in (("popularity", popularity), ("itemknn", item_knn)):
        scorer = make(data)  # type: ignore[arg-type]
        figures[f"{prefix}_{model}_recall50"] = round(evaluate(scorer, data.test.ranking, [50])["recall@50"], 4)  # type: ignore[attr-defined]
        figures[f"{prefix}_{model}_tail_recall50"] = round(evaluate(scorer, data.test.ranking, [50], items=data.tail_items)["recall@50"], 4)  # type: ignore[attr-defined]


def _two_tower_figures(key: str, result: object, started: float, figures: dict[str, object]) -> None:
    test = result.test  # type: ignore[attr-defined]
    for view in ("", "tail_", "short_"):
        figures[f"{key}_{view}recall50"] = round(test[f"{view}recall@50"], 4)
    figures[f"{key}_epochs"] = result.epochs  # type: ignore[attr-defined]
    figures[f"{key}_seconds"] = round(time.perf_counter() - started, 1)


def two_tower_section(quick: bool, datasets: set[str]) -> dict[str, object]:
    figures: dict[str, object] = {}
    for name, data in _benchmark_data(datasets):
        figures[f"{name}_train_examples"] = len(data)
        _baselines(name, data, figures)
        for model, overrides in TT_VARIANTS.items():
            started = time.perf_counter()
            _two_tower_figures(f"{name}_{model}", train(_tt_config(quick, overrides), data), started, figures)
    return figures


def ann_section(quick: bool, datasets: set[str]) -> dict[str, object]:
    """The two-tower model of section 3 (same config, same seed) with its test split also served by faiss:
    HNSW (M 16, efSearch 32) from the training run, then a coarse IVF (sqrt(I) lists, 4 probed) on the same vectors."""
    from training.ann import ann_report
    from training.config import AnnConfig, AnnKind
    from training.tasks import TwoTowerRetrieval

    figures: dict[str, object] = {}
    for name, data in _benchmark_data(datasets):
        started = time.perf_counter()
        result = train(_tt_config(quick, {"ann.kind": "hnsw"}), data)
        test = result.test
        figures[f"{name}_ann_items"] = data.num_items
        figures[f"{name}_two_tower_ann_exact_recall50"] = round(test["recall@50"], 4)
        figures[f"{name}_two_tower_ann_recall_vs_exact"] = round(test["ann_recall_vs_exact@50"], 4)
        figures[f"{name}_two_tower_ann_recall_vs_exact10"] = round(test["ann_recall_vs_exact@10"], 4)
        figures[f"{name}_two_tower_ann_recall50"] = round(test["ann_recall@50"], 4)
        figures[f"{name}_two_tower_ann_seconds"] = round(time.perf_counter() - started, 1)
        retrieval = TwoTowerRetrieval(result.task.model, data.num_items)  # type: ignore[attr-defined]
        history = data.test.history
        vectors = lambda index, r=retrieval, h=history: r.users(h[index], index)  # noqa: E731
        exact = lambda index, r=retrieval, v=vectors: v(index) @ r.items.T  # noqa: E731
        ivf = ann_report(exact, vectors, retrieval.items, data.test.ranking, [50], AnnConfig(kind=AnnKind.IVF, probe=4))
        figures[f"{name}_two_tower_ivf_recall_vs_exact"] = round(ivf["ann_recall_vs_exact@50"], 4)
        figures[f"{name}_two_tower_ivf_recall50"] = round(ivf["ann_recall@50"], 4)
    return figures


# --- 5. IPS example weights on the pipeline's own examples --------------------------------------------

IPS_DATASETS = {"ml100k": ("movielens", "movielens-100k/ml-100k"), "instruments": ("amazon", "amazon2014-musical-instruments-5core")}


def ips_section(tmp: Path, quick: bool, datasets: set[str]) -> dict[str, object]:
    """``recforge ingest`` + ``recforge build --select core,labels,training_data`` into a fresh warehouse, then
    the two-tower model on its ``training_data/two_tower_examples`` with and without their label weights."""
    from training.config import DataSource
    from training.train import load_data

    figures: dict[str, object] = {}
    for name, (fmt, folder) in IPS_DATASETS.items():
        if name not in datasets or not (DATASETS / folder).exists():
            continue
        home = tmp / name
        env = {**os.environ, "RECFORGE_HOME": str(home)}
        started = time.perf_counter()
        for command in (["ingest", fmt, "--path", str(DATASETS / folder)], ["build", "--select", "core,labels,training_data"]):
            subprocess.run([sys.executable, "-m", "recforge.cli", *command], check=True, env=env, capture_output=True)
        figures[f"{name}_ips_build_seconds"] = round(time.perf_counter() - started, 1)
        data = load_data(_tt_config(quick, {"data.source": DataSource.TWO_TOWER.value, "data.path": str(home), "data.dataset": name}))
        weights = data.weights.double()
        figures |= {f"{name}_ips_train_examples": len(data), f"{name}_ips_weight_mean": round(float(weights.mean()), 4),
                    f"{name}_ips_weight_max": round(float(weights.max()), 4), f"{name}_ips_weight_cv": round(float(weights.std() / weights.mean()), 4),
                    f"{name}_ips_weighted_share": round(float((weights != 1.0).double().mean()), 4)}
        _baselines(f"{name}_pipeline", data, figures)
        for model, use in (("two_tower_ips", True), ("two_tower_noips", False)):
            started = time.perf_counter()
            _two_tower_figures(f"{name}_{model}", train(_tt_config(quick, {"two_tower.use_weights": use}), data), started, figures)
    return figures


SECTIONS = ("data_path", "coat", "coat_labels", "two_tower", "ann", "ips", "content")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset to run (updates those figures in the results)")
    parser.add_argument("--datasets", default="ml100k,beauty", help="datasets of the two_tower, ann and ips sections")
    parser.add_argument("--content-routes", default="catalogue,pipeline", help="routes of the content section")
    args = parser.parse_args()
    run = set(args.sections.split(","))
    datasets = set(args.datasets.split(","))
    seeds = list(range(1, 4 if args.quick else 11))
    figures: dict[str, object] = {"load_average_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        if "data_path" in run:
            figures |= data_path_section(Path(tmp) / "d", args.quick)
        if "coat" in run:
            figures |= coat_section(seeds)
        if "coat_labels" in run:
            figures |= coat_from_labels_section(Path(tmp) / "c", seeds)
        if "two_tower" in run:
            figures |= two_tower_section(args.quick, datasets)
        if "ann" in run:
            figures |= ann_section(args.quick, datasets)
        if "ips" in run:
            figures |= ips_section(Path(tmp) / "i", args.quick, datasets)
        if "content" in run and "ml100k" in datasets:
            from two_tower_content import content_section

            figures |= content_section(Path(tmp) / "t", args.quick, DATASETS / "movielens-100k" / "ml-100k", TT_HISTORY, _tt_config,
                                       tuple(args.content_routes.split(",")))
    figures["load_average_end"] = round(os.getloadavg()[0], 2)
    name = "training_quick" if args.quick else "training"
    previous = Path(__file__).resolve().parent / "results" / f"{name}.json"
    if not (run >= set(SECTIONS) and datasets >= {"ml100k", "beauty"}) and previous.exists():
        # A partial run refreshes its sections' figures and keeps the others.
        figures = json.loads(previous.read_text()) | figures
    path = write_results(name, figures)
    print_table("training", list(figures.items()))
    print(path)


if __name__ == "__main__":
    main()
