"""ML-100K through recforge's own pipeline, and RecBole's SASRec beside it on the identical split.

The pipeline route (``.venv/bin/python benchmarks/generative.py --ml100k-pipeline``):

    recforge ingest movielens --path ml-100k           a fresh data root in a temporary folder
    recforge build --split leave-one-out               every data layer: shards, content-based semantic IDs
    SASRec, HSTU, TIGER (the shards' semantic IDs) and popularity on training_data/sequence_shards
        (the code path of ``recforge train <model>``), each within the benchmark's budget
        -> ml100k_<model>_{hr,ndcg}{5,10,50}, ml100k_<model>_seconds

The same route on an Amazon set with item text (``--amazon-pipeline instruments|giftcards``): ``recforge ingest
amazon`` and the same build and models, under the keys ``<name>_<model>``, with ``tiger_reg`` beside ``tiger``.

The RecBole peer (``--recbole``, after the route above, on the same data root):

    recforge export recbole                             train / valid / test atomic files of that split
    -> one <name>.inter, each user's events in the exported order (positions as timestamps)
    python -m venv <tmp>/recbole-venv; pip install recbole==1.2.1 "numpy<2" "pandas<3" "setuptools<81" torch==2.13.0
    <tmp>/recbole-venv/bin/python benchmarks/peers/recbole_sasrec.py   RecBole's Trainer, the same budget as ours
        -> ml100k_recbole_sasrec_hr10 (scored by recforge's rule on RecBole's scores, seen items filtered like ours),
           sasrec_throughput_ratio_to_recbole (trained target positions per second of training steps, ours / RecBole's)

RecBole never shares an environment with recforge: its venv is made for the run under a temporary folder
(``--recbole-venv PATH`` reuses one) and the driver imports nothing of recforge. The benchmark checks that
RecBole's test targets are ours, user by user, before it reports a figure.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import REPO, PeakRss

DRIVER = REPO / "benchmarks" / "peers" / "recbole_sasrec.py"  # not benchmarks/*.py: ``make bench`` runs those in recforge's venv

RECBOLE_PINS = ["recbole==1.2.1", "numpy<2", "pandas<3", "setuptools<81", "torch==2.13.0"]  # torch pinned: the local CPU wheel
RECBOLE_ENV = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # RecBole's checkpoints hold its Config object
NAME = "ml100k"


def _recforge(home: Path, *args: str) -> float:
    """Run the ``recforge`` CLI of this checkout on data root ``home``; returns its wall seconds."""
    started = time.perf_counter()
    env = os.environ | {"RECFORGE_HOME": str(home), "DAGSTER_HOME": str(home / ".dagster")}
    subprocess.run([str(Path(sys.executable).parent / "recforge"), *args], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 1)


def build_warehouse(path: Path, home: Path, split: str = "leave-one-out", connector: str = "movielens") -> dict[str, float]:
    """``recforge ingest <connector>`` and ``recforge build --split <split>`` on a fresh data root."""
    (home / ".dagster").mkdir(parents=True, exist_ok=True)
    return {"ingest_seconds": _recforge(home, "ingest", connector, "--path", str(path)),
            "build_seconds": _recforge(home, "build", "--split", split)}


def pipeline_runs(home: Path, out: dict, scale: float, run_one, popularity, models: dict, prefix: str = "ml100k",
                  dataset: str = "movielens-100k", runs: tuple[str, ...] = ("sasrec", "hstu", "tiger")) -> None:
    """Popularity and ``runs`` (entries of ``models``: SASRec, HSTU, TIGER and variants) on the shards of ``home``,
    as ``recforge train <model>`` loads them, under the keys ``<prefix>_<run>``, with ML-100K's budgets and batch
    size (the other pipeline datasets are as small)."""
    from training.generative.config import (
        GenerativeConfig,
        GenerativeKind,
        SequenceDataConfig,
        SequenceSource,
    )
    from training.generative.train import load_sequence_data

    source = SequenceDataConfig(source=SequenceSource.SHARDS, path=str(home / "training_data" / "sequence_shards"), dataset=dataset)
    data, codes = load_sequence_data(GenerativeConfig(model=GenerativeKind.TIGER, data=source))
    out[f"{prefix}_data"] = {"users": data.num_users, "items": data.num_items, "protocol": data.protocol, "route": "pipeline (shards)",
                             "split": data.split, "queries": {"valid": len(data.valid), "test": len(data.test)},
                             "semantic_ids": None if codes is None else {"sizes": list(codes.sizes), "colliding_items": codes.colliding_items,
                                                                         "items_by_embedding_source": embedding_sources(home)}}
    popularity(data, out, f"{prefix}_popularity")
    for model in runs:
        run_one("ml100k", model, data, codes if model.startswith("tiger") else None, models[model][1]["ml100k"] * scale, out,
                f"{prefix}_{model}", source=source)


def embedding_sources(home: Path) -> dict[str, int]:
    """Items of ``home``'s semantic-ID table by where their vector came from (text, co-occurrence, id hash)."""
    from warehouse import contracts as C
    from warehouse.store import Warehouse

    table = Warehouse(home).read_as_stored(C.SEMANTIC_IDS_ITEM_SEMANTIC_IDS, columns=["embedding_source"])
    return {} if table is None else {r["values"]: r["counts"] for r in table["embedding_source"].value_counts().to_pylist()}


def positions_per_row(data) -> float:
    """Mean trained target positions of a training row (every position with a next item)."""
    lengths = (data.train.items > 0).sum(1)
    return float((lengths - 1).clamp(min=0).double().mean())


def recbole_files(home: Path, work: Path) -> tuple[Path, dict[str, object]]:
    """``recforge export recbole`` of ``home``, joined into ``<work>/data/<NAME>/<NAME>.inter``: per user the
    training events, the validation target, the test target, in that order; the timestamp column is the
    event's position, so RecBole's time ordering reproduces the exported order exactly (ML-100K has many
    ratings within one second, which would otherwise tie)."""
    exported = work / "export"
    seconds = _recforge(home, "export", "recbole", "--out", str(exported), "--name", NAME, "--no-items")
    events: dict[str, list[str]] = {}
    for split in ("train", "valid", "test"):
        with open(exported / f"{NAME}.{split}.inter", newline="") as handle:
            rows = csv.reader(handle, delimiter="\t")
            next(rows)
            for user, item, *_ in rows:
                events.setdefault(user, []).append(item)
    data = work / "data"
    (data / NAME).mkdir(parents=True, exist_ok=True)
    with open(data / NAME / f"{NAME}.inter", "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["user_id:token", "item_id:token", "timestamp:float"])
        for user, items in events.items():
            writer.writerows([user, item, position] for position, item in enumerate(items))
    return data, {"export_seconds": seconds, "users": len(events), "events": sum(len(v) for v in events.values())}


def recbole_venv(where: Path) -> tuple[Path, dict[str, object]]:
    """A new virtual environment with RecBole 1.2.1 and its pins; returns its python and the install record."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *RECBOLE_PINS], check=True)
    frozen = subprocess.run([str(python), "-m", "pip", "freeze"], check=True, capture_output=True, text=True).stdout.split()
    keep = ("recbole", "torch", "numpy", "pandas", "scipy", "scikit-learn", "ray", "setuptools")
    return python, {"install_seconds": round(time.perf_counter() - started, 1), "pins": RECBOLE_PINS,
                    "installed": [p for p in frozen if p.split("==")[0].lower() in keep]}


def run_driver(python: Path, data: Path, work: Path, budget: float, filter_seen: bool, threads: int) -> dict:
    """``benchmarks/peers/recbole_sasrec.py`` in RecBole's venv; its JSON, with peak RSS and wall seconds."""
    args = [str(python), str(DRIVER), "--data", str(data), "--name", NAME, "--budget", str(budget),
            "--threads", str(threads), "--work", str(work), *(["--filter-seen"] if filter_seen else [])]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | RECBOLE_ENV
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = PeakRss()
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        peak.update(parent)
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"RecBole driver failed ({proc.returncode}):\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result | {"wall_seconds": round(time.perf_counter() - started, 1), "peak_rss_mb": peak.mb}


def recbole_peer(home: Path, out: dict, budget: float, threads: int, venv: Path | None = None) -> None:
    """RecBole's SASRec on ``home``'s split beside ours (``out['ml100k_sasrec*']``, from ``pipeline_runs``)."""
    from training.generative.data import from_shards

    work = Path(tempfile.mkdtemp(prefix="recforge-recbole-"))
    try:
        data_dir, exported = recbole_files(home, work)
        if venv is None:
            python, install = recbole_venv(work / "recbole-venv")
        else:
            python, install = venv / "bin" / "python", {"reused_venv": str(venv)}
        ours = from_shards(home / "training_data" / "sequence_shards")
        load = [round(x, 2) for x in os.getloadavg()]
        result = run_driver(python, data_dir, work, budget, ours.filter_seen, threads)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as error:
        out["recbole_note"] = f"RecBole peer failed: {type(error).__name__}: {str(error)[-1500:]}"
        out["ml100k_recbole_sasrec_hr10"] = out["sasrec_throughput_ratio_to_recbole"] = None
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # The split must be ours: every test user with the same held-out item.
    expected = {str(int(u)): str(int(t) - 1) for u, t in zip(ours.test.users, ours.test.targets, strict=True)}
    mismatched = sum(result["test_targets"].get(u) != t for u, t in expected.items()) + len(set(result["test_targets"]) - set(expected))
    if mismatched:
        raise AssertionError(f"RecBole's test split differs from recforge's for {mismatched} users")
    del result["test_targets"]
    for name, value in result["test"].items():
        metric, k = name.split("@")
        out[f"ml100k_recbole_sasrec_{metric}{k}"] = round(value, 5)
    out["ml100k_recbole_sasrec_seconds"] = result["wall_seconds"]
    ours_detail = out.get("ml100k_sasrec_detail", {})  # this run's SASRec on the same shards (--ml100k-pipeline)
    per_row = positions_per_row(ours)
    ours_positions = ours_detail.get("sequences_per_step_second", 0.0) * per_row
    ratio = ours_positions / result["examples_per_second"] if ours_positions and result["examples_per_second"] else None
    out["sasrec_throughput_ratio_to_recbole"] = None if ratio is None else round(ratio, 3)
    out["ml100k_recbole_sasrec_detail"] = result | {"install": install, "export": exported, "budget_seconds": budget,
                                                    "load_average_at_start": load, "protocol": ours.protocol,
                                                    "split_check": f"{len(expected)} test users, same held-out item for each"}
    out["sasrec_throughput_detail"] = {
        "unit": "trained target positions per second of training steps (batching, forward, backward, update; no evaluation)",
        "ours_sequences_per_second": ours_detail.get("sequences_per_step_second"), "ours_positions_per_sequence": round(per_row, 2),
        "ours_positions_per_second": round(ours_positions, 1), "recbole_examples_per_second": result["examples_per_second"],
        # Each RecBole example is one pass over a (prefix) sequence too: the ratio per sequence passed, the work alone.
        "per_sequence_pass_ratio": round(ours_detail.get("sequences_per_step_second", 0.0) / result["examples_per_second"], 3)
        if result["examples_per_second"] else None,
        "note": "RecBole trains one example (a prefix, its last position the target) per row; recforge one sequence per user "
                "per epoch with every position a target. Both on one torch thread."}
    out["recbole_note"] = (f"RecBole {result['recbole_version']} (torch {result['torch']}, numpy {result['numpy']}) in its own venv, "
                           f"the same {budget:.0f} s budget and split; test scored by recforge's rule ({ours.protocol}); "
                           "RecBole's own evaluator (no seen-item filter) in the detail")
