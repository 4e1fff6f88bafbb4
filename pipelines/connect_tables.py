"""One table's part of a connector run: spill its staged chunks, dedupe across them, write its partitions.

Used by :func:`pipelines.connect.ingest_dataset`; see that module for where each row lands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.ingestion import (
    RejectedShare,
)
from transforms.connectors.base import Record
from transforms.engine import Engine
from transforms.ingest.staging import (
    LINES_SCHEMA,
    SourceKind,
    StagingRules,
    TableSpec,
    conform_staged,
    staging_sql,
)
from warehouse import atomic, contracts
from warehouse.contracts import TableContract
from warehouse.store import Warehouse, conform

UNDATED = dt.date(1970, 1, 1)
EXAMPLES_PER_TABLE = 5
HELPER_COLUMNS = ("source_file", "line_no", "line", "reason", "day")


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
    # Days an earlier ingest of the same files wrote and this run did not: removed when those files were
    # their only source, kept (and listed here) when other sources share them (raw rows do not record
    # their file, so their rows cannot be told apart).
    stale_removed: tuple[dt.date, ...] = ()
    stale_kept: tuple[dt.date, ...] = ()


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
            engine.dialect, self.spec, SourceKind.LINES, relation, window,
            dataclasses.replace(staging, late_tolerance=dt.timedelta(0)), keep_lines=True,  # compared again in finish
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
        helpers = [c for c in HELPER_COLUMNS if c in rows.column_names and c not in self.contract.schema.names]
        new = _conform(rows.drop_columns(helpers), self.contract)  # log tables keep source_file, line_no
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


SOURCES_FILE = "_sources.json"  # per table: source file -> the partitions its last ingest wrote


def replace_stale_partitions(warehouse: Warehouse, counts: TableCounts, contract: TableContract,
                             sources: set[str]) -> TableCounts:
    """Make a re-ingest replace what its files put in days it no longer writes (a changed mapping).

    Reads and updates the table's ``_sources.json`` (which partitions each source file's last ingest
    wrote). A partition that only these files wrote, and this run did not, is removed; one that other
    sources wrote too is kept and reported. Call after the run's partitions were committed.
    """
    if not contract.partitioned or not sources:
        return counts
    path = warehouse.table_dir(contract) / SOURCES_FILE
    recorded: dict[str, list[str]] = json.loads(path.read_text()) if path.exists() else {}
    written = {d.isoformat() for d in counts.partitions}
    earlier = {day for source in sources for day in recorded.get(source, [])} - written
    others = {day for source, days in recorded.items() if source not in sources for day in days}
    removed, kept = sorted(earlier - others), sorted(earlier & others)
    for day in removed:
        warehouse.delete_partition(contract, dt.date.fromisoformat(day))
    recorded.update({source: sorted(written) for source in sources})
    atomic.write_json(path, dict(sorted(recorded.items())))
    return dataclasses.replace(counts, stale_removed=tuple(dt.date.fromisoformat(d) for d in removed),
                               stale_kept=tuple(dt.date.fromisoformat(d) for d in kept))
