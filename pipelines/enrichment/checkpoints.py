"""The work directory of a run: its request files and the per-batch checkpoints.

Each batch's results are written here as soon as the batch is done, atomically, so a run that dies
loses nothing it generated; the next run reads them back (:func:`read_checkpoints`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
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
KEY_SCHEMA = pa.schema([pa.field("key", pa.string())])

TEXT_REQUEST_SCHEMA = pa.schema(
    [pa.field("entity_id", pa.string()), pa.field("text", pa.string()), pa.field("text_hash", pa.string())]
)


def batch_name(keys: Iterable[str]) -> str:
    """A checkpoint's file name stem: a hash of its batch's keys, whatever their order."""
    return hashlib.sha256("\x1f".join(sorted(keys)).encode()).hexdigest()[:24]


def read_checkpoints(directory: Path, suffix: str, schema: pa.Schema) -> list[pa.Table]:
    """Every checkpoint table ``*.{suffix}.parquet`` under ``directory``, in name order."""
    if not directory.is_dir():
        return []
    return [pq.read_table(p, schema=schema) for p in sorted(directory.glob(f"*.{suffix}.parquet"))]


def write_rows(path: Path, schema: pa.Schema, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` as a Parquet file of ``schema``, atomically."""
    write_parquet(pa.Table.from_pylist(list(rows), schema=schema), path)
