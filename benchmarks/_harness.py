"""Shared benchmark plumbing: run a phase in a fresh process and measure its time and peak memory.

Each phase runs as ``python -c`` in its own process so that peak RSS belongs to that phase alone; RSS
is sampled over the whole process tree (a Spark phase's JVM is a child process and counts too).
A benchmark that runs its measurement in a worker of its own samples the same way from inside that
worker with ``sample_peak_rss``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SAMPLE_SECONDS = 0.1


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and all its descendants (processes that vanish meanwhile count 0)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


class PeakRss:
    """The peak of ``tree_rss`` seen so far, in bytes and MiB."""

    def __init__(self) -> None:
        self.bytes = 0

    def update(self, proc: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            self.bytes = max(self.bytes, tree_rss(proc))

    @property
    def mb(self) -> float:
        return round(self.bytes / 2**20, 1)


@contextlib.contextmanager
def sample_peak_rss(interval: float = SAMPLE_SECONDS) -> Iterator[PeakRss]:
    """Sample this process's tree RSS on a background thread while the block runs (and once at its end)."""
    me = psutil.Process()
    peak = PeakRss()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.update(me)
            done.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        peak.update(me)
        done.set()
        thread.join()


def run_phase(code: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``code`` in a child Python; it must print one JSON object as its last stdout line.

    The child imports the packages of the checkout at ``cwd`` (this one by default; ``benchmarks/against.py``
    passes another commit's worktree). Returns that object plus ``seconds`` (wall time of the child) and
    ``peak_rss_mb``.
    """
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    peak = PeakRss()
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        peak.update(parent)
        time.sleep(SAMPLE_SECONDS)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark phase failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["seconds"] = result.get("seconds", time.perf_counter() - started)
    result["peak_rss_mb"] = peak.mb
    return result


def write_results(name: str, figures: dict[str, object], *, sort_keys: bool = True) -> Path:
    """Write ``benchmarks/results/<name>.json`` (a flat object) and return its path.

    ``sort_keys=False`` keeps the figures in insertion order (benchmarks whose JSON was written so).
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=sort_keys) + "\n")
    return path


def _shown(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        return f"{value:,}"  # the value as stored (benchmarks round their figures), with digit grouping
    return str(value)


def print_table(title: str, rows: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(title)
    print("-" * len(title))
    for key, value in rows:
        print(f"{key:<{width}}  {_shown(value)}")
