"""Runs a connector: streams its records through the staging SQL into the raw tables and the id map.

Plain Python (no Dagster), used by ``recforge ingest`` and by the ``dataset_ingest_job``::

    connector.records() ──chunks of N lines per table──> staging SQL (transforms.ingest.staging_sql)
        │  staged rows ──spill: one Parquet file per chunk, sorted by day──┐
        │  quarantined rows ──spill──────────────────────────────────────┐ │
        ▼                                                                ▼ ▼
    per batch of days: dedupe across chunks (same rules as staging) ──> merge into each day's
    partition (rows of other sources kept, same keys replaced) ──> Warehouse.write (atomic)
                                                                   ──> core_id_maps extended

Memory holds one chunk of lines per table and one batch of days at a time, so files larger than RAM
(gzip included) stream through. Counts hold by construction: for every table,
``staged + quarantined = records read``.

Where a row lands:
- a log row in the partition of its event day (``date`` of ``ts``, UTC);
- a quarantined log row in the partition of its day when its timestamp is readable and possible,
  else in :data:`UNDATED` (1970-01-01), the partition of rows whose day cannot be known;
- catalog rows (items, users) and the random-exposure ratings in their unpartitioned tables.

Timestamps before :attr:`ConnectRules.ts_min` or after :attr:`ConnectRules.ts_max` are impossible
(``impossible_ts``): a connector has no log day to compare with, only this sanity range.

Re-ingesting the same files rewrites the same partitions with the same bytes: rows are merged by
key and sorted by key; quarantine rows of the same source files are replaced. A re-ingest whose rows land
in other days (a changed mapping) removes the days only its files had written (each table's
``_sources.json`` records which days each file's last ingest wrote); days other sources share are kept
and reported.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from pipelines.connect_tables import (
    UNDATED,
    QuarantinedExample,
    TableCounts,
    _TableRun,
    replace_stale_partitions,
)
from pipelines.ingestion import (
    BadRowShareExceeded,
    LandingRules,
    observed_ids,
    worst_over_limit,
)
from transforms.connectors.base import CONNECTOR_SPECS, Connector, Record
from transforms.engine import Engine
from transforms.ingest.id_maps import extend_id_map
from transforms.ingest.staging import (
    StagingRules,
)
from warehouse import contracts
from warehouse.contracts import CORE_ID_MAPS
from warehouse.lock import holding_writer_lock
from warehouse.staging import StagedWarehouse
from warehouse.store import Warehouse

DEFAULT_CHUNK_LINES = 1_000_000


@dataclass(frozen=True)
class ConnectRules:
    """Settings of one connector run.

    Attributes:
        chunk_lines: Lines staged at a time per table (bounds memory).
        ts_min: Earliest possible timestamp.
        ts_max: Timestamps at or after this are impossible; None means the start of the run plus one day.
        staging: Validation settings shared with the landing-zone ingestion (rating scale, event types).
        max_bad_share: Fail (after writing) when a table's share of bad rows (duplicates excepted) passes
            this; None: never. The default is the landing zone's (:class:`pipelines.ingestion.LandingRules`).
    """

    chunk_lines: int = DEFAULT_CHUNK_LINES
    ts_min: dt.datetime = dt.datetime(1990, 1, 1)
    ts_max: dt.datetime | None = None
    staging: StagingRules = field(default_factory=StagingRules)
    max_bad_share: float | None = LandingRules.max_bad_share


@dataclass(frozen=True)
class ConnectReport:
    """What one connector run did: counts per table, and the id map after it."""

    format: str
    name: str
    tables: dict[str, TableCounts]
    users: int
    items: int
    new_ids: int

    def summary(self) -> dict[str, object]:
        """A flat, JSON-ready summary (for metadata and the command line)."""
        return {
            "format": self.format,
            "name": self.name,
            "rows_read": sum(t.read for t in self.tables.values()),
            "rows_staged": sum(t.staged for t in self.tables.values()),
            "rows_quarantined": sum(t.quarantined for t in self.tables.values()),
            "tables": {
                name: {"read": t.read, "staged": t.staged, "quarantined": t.quarantined, "reasons": t.reasons, "partitions": len(t.partitions),
                       **({"stale_partitions_removed": [d.isoformat() for d in t.stale_removed]} if t.stale_removed else {}),
                       **({"stale_partitions_kept_shared_with_other_sources": [d.isoformat() for d in t.stale_kept]} if t.stale_kept else {})}
                for name, t in self.tables.items()
            },
            "id_map_users": self.users,
            "id_map_items": self.items,
            "new_ids": self.new_ids,
        }


@holding_writer_lock("warehouse")  # one writer per data root: the merge and the id map are read-modify-write
def ingest_dataset(
    connector: Connector,
    warehouse: Warehouse,
    engine: Engine,
    rules: ConnectRules | None = None,
    work_dir: Path | None = None,
) -> ConnectReport:
    """Stage every record of ``connector`` into the warehouse and extend the id map.

    Args:
        connector: The format reader (see :func:`transforms.connectors.connector_for`).
        warehouse: Where the raw, quarantine and eval tables live.
        engine: DuckDB or Spark; runs the staging SQL.
        rules: Chunk size, timestamp sanity range, staging rules, bad-row limit.
        work_dir: Where spill files go (a temporary folder inside it; the system's temp dir when None).

    Raises:
        BadRowShareExceeded: When a table's bad-row share passes ``rules.max_bad_share``; the quarantine is
            written, the staged tables keep their previous version.
    """
    rules = rules or ConnectRules()
    ts_max = rules.ts_max or dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    # The staged tables are written aside and swapped in only when no table is over the bad-row limit (a
    # failed run keeps the last good version); the quarantine is written either way.
    with tempfile.TemporaryDirectory(prefix="recforge-connect-", dir=work_dir) as tmp, StagedWarehouse(warehouse) as staging:
        runs: dict[str, _TableRun] = {}
        with _ChunkStager(engine) as stager:
            for table, chunk in _chunks(connector.records(), rules.chunk_lines):
                if table not in runs:
                    runs[table] = _TableRun(table, CONNECTOR_SPECS[table], Path(tmp) / table)
                stager.stage(runs[table], chunk, (rules.ts_min, ts_max), rules.staging)
        counts = {table: run.finish(engine, staging, rules.chunk_lines, quarantine_to=warehouse) for table, run in sorted(runs.items())}
        if rules.max_bad_share is not None:
            _enforce_bad_share(_report(connector, counts, warehouse.read(CORE_ID_MAPS)), rules.max_bad_share)
    counts = {table: replace_stale_partitions(warehouse, counts[table], run.contract, run.sources) for table, run in runs.items()}
    counts = dict(sorted(counts.items()))

    existing = warehouse.read(CORE_ID_MAPS)
    updated = extend_id_map(engine, existing, observed_ids(warehouse, engine))
    warehouse.write(CORE_ID_MAPS, updated)
    return _report(connector, counts, updated, new_ids=updated.num_rows - existing.num_rows)


def _report(connector: Connector, counts: dict[str, TableCounts], id_map: pa.Table, new_ids: int = 0) -> ConnectReport:
    entities = Counter(id_map["entity"].to_pylist())
    return ConnectReport(
        format=connector.format,
        name=connector.name,
        tables=counts,
        users=entities.get("user", 0),
        items=entities.get("item", 0),
        new_ids=new_ids,
    )


class _ChunkStager:
    """Stages each chunk while the connector reads the next one.

    Reading a dataset is Python (it holds the interpreter), staging a chunk is mostly the engine's query (it
    does not), so on an engine that runs queries beside each other (:attr:`Engine.parallel_workers`) one
    thread with its own connection stages chunk ``n`` while the caller reads chunk ``n + 1``. Chunks are
    staged one at a time and in order, and at most one waits, so memory holds two chunks. Elsewhere each
    chunk is staged as it arrives.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pool: ThreadPoolExecutor | None = None
        self._worker: Engine | None = None
        self._pending: Future[None] | None = None
        if engine.parallel_workers > 1:
            self._worker = engine.worker()
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="stage-chunks")

    def stage(self, run: _TableRun, chunk: list[Record], ts_range: tuple[dt.datetime, dt.datetime], staging: StagingRules) -> None:
        if self._pool is None or self._worker is None:
            run.stage_chunk(self._engine, chunk, ts_range, staging)
            return
        self._wait()  # the previous chunk first: runs are staged in order, one chunk at a time
        self._pending = self._pool.submit(run.stage_chunk, self._worker, chunk, ts_range, staging)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # re-raises the staging error here

    def __enter__(self) -> _ChunkStager:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        try:
            if kind is None:
                self._wait()
            elif self._pending is not None:
                self._pending.exception()  # let it finish; the error being raised is the one to report
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            if self._worker is not None:
                self._worker.close()


def _chunks(records: Iterable[Record], chunk_lines: int) -> Iterator[tuple[str, list[Record]]]:
    """Per-table lists of at most ``chunk_lines`` records, in stream order; the rest at the end."""
    buffers: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        buffer = buffers[record.table]
        buffer.append(record)
        if len(buffer) >= chunk_lines:
            yield record.table, buffer
            buffers[record.table] = []
    for table, buffer in buffers.items():
        if buffer:
            yield table, buffer


def _enforce_bad_share(report: ConnectReport, limit: float) -> None:
    worst = worst_over_limit(report.tables.values(), limit)
    if worst is not None:
        top = worst.top_reasons()
        raise BadRowShareExceeded(
            f"{report.format} {report.name}: {worst.bad} of {worst.read} {worst.table} rows ({worst.bad_share:.1%}) "
            f"were rejected, above the limit of {limit:.1%}. Most common reasons: {top}. The rejected rows are in "
            f"{contracts.quarantine_contract(CONNECTOR_SPECS[worst.table].contract).view_name}.",
            report=report,
        )


__all__ = ["UNDATED", "ConnectReport", "ConnectRules", "QuarantinedExample", "TableCounts", "ingest_dataset"]
