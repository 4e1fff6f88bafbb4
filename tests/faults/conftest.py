"""Helpers for the fault tests: real processes started with this interpreter, killed by pid."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
