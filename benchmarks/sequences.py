"""Benchmark: sequence build + shard write, and the streaming dataloader.

* **Build**: events -> deduplicated, sessionized interactions (written, as the asset does) -> temporal
  split over interactions (consecutive events on one item are one step) (train / valid / test histories, most recent 200 events) -> balanced shards with a manifest.
  recforge (``transforms.sequences`` on DuckDB, ``warehouse.shards``) against a straightforward pandas
  implementation written here, and against the same recforge SQL on Spark ``local[2]``.
  Ratios are baseline seconds / recforge seconds (larger is better for recforge).
* **Loader**: rows per second of ``training.data.ShardedSequenceDataset`` (shuffled, padded or jagged
  tensors) over the train shards, as a ratio to raw pyarrow reading of the same shards and columns (row
  groups decoded and their list values handed to numpy), each with its default threads (pyarrow's
  ``iter_batches`` its thread pool, the loader its two read-ahead decode threads). Fresh processes
  alternate the three epoch by epoch, so each loader epoch has a pyarrow epoch next to it; best against
  best, with the median of the per-epoch ratios beside it (the spread), and rows per CPU second too
  (``loader_cpu_ratio_*``).
* **Memory**: peak resident memory of each run's process tree (the JVM included for Spark), sampled.

Each measurement runs in a fresh subprocess. The events are a synthetic table built here with numpy
(Zipf-distributed items, lognormal user activity, 30 days, 0.1% duplicate actions, no logged sessions
so that gap sessionization does the work): generating a 10M-event world with ``sample_world`` and
staging its JSONL takes far longer than the benchmark itself on a two-core machine.

    python benchmarks/sequences.py            # 10M events (minutes)
    python benchmarks/sequences.py --quick    # 200k events, no Spark (under a minute)
    python benchmarks/sequences.py --spark-only   # only the Spark comparison (DuckDB re-run beside it), merged in
    python benchmarks/sequences.py --loader-only [--shards DIR]
        # only the loader figures, merged into the existing results JSON (build figures untouched);
        # DIR: a shard set to reuse, or where to build one from the synthetic events when it has none
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "benchmarks"))  # after the repo: benchmarks/training.py must not shadow the training package

from _harness import RESULTS, print_table, sample_peak_rss, write_results  # noqa: E402

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAYS = 30
TRAIN_END = START + dt.timedelta(days=28)
VALID_END = START + dt.timedelta(days=29)
MAX_LEN = 200
GAP = dt.timedelta(minutes=30)
WORLD_SIZE, SHARDS_PER_RANK, ROW_GROUP_ROWS = 2, 4, 1024
BATCH = 256
EVENT_MIX = {"view": 0.5, "click": 0.35, "add_to_cart": 0.1, "purchase": 0.05}
SPARK_TIMEOUT_S = 30 * 60


# --- data --------------------------------------------------------------------------------------------


def make_events(events: int, out: Path, seed: int = 0) -> dict[str, Any]:
    """Synthetic raw events, one Parquet file per day (like warehouse partitions), and an id map."""
    rng = np.random.default_rng(seed)
    users, items = max(events // 50, 10), max(events // 200, 10)
    activity = rng.lognormal(0, 1.0, users)
    user = rng.choice(users, size=events, p=activity / activity.sum())
    item = np.minimum(rng.zipf(1.15, size=events) - 1, items - 1)
    item = (item * 7919 + 13) % items  # spread popular ids around
    ms = START.timestamp() * 1000 + rng.integers(0, DAYS * 86_400_000, size=events)
    types = rng.choice(list(EVENT_MIX), size=events, p=list(EVENT_MIX.values()))
    dup = rng.random(events) < 0.001  # the same action logged twice: copy the previous row's action
    dup[0] = False
    idx = np.arange(events)
    src = np.where(dup, idx - 1, idx)
    user, item, ms, types = user[src], item[src], ms[src].astype(np.int64), types[src]
    user_names = pc.binary_join_element_wise("u", pc.cast(pa.array(np.arange(users)), pa.string()), "")
    item_names = pc.binary_join_element_wise("i", pc.cast(pa.array(np.arange(items)), pa.string()), "")
    table = pa.table(
        {
            "event_id": pc.binary_join_element_wise("e", pc.cast(pa.array(idx), pa.string()), ""),
            "user_id": user_names.take(pa.array(user)),
            "ts": pa.array(ms, pa.timestamp("ms", tz="UTC")),
            "event_type": pa.array(types, pa.string()),
            "item_id": item_names.take(pa.array(item)),
            "request_id": pa.nulls(events, pa.string()),
            "value": pa.nulls(events, pa.float64()),
            "session_id": pa.nulls(events, pa.string()),
        }
    )
    day = (ms - int(START.timestamp() * 1000)) // 86_400_000
    (out / "events").mkdir(parents=True)
    for d in range(DAYS):
        pq.write_table(table.filter(pa.array(day == d)), out / "events" / f"{d:02d}.parquet")
    id_maps = pa.table(
        {
            "entity": ["user"] * users + ["item"] * items,
            "external_id": pa.concat_arrays([user_names, item_names]),
            "idx": pa.array(np.concatenate([np.arange(users), np.arange(items)]), pa.int64()),
            "first_seen": pa.nulls(users + items, pa.timestamp("ms", tz="UTC")),
        }
    )
    pq.write_table(id_maps, out / "id_maps.parquet")
    return {"events": events, "users": users, "items": items}


def event_files(data: Path) -> list[Path]:
    return sorted((data / "events").glob("*.parquet"))


# --- the three builds --------------------------------------------------------------------------------


def build_recforge(data: Path, out: Path, spark: bool = False) -> dict[str, object]:
    from transforms import sequences as seq
    from transforms.cutoffs import Cutoffs
    from transforms.engine import EngineConfig, EngineKind, open_engine
    from warehouse.shards import ShardConfig, write_shard_set

    config = EngineConfig(kind=EngineKind.SPARK, spark_master="local[2]", spark_driver_memory="6g", spark_shuffle_partitions=8) if spark else EngineConfig(memory_limit="6GB", threads=2, spill_dir=str(out / "spill"))
    started = time.perf_counter()
    with open_engine(config) as engine:
        inter = seq.build_interactions(engine, event_files(data), [data / "id_maps.parquet"])
        inter_path = out / "interactions.parquet"
        pq.write_table(inter, inter_path, row_group_size=128 * 1024, compression="zstd")
        del inter
        split = seq.SplitConfig(cutoffs=Cutoffs(TRAIN_END, VALID_END))
        prep = seq.prepare(engine, [inter_path], seq.SequenceConfig(max_len=MAX_LEN, min_len=2), split)
        rows = seq.build_splits(engine, prep)
    result = write_shard_set(out / "shards", rows, ShardConfig(world_size=WORLD_SIZE, shards_per_rank=SHARDS_PER_RANK, row_group_rows=ROW_GROUP_ROWS), params={"split": split.params()})
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": result.manifest["rows"]}


def build_pandas(data: Path, out: Path) -> dict[str, object]:
    """The same build as a data scientist would write it in pandas."""
    import pandas as pd

    from transforms.sequences import EVENT_TYPE_CODES

    started = time.perf_counter()
    ev = pd.concat([pd.read_parquet(f) for f in event_files(data)], ignore_index=True)
    ids = pd.read_parquet(data / "id_maps.parquet")
    users = ids[ids.entity == "user"][["external_id", "idx"]].rename(columns={"external_id": "user_id", "idx": "user_idx"})
    items = ids[ids.entity == "item"][["external_id", "idx"]].rename(columns={"external_id": "item_id", "idx": "item_idx"})
    ev = ev[ev.item_id.notna()].merge(users, on="user_id").merge(items, on="item_id")
    ev = ev.sort_values(["user_idx", "ts", "event_id"]).drop_duplicates(["user_idx", "item_idx", "ts", "event_type"])
    new_session = ev.groupby("user_idx")["ts"].diff().isna() | (ev.groupby("user_idx")["ts"].diff() > GAP)
    ev["session_no"] = new_session.astype(int).groupby(ev["user_idx"]).cumsum()
    ev["session_id"] = "gap:" + ev["user_id"] + ":" + ev["session_no"].astype(str)
    stats = ev.groupby(["user_idx", "session_no"])["ts"].agg(["count", "min", "max"]).reset_index()
    stats["session_length"] = stats["count"]
    stats["session_duration_ms"] = (stats["max"] - stats["min"]).dt.total_seconds() * 1000
    stats["session_index"] = stats.groupby("user_idx").cumcount()
    ev = ev.merge(stats[["user_idx", "session_no", "session_length", "session_duration_ms", "session_index"]], on=["user_idx", "session_no"])
    ev.drop(columns=["session_no"]).to_parquet(out / "interactions.parquet")
    ev["ms"] = ev["ts"].dt.as_unit("ms").astype("int64")
    ev["code"] = ev["event_type"].map(EVENT_TYPE_CODES)
    ev["weight"] = 1.0
    ev = ev.sort_values(["user_idx", "ms", "event_id"])
    t, v = int(TRAIN_END.timestamp() * 1000), int(VALID_END.timestamp() * 1000)
    # Interactions: consecutive events of a user on one item (within one split) are one step.
    ev["part"] = np.where(ev.ms < t, 0, np.where(ev.ms < v, 1, 2))
    same = (ev.groupby("user_idx")["item_idx"].shift() == ev.item_idx) & (ev.groupby("user_idx")["part"].shift() == ev.part)
    ev = ev[~same]

    def histories(frame: pd.DataFrame) -> pd.DataFrame:
        recent = frame.groupby("user_idx").tail(MAX_LEN)
        return recent.groupby("user_idx").agg(item_ids=("item_idx", list), event_types=("code", list), timestamps=("ms", list), weights=("weight", list))

    def targets(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.groupby("user_idx").agg(target_item_ids=("item_idx", list), target_timestamps=("ms", list), target_weights=("weight", list))

    train = histories(ev[ev.ms < t])
    train = train[train.item_ids.map(len) >= 2].assign(split="train")
    valid = histories(ev[ev.ms < t]).join(targets(ev[(ev.ms >= t) & (ev.ms < v)]), how="inner").assign(split="valid")
    test = histories(ev[ev.ms < v]).join(targets(ev[ev.ms >= v]), how="inner").assign(split="test")
    shards = out / "shards"
    rows = {}
    for name, frame in (("train", train), ("valid", valid), ("test", test)):
        frame = frame.reset_index()
        if name == "train":
            frame["target_item_ids"] = [[] for _ in range(len(frame))]
            frame["target_timestamps"] = [[] for _ in range(len(frame))]
            frame["target_weights"] = [[] for _ in range(len(frame))]
        frame = frame.sample(frac=1.0, random_state=0)
        (shards / name).mkdir(parents=True)
        parts: list[Any] = np.array_split(frame.drop(columns=["split"]), WORLD_SIZE * SHARDS_PER_RANK)
        for i, part in enumerate(parts):
            table = pa.Table.from_pandas(part, preserve_index=False)
            pq.write_table(table, shards / name / f"part-{i:05d}.parquet", row_group_size=ROW_GROUP_ROWS)
        rows[name] = len(frame)
    return {"seconds": time.perf_counter() - started, "rows": rows}


# --- the loader and its baseline ----------------------------------------------------------------------

LOADER_COLUMNS = ["user_idx", "item_ids", "event_types", "timestamps", "weights", "target_item_ids"]
LOADER_EPOCHS = 6  # per process; the first is warm-up (imports, numba's cache, allocators) and does not count
LOADER_TASKS = ("pyarrow", "loader", "loader-jagged")


def _loader_epoch(shards: Path, epoch: int, jagged: bool) -> int:
    from training.data import BatchLayout, LoaderConfig, ShardedSequenceDataset

    layout = BatchLayout.JAGGED if jagged else BatchLayout.PADDED
    ds = ShardedSequenceDataset(shards, "train", LoaderConfig(batch_size=BATCH, max_len=MAX_LEN, layout=layout), rank=0, world_size=1)
    ds.set_epoch(epoch)
    return sum(int(b["user_idx"].shape[0]) for b in ds)


def _pyarrow_epoch(shards: Path, epoch: int) -> int:
    from warehouse.shards import current_version_dir, read_manifest

    version = current_version_dir(shards)
    rows = 0
    for shard in read_manifest(version)["splits"]["train"]["shards"]:
        for batch in pq.ParquetFile(version / shard["path"]).iter_batches(batch_size=BATCH, columns=LOADER_COLUMNS):
            arrays = [batch.column(0).to_numpy()]
            arrays += [batch.column(i).values.to_numpy(zero_copy_only=False) for i in range(1, len(LOADER_COLUMNS))]
            rows += batch.num_rows
    return rows


def _timed_epoch(task: str, shards: Path, epoch: int) -> tuple[int, float, float]:
    """Rows, rows per second and rows per CPU second (all threads) of one epoch of ``task``."""
    started, cpu = time.perf_counter(), time.process_time()
    rows = _pyarrow_epoch(shards, epoch) if task == "pyarrow" else _loader_epoch(shards, epoch, jagged=task == "loader-jagged")
    return rows, rows / (time.perf_counter() - started), rows / (time.process_time() - cpu)


def load_one(task: str, shards: Path) -> dict[str, object]:
    """``task`` alone for ``LOADER_EPOCHS`` epochs (its peak memory is this process's)."""
    timed = [_timed_epoch(task, shards, epoch) for epoch in range(LOADER_EPOCHS)][1:]
    return {"rows": timed[0][0], "rows_per_s": max(t[1] for t in timed), "rows_per_cpu_s": max(t[2] for t in timed)}


def load_alternating(shards: Path) -> dict[str, object]:
    """pyarrow, the padded loader and the jagged one take turns epoch by epoch in one process (the order
    rotating), so each loader epoch has a pyarrow epoch within about a second of it: load from other
    processes on the shared machine then falls on both alike. Per task and counted epoch: (rows/s, rows/CPU s)."""
    samples: dict[str, list[tuple[float, float]]] = {task: [] for task in LOADER_TASKS}
    rows = 0
    for epoch in range(LOADER_EPOCHS):
        turn = LOADER_TASKS[epoch % 3 :] + LOADER_TASKS[: epoch % 3]
        for task in turn:
            rows, per_s, per_cpu_s = _timed_epoch(task, shards, epoch)
            if epoch:
                samples[task].append((per_s, per_cpu_s))
    return {"rows": rows, "samples": samples}


# --- harness -----------------------------------------------------------------------------------------


def worker(task: str, data: Path, out: Path) -> None:
    """Run one measurement in this process and print its JSON (with the sampled peak tree RSS)."""
    out.mkdir(parents=True, exist_ok=True)
    with sample_peak_rss(interval=0.2) as peak:
        if task == "recforge":
            result = build_recforge(data, out)
        elif task == "spark":
            result = build_recforge(data, out, spark=True)
        elif task == "pandas":
            result = build_pandas(data, out)
        elif task in LOADER_TASKS:
            result = load_one(task, data)
        elif task == "loader-alternating":
            result = load_alternating(data)
        else:
            raise ValueError(task)
    result["peak_rss_mb"] = peak.mb
    print("RESULT " + json.dumps(result))


def run(task: str, data: Path, out: Path, timeout: float | None = None) -> dict[str, Any]:
    """One measurement in a fresh subprocess; ``{"error": ...}`` when it fails or times out."""
    cmd = [sys.executable, __file__, "--worker", task, "--data", str(data), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        print(f"  {task}: timed out after {timeout:.0f}s", flush=True)
        return {"error": f"timed out after {timeout:.0f}s"}
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        reason = next((x for x in reversed(proc.stderr.splitlines()) if "Error" in x or "Exception" in x), proc.stderr[-300:])
        print(f"  {task}: failed ({proc.returncode}): {reason[:300]}", flush=True)
        return {"error": f"exit {proc.returncode}: {reason[:300]}"}
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    print(f"  {task:<13} {json.dumps(result)}", flush=True)
    return result


def _ratio(baseline: dict[str, Any], ours: dict[str, Any], key: str) -> float | None:
    if "error" in baseline or "error" in ours:
        return None
    a, b = float(baseline[key]), float(ours[key])
    return round(a / b, 3)


def _write(figures: dict[str, Any], quick: bool) -> None:
    write_results("sequences_quick" if quick else "sequences", figures, sort_keys=False)


LOADER_ROUNDS = 5


def loader_figures(shards: Path, tmp: Path) -> dict[str, Any]:
    """The loader (padded and jagged) against raw pyarrow reading of the same train shards.

    ``LOADER_ROUNDS`` fresh processes each alternate the three epoch by epoch (:func:`load_alternating`).
    The headline ratios are best against best over all counted epochs; the medians of the per-epoch
    ratios (each loader epoch against the pyarrow epoch next to it) show the spread. Rows per CPU second
    (all threads of the process) are reported beside wall time. One more process per task runs it alone:
    its peak memory, and a check that taking turns slows neither side.
    """
    samples: dict[str, list[tuple[float, float]]] = {task: [] for task in LOADER_TASKS}
    rows = None
    for _ in range(LOADER_ROUNDS):
        result = run("loader-alternating", shards, tmp / "load-alternating")
        if "error" in result:
            continue
        rows = result["rows"]
        for task in LOADER_TASKS:
            samples[task] += [tuple(x) for x in result["samples"][task]]
    alone = {task: run(task, shards, tmp / f"load-{task}") for task in ("pyarrow", "loader")}
    if not samples["pyarrow"]:
        return {"loader_error": "every loader round failed"}

    def best(task: str, column: int) -> float:
        return max(x[column] for x in samples[task])

    def ratio(task: str, column: int = 0) -> float:
        return round(best(task, column) / best("pyarrow", column), 3)

    def median_ratio(task: str) -> float:
        pairs = zip(samples["pyarrow"], samples[task], strict=True)
        return round(float(statistics.median(ours[0] / theirs[0] for theirs, ours in pairs)), 3)

    return {
        "loader_rows": rows,
        "loader_rows_per_s": best("loader", 0),
        "pyarrow_rows_per_s": best("pyarrow", 0),
        "loader_ratio_to_pyarrow": ratio("loader"),
        "loader_ratio_to_pyarrow_median_epoch": median_ratio("loader"),
        "loader_jagged_rows_per_s": best("loader-jagged", 0),
        "loader_ratio_to_pyarrow_jagged": ratio("loader-jagged"),
        "loader_ratio_to_pyarrow_jagged_median_epoch": median_ratio("loader-jagged"),
        "loader_cpu_ratio_to_pyarrow": ratio("loader", 1),
        "loader_cpu_ratio_to_pyarrow_jagged": ratio("loader-jagged", 1),
        "loader_rounds": LOADER_ROUNDS,
        "loader_epochs_counted_per_round": LOADER_EPOCHS - 1,
        # Each alone in its own process (one round): a check that taking turns slows neither.
        "pyarrow_rows_per_s_alone": alone["pyarrow"].get("rows_per_s"),
        "loader_rows_per_s_alone": alone["loader"].get("rows_per_s"),
        "loader_ratio_to_pyarrow_alone": _ratio(alone["loader"], alone["pyarrow"], "rows_per_s"),  # a rate: ours / theirs
        "peak_rss_mb_loader": alone["loader"].get("peak_rss_mb"),
        "peak_rss_mb_pyarrow": alone["pyarrow"].get("peak_rss_mb"),
    }


def spark_figures(events: int, tmp: Path, data: Path | None = None) -> dict[str, Any]:
    """The same recforge build on Spark ``local[2]`` against DuckDB, both on ``events`` synthetic events
    (``data`` when it already holds them). DuckDB is re-run here so that both are measured in one run."""
    if data is None:
        data = tmp / "data-spark"
        make_events(events, data)
    ours = run("recforge", data, tmp / "recforge-at-spark-events")
    spark = run("spark", data, tmp / "spark", timeout=SPARK_TIMEOUT_S)
    return {
        "spark_events": events,
        "recforge_build_s_at_spark_events": ours.get("seconds"),
        "spark_build_s": spark.get("seconds"),
        "build_ratio_to_spark": _ratio(spark, ours, "seconds"),
        "rows_match_spark": (spark.get("rows") == ours.get("rows")) if "error" not in spark else None,
        "peak_rss_mb_spark": spark.get("peak_rss_mb"),
        "spark_error": spark.get("error"),
    }


def spark_only(events: int) -> int:
    """Measure only the Spark comparison and merge its figures into the existing full results."""
    path = RESULTS / "sequences.json"
    figures: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"events": events, "quick": False}
    with tempfile.TemporaryDirectory(prefix="recforge-bench-seq-") as tmp:
        measured = spark_figures(events, Path(tmp))
    figures.update(measured)
    figures.pop("spark_at_10m_events", None)
    _write(figures, False)
    print()
    print_table("recforge sequences benchmark: Spark", list(measured.items()))
    return 0


def loader_only(events: int, quick: bool, shards: Path | None) -> int:
    """Measure the loader alone and merge its figures into the existing results (build figures untouched).

    The shards are ``shards`` when it already holds a shard set; otherwise they are built (as in the full
    run) from ``events`` synthetic events, and kept at ``shards`` when given.
    """
    name = "sequences_quick.json" if quick else "sequences.json"
    path = RESULTS / name
    figures: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"events": events, "quick": quick}
    with tempfile.TemporaryDirectory(prefix="recforge-bench-seq-") as tmp:
        if shards is None or not (shards / "current").exists():
            if figures.get("events", events) != events:
                raise SystemExit(f"{name} holds figures for {figures['events']} events; pass --events {figures['events']}")
            data = Path(tmp) / "data"
            info = make_events(events, data)
            print(f"synthetic events: {info}", flush=True)
            rec = run("recforge", data, Path(tmp) / "recforge")
            if "error" in rec:
                raise SystemExit(f"the recforge build failed: {rec['error']}")
            built = Path(tmp) / "recforge" / "shards"
            if shards is not None:
                import shutil

                shards.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(built, shards, symlinks=True)
            else:
                shards = built
        loaded = loader_figures(shards, Path(tmp))
    # Drop the previous loader figures first: a key this version no longer writes must not linger.
    figures = {k: v for k, v in figures.items() if not k.startswith(("loader_", "pyarrow_", "peak_rss_mb_loader", "peak_rss_mb_pyarrow"))}
    figures.update(loaded)
    _write(figures, quick)
    print()
    print_table("recforge sequences benchmark: loader", list(loaded.items()))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k events, no Spark")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--spark-events", type=int, default=None,
                        help="events of the Spark comparison (default: the same as --events; 0 skips it)")
    parser.add_argument("--spark-only", action="store_true",
                        help="measure only the Spark comparison (recforge re-run beside it) and merge it into the existing results")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--loader-only", action="store_true",
                        help="measure only the loader against pyarrow and merge those figures into the existing results")
    parser.add_argument("--shards", type=Path, default=None,
                        help="with --loader-only: a shard root to reuse, or where to keep the one built from synthetic events")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.out)
        return 0

    events = args.events or (200_000 if args.quick else 10_000_000)
    if args.loader_only:
        return loader_only(events, args.quick, args.shards)
    spark_events = 0 if args.quick else (events if args.spark_events is None else args.spark_events)
    if args.spark_only:
        return spark_only(spark_events)
    figures: dict[str, Any] = {"events": events, "quick": bool(args.quick), "data": "synthetic numpy events (see the module docstring)"}
    with tempfile.TemporaryDirectory(prefix="recforge-bench-seq-") as tmp:
        data = Path(tmp) / "data"
        started = time.perf_counter()
        info = make_events(events, data)
        print(f"synthetic events: {info} in {time.perf_counter() - started:.1f}s", flush=True)
        figures.update(users=info["users"], items=info["items"])
        rec = run("recforge", data, Path(tmp) / "recforge")
        if "error" in rec:
            raise SystemExit(f"the recforge build failed: {rec['error']}")
        figures.update(recforge_build_s=round(float(rec["seconds"]), 2), train_rows=rec["rows"]["train"], peak_rss_mb=rec["peak_rss_mb"])
        figures.update(loader_figures(Path(tmp) / "recforge" / "shards", Path(tmp)))
        _write(figures, args.quick)
        pandas = run("pandas", data, Path(tmp) / "pandas")
        figures.update(
            pandas_build_s=pandas.get("seconds"),
            build_ratio_to_pandas=_ratio(pandas, rec, "seconds"),
            rows_match_pandas=pandas.get("rows") == rec["rows"],
            peak_rss_mb_pandas=pandas.get("peak_rss_mb"),
            memory_ratio_to_pandas=_ratio(pandas, rec, "peak_rss_mb"),
        )
        _write(figures, args.quick)
        if spark_events:
            figures.update(spark_figures(spark_events, Path(tmp), data if spark_events == events else None))
        else:
            figures.update(build_ratio_to_spark=None)
    _write(figures, args.quick)
    print()
    print_table("recforge sequences benchmark", list(figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
