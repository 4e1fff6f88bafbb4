"""Staged writes: a run's partitions written aside and swapped in only when the whole run succeeded.

A plain :meth:`Warehouse.write <warehouse.store.Warehouse.write>` replaces its partition at once, so a
run that writes a day and then finds the day unacceptable (more bad rows than it may stage) has already
replaced the last good version. A run that must check before anything becomes visible writes through a
:class:`StagedWarehouse` instead::

    with StagedWarehouse(warehouse) as staging:     # the same reading and writing API as Warehouse
        staging.write(RAW_EVENTS, rows, day)        # written aside: readers still see the old partition
        staging.read(RAW_EVENTS, [day])             # ...but this run reads what it staged
        check(...)                                  # raise: nothing is replaced
    # the block ended without an exception: every staged partition is swapped in

Each partition is swapped in atomically; the set is swapped in one partition after another, so a crash
during the commit (a few renames) can leave some partitions new and the rest old, never half a file.
Temporaries carry the writer's pid, so those of a killed run are swept by the next writer.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from warehouse import atomic
from warehouse.contracts import TableContract
from warehouse.store import Warehouse, WriteResult, write_partition_file


class StagedWarehouse(Warehouse):
    """A warehouse view whose writes stay aside until :meth:`commit` (or the end of a ``with`` block).

    Several threads may write distinct partitions at once (:func:`pipelines.ingestion.ingest_days`);
    commit and discard run once they are done.
    """

    def __init__(self, base: Warehouse) -> None:
        super().__init__(base.root)
        self._staged: dict[Path, tuple[TableContract, dt.date | None, Path, int, str]] = {}
        self._deleted: dict[Path, tuple[TableContract, dt.date | None]] = {}
        self._lock = threading.Lock()  # guards the two maps against a reader iterating during a write

    def __enter__(self) -> StagedWarehouse:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    # --- writing: aside ------------------------------------------------------------------------------

    def write_batches(
        self, contract: TableContract, batches: Iterable[pa.RecordBatch], partition: dt.date | None = None
    ) -> WriteResult:
        """Write one partition aside; it replaces the stored one at :meth:`commit`."""
        final = self.partition_path(contract, partition)
        final.parent.mkdir(parents=True, exist_ok=True)
        atomic.remove_orphaned_temporaries(final)
        path = atomic.aside_path(final)
        try:
            rows, content_hash = write_partition_file(path, contract, batches)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        with self._lock:
            self._drop(final)
            self._deleted.pop(final, None)
            self._staged[final] = (contract, partition, path, rows, content_hash)
        return WriteResult(path=final, rows=rows, content_hash=content_hash, partition=partition)

    def delete_partition(self, contract: TableContract, partition: dt.date | None = None) -> None:
        """Delete one partition at :meth:`commit` (this run no longer reads it)."""
        final = self.partition_path(contract, partition)
        with self._lock:
            self._drop(final)
            self._deleted[final] = (contract, partition)

    def staged(self) -> list[Path]:
        """The partitions (their final paths) that :meth:`commit` would replace."""
        return sorted(self._staged)

    def commit(self) -> list[WriteResult]:
        """Swap every staged partition in (each atomically), record it and give its table a view."""
        results = []
        by_table: dict[str, tuple[TableContract, list[tuple[dt.date | None, int, str]]]] = {}
        moves = []
        for final in sorted(self._staged):
            contract, partition, path, rows, content_hash = self._staged[final]
            moves.append((path, final))
            by_table.setdefault(contract.view_name, (contract, []))[1].append((partition, rows, content_hash))
        atomic.swap_in_many(moves)
        self._staged.clear()
        for contract, written in by_table.values():  # one manifest write per table
            results.extend(self._published_many(contract, written))
        for contract, partition in self._deleted.values():
            Warehouse.delete_partition(self, contract, partition)
        self._deleted.clear()
        return results

    def discard(self) -> None:
        """Delete every staged partition: the stored ones stay as they were."""
        for final in list(self._staged):
            self._drop(final)
        self._deleted.clear()

    # --- reading: this run's staged partitions over the stored ones ----------------------------------

    def partitions(self, contract: TableContract) -> list[dt.date]:
        with self._lock:
            staged = {p for c, p, *_ in self._staged.values() if c.view_name == contract.view_name and p is not None}
            deleted = {p for c, p in self._deleted.values() if c.view_name == contract.view_name}
        return sorted((set(super().partitions(contract)) - deleted) | staged)

    def exists(self, contract: TableContract, partition: dt.date | None = None) -> bool:
        if contract.partitioned and partition is None:
            return bool(self.partitions(contract))
        final = self.partition_path(contract, partition)
        return final in self._staged or (final not in self._deleted and super().exists(contract, partition))

    def files(self, contract: TableContract, partitions: Iterable[dt.date] | None = None) -> list[Path]:
        if not contract.partitioned:
            chosen: list[dt.date | None] = [None]
        else:
            chosen = list(self.partitions(contract) if partitions is None else partitions)
        found = []
        for partition in chosen:
            final = self.partition_path(contract, partition)
            if final in self._staged:
                found.append(self._staged[final][2])
            elif final.exists() and final not in self._deleted:
                found.append(final)
        return found

    def _drop(self, final: Path) -> None:
        if final in self._staged:
            self._staged.pop(final)[2].unlink(missing_ok=True)
