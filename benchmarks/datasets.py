"""Ingest + build on every dataset in ../shared/datasets: wall time, peak memory, rows per second.

    python benchmarks/datasets.py                      # every shared dataset, every layer below raw
    python benchmarks/datasets.py --quick              # ML-100K and Coat only
    python benchmarks/datasets.py --layers core,labels,training_data

For each dataset: ``recforge ingest`` in one process, then ``recforge build`` (``build_layers``) in
another, each on a fresh data root. ``<dataset>_planning_share`` is the build's Dagster overhead before
its first step starts (job construction and planning), as a share of the build's wall time: it must
not grow with the span of the data (target under 5 %, e.g. on the ten-year Amazon set). Prints a table
and writes benchmarks/results/datasets.json (``datasets_quick.json`` with ``--quick``). Targets on 2
cores: ML-100K ingest + build (embeddings included) under 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import textwrap
from pathlib import Path

from _harness import RESULTS, print_table, run_phase, write_results

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# key -> (format, folder under ../shared/datasets, split the dataset is evaluated with)
DATASETS = {
    "ml100k": ("movielens", "movielens-100k/ml-100k", "temporal"),
    "coat": ("coat", "coat", "temporal"),
    "obd_small": ("obd", "open-bandit-dataset-small", "temporal"),
    "amazon2014_instruments": ("amazon", "amazon2014-musical-instruments-5core", "temporal"),
    "amazon2018_gift_cards": ("amazon", "amazon2018-gift-cards", "temporal"),
    "amazon2018_magazines": ("amazon", "amazon2018-magazine-subscriptions", "temporal"),
    "amazon2018_small_5core": ("amazon", "amazon2018-small-5core-reviews", "temporal"),
    "diginetica": ("diginetica", "diginetica", "session"),
    "beauty_sequences": ("sequences", "amazon2014-beauty-sequences", "leave-one-out"),
    "ml1m_partial": ("movielens", "movielens-1m-partial/ml-1m", "temporal"),
}
QUICK = ("ml100k", "coat")
# Run config beyond the split, per dataset. Diginetica's catalog lists 184,048 products of which about
# 16,000 occur in the logs: only those are described and embedded.
EXTRA_CONFIG = {"diginetica": {"ops": {"enrichment_item_descriptions": {"config": {"items": "logged"}}}}}

INGEST = """
import json, os, time
from pathlib import Path
os.environ["RECFORGE_HOME"] = {home!r}
from pipelines.connect import ConnectRules, ingest_dataset
from transforms.connectors import connector_for
from transforms.engine import EngineConfig, open_engine
from warehouse.catalog import refresh_catalog
from warehouse.store import Warehouse
t = time.perf_counter()
with open_engine(EngineConfig(spill_dir={home!r} + "/.spill")) as engine:
    report = ingest_dataset(connector_for({fmt!r}, Path({path!r})), Warehouse(Path({home!r})), engine,
                            ConnectRules(max_bad_share=None), work_dir=Path({home!r}))
refresh_catalog(Path({home!r}))
print(json.dumps({{"seconds": time.perf_counter() - t, "rows": report.summary()["rows_read"]}}))
"""

BUILD = """
import json, os, time
from pathlib import Path
os.environ["RECFORGE_HOME"] = {home!r}
os.environ["DAGSTER_HOME"] = {home!r} + "/.dagster"
from recforge.definitions import defs
from recforge.materialize import build_layers, dagster_instance, merge_run_config, split_run_config
config = merge_run_config(split_run_config(defs, {split!r}), {extra!r})
t = time.time()
result = build_layers(defs, Path({home!r}), {layers!r}, run_config=config, log_level="CRITICAL", raise_on_error=False)
wall = time.time() - t
logs = dagster_instance(Path({home!r})).all_logs(result.run_id)
starts = [e.timestamp for e in logs if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"]
failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
print(json.dumps({{"seconds": wall, "planning": (min(starts) - t) if starts else wall, "success": result.success,
                   "failed": failed}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="ML-100K and Coat only")
    parser.add_argument("--layers", help="comma-separated layers to build (default: every layer below raw)")
    parser.add_argument("--only", help="comma-separated dataset keys: " + ", ".join(DATASETS))
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is not present on this machine")
    keys = args.only.split(",") if args.only else list(QUICK if args.quick else DATASETS)
    layers = args.layers.split(",") if args.layers else None
    figures: dict[str, object] = {"quick": args.quick, "layers": args.layers or "all"}
    for key in keys:
        fmt, folder, split = DATASETS[key]
        work = Path(tempfile.mkdtemp(prefix=f"recforge-bench-{key}-"))
        try:
            home = str(work / "home")
            ingest = run_phase(textwrap.dedent(INGEST.format(home=home, fmt=fmt, path=str(SHARED / folder))))
            build = run_phase(textwrap.dedent(BUILD.format(home=home, split=split, layers=layers, extra=EXTRA_CONFIG.get(key, {}))))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        total = ingest["seconds"] + build["seconds"]
        figures |= {
            f"{key}_rows": ingest["rows"],
            f"{key}_ingest_seconds": round(ingest["seconds"], 2),
            f"{key}_build_seconds": round(build["seconds"], 2),
            f"{key}_peak_rss_mb": max(ingest["peak_rss_mb"], build["peak_rss_mb"]),
            f"{key}_rows_per_s": round(ingest["rows"] / total),
            f"{key}_planning_share": round(build["planning"] / build["seconds"], 4),
            f"{key}_build_ok": bool(build["success"]),
        }
        if not build["success"]:
            figures[f"{key}_failed_steps"] = build["failed"]
        print(f"{key}: ingest {ingest['seconds']:.1f}s, build {build['seconds']:.1f}s, ok={build['success']}", flush=True)
        _save(figures, args.quick)  # after each dataset: a run stopped midway keeps what it measured
    print_table("recforge ingest + build on the shared datasets", list(figures.items()))
    print(f"\nwrote {_save(figures, args.quick)}")


def _save(figures: dict[str, object], quick: bool) -> Path:
    """Merge ``figures`` into the results file (a run of some datasets keeps the others' figures)."""
    name = "datasets_quick" if quick else "datasets"  # a quick run never overwrites the full figures
    path = RESULTS / f"{name}.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    return write_results(name, previous | figures)


if __name__ == "__main__":
    main()
