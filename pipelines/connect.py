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
key and sorted by key; quarantine rows of the same source files are replaced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.ingestion import (
    BadRowShareExceeded,
    LandingRules,
    RejectedShare,
    observed_ids,
    worst_over_limit,
)
from transforms.connectors.base import CONNECTOR_SPECS, Connector, Record
from transforms.engine import Engine
from transforms.ingest.id_maps import extend_id_map
from transforms.ingest.staging import (
    LINES_SCHEMA,
    SourceKind,
    StagingRules,
    TableSpec,
    conform_staged,
    staging_sql,
)
from warehouse import contracts
from warehouse.contracts import CORE_ID_MAPS, TableContract
from warehouse.lock import holding_writer_lock
from warehouse.staging import StagedWarehouse
from warehouse.store import Warehouse, conform

UNDATED = dt.date(1970, 1, 1)
DEFAULT_CHUNK_LINES = 1_000_000
EXAMPLES_PER_TABLE = 5
HELPER_COLUMNS = ("source_file", "line_no", "line", "reason", "day")


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
class QuarantinedExample:
    """One quarantined line, to show on the command line."""

    source_file: str
    line_no: int
    reason: str
    line: str | None


@dataclass(frozen=True)
class TableCounts(RejectedShare):
    """What one connector run did to one table."""

    table: str
    read: int
    staged: int
    quarantined: int
    reasons: dict[str, int]
    partitions: tuple[dt.date, ...] = ()
    examples: tuple[QuarantinedExample, ...] = ()


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
                name: {"read": t.read, "staged": t.staged, "quarantined": t.quarantined, "reasons": t.reasons, "partitions": len(t.partitions)}
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
        for table, chunk in _chunks(connector.records(), rules.chunk_lines):
            if table not in runs:
                runs[table] = _TableRun(table, CONNECTOR_SPECS[table], Path(tmp) / table)
            runs[table].stage_chunk(engine, chunk, (rules.ts_min, ts_max), rules.staging)
        counts = {table: run.finish(engine, staging, rules.chunk_lines, quarantine_to=warehouse) for table, run in sorted(runs.items())}
        if rules.max_bad_share is not None:
            _enforce_bad_share(_report(connector, counts, warehouse.read(CORE_ID_MAPS)), rules.max_bad_share)

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


class _TableRun:
    """The spill files and counts of one table during one run."""

    def __init__(self, table: str, spec: TableSpec, folder: Path) -> None:
        self.table = table
        self.spec = spec
        self.contract = spec.contract
        self.q_contract = contracts.quarantine_contract(spec.contract)
        self.folder = folder
        folder.mkdir(parents=True)
        self.read = 0
        self.staged_files: list[Path] = []
        self.quarantine_files: list[Path] = []
        self.staged_days: Counter[dt.date | None] = Counter()
        self.quarantine_days: Counter[dt.date | None] = Counter()
        self.sources: set[str] = set()

    @property
    def dated(self) -> bool:
        return self.contract.partitioned and self.spec.ts_field is not None

    def stage_chunk(
        self, engine: Engine, chunk: list[Record], ts_range: tuple[dt.datetime, dt.datetime], staging: StagingRules
    ) -> None:
        """Stage one chunk with the landing-zone SQL and spill its rows, sorted by day."""
        self.read += len(chunk)
        lines = pa.table(
            {
                "source_file": pa.array([r.source_file for r in chunk], pa.string()),
                "line_no": pa.array([r.line_no for r in chunk], pa.int64()),
                "line": pa.array([r.line for r in chunk], pa.string()),
            },
            schema=LINES_SCHEMA,
        )
        self.sources.update(pc.unique(lines["source_file"]).to_pylist())
        relation = f"connect_{self.table}"
        engine.register_arrow(relation, lines)
        # The sanity range is the staging window with no late tolerance: impossible_ts comes from the
        # same rule, checked before duplicates are ranked, exactly as for landing files.
        window = ts_range if self.dated else None
        sql = staging_sql(
            engine.dialect, self.spec, SourceKind.LINES, relation, window, dataclasses.replace(staging, late_tolerance=dt.timedelta(0))
        )
        if self.dated:
            sql = f"SELECT *, {engine.dialect.date_of(self.spec.ts_field or 'ts')} AS day FROM ({sql}) staged"
        else:
            sql = f"SELECT *, CAST(NULL AS DATE) AS day FROM ({sql}) staged"
        result = engine.query(sql)
        good = pc.is_null(result["reason"])
        staged = result.filter(good)
        quarantined = result.filter(pc.invert(good)).select(["source_file", "line_no", "reason", "line", "day"])
        if self.dated:
            # A quarantined row whose timestamp is unreadable or impossible has no day of its own.
            possible = pc.and_kleene(pc.is_valid(quarantined["day"]), pc.not_equal(quarantined["reason"], "impossible_ts"))
            quarantined = quarantined.set_column(
                4, "day", pc.if_else(possible, quarantined["day"], pa.scalar(UNDATED, pa.date32()))
            )
        self._spill(staged, "staged", self.staged_files, self.staged_days)
        self._spill(quarantined, "quarantine", self.quarantine_files, self.quarantine_days)

    def _spill(self, rows: pa.Table, kind: str, files: list[Path], days: Counter[dt.date | None]) -> None:
        if rows.num_rows == 0:
            return
        rows = rows.set_column(rows.column_names.index("day"), "day", rows["day"].cast(pa.date32()))
        rows = rows.take(pc.sort_indices(rows, [("day", "ascending"), ("source_file", "ascending"), ("line_no", "ascending")]))
        path = self.folder / f"{kind}-{len(files):05d}.parquet"
        pq.write_table(rows, path, row_group_size=64 * 1024)
        files.append(path)
        for entry in pc.value_counts(rows["day"]).to_pylist():
            days[entry["values"]] += entry["counts"]

    def finish(self, engine: Engine, warehouse: Warehouse, batch_rows: int, quarantine_to: Warehouse | None = None) -> TableCounts:
        """Dedupe across chunks, then write every touched partition (staged and quarantine).

        The quarantine goes to ``quarantine_to`` when given: the staged rows may be written aside (a
        :class:`StagedWarehouse` that the bad-row check may discard) while what was rejected is kept.
        """
        quarantine = quarantine_to or warehouse
        reasons: Counter[str] = Counter()
        staged_total = 0
        late_quarantine: list[pa.Table] = []
        written: list[dt.date] = []
        if self.staged_files:
            engine.register_parquet(f"spill_{self.table}", self.staged_files)
            for days in _day_batches(self.staged_days, batch_rows):
                rows = engine.query(self._dedupe_sql(days))
                good = pc.is_null(rows["reason"])
                dups = rows.filter(pc.invert(good))
                if dups.num_rows:
                    late_quarantine.append(dups.select(["source_file", "line_no", "reason", "line", "day"]))
                kept = rows.filter(good)
                staged_total += kept.num_rows
                for day, part in _split_by_day(kept, days):
                    self._write_staged(warehouse, part, day)
                    if day is not None:
                        written.append(day)
        if late_quarantine:
            self._spill(pa.concat_tables(late_quarantine), "quarantine", self.quarantine_files, self.quarantine_days)
        quarantined_total = 0
        examples: list[QuarantinedExample] = []
        if self.quarantine_files:
            engine.register_parquet(f"spill_q_{self.table}", self.quarantine_files)
            for days in _day_batches(self.quarantine_days, batch_rows):
                rows = engine.query(
                    f"SELECT source_file, line_no, reason, line, day FROM spill_q_{self.table} WHERE {_day_filter(days)}"
                )
                quarantined_total += rows.num_rows
                reasons.update(rows["reason"].to_pylist())
                # Batches go by day: the first lines of the files may lie in any batch.
                first = rows.take(pc.sort_indices(rows, [("source_file", "ascending"), ("line_no", "ascending")])[:EXAMPLES_PER_TABLE])
                examples.extend(QuarantinedExample(r["source_file"], r["line_no"], r["reason"], r["line"]) for r in first.to_pylist())
                examples = sorted(examples, key=lambda e: (e.source_file, e.line_no))[:EXAMPLES_PER_TABLE]
                for day, part in _split_by_day(rows, days):
                    self._write_quarantine(quarantine, part, day)
        elif not quarantine.exists(self.q_contract):
            # Nothing quarantined and no quarantine table yet: an empty one, so quarantine_<table> exists.
            self._write_quarantine(quarantine, self.q_contract.schema.empty_table(), None)
        self._drop_stale_quarantine(quarantine, {(d or UNDATED) for d in self.quarantine_days})
        if staged_total + quarantined_total != self.read:
            raise RuntimeError(
                f"{self.table}: {self.read} records read but {staged_total} staged + {quarantined_total} quarantined"
            )
        return TableCounts(
            table=self.table,
            read=self.read,
            staged=staged_total,
            quarantined=quarantined_total,
            reasons=dict(sorted(reasons.items())),
            partitions=tuple(sorted(set(written))),
            examples=tuple(examples),
        )

    def _drop_stale_quarantine(self, warehouse: Warehouse, written: set[dt.date]) -> None:
        """Remove this run's sources from the quarantine partitions it did not write.

        A re-ingest replaces everything that came from the files it reads: when a changed mapping moves a
        bad row to another day, its old quarantine row must not stay behind in the old day.
        """
        if not self.q_contract.partitioned or not self.sources:
            return
        sources = pa.array(sorted(self.sources), pa.string())
        for day in warehouse.partitions(self.q_contract):
            if day in written:
                continue
            rows = warehouse.read(self.q_contract, [day])
            stale = pc.is_in(rows["source_file"], sources)
            if pc.any(stale).as_py():
                kept = rows.filter(pc.invert(stale))
                if kept.num_rows:
                    warehouse.write(self.q_contract, kept, day)
                else:
                    warehouse.delete_partition(self.q_contract, day)

    def _dedupe_sql(self, days: list[dt.date | None]) -> str:
        # The staging rules' last two, across chunks: an exact copy of an earlier line is a duplicate,
        # another line with the same key a duplicate_key; the first by (source_file, line_no) is kept.
        key = ", ".join(self.contract.key)
        columns = ", ".join(name for name, _ in self.spec.fields)
        return f"""
SELECT source_file, line_no, line, day, {columns},
       CASE WHEN copy_rank > 1 THEN 'duplicate' WHEN key_rank > 1 THEN 'duplicate_key' END AS reason
FROM (
    SELECT *,
        row_number() OVER (PARTITION BY day, line ORDER BY source_file, line_no) AS copy_rank,
        row_number() OVER (PARTITION BY day, {key} ORDER BY source_file, line_no) AS key_rank
    FROM spill_{self.table}
    WHERE {_day_filter(days)}
) ranked
ORDER BY source_file, line_no
"""

    def _partition(self, day: dt.date | None) -> dt.date | None:
        return day if self.contract.partitioned else None

    def _write_staged(self, warehouse: Warehouse, rows: pa.Table, day: dt.date | None) -> None:
        new = _conform(rows.drop_columns([c for c in HELPER_COLUMNS if c in rows.column_names]), self.contract)
        partition = self._partition(day)
        # A partition this run creates has nothing to merge with: no read (most days of a backfill).
        if warehouse.exists(self.contract, partition):
            existing = warehouse.read(self.contract, [partition] if partition else None)
            merged = pa.concat_tables([_rows_without_keys(existing, new, list(self.contract.key)), new])
        else:
            merged = new
        warehouse.write(self.contract, _sorted(merged, list(self.contract.key)), partition)

    def _write_quarantine(self, warehouse: Warehouse, rows: pa.Table, day: dt.date | None) -> None:
        partition = (day or UNDATED) if self.q_contract.partitioned else None
        new = rows.select(self.q_contract.schema.names).cast(self.q_contract.schema)
        merged = new
        if warehouse.exists(self.q_contract, partition):
            existing = warehouse.read(self.q_contract, [partition] if partition else None)
            # Quarantine rows of the files this run read are replaced; those of other sources stay.
            others = existing.filter(pc.invert(pc.is_in(existing["source_file"], pa.array(sorted(self.sources), pa.string()))))
            merged = pa.concat_tables([others, new])
        warehouse.write(self.q_contract, _sorted(merged, ["source_file", "line_no", "reason", "line"]), partition)


def _split_by_day(rows: pa.Table, days: list[dt.date | None]) -> Iterator[tuple[dt.date | None, pa.Table]]:
    """``(day, rows of that day)`` for every day of ``days``: one sort, then slices (not one filter per day)."""
    if days == [None]:
        yield None, rows
        return
    ordered = rows.take(pc.sort_indices(rows, [("day", "ascending")]))
    spans: dict[dt.date, tuple[int, int]] = {}
    offset = 0
    for entry in sorted(pc.value_counts(ordered["day"]).to_pylist(), key=lambda e: e["values"]):
        spans[entry["values"]] = (offset, entry["counts"])
        offset += entry["counts"]
    for day in sorted(d for d in days if d is not None):
        start, n = spans.get(day, (0, 0))
        yield day, ordered.slice(start, n)


def _day_batches(days: Counter[dt.date | None], batch_rows: int) -> Iterator[list[dt.date | None]]:
    """Consecutive days grouped so that a batch holds about ``batch_rows`` rows (one day at least)."""
    batch: list[dt.date | None] = []
    rows = 0
    for day in sorted(days, key=lambda d: d or dt.date.min):
        if batch and rows + days[day] > batch_rows:
            yield batch
            batch, rows = [], 0
        batch.append(day)
        rows += days[day]
    if batch:
        yield batch


def _day_filter(days: list[dt.date | None]) -> str:
    if days == [None]:
        return "day IS NULL"
    dated = [d for d in days if d is not None]
    return f"day BETWEEN DATE '{min(dated).isoformat()}' AND DATE '{max(dated).isoformat()}'"


def _conform(table: pa.Table, contract: TableContract) -> pa.Table:
    # The same casts as staging's own output (naive timestamps taken as UTC), then the store's checks.
    return conform(conform_staged(table, contract), contract)


def _rows_without_keys(existing: pa.Table, new: pa.Table, key: list[str]) -> pa.Table:
    """Rows of ``existing`` whose key is not among ``new``'s (a join on keys only: payloads may be lists)."""
    if existing.num_rows == 0 or new.num_rows == 0:
        return existing
    left = existing.select(key).append_column("_row", pa.array(range(existing.num_rows), pa.int64()))
    kept = left.join(new.select(key), keys=key, join_type="left anti")
    rows = kept["_row"].combine_chunks()
    return existing.take(pc.take(rows, pc.array_sort_indices(rows)))


def _sorted(table: pa.Table, by: list[str]) -> pa.Table:
    return table.take(pc.sort_indices(table, [(c, "ascending") for c in by]))


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
