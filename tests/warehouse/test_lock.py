"""The data root's writer lock: one writing run at a time, named when it blocks another, gone with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warehouse.lock import WriterLockTimeout, holder, holding_writer_lock, writer_lock

REPO = Path(__file__).resolve().parents[2]

HOLD = """
import sys, time
from pathlib import Path
from warehouse.lock import writer_lock
with writer_lock(Path(sys.argv[1]), command="test holder"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(root: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_fails_after_its_timeout_naming_the_holder(tmp_path: Path) -> None:
    process = _holder(tmp_path)
    try:
        with pytest.raises(WriterLockTimeout, match=rf"pid {process.pid} \(test holder\)"), writer_lock(tmp_path, timeout=0.3):
            pass
    finally:
        process.kill()
        process.wait()


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    process = _holder(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    started = time.monotonic()
    with writer_lock(tmp_path, timeout=5, command="next run"):
        assert holder(tmp_path)["pid"] == os.getpid()
    assert time.monotonic() - started < 2


def test_the_lock_is_reentrant_in_its_process_and_for_its_children(tmp_path: Path) -> None:
    @holding_writer_lock("root")
    def run(root: Path) -> int:
        with writer_lock(root, timeout=0):  # the same process again: no deadlock
            child = subprocess.run(
                [sys.executable, "-c", "import sys; from pathlib import Path; from warehouse.lock import writer_lock\n"
                 "with writer_lock(Path(sys.argv[1]), timeout=0): pass", str(root)],
                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
            )
            return child.returncode

    assert run(tmp_path) == 0
    with writer_lock(tmp_path, timeout=0):  # released: free again
        pass


def test_an_unrelated_process_waits_for_the_holder(tmp_path: Path) -> None:
    with writer_lock(tmp_path, command="this test"):
        env = {k: v for k, v in os.environ.items() if k != "RECFORGE_WRITER_LOCK"}
        other = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; from warehouse.lock import writer_lock\n"
             "with writer_lock(Path(sys.argv[1]), timeout=0.2): pass", str(tmp_path)],
            cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        )
    assert other.returncode != 0
    assert f"pid {os.getpid()} (this test)" in other.stderr


def test_a_decorated_run_locks_the_root_it_is_given_not_the_filesystem_root(tmp_path: Path) -> None:
    # A Path's own ``.root`` attribute is "/": the decorator must lock the data root, not "/".
    @holding_writer_lock("root")
    def run(root: Path) -> dict | None:
        return holder(root)

    seen = run(tmp_path / "home")
    assert seen is not None and seen["pid"] == os.getpid()
    assert holder(Path("/")) is None or holder(Path("/"))["pid"] != os.getpid()
