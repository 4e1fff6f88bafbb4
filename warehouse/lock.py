"""The data root's writer lock: one writing run at a time per data root.

Writing runs read, modify and write shared files: a day's raw partition holds the rows of every source
(an ingest reads it, merges its own rows in and writes it back), the id map is read, extended and
written back, materializations share ``.work/``. Two such runs at once each write their own version and
the later rename wins: the other run's rows and ids are lost although both runs succeed. So every
writing run (``recforge ingest``, ``recforge materialize``/``demo``) holds this lock for its whole run::

    with writer_lock(root):            # or decorate the run: @holding_writer_lock("warehouse")
        ...                            # read, extend, write

The lock is ``flock`` on ``<root>/.writer.lock``: the kernel releases it when the holder's process
ends, however it ends (``kill -9`` included), so a dead run never blocks the next one. The file names
the holder (pid, command line, since when) for the message a waiting run shows. A second run waits up
to :func:`warehouse.settings.lock_timeout` seconds (``$RECFORGE_LOCK_TIMEOUT``; 0 fails at once), then
fails with :class:`WriterLockTimeout` naming the holder. A new holder removes what killed writers left
in the data root (their temporaries, ingest spill folders).

The lock is re-entrant in its process (``recforge materialize`` holds it while the Dagster assets it runs
in-process ingest) and for the holder's child processes, which inherit ``$RECFORGE_WRITER_LOCK``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import inspect
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from warehouse.atomic import process_alive, sweep_leftovers
from warehouse.settings import LOCK_TIMEOUT_ENV, lock_timeout

LOCK_FILE = ".writer.lock"
HELD_ENV = "RECFORGE_WRITER_LOCK"  # "<pid>:<root>" of the holder, inherited by its child processes
POLL_SECONDS = 0.2
# Temporary folders that writing runs create in the data root (``pipelines.connect`` spills there). Only a
# holder of the lock creates them, so a new holder removes those a killed run left.
WORK_DIR_PREFIXES = ("recforge-connect-",)

_log = logging.getLogger(__name__)
_held: dict[Path, tuple[int, int]] = {}  # root -> (file descriptor, depth) of the locks this process holds
_guard = threading.Lock()
F = TypeVar("F", bound=Callable[..., Any])


class WriterLockTimeout(RuntimeError):
    """Another run held the data root's writer lock for longer than this run would wait."""


def lock_path(root: Path) -> Path:
    return Path(root) / LOCK_FILE


@contextlib.contextmanager
def writer_lock(root: Path, *, timeout: float | None = None, command: str | None = None) -> Iterator[None]:
    """Hold the writer lock of the data root ``root`` for the block (waiting for it when another run holds it).

    Args:
        root: The data root.
        timeout: Seconds to wait for another holder; None reads :func:`warehouse.settings.lock_timeout`.
        command: What this run is, for the message another run shows (default: this process's command line).

    Raises:
        WriterLockTimeout: Another run still held the lock after ``timeout`` seconds; the message names it.
    """
    root = Path(root).resolve()
    with _guard:
        if root in _held:
            fd, depth = _held[root]
            _held[root] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            _release(root)
        return
    if _held_by_parent(root):
        yield
        return
    fd = _acquire(root, lock_timeout() if timeout is None else timeout, command)
    with _guard:
        _held[root] = (fd, 1)
    previous = os.environ.get(HELD_ENV)
    os.environ[HELD_ENV] = f"{os.getpid()}:{root}"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(HELD_ENV, None)
        else:
            os.environ[HELD_ENV] = previous
        _release(root)


def holding_writer_lock(argument: str) -> Callable[[F], F]:
    """Decorate a run so it holds the writer lock of the data root named by its argument ``argument``.

    The argument is a data root path or anything with a ``root`` (a :class:`warehouse.store.Warehouse`).
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            value = signature.bind(*args, **kwargs).arguments[argument]
            # A path is the root itself (a Path's own ``.root`` is its anchor, "/": never read it).
            root = Path(value) if isinstance(value, str | os.PathLike) else Path(value.root)
            with writer_lock(root, command=f"{_command_line()} ({func.__qualname__})"):
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def holder(root: Path) -> dict[str, Any] | None:
    """Who holds (or last held) the lock of ``root``: ``pid``, ``command``, ``since``; None when unknown."""
    try:
        return json.loads(lock_path(root).read_text() or "null")
    except (OSError, ValueError):
        return None


def describe_holder(root: Path) -> str:
    """The holder in words, for messages."""
    found = holder(root)
    if not found:
        return "another process (its pid is not recorded yet)"
    return f"pid {found.get('pid')} ({found.get('command')}), since {found.get('since')}"


def _acquire(root: Path, timeout: float, command: str | None) -> int:
    root.mkdir(parents=True, exist_ok=True)
    # Opened without truncating: the file names the current holder until this run holds the lock.
    fd = os.open(lock_path(root), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise WriterLockTimeout(
                    f"data root {root} is being written by {describe_holder(root)}; waited {timeout:g}s for it. "
                    f"Let that run finish (or stop it), or wait longer with ${LOCK_TIMEOUT_ENV}=<seconds>."
                ) from None
            if not told:
                _log.warning("waiting for the data root %s: it is being written by %s", root, describe_holder(root))
                told = True
            time.sleep(POLL_SECONDS)
    record = {"pid": os.getpid(), "command": command or _command_line(), "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    _sweep(root)
    return fd


def _sweep(root: Path) -> None:
    """Remove what killed writers left in the data root (no other writer runs while we hold the lock)."""
    swept = sweep_leftovers(root)
    for prefix in WORK_DIR_PREFIXES:
        for folder in root.glob(f"{prefix}*"):
            shutil.rmtree(folder, ignore_errors=True)
            swept.append(folder)
    if swept:
        _log.info("removed what killed writers left in %s: %s", root, ", ".join(p.name for p in swept))


def _release(root: Path) -> None:
    with _guard:
        fd, depth = _held[root]
        if depth > 1:
            _held[root] = (fd, depth - 1)
            return
        del _held[root]
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _held_by_parent(root: Path) -> bool:
    """Whether an ancestor process holds the lock (its pid and root are in the inherited environment)."""
    pid, _, held_root = os.environ.get(HELD_ENV, "").partition(":")
    if not pid.isdigit() or Path(held_root) != root or int(pid) == os.getpid():
        return False
    found = holder(root)
    return found is not None and found.get("pid") == int(pid) and process_alive(int(pid))


def _command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"

