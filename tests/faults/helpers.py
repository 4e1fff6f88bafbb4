"""Helpers for the fault tests: real processes started with this interpreter, killed by pid."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[2]


def python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh interpreter at the repository root (stdout and stderr captured)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def recforge(*args: str, root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``recforge`` command line on the data root ``root``."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from recforge.cli import main; sys.exit(main())", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "RECFORGE_HOME": str(root), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def events(day: dt.date, n: int, user: str = "u") -> pa.Table:
    """``n`` clicks of distinct users on ``day`` (raw_events rows)."""
    start = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    return pa.table(
        {
            "event_id": [f"{day}-e{i}" for i in range(n)],
            "user_id": [f"{user}{i}" for i in range(n)],
            "ts": [start + dt.timedelta(seconds=i) for i in range(n)],
            "event_type": ["click"] * n,
            "item_id": [f"i{i % 7}" for i in range(n)],
            "request_id": [None] * n,
            "value": [None] * n,
            "session_id": [None] * n,
        }
    )


def id_map(n: int) -> pa.Table:
    """``n`` users numbered 0..n-1 (core_id_maps rows)."""
    return pa.table(
        {
            "entity": ["user"] * n,
            "external_id": [f"u{i}" for i in range(n)],
            "idx": list(range(n)),
            "first_seen": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n,
        }
    )


def flip_bytes(path: Path, count: int = 64) -> None:
    """Flip ``count`` bytes in the middle of a file (the data pages of a Parquet file, not its footer)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    """Cut a file to half its size, as a writer killed by a full disk outside the store would leave it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
