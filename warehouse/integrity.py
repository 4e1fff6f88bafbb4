"""Is a stored partition what was written? Row counts and content hashes checked against the files.

Every partition file carries, in its key-value metadata, its row count and a content hash: SHA-256 over
the file's bytes before its footer, which are its row groups as written (:class:`HashingSink` hashes them
on their way to the disk). Re-reading those bytes reproduces the hash, so any flipped byte of the data
shows as a different hash, and one in the footer as an unreadable file or a different row count.
Files of hash format 2 (SHA-256 over the Arrow IPC bytes of each row group's rows, :func:`hash_batch`,
which copied and serialized every row: more than half the cost of the Parquet write) are checked as
they were written. Files written before the hash was made reproducible (no ``recforge.hash_format``) are checked
for readability and row count only.

``recforge verify`` runs :func:`verify_warehouse`; the store checks the id map on every read.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.contracts import TableContract, all_contracts
from warehouse.layout import MANIFEST_FILE, PART_FILE

META_ROWS = b"recforge.rows"
META_HASH = b"recforge.content_hash"
META_HASH_FORMAT = b"recforge.hash_format"
HASH_FORMAT = b"3"  # 3: the file's bytes before its footer; 2: each row group's rows as a fresh IPC batch
ROWS_HASH_FORMAT = b"2"
FOOTER_TAIL = 8  # a Parquet file ends with its footer, the footer's length (4 bytes, little-endian) and b"PAR1"


@dataclass(frozen=True)
class Damage:
    """One partition that is not what was written."""

    table: str
    partition: str  # YYYY-MM-DD, or "all" for an unpartitioned table
    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.table} [{self.partition}] {self.path}: {self.problem}"


class HashingSink(io.RawIOBase):
    """A binary file that hashes every byte written to it on its way to ``target``.

    The Parquet writer has written every row group when its last batch is written; only the footer
    comes later, at close. So :attr:`digest` taken before closing covers exactly the bytes that
    :func:`check_file` re-hashes: those before the footer.
    """

    def __init__(self, target: io.BufferedWriter) -> None:
        super().__init__()
        self.target = target
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.digest.update(data)
        return self.target.write(data)


def hash_before_footer(path: Path) -> str:
    """SHA-256 of a Parquet file's bytes before its footer (hash format 3)."""
    with open(path, "rb") as handle:
        size = handle.seek(0, io.SEEK_END)
        if size < 2 * FOOTER_TAIL:
            raise ValueError(f"{size} bytes are too few for a Parquet file")
        handle.seek(size - FOOTER_TAIL)
        (footer,) = struct.unpack("<i", handle.read(4))
        end = size - FOOTER_TAIL - footer
        if not 0 < end <= size:
            raise ValueError(f"the footer's length ({footer}) does not fit the file ({size} bytes)")
        handle.seek(0)
        digest = hashlib.sha256()
        left = end
        while left:
            block = handle.read(min(left, 1 << 22))
            if not block:
                raise ValueError("the file ended early")
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def hash_batch(digest: hashlib._Hash, batch: pa.RecordBatch) -> None:
    """Add one row group's rows to ``digest``: hash format 2 (files written before format 3), and a hash of
    rows whatever the file's layout (``scripts/warehouse_fingerprint.py``).

    The rows are copied into fresh buffers first: the IPC bytes of a slice depend on the buffers it
    shares (a slice of a larger batch serializes differently from the same rows read back from disk).
    """
    fresh = batch.take(pa.array(np.arange(batch.num_rows, dtype=np.int64)))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, fresh.schema) as stream:
        stream.write_batch(fresh)
    digest.update(sink.getvalue())


def check_file(path: Path, schema: pa.Schema | None = None) -> str | None:
    """What is wrong with one partition file (None when it holds what was written).

    Args:
        path: The partition's Parquet file.
        schema: The table's contract schema (the writer hashed rows cast to it); None: as stored.
    """
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        return f"unreadable ({_first_line(exc)})"
    meta = parquet.metadata.metadata or {}
    if META_ROWS not in meta or META_HASH not in meta:
        return "no stored row count or content hash (not written by the store)"
    rows = int(meta[META_ROWS])
    if parquet.metadata.num_rows != rows:
        return f"holds {parquet.metadata.num_rows} rows, {rows} were written"
    hash_format = meta.get(META_HASH_FORMAT)
    if hash_format == HASH_FORMAT:
        try:
            found = hash_before_footer(path)
        except (OSError, ValueError) as exc:
            return f"unreadable data ({_first_line(exc)})"
        return None if found == meta[META_HASH].decode() else "content differs from its stored hash (damaged after it was written)"
    if hash_format != ROWS_HASH_FORMAT:
        return None  # written before hashes were reproducible: readability and row count are all we can check
    digest = hashlib.sha256()
    try:
        for group in range(parquet.num_row_groups):
            table = _as_written(parquet.read_row_group(group), schema)
            for batch in table.combine_chunks().to_batches():
                hash_batch(digest, batch)
    except (OSError, pa.ArrowException, ValueError) as exc:
        return f"unreadable data ({_first_line(exc)})"
    if digest.hexdigest() != meta[META_HASH].decode():
        return "content differs from its stored hash (damaged after it was written)"
    return None


def table_files(root: Path, contract: TableContract) -> dict[str, Path]:
    """The partition files of a table under ``root``, by partition key (``YYYY-MM-DD`` or ``all``)."""
    folder = Path(root).joinpath(*contract.path_parts)
    if not contract.partitioned:
        path = folder / PART_FILE
        return {"all": path} if path.exists() else {}
    return {p.parent.name.removeprefix("date="): p for p in sorted(folder.glob(f"date=*/{PART_FILE}"))}


def verify_table(root: Path, contract: TableContract) -> list[Damage]:
    """Check every partition of one table, and its ``_partitions.json`` against the files."""
    damaged = []
    manifest_path = Path(root).joinpath(*contract.path_parts) / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except ValueError:
        manifest = {}
        damaged.append(Damage(contract.view_name, "-", manifest_path, "unreadable JSON (the store rebuilds it from the files)"))
    for key, path in table_files(root, contract).items():
        problem = check_file(path, contract.schema)
        if problem is None and key in manifest:
            meta = pq.read_metadata(path).metadata or {}
            entry = manifest[key]
            if entry.get("content_hash") != meta[META_HASH].decode() or entry.get("rows") != int(meta[META_ROWS]):
                problem = f"{MANIFEST_FILE} disagrees with the file's own row count and hash"
        if problem is not None:
            damaged.append(Damage(contract.view_name, key, path, problem))
    return damaged


def verify_warehouse(root: Path) -> list[Damage]:
    """Check every partition of every table under ``root`` (see :func:`check_file`)."""
    return [d for contract in all_contracts() for d in verify_table(root, contract)]


def _as_written(table: pa.Table, schema: pa.Schema | None) -> pa.Table:
    """Rows typed as the writer hashed them: cast to the contract, or as stored for tables whose width is
    a parameter of their run (embeddings), which the writer stored under its own schema."""
    if schema is not None:
        try:
            return table.cast(schema)
        except (pa.ArrowException, ValueError):
            pass
    return table.replace_schema_metadata(None)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
