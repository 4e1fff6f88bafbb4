"""Shared benchmark plumbing: run a phase in a fresh process and measure its time and peak memory.

Each phase runs as ``python -c`` in its own process so that peak RSS belongs to that phase alone; RSS
is sampled over the whole process tree (a Spark phase's JVM is a child process and counts too).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SAMPLE_SECONDS = 0.1


def run_phase(code: str) -> dict[str, float]:
    """Run ``code`` in a child Python; it must print one JSON object as its last stdout line.

    Returns that object plus ``seconds`` (wall time of the child) and ``peak_rss_mb``.
    """
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(SAMPLE_SECONDS)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark phase failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["seconds"] = result.get("seconds", time.perf_counter() - started)
    result["peak_rss_mb"] = round(peak / 2**20, 1)
    return result


def write_results(name: str, figures: dict[str, object]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (a flat object) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return path


def print_table(title: str, rows: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(title)
    print("-" * len(title))
    for key, value in rows:
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
        print(f"{key:<{width}}  {shown}")
