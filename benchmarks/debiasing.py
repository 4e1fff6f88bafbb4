"""MNAR-debiased labels, validated three ways (issue 4), plus bounded memory at scale.

1. Sample world (known truth): the EM examination curve against the true curve, and the IPS estimate
   of the mean relevance of exposed items against the naive click rate.
2. Open Bandit Dataset small (when present): EM position effects from the Bernoulli-TS logs against
   click rates per position under the uniform-random policy.
3. Coat (when present): a small torch matrix factorization on the biased training ratings
   (rating >= 4 is positive) with naive labels and with debiased labels (popularity propensities,
   Saito et al.'s Rel-MF loss), evaluated on the randomly exposed test ratings: DCG@K and Recall@K,
   K = 3, 5, mean and standard deviation over 5 seeds. Hyper-parameters are fixed before looking at
   the test set and are the same for both label sets.
4. Scale (full run only): the whole label pipeline on 10M synthetic impressions with DuckDB capped at
   1 GB, peak RSS of the process measured.

Usage: ``python benchmarks/debiasing.py [--quick]``; writes ``benchmarks/results/debiasing.json``
(``debiasing_quick.json`` with ``--quick``).
Ratios are stated so that larger is better (``relevance_error_ratio`` = naive error / IPS error).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import print_table, run_phase, write_results

from pipelines.ingestion import LOG_TABLES, ingest_table
from sample_world import WorldConfig, generate_world
from transforms import labels as L
from transforms.engine import DuckDBEngine, Engine, EngineConfig
from transforms.labels.click_model import ClickModelConfig
from warehouse import contracts as C
from warehouse.store import Warehouse

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
UTC = dt.UTC


def _engine(tmp: Path, memory: str = "2GB") -> DuckDBEngine:
    return DuckDBEngine(EngineConfig(memory_limit=memory, spill_dir=str(tmp / "spill")))


def _labels(engine: Engine, config: L.LabelConfig) -> tuple[pa.Table, list[L.SurfaceFit], pa.Table]:
    bias, fits = L.fit_position_bias(engine, config)
    popularity = L.exposure_propensities(engine, config)
    parts = [t for _, t in L.iter_debiased_labels(engine, config, bias, popularity)]
    return bias, fits, pa.concat_tables(parts)


# --- 1. the sample world ------------------------------------------------------------------------------


def world_section(tmp: Path, quick: bool) -> dict[str, object]:
    size = dict(users=3000, items=300, days=8) if quick else dict(users=20000, items=1000, days=14)
    config = WorldConfig(seed=11, bad_share=0.0, dup_share=0.0, **size)  # type: ignore[arg-type]
    started = time.perf_counter()
    generate_world(config, tmp / "world", workers=2)
    store = Warehouse(tmp / "home")
    days = [config.start_date + dt.timedelta(days=d) for d in range(config.days)]
    train_days = round(config.days * 0.7)
    start = dt.datetime.combine(config.start_date, dt.time(), UTC)
    cutoffs = L.Cutoffs(start + dt.timedelta(days=train_days), start + dt.timedelta(days=train_days + 1))
    with _engine(tmp) as engine:
        for day in days:
            for table in LOG_TABLES:
                ingest_table(store, engine, table, tmp / "world", day)
        ingest_table(store, engine, "items", tmp / "world")
        ingest_seconds = time.perf_counter() - started
        L.register_sources(engine, {n: store.files(c) for n, c in L.SOURCE_RELATIONS.items()})
        t0 = time.perf_counter()
        bias, fits, labels = _labels(engine, L.LabelConfig(cutoffs=cutoffs))
        label_seconds = time.perf_counter() - t0
        _, _, snips_labels = _labels(engine, L.LabelConfig(cutoffs=cutoffs, snips=True))
        item_only, _ = L.fit_position_bias(engine, L.LabelConfig(cutoffs=cutoffs, relevance_by=L.RelevanceGrouping.ITEM))

    truth = json.loads((tmp / "world" / "truth" / "examination.json").read_text())["surfaces"]

    def max_error(table: pa.Table, split: str) -> tuple[float, dict[str, list[float]]]:
        curves: dict[str, list[float]] = {}
        worst = 0.0
        for r in table.filter(pc.equal(table["split"], split)).to_pylist():
            curves.setdefault(r["surface"], []).append(round(r["examination"], 4))
            worst = max(worst, abs(r["examination"] - truth[r["surface"]]["curve"][r["position"]]))
        return worst, curves

    err_all, curves = max_error(bias, "test")
    err_train, _ = max_error(bias, "train")
    err_item_only, _ = max_error(item_only, "test")

    served = pq.read_table(tmp / "world" / "truth" / "served",
                           columns=["request_id", "item_id", "position", "impressed", "relevance_prob", "propensity", "examination_prob"])
    served = served.filter(served["impressed"]).drop(["impressed"])
    keys = ["request_id", "item_id", "position"]

    def with_truth(table: pa.Table) -> pa.Table:
        cols = [*keys, "split", "observed", "weight_positive", "examination", "propensity_source", "clipped"]
        joined = table.select(cols).join(served, keys, join_type="inner")
        assert joined.num_rows == table.num_rows, "every label row is a served impression"
        return joined

    joined, snipped = with_truth(labels), with_truth(snips_labels)
    # The label table's estimand (default auto: the world logs half its slates, so no split is logged
    # throughout and every row is position-debiased): mean of weight_positive = Y / max(theta, M)
    # estimates the mean relevance of the exposed items.
    truth_mean = pc.mean(joined["relevance_prob"]).as_py()
    naive = pc.mean(joined["observed"]).as_py()
    ips = pc.mean(joined["weight_positive"]).as_py()
    snips_ips = pc.mean(snipped["weight_positive"]).as_py()
    train = joined.filter(pc.equal(joined["split"], "train"))
    train_truth, train_ips = pc.mean(train["relevance_prob"]).as_py(), pc.mean(train["weight_positive"]).as_py()
    # The logged path: the world logs P(item in slot), so for any item available all along the mean
    # over requests of 1{item in slot k} / logged propensity is 1 at every slot (checked for the most
    # popular such item at slots 0-2; Plackett-Luce step probabilities gave 1.00 / 0.50 / 0.20).
    catalog = pq.read_table(tmp / "world" / "truth" / "items.parquet", columns=["item_id", "popularity", "cold_start"]).to_pandas()
    top = catalog[~catalog.cold_start].sort_values("popularity").item_id.iloc[-1]
    slots = pq.read_table(tmp / "world" / "truth" / "served", columns=["request_id", "item_id", "position", "propensity"]).to_pandas()
    n_requests = slots.request_id.nunique()
    hits = slots[slots.item_id == top]
    inverse_check = [round(float((1.0 / hits[hits.position == k].propensity).sum() / n_requests), 3) for k in range(3)]
    figures: dict[str, object] = {
        "world_users": config.users,
        "world_items": config.items,
        "world_days": config.days,
        "world_impressions": labels.num_rows,
        "examination_max_abs_error": round(err_all, 4),
        "examination_max_abs_error_train_scope": round(err_train, 4),
        "examination_max_abs_error_item_only_relevance": round(err_item_only, 4),
        "label_estimand_by_split": json.dumps(
            {s: sorted(set(joined.filter(pc.equal(joined["split"], s))["propensity_source"].to_pylist())) for s in ("train", "valid", "test")}),
        "true_mean_relevance": round(truth_mean, 4),
        "naive_click_rate": round(naive, 4),
        "label_weights_mean_relevance": round(ips, 4),
        "label_weights_snips_mean_relevance": round(snips_ips, 4),
        "train_true_mean_relevance": round(train_truth, 4),
        "train_label_weights_mean_relevance": round(train_ips, 4),
        "naive_relevance_error": round(abs(naive - truth_mean), 4),
        "ips_relevance_error": round(abs(ips - truth_mean), 4),
        "snips_relevance_error": round(abs(snips_ips - truth_mean), 4),
        "relevance_error_ratio": round(abs(naive - truth_mean) / max(abs(ips - truth_mean), 1e-9), 1),
        "clipped_share": round(pc.mean(pc.cast(labels["clipped"], pa.float64())).as_py(), 4),
        "logged_inverse_propensity_mean_top_item_slots_0_2": json.dumps(inverse_check),
        "world_ingest_seconds": round(ingest_seconds, 1),
        "world_label_seconds": round(label_seconds, 1),
        "em_iterations_max": max(f.fit.iterations for f in fits),
    }
    print(f"sample world, mean relevance of exposed items: truth {truth_mean:.4f}, naive click rate {naive:.4f}, "
          f"label weights {ips:.4f} (SNIPS {snips_ips:.4f}); train split: truth {train_truth:.4f}, label weights {train_ips:.4f}")
    for surface, curve in curves.items():
        errors = [abs(v - t) for v, t in zip(curve, truth[surface]["curve"], strict=False)]
        figures[f"examination_max_abs_error_{surface}"] = round(max(errors), 4)
        figures[f"examination_positions_within_005_{surface}"] = f"{sum(e <= 0.05 for e in errors)}/{len(errors)}"
        figures[f"world_{surface}_estimated_curve"] = json.dumps(curve)
        figures[f"world_{surface}_true_curve"] = json.dumps([round(v, 4) for v in truth[surface]["curve"]])
    return figures


# --- 2. Open Bandit Dataset small ---------------------------------------------------------------------


def _obd_tables(policy: str) -> dict[str, pa.Table]:
    """Every OBD row as one impression of its own one-slot request (the raw tables this module reads).

    Parsed here directly (a small local reader) so the benchmark does not depend on the connector's
    landing layout; each campaign is a surface.
    """
    import pandas as pd

    slates, impressions, events = [], [], []
    for campaign in ("men", "women"):
        path = DATASETS / "open-bandit-dataset-small" / policy / campaign / f"{campaign}.csv"
        df = pd.read_csv(path, usecols=["timestamp", "item_id", "position", "click", "propensity_score"])
        ts = pd.to_datetime(df["timestamp"], utc=True).dt.floor("ms")
        rid = [f"{policy}:{campaign}:{i}" for i in range(len(df))]
        items = [f"{campaign}:{i}" for i in df["item_id"]]
        slates.append(pa.table({"request_id": rid, "user_id": rid, "ts": ts, "surface": [campaign] * len(df),
                                "item_ids": [[i] for i in items], "policy": [policy] * len(df), "propensities": [None] * len(df)}))
        impressions.append(pa.table({"request_id": rid, "user_id": rid, "item_id": items, "position": df["position"] - 1,
                                     "ts": ts, "propensity": df["propensity_score"]}))
        clicked = df["click"] == 1
        events.append(pa.table({"event_id": [f"{r}:c" for r, c in zip(rid, clicked, strict=True) if c],
                                "user_id": [r for r, c in zip(rid, clicked, strict=True) if c],
                                "ts": ts[clicked], "event_type": ["click"] * int(clicked.sum()),
                                "item_id": [i for i, c in zip(items, clicked, strict=True) if c],
                                "request_id": [r for r, c in zip(rid, clicked, strict=True) if c]}))
    out = {}
    for name, parts, contract in (("slates", slates, C.RAW_SLATES), ("impressions", impressions, C.RAW_IMPRESSIONS), ("events", events, C.RAW_EVENTS)):
        out[name] = pa.concat_tables([_conform(p, contract) for p in parts])
    return out


def _conform(table: pa.Table, contract: C.TableContract) -> pa.Table:
    for f in contract.schema:
        if f.name not in table.column_names:
            table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
    return table.select(contract.schema.names).cast(contract.schema)


def obd_section(tmp: Path) -> dict[str, object]:
    if not (DATASETS / "open-bandit-dataset-small").is_dir():
        return {"obd_present": False}
    far = dt.datetime(2100, 1, 1, tzinfo=UTC)
    # Horizontal slots (left, centre, right): no monotone constraint, and no pooling of the 3 positions.
    config = L.LabelConfig(cutoffs=L.Cutoffs(far, far), relevance_by=L.RelevanceGrouping.ITEM,
                           click_model=ClickModelConfig(min_position_clicks=1, monotone=False))
    figures: dict[str, object] = {"obd_present": True}
    with _engine(tmp) as engine:
        for name, contract in L.SOURCE_RELATIONS.items():
            engine.register_arrow(name, _obd_tables("bts").get(name, contract.schema.empty_table()))
        _, fits = L.fit_position_bias(engine, config)
        em = {f.surface: f.fit for f in fits if f.split == L.Split.TEST}
        for name, table in _obd_tables("random").items():
            engine.register_arrow(name, table)
        rates = L.click_rates_under_policy(engine, config, "random").to_pylist()
    worst = 0.0
    for campaign in ("men", "women"):
        rows = sorted((r for r in rates if r["surface"] == campaign), key=lambda r: r["position"])
        base = rows[0]["click_rate"]
        relative = [r["click_rate"] / base for r in rows]
        # Delta-method standard error of a ratio of two independent binomial rates.
        se = [rel * math.sqrt((1 - r["click_rate"]) / max(r["clicks"], 1) + (1 - base) / max(rows[0]["clicks"], 1))
              for rel, r in zip(relative, rows, strict=True)]
        fit = em[campaign]
        figures[f"obd_{campaign}_em_curve"] = json.dumps([round(float(v), 3) for v in fit.examination])
        figures[f"obd_{campaign}_random_curve"] = json.dumps([round(v, 3) for v in relative])
        figures[f"obd_{campaign}_random_curve_se"] = json.dumps([round(v, 3) for v in se])
        figures[f"obd_{campaign}_bts_clicks"] = int(fit.clicks.sum())
        figures[f"obd_{campaign}_random_clicks"] = int(sum(r["clicks"] for r in rows))
        worst = max(worst, max(abs(float(a) - b) for a, b in zip(fit.examination, relative, strict=True)))
    figures["obd_max_abs_diff_em_vs_random"] = round(worst, 3)
    return figures


# --- 3. Coat --------------------------------------------------------------------------------------


def _read_matrix(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()])


def _coat_labels(tmp: Path, train: np.ndarray) -> pa.Table:
    """Debiased labels for Coat's training ratings through the label transforms (ratings only)."""
    users, items = np.nonzero(train)
    ts = dt.datetime(2016, 1, 1, tzinfo=UTC)
    events = _conform(pa.table({
        "event_id": [f"e{u}_{i}" for u, i in zip(users, items, strict=True)],
        "user_id": [str(u) for u in users], "ts": pa.array([ts] * len(users), C.TS),
        "event_type": ["rating"] * len(users), "item_id": [str(i) for i in items],
        "value": train[users, items].astype(float),
    }), C.RAW_EVENTS)
    far = dt.datetime(2100, 1, 1, tzinfo=UTC)
    # M = 0.1: the least-rated Coat item has theta = (n_min / n_max) ** 0.5 above 0.1 anyway.
    config = L.LabelConfig(cutoffs=L.Cutoffs(far, far), clip_min=0.1)
    with _engine(tmp) as engine:
        for name, contract in L.SOURCE_RELATIONS.items():
            engine.register_arrow(name, events if name == "events" else contract.schema.empty_table())
        _, _, labels = _labels(engine, config)
    return labels


def _train_mf(positive: np.ndarray, weight_pos: np.ndarray, weight_neg: np.ndarray, seed: int) -> np.ndarray:
    """Full-batch MF with a weighted logistic loss over every (user, item) pair; returns scores.

    loss = sum w_pos * softplus(-s) + w_neg * softplus(s) + l2 (||P||^2 + ||Q||^2); for naive labels
    ``w_pos = Y, w_neg = 1 - Y``; for debiased ones Saito's ``Y / theta`` and ``1 - Y / theta``.
    """
    import torch

    torch.set_num_threads(1)  # a 290 x 300 problem: threads only add contention on a shared machine
    torch.manual_seed(seed)
    n_users, n_items = positive.shape
    dim, epochs, lr, l2 = 16, 300, 0.02, 1e-3
    p = torch.nn.Parameter(0.1 * torch.randn(n_users, dim))
    q = torch.nn.Parameter(0.1 * torch.randn(n_items, dim))
    bias = torch.nn.Parameter(torch.zeros(n_items))
    wp = torch.tensor(weight_pos, dtype=torch.float32)
    wn = torch.tensor(weight_neg, dtype=torch.float32)
    optim = torch.optim.Adam([p, q, bias], lr=lr)
    for _ in range(epochs):
        optim.zero_grad()
        s = p @ q.T + bias
        loss = (wp * torch.nn.functional.softplus(-s) + wn * torch.nn.functional.softplus(s)).mean()
        loss = loss + l2 * (p.pow(2).sum() + q.pow(2).sum()) / n_users
        loss.backward()
        optim.step()
    with torch.no_grad():
        return (p @ q.T + bias).numpy()


def _rank_metrics(scores: np.ndarray, test: np.ndarray, k: int) -> tuple[float, float]:
    """DCG@k and Recall@k over each user's randomly exposed test items (relevant: rating >= 4)."""
    dcgs, recalls = [], []
    for u in range(test.shape[0]):
        rated = np.flatnonzero(test[u])
        relevant = test[u, rated] >= 4
        if not relevant.any():
            continue
        order = rated[np.argsort(-scores[u, rated], kind="stable")][:k]
        gains = test[u, order] >= 4
        dcgs.append(float(np.sum(gains / np.log2(np.arange(2, len(order) + 2)))))
        recalls.append(float(gains.sum() / relevant.sum()))
    return float(np.mean(dcgs)), float(np.mean(recalls))


def coat_section(tmp: Path, quick: bool) -> dict[str, object]:
    folder = DATASETS / "coat"
    if not folder.is_dir():
        return {"coat_present": False}
    train = _read_matrix(folder / "train.ascii")
    test = _read_matrix(folder / "test.ascii")
    labels = _coat_labels(tmp, train)
    positive = np.zeros_like(train)
    w_pos_debiased = np.zeros_like(train)
    w_neg_debiased = np.ones_like(train)
    for r in labels.to_pylist():
        u, i = int(r["user_id"]), int(r["item_id"])
        positive[u, i] = 1.0
        w_pos_debiased[u, i] = r["weight_positive"]
        w_neg_debiased[u, i] = r["weight_negative"]
    variants = {
        "naive": (positive, 1.0 - positive),
        "debiased": (w_pos_debiased, w_neg_debiased),
        # The negative term 1 - Y/theta is below 0 for positives, which makes the loss unbounded
        # below; its non-negative variant (max(0, .)) trades that variance for some bias.
        "debiased_nonneg": (w_pos_debiased, np.maximum(w_neg_debiased, 0.0)),
    }
    seeds = range(2 if quick else 5)
    figures: dict[str, object] = {"coat_present": True, "coat_seeds": len(seeds), "coat_train_positives": int(positive.sum()),
                                  "coat_min_propensity": round(pc.min(labels["propensity"]).as_py(), 4)}
    for name, (wp, wn) in variants.items():
        results: dict[str, list[float]] = {}
        for seed in seeds:
            scores = _train_mf(positive, wp, wn, seed)
            for k in (3, 5):
                dcg, recall = _rank_metrics(scores, test, k)
                results.setdefault(f"dcg{k}", []).append(dcg)
                results.setdefault(f"recall{k}", []).append(recall)
        for metric, values in results.items():
            figures[f"coat_{metric}_{name}"] = round(float(np.mean(values)), 4)
            figures[f"coat_{metric}_{name}_std"] = round(float(np.std(values)), 4)
    figures["coat_dcg5_ratio_debiased_over_naive"] = round(figures["coat_dcg5_debiased"] / figures["coat_dcg5_naive"], 3)  # type: ignore[operator]
    return figures


# --- 4. scale --------------------------------------------------------------------------------------

SCALE_PHASE = r"""
import datetime as dt, json, sys, time
from pathlib import Path
import numpy as np, pyarrow as pa
sys.path.insert(0, ".")
from transforms import labels as L
from transforms.engine import DuckDBEngine, Engine, EngineConfig
from warehouse import contracts as C
from warehouse.store import Warehouse
root, n = Path(sys.argv[1] if len(sys.argv) > 1 else "{root}"), {n}
store = Warehouse(root)
files = {{"impressions": store.files(C.RAW_IMPRESSIONS), "slates": store.files(C.RAW_SLATES), "events": store.files(C.RAW_EVENTS)}}
start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
config = L.LabelConfig(cutoffs=L.Cutoffs(start + dt.timedelta(days=21), start + dt.timedelta(days=25)), relevance_by=L.RelevanceGrouping.ITEM)
t = time.perf_counter()
with DuckDBEngine(EngineConfig(memory_limit="1GB", threads=2, spill_dir="{root}/spill")) as engine:
    L.register_sources(engine, files)
    bias, fits = L.fit_position_bias(engine, config)
    pop = L.exposure_propensities(engine, config)
    rows = 0
    for day, table in L.iter_debiased_labels(engine, config, bias, pop):
        store.write(C.LABELS_DEBIASED_LABELS, table, day)
        rows += table.num_rows
print(json.dumps({{"rows": rows, "label_seconds": time.perf_counter() - t}}))
"""


def _write_scale_inputs(root: Path, n: int, days: int = 30, items: int = 50_000, slate: int = 10) -> None:
    """Synthetic raw impressions, slates and clicks (a position-based model) written day by day."""
    store = Warehouse(root)
    rng = np.random.default_rng(0)
    per_day = n // days // slate
    relevance = rng.beta(1, 8, items)
    exam = 1.0 / (1.0 + np.arange(slate))
    for d in range(days):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=d)
        base = dt.datetime.combine(day, dt.time(), UTC)
        req = np.arange(per_day)
        rid = pa.array([f"r{d}_{r}" for r in req])
        ts = pa.array([base + dt.timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 86_000, per_day))], C.TS)
        chosen = rng.integers(0, items, (per_day, slate))
        item_ids = np.char.add("i", chosen.astype(str))
        store.write(C.RAW_SLATES, _conform(pa.table({"request_id": rid, "user_id": rid, "ts": ts, "surface": ["home"] * per_day,
                                                     "item_ids": pa.array(item_ids.tolist()), "policy": ["random"] * per_day}), C.RAW_SLATES), day)
        flat_rid = pa.array(np.repeat(np.asarray(rid.to_pylist(), dtype=object), slate))
        flat_ts = pa.array(np.repeat(ts.to_numpy(zero_copy_only=False), slate)).cast(C.TS)
        positions = np.tile(np.arange(slate, dtype=np.int32), per_day)
        flat_items = item_ids.reshape(-1)
        store.write(C.RAW_IMPRESSIONS, _conform(pa.table({"request_id": flat_rid, "user_id": flat_rid, "item_id": flat_items,
                                                          "position": positions, "ts": flat_ts}), C.RAW_IMPRESSIONS), day)
        clicked = rng.random(len(positions)) < exam[positions] * relevance[chosen.reshape(-1)]
        idx = np.flatnonzero(clicked)
        store.write(C.RAW_EVENTS, _conform(pa.table({
            "event_id": [f"c{d}_{i}" for i in idx], "user_id": flat_rid.take(pa.array(idx)), "ts": flat_ts.take(pa.array(idx)),
            "event_type": ["click"] * len(idx), "item_id": flat_items[idx], "request_id": flat_rid.take(pa.array(idx))}), C.RAW_EVENTS), day)


def scale_section(tmp: Path, n: int) -> dict[str, object]:
    root = tmp / "scale"
    t = time.perf_counter()
    _write_scale_inputs(root, n)
    generated = time.perf_counter() - t
    result = run_phase(SCALE_PHASE.format(root=root, n=n))
    return {
        "scale_impressions": int(result["rows"]),
        "scale_label_seconds": round(float(result["label_seconds"]), 1),
        "scale_peak_rss_mb": result["peak_rss_mb"],
        "scale_duckdb_memory_limit_mb": 1024,
        "scale_input_generation_seconds": round(generated, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small world, 2 Coat seeds, no scale run (< 1 minute)")
    parser.add_argument("--scale-impressions", type=int, default=10_000_000, help="impressions of the scale run (full mode)")
    args = parser.parse_args()
    figures: dict[str, object] = {"quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="recforge-debiasing-") as tmp_name:
        tmp = Path(tmp_name)
        for section, run in (
            ("world", lambda: world_section(tmp / "w", args.quick)),
            ("obd", lambda: obd_section(tmp / "o")),
            ("coat", lambda: coat_section(tmp / "c", args.quick)),
            ("scale", lambda: {} if args.quick else scale_section(tmp / "s", args.scale_impressions)),
        ):
            (tmp / section[0]).mkdir(exist_ok=True)
            started = time.perf_counter()
            part = run()
            figures.update(part)
            figures[f"{section}_section_seconds"] = round(time.perf_counter() - started, 1)
            if part:
                print_table(f"debiasing: {section}", sorted(part.items()))
                print()
    path = write_results("debiasing_quick" if args.quick else "debiasing", figures)  # quick never overwrites the full figures
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
