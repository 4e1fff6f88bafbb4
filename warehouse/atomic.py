"""Write aside, then swap: the one way recforge replaces anything on disk.

Every writer (table partitions, the catalog file, shard sets, enrichment checkpoints, the sample world)
writes into a hidden temporary beside its target and swaps it in with ``os.replace`` (atomic on POSIX),
so a reader sees the old version or the new one, never half of one, and a crash or a failed write leaves
the old version in place::

    with write_aside(path) as staged:           # a file
        pq.write_table(table, staged.path)

    with write_aside(folder, directory=True) as staged:
        ...                                     # fill staged.path
        staged.target = folder.parent / name    # the target may be chosen once the content is known

A temporary's name carries the writer's pid, so a later writer removes those of writers that died
(:func:`sweep_leftovers`: every writer sweeps the folder it writes into).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"
# A writer's temporary or a swapped-out folder: ".<name>.<pid>.<hex>.tmp|.old", maybe with DuckDB's ".wal";
# earlier versions wrote no pid.
_LEFTOVER = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[0-9a-f]+\.(?P<kind>tmp|old)(?:\.wal)?$")
_LEGACY_FOLDER = re.compile(r"^\.tmp-[0-9a-f]{32}$")  # shard sets' temporaries before write_aside


@dataclass
class Staged:
    """A temporary being written (``path``) and where it goes when the block succeeds (``target``)."""

    path: Path
    target: Path


@contextlib.contextmanager
def write_aside(target: Path, *, directory: bool = False, keep_existing: bool = False) -> Iterator[Staged]:
    """Yield a hidden temporary beside ``target``; on success fsync it and swap it in, on failure delete it.

    Args:
        target: The file or folder to replace (its parent is created).
        directory: Stage a folder (created empty) rather than a file.
        keep_existing: When the target already exists, keep it and discard the temporary: for
            content-addressed targets, where an existing one holds the same bytes.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_temporaries(target)
    staged = Staged(path=aside_path(target), target=target)
    if directory:
        staged.path.mkdir()
    try:
        yield staged
        _fsync_tree(staged.path) if directory else _fsync(staged.path)
        final = staged.target
        if keep_existing and final.exists():
            return
        if directory and final.exists():
            _swap_folder(staged.path, final)
        else:
            os.replace(staged.path, final)
        _fsync_dir(final.parent)
    finally:
        if staged.path.is_dir():
            shutil.rmtree(staged.path, ignore_errors=True)
        else:
            staged.path.unlink(missing_ok=True)


def aside_path(target: Path) -> Path:
    """A new hidden temporary's name beside ``target`` (with this process's pid, so it is swept if we die)."""
    return target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}{TMP_SUFFIX}"


def swap_in(staged: Path, target: Path) -> None:
    """Move a finished temporary file (from :func:`aside_path`) over ``target``, durably."""
    _fsync(staged)
    os.replace(staged, target)
    _fsync_dir(target.parent)


def swap_in_many(moves: list[tuple[Path, Path]]) -> None:
    """:func:`swap_in` for many ``(staged, target)`` pairs: one filesystem sync before the renames (the
    staged bytes are durable before any target changes) and one after (the renames are), instead of
    two fsyncs per file: a connector's backfill commits thousands of daily partitions at once."""
    if not moves:
        return
    os.sync()
    for staged, target in moves:
        os.replace(staged, target)
    os.sync()


def write_bytes(path: Path, payload: bytes) -> None:
    """Replace a file's bytes atomically."""
    with write_aside(path) as staged:
        staged.path.write_bytes(payload)


def write_json(path: Path, payload: Any) -> None:
    """Replace a JSON file atomically (sorted keys, indented: stable bytes for the same payload)."""
    write_bytes(path, json.dumps(payload, indent=2, sort_keys=True).encode())


def write_parquet(table: pa.Table, path: Path, **options: Any) -> None:
    """Replace a Parquet file atomically (zstd unless ``options`` say otherwise)."""
    options.setdefault("compression", "zstd")
    with write_aside(path) as staged:
        pq.write_table(table, staged.path, **options)


def point_link(link: Path, target: Path) -> None:
    """Point the symlink ``link`` at ``target`` (stored relative), replacing what it pointed at atomically."""
    link = Path(link)
    tmp_link = link.parent / f".{link.name}.{os.getpid()}.{uuid.uuid4().hex}{TMP_SUFFIX}"
    os.symlink(os.path.relpath(target, link.parent), tmp_link)
    try:
        os.replace(tmp_link, link)
    finally:
        if tmp_link.is_symlink():
            tmp_link.unlink()
    _fsync_dir(link.parent)


def remove_orphaned_temporaries(target: Path) -> None:
    """Delete the leftovers of writers that died, beside ``target`` (see :func:`sweep_leftovers`)."""
    sweep_leftovers(Path(target).parent)


def sweep_leftovers(folder: Path) -> list[Path]:
    """Delete what killed writers left in ``folder``; returns what was removed or restored.

    - a temporary (``.<name>.<pid>.<hex>.tmp``, DuckDB's ``.tmp.wal`` beside it) whose writer is gone;
    - a folder's previous version (``.<name>.<pid>.<hex>.old``) whose writer is gone: put back when the
      writer died between the two renames of a folder swap (no ``<name>``), else deleted;
    - names of earlier recforge versions, which carried no pid (``.<name>.<hex>.tmp``, shard sets'
      ``.tmp-<hex>/``): nothing writes them any more, so they are always leftovers.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    swept = []
    # Every leftover is a hidden name: the other entries (thousands of date= partitions beside a table's
    # manifest) are skipped by name, without a Path per entry, so a write costs no sort of the folder.
    with os.scandir(folder) as entries:
        hidden = sorted(e.name for e in entries if e.name.startswith("."))
    for name in hidden:
        entry = folder / name
        found = _LEFTOVER.match(name) or _LEGACY_FOLDER.match(name)
        if found is None:
            continue
        pid = found.groupdict().get("pid")
        if pid is not None and process_alive(int(pid)):
            continue
        final = folder / found["name"] if found.groupdict().get("kind") == "old" else None
        if final is not None and not final.exists() and not final.is_symlink():
            os.replace(entry, final)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        swept.append(entry)
    return swept


def _swap_folder(staged: Path, final: Path) -> None:
    # Two renames: a reader between them finds no folder (never a half-written one); the old one is
    # removed only once the new one is in place.
    old = final.parent / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}.old"
    os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        _fsync(file)
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)
