"""Atomic, partitioned Parquet storage.

Layout under the data root::

    <root>/<layer>/<table>/date=YYYY-MM-DD/part.parquet   partitioned tables
    <root>/<layer>/<table>/part.parquet                   unpartitioned tables
    <root>/<layer>/<table>/_partitions.json               row count and content hash per partition
    <root>/catalog.duckdb                                 one view per table (see warehouse.catalog)

A partition is a single Parquet file (with row groups sized for streaming), written aside and swapped in
(:func:`warehouse.atomic.write_aside`): a reader sees the old file or the new one, never half of one, and
a crash mid-write leaves the old one. Writing a table also gives it its catalog view in the same call.
Row count and content hash travel inside the file's key-value metadata (so they are atomic with the
data) and are also collected in ``_partitions.json`` for cheap listing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse import atomic
from warehouse.catalog import ensure_view, repair_hint
from warehouse.contracts import CORE_ID_MAPS, TableContract
from warehouse.integrity import HASH_FORMAT, META_HASH, META_HASH_FORMAT, META_ROWS, HashingSink, check_file
from warehouse.layout import MANIFEST_FILE, PART_FILE

ROW_GROUP_ROWS = 128 * 1024
# Tables checked against their stored content hash on every read: a damaged id map would renumber
# users and items silently in everything built from it.
VERIFIED_ON_READ = frozenset({CORE_ID_MAPS.view_name})

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    """What a write produced."""

    path: Path
    rows: int
    content_hash: str
    partition: dt.date | None


class ContractError(ValueError):
    """A table does not fit its contract."""


class CorruptPartitionError(RuntimeError):
    """A partition file cannot be read, or is not what was written; the message names it and the repair."""

    def __init__(self, contract: TableContract, path: Path, problem: str) -> None:
        super().__init__(f"{contract.view_name}: {path} is damaged: {problem}. Repair: {repair_hint(contract.view_name)}")
        self.path = path


def conform(table: pa.Table, contract: TableContract) -> pa.Table:
    """Select and cast ``table``'s columns to the contract's schema, or say precisely what is wrong.

    The contract's optional columns (provenance) that ``table`` lacks are added as nulls."""
    table = with_optional_columns(table, contract)
    missing = [f.name for f in contract.schema if f.name not in table.column_names]
    if missing:
        raise ContractError(f"{contract.view_name}: missing columns {missing}; got {table.column_names}")
    selected = table.select(contract.schema.names)
    try:
        return selected.cast(contract.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        got = {f.name: str(f.type) for f in selected.schema}
        raise ContractError(f"{contract.view_name}: cannot cast {got} to the contract: {exc}") from exc


def with_optional_columns(table: pa.Table, contract: TableContract) -> pa.Table:
    """``table`` with the contract's optional columns it lacks added as nulls."""
    for name in contract.optional:
        if name not in table.column_names:
            field = contract.schema.field(name)
            at = min(contract.schema.get_field_index(name), table.num_columns)  # where the contract has it
            table = table.add_column(at, field, pa.nulls(table.num_rows, field.type))
    return table


class Warehouse:
    """Reads and writes contract tables under one data root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._views: set[str] = set()  # views known to be in the catalog (checked once per table)

    # --- paths ---------------------------------------------------------------------------------------

    def table_dir(self, contract: TableContract) -> Path:
        return self.root.joinpath(*contract.path_parts)

    def partition_path(self, contract: TableContract, partition: dt.date | None) -> Path:
        if contract.partitioned:
            if partition is None:
                raise ValueError(f"{contract.view_name} is partitioned: name the partition date")
            return self.table_dir(contract) / f"date={partition.isoformat()}" / PART_FILE
        if partition is not None:
            raise ValueError(f"{contract.view_name} is not partitioned, got partition {partition}")
        return self.table_dir(contract) / PART_FILE

    # --- writing -------------------------------------------------------------------------------------

    def write(
        self, contract: TableContract, table: pa.Table, partition: dt.date | None = None
    ) -> WriteResult:
        """Write a whole table (or one partition of it) atomically."""
        return self.write_batches(contract, conform(table, contract).to_batches(ROW_GROUP_ROWS), partition)

    def write_batches(
        self,
        contract: TableContract,
        batches: Iterable[pa.RecordBatch],
        partition: dt.date | None = None,
    ) -> WriteResult:
        """Stream record batches into one partition, then swap it in atomically.

        Memory stays bounded by one batch, so partitions larger than RAM can be written.
        """
        final = self.partition_path(contract, partition)
        with atomic.write_aside(final) as staged:
            rows, content_hash = write_partition_file(staged.path, contract, batches)
        return self._published(contract, partition, rows, content_hash)

    def delete_partition(self, contract: TableContract, partition: dt.date | None = None) -> None:
        """Remove one partition (used when a rerun finds the source gone)."""
        path = self.partition_path(contract, partition)
        path.unlink(missing_ok=True)
        with self._manifest_lock(contract):
            manifest = self.manifest(contract)
            manifest.pop(_partition_key(partition), None)
            atomic.write_json(self.table_dir(contract) / MANIFEST_FILE, manifest)

    # --- reading -------------------------------------------------------------------------------------

    def exists(self, contract: TableContract, partition: dt.date | None = None) -> bool:
        if contract.partitioned and partition is None:
            return bool(self.partitions(contract))
        return self.partition_path(contract, partition).exists()

    def partitions(self, contract: TableContract) -> list[dt.date]:
        """Dates of the partitions present on disk, sorted."""
        if not contract.partitioned:
            raise ValueError(f"{contract.view_name} is not partitioned")
        root = self.table_dir(contract)
        if not root.exists():
            return []
        return sorted(
            dt.date.fromisoformat(p.parent.name.removeprefix("date="))
            for p in root.glob(f"date=*/{PART_FILE}")
        )

    def files(self, contract: TableContract, partitions: Iterable[dt.date] | None = None) -> list[Path]:
        """Parquet files of a table (all partitions, or the named ones that exist)."""
        if not contract.partitioned:
            path = self.partition_path(contract, None)
            return [path] if path.exists() else []
        chosen = self.partitions(contract) if partitions is None else list(partitions)
        paths = [self.partition_path(contract, d) for d in chosen]
        return [p for p in paths if p.exists()]

    def read(self, contract: TableContract, partitions: Iterable[dt.date] | None = None) -> pa.Table:
        """Read a table (or some of its partitions) into memory, typed by the contract."""
        files = self.files(contract, partitions)
        if not files:
            return contract.schema.empty_table()
        if contract.view_name in VERIFIED_ON_READ:
            for path in files:
                problem = check_file(path, contract.schema)
                if problem is not None:
                    raise CorruptPartitionError(contract, path, problem)
        return pa.concat_tables(self._read_file(contract, f, schema=contract.schema) for f in files)

    def read_as_stored(
        self, contract: TableContract, columns: list[str] | None = None
    ) -> pa.Table | None:
        """Read a table's files as written (optionally some columns), without casting to the contract.

        For tables whose width is a parameter of the run that wrote them (embedding dimension, semantic-ID
        length), where the registered contract describes the default. None when nothing is stored.
        """
        files = self.files(contract)
        if not files:
            return None
        return pa.concat_tables(self._read_file(contract, f, columns=columns) for f in files)

    def iter_batches(
        self, contract: TableContract, partitions: Iterable[dt.date] | None = None, batch_rows: int = ROW_GROUP_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table's rows batch by batch without loading it whole."""
        for path in self.files(contract, partitions):
            try:
                yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
            except (OSError, pa.ArrowException) as exc:
                raise CorruptPartitionError(contract, path, str(exc).strip().splitlines()[0]) from None

    def manifest(self, contract: TableContract) -> dict[str, dict[str, object]]:
        """Row count and content hash per partition (key ``YYYY-MM-DD`` or ``all``).

        Read from ``_partitions.json``; a partition file it does not list (the manifest was deleted, or
        is unreadable) is added from the file's own metadata, and an entry whose file is gone is dropped,
        so the manifest always describes the files on disk.
        """
        path = self.table_dir(contract) / MANIFEST_FILE
        recorded: dict[str, dict[str, object]] = {}
        if path.exists():
            try:
                recorded = json.loads(path.read_text())
            except ValueError:
                _log.warning("%s is unreadable: rebuilt from the partition files", path)
        present = {_partition_key(p): self.partition_path(contract, p) for p in self._present(contract)}
        manifest = {key: entry for key, entry in recorded.items() if key in present}
        for key, file in present.items():
            if key not in manifest:
                stats = _file_stats(file)
                if stats is not None:
                    manifest[key] = {"rows": stats[0], "content_hash": stats[1]}
        return dict(sorted(manifest.items()))

    def stored_stats(self, contract: TableContract, partition: dt.date | None = None) -> tuple[int, str]:
        """Row count and content hash as recorded inside the partition's file."""
        path = self.partition_path(contract, partition)
        stats = _file_stats(path)
        if stats is None:
            raise CorruptPartitionError(contract, path, "its footer (row count and hash) cannot be read")
        return stats

    # --- internals -----------------------------------------------------------------------------------

    def _published(self, contract: TableContract, partition: dt.date | None, rows: int, content_hash: str) -> WriteResult:
        """Record a partition that is now in place in the manifest, and give its table a catalog view."""
        return self._published_many(contract, [(partition, rows, content_hash)])[0]

    def _published_many(
        self, contract: TableContract, written: list[tuple[dt.date | None, int, str]]
    ) -> list[WriteResult]:
        """:meth:`_published` for several partitions of one table: one manifest write for all of them (a
        backfill of thousands of days would otherwise rewrite a growing manifest once per day)."""
        self._record(contract, written)
        if contract.view_name not in self._views:
            ensure_view(self.root, contract.view_name)
            self._views.add(contract.view_name)
        return [WriteResult(self.partition_path(contract, p), rows, h, p) for p, rows, h in written]

    def _present(self, contract: TableContract) -> list[dt.date | None]:
        if contract.partitioned:
            return list(self.partitions(contract))
        return [None] if self.partition_path(contract, None).exists() else []

    def _read_file(self, contract: TableContract, path: Path, **options: object) -> pa.Table:
        try:
            return pq.read_table(path, **options)
        except (OSError, pa.ArrowException) as exc:
            raise CorruptPartitionError(contract, path, str(exc).strip().splitlines()[0]) from None

    def _record(self, contract: TableContract, written: list[tuple[dt.date | None, int, str]]) -> None:
        with self._manifest_lock(contract):
            manifest = self._recorded(contract)
            for partition, rows, content_hash in written:
                manifest[_partition_key(partition)] = {"rows": rows, "content_hash": content_hash}
            atomic.write_json(self.table_dir(contract) / MANIFEST_FILE, dict(sorted(manifest.items())))

    def _recorded(self, contract: TableContract) -> dict[str, dict[str, object]]:
        """The manifest as recorded, without listing the table's files when it is readable.

        Writing one partition of a table with thousands of days must not list every partition: the
        full, self-healing :meth:`manifest` runs only when the recorded one is missing or unreadable.
        """
        path = self.table_dir(contract) / MANIFEST_FILE
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError):
            return self.manifest(contract)
        return recorded if isinstance(recorded, dict) else self.manifest(contract)

    @contextlib.contextmanager
    def _manifest_lock(self, contract: TableContract) -> Iterator[None]:
        # Partitions of one table may be written by parallel Dagster runs; the lock serialises the
        # read-modify-write of the manifest so no run loses another's entry.
        lock_path = self.table_dir(contract) / ".manifest.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def write_partition_file(path: Path, contract: TableContract, batches: Iterable[pa.RecordBatch]) -> tuple[int, str]:
    """Write ``batches`` as one partition file at ``path`` (a temporary); returns its rows and content hash."""
    rows = 0
    with (
        open(path, "wb") as target,
        HashingSink(target) as sink,
        pq.ParquetWriter(sink, contract.schema, compression="zstd", use_dictionary=dictionary_columns(contract.schema)) as writer,
    ):
        for batch in batches:
            batch = with_optional_columns(pa.Table.from_batches([batch]), contract).cast(contract.schema)
            for chunk in batch.to_batches(ROW_GROUP_ROWS):
                if chunk.num_rows:
                    writer.write_batch(chunk, row_group_size=ROW_GROUP_ROWS)
                    rows += chunk.num_rows
        content_hash = sink.digest.hexdigest()  # every row group is written; the footer comes at close
        writer.add_key_value_metadata({META_ROWS: str(rows).encode(), META_HASH: content_hash.encode(), META_HASH_FORMAT: HASH_FORMAT})
    return rows, content_hash


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The Parquet columns worth a dictionary: text, alone or in a list (ids, types, names, categories).

    Numbers, timestamps and vectors are left plain. Dictionary-encoding every column (pyarrow's default)
    tries a dictionary on unique line numbers and timestamps and gives it up after filling it: on a day
    of impressions that made the file 43 % larger and its write 50 % slower.
    """
    found = []
    for field in schema:
        kind = field.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            found.append(field.name)
        elif (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_string(kind.value_type):
            found.append(f"{field.name}.list.element")
    return found


def _partition_key(partition: dt.date | None) -> str:
    return partition.isoformat() if partition else "all"


def _file_stats(path: Path) -> tuple[int, str] | None:
    """Row count and content hash from a partition file's metadata (None when its footer is unreadable)."""
    try:
        meta = pq.read_metadata(path).metadata or {}
        return int(meta[META_ROWS]), meta[META_HASH].decode()
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None
