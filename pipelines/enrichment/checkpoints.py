"""The work directory of a run: its request files and the per-batch checkpoints.

Each batch's results are written here as soon as the batch is done, atomically, so a run that dies
loses nothing it generated; the next run reads them back (:func:`read_checkpoints`). A checkpoint that
cannot be read (truncated, corrupt) is discarded with a warning that names it, and its batch is
generated again.

Two runs on one data root share a table's work directory, so a run holds :func:`work_lock` on it from
planning to clean-up: a second run waits, then finds the first run's rows in the table of record
instead of generating them again or removing files under the first run's feet. The lock is an
``flock`` on ``<work dir>.lock``: the kernel releases it when its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.atomic import write_parquet

REQUEST_SCHEMA = pa.schema(
    [
        pa.field("entity_id", pa.string()),
        pa.field("input_hash", pa.string()),
        pa.field("cache_key", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("cutoff", pa.timestamp("ms", tz="UTC")),
    ]
)
log = logging.getLogger(__name__)

KEY_SCHEMA = pa.schema([pa.field("key", pa.string())])

TEXT_REQUEST_SCHEMA = pa.schema(
    [pa.field("entity_id", pa.string()), pa.field("text", pa.string()), pa.field("text_hash", pa.string())]
)


def batch_name(keys: Iterable[str]) -> str:
    """A checkpoint's file name stem: a hash of its batch's keys, whatever their order."""
    return hashlib.sha256("\x1f".join(sorted(keys)).encode()).hexdigest()[:24]


def read_checkpoints(directory: Path, suffix: str, schema: pa.Schema | None = None) -> list[pa.Table]:
    """Every readable checkpoint table ``*.{suffix}.parquet`` under ``directory``, in name order.

    A file that cannot be read is removed with a warning naming it (its batch is simply generated
    again): a corrupt cache must not stop every later run, nor fail without saying which file.
    """
    if not directory.is_dir():
        return []
    tables = []
    for path in sorted(directory.glob(f"*.{suffix}.parquet")):
        try:
            tables.append(pq.read_table(path, schema=schema))
        except (OSError, pa.ArrowException) as err:
            log.warning("discarding unreadable enrichment checkpoint %s (%s); its batch is generated again", path, err)
            path.unlink(missing_ok=True)
    return tables


@contextlib.contextmanager
def work_lock(work_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``work_dir`` (waiting for another run that holds it)."""
    lock_path = work_dir.parent / f"{work_dir.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s is in use by another run; waiting for it to finish", work_dir)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_rows(path: Path, schema: pa.Schema, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` as a Parquet file of ``schema``, atomically."""
    write_parquet(pa.Table.from_pylist(list(rows), schema=schema), path)
