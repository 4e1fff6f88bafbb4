"""The demo's time by Dagster step: a fresh data root, one `recforge demo` run, then each step's time from the run log.

    .venv/bin/python benchmarks/demo_steps.py                      # this checkout: recforge demo --no-models
    .venv/bin/python benchmarks/demo_steps.py --checkout /tmp/old --cli pipelines.cli -- demo
                                                                   # another checkout (its own CLI module), same venv

Prints the total, the time outside the Dagster steps (world generation, start-up, the summary) and each step,
and writes ``benchmarks/results/demo_steps.json`` (``demo_steps_<name>.json`` with ``--name``). To compare two
commits, run it for each one after the other on a quiet machine (``uptime`` is recorded with the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import REPO, print_table, write_results

STEP_TIMES = """
import json, sys
from dagster import DagsterInstance
instance = DagsterInstance.get()
steps, started = {}, {}
for run in instance.get_runs():
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            steps[entry.step_key] = steps.get(entry.step_key, 0.0) + entry.timestamp - started.get(entry.step_key, entry.timestamp)
json.dump(steps, sys.stdout)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=REPO, help="the source tree to run (default: this one)")
    parser.add_argument("--cli", default="recforge.cli", help="its CLI module (cc9a9d2 and older: pipelines.cli)")
    parser.add_argument("--name", default="", help="suffix of the results file")
    parser.add_argument("command", nargs="*", default=["demo", "--no-models"], help="the CLI arguments (after --)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="recforge-demo-steps-"))
    env = dict(os.environ, RECFORGE_HOME=str(home), DAGSTER_HOME=str(home / ".dagster"), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(args.checkout))
    (home / ".dagster").mkdir()
    load = os.getloadavg()[0]
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import sys; from {args.cli} import main; sys.exit(main({args.command!r}))"],
                       cwd=args.checkout, env=env, check=True, capture_output=True)
        total = time.perf_counter() - started
        steps = json.loads(subprocess.run([sys.executable, "-c", STEP_TIMES], cwd=args.checkout, env=env, check=True,
                                          capture_output=True, text=True).stdout)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    figures: dict[str, object] = {
        "checkout": str(args.checkout), "command": " ".join(args.command), "load_average_1m_at_start": round(load, 2),
        "total_s": round(total, 1), "outside_steps_s": round(total - sum(steps.values()), 1),
        **{f"step_{key}_s": round(seconds, 1) for key, seconds in sorted(steps.items(), key=lambda kv: -kv[1])},
    }
    print_table("recforge demo by step", list(figures.items()))
    print(f"\nwrote {write_results('demo_steps' + (f'_{args.name}' if args.name else ''), figures, sort_keys=False)}")


if __name__ == "__main__":
    main()
