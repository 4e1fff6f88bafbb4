"""Benchmark: this checkout against another commit, on the same data, in one run (A/B).

A refactor must not make the figures worse, and figures measured on different days on a shared two-core
machine cannot show that. This script checks the other commit out into a temporary git worktree, makes
the data once, and then runs each measurement for the other commit and for this checkout in turns
(A, B, A, B, ...), each in a fresh process that imports only its own checkout's packages:

* **sequences**: ``benchmarks/sequences.py``'s recforge build worker (interactions, temporal split,
  balanced shards) on the same synthetic events;
* **ingest**: each checkout's own ``INGEST`` phase from its ``benchmarks/ingest.py`` (catalog and every
  log table, every day, DuckDB) on one generated sample-world landing.

Ratios are the other commit's seconds / this checkout's seconds (best of the rounds and median of the
rounds; larger is better for this checkout). Results: ``benchmarks/results/against_<short sha>.json``.

    python benchmarks/against.py cc9a9d2                     # 10M events, a 50,000-user world, 2 rounds
    python benchmarks/against.py cc9a9d2 --quick             # 200k events, a small world (about a minute)
    python benchmarks/against.py cc9a9d2 --this adaf191      # two commits, neither of them the checkout
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "benchmarks"))

from _harness import print_table, run_phase, write_results  # noqa: E402


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def _checkout_env(root: Path) -> dict[str, str]:
    """An environment whose Python imports the packages under ``root`` before the editable install."""
    return dict(os.environ, PYTHONPATH=str(root))


def _ingest_code(root: Path) -> str:
    """The ``INGEST`` phase template of the checkout at ``root`` (read from its source, not imported)."""
    tree = ast.parse((root / "benchmarks" / "ingest.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "INGEST" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{root}/benchmarks/ingest.py has no INGEST phase to compare")


def _sequence_build(root: Path, data: Path, out: Path) -> float:
    """Seconds of one recforge sequence build by the checkout at ``root``."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(root / "benchmarks" / "sequences.py"), "--worker", "recforge", "--data", str(data), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=root, env=_checkout_env(root), capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"the sequence build of {root} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return float(json.loads(line.removeprefix("RESULT "))["seconds"])


def _ingest(root: Path, landing: Path, home: Path) -> float:
    shutil.rmtree(home, ignore_errors=True)
    code = textwrap.dedent(_ingest_code(root).format(landing=str(landing), home=str(home), engine="duckdb"))
    result = run_phase(code, cwd=root, env=_checkout_env(root))
    shutil.rmtree(home, ignore_errors=True)
    return float(result["seconds"])


def _summary(name: str, base: list[float], ours: list[float]) -> dict[str, Any]:
    return {
        f"{name}_base_s": [round(x, 2) for x in base],
        f"{name}_this_s": [round(x, 2) for x in ours],
        f"{name}_ratio_best": round(min(base) / min(ours), 3),
        f"{name}_ratio_median": round(statistics.median(base) / statistics.median(ours), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="the commit to compare against (e.g. the one before a refactor)")
    parser.add_argument("--quick", action="store_true", help="200k events and a small world (about a minute)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=None, help="synthetic events of the sequence build (default 10M)")
    parser.add_argument("--users", type=int, default=None, help="users of the ingestion world (default 50,000)")
    parser.add_argument("--only", default="sequences,ingest", help="comma-separated: sequences, ingest")
    parser.add_argument("--this", dest="this_commit", default=None,
                        help="measure this commit instead of the checkout (e.g. to split a change's cost by its commits)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    sha = _git("rev-parse", "--short", args.commit)
    events = args.events or (200_000 if args.quick else 10_000_000)
    world = {"users": args.users or (4_000 if args.quick else 50_000), "items": 20_000 if not args.quick else 2_000, "days": 8}
    load = os.getloadavg()[0]
    this_sha = _git("rev-parse", "--short", args.this_commit or "HEAD")
    figures: dict[str, Any] = {"commit": sha, "this": this_sha, "rounds": args.rounds,
                               "quick": args.quick, "load_average_1m_at_start": round(load, 2)}
    with tempfile.TemporaryDirectory(prefix="recforge-against-") as tmp:
        work = Path(tmp)
        base, this = work / "base", REPO
        _git("worktree", "add", "--detach", str(base), sha)
        if args.this_commit:
            this = work / "this"
            _git("worktree", "add", "--detach", str(this), this_sha)
        try:
            if "sequences" in only:
                from sequences import make_events

                data = work / "events"
                print(f"synthetic events: {make_events(events, data)}", flush=True)
                times: dict[str, list[float]] = {"base": [], "this": []}
                for _ in range(args.rounds):
                    for label, root in (("base", base), ("this", this)):
                        times[label].append(_sequence_build(root, data, work / "out"))
                        print(f"  sequences {label}: {times[label][-1]:.1f}s", flush=True)
                figures.update(sequence_events=events, **_summary("sequences", times["base"], times["this"]))
            if "ingest" in only:
                landing = work / "landing"
                gen = run_phase(textwrap.dedent(f"""
                    import json
                    from pathlib import Path
                    from sample_world import WorldConfig, generate_world
                    s = generate_world(WorldConfig(users={world['users']}, items={world['items']}, days={world['days']}, seed=11), Path({str(landing)!r}))
                    print(json.dumps({{"events": s.events, "impressions": s.impressions, "slates": s.slates}}))
                """))
                print(f"world: {gen}", flush=True)
                times = {"base": [], "this": []}
                for _ in range(args.rounds):
                    for label, root in (("base", base), ("this", this)):
                        times[label].append(_ingest(root, landing, work / "home"))
                        print(f"  ingest {label}: {times[label][-1]:.1f}s", flush=True)
                figures.update(**{f"ingest_world_{k}": v for k, v in world.items()}, **_summary("ingest", times["base"], times["this"]))
        finally:
            for tree in {base, this} - {REPO}:
                _git("worktree", "remove", "--force", str(tree))
    figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print_table(f"this checkout against {sha}", list(figures.items()))
    name = f"against_{sha}" + (f"_this_{this_sha}" if args.this_commit else "") + ("_quick" if args.quick else "")
    print(f"\nwrote {write_results(name, figures, sort_keys=False)}")
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f}s)")
    raise SystemExit(code)
