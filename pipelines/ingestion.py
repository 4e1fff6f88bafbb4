"""Moves raw logs from the landing zone into staged warehouse tables, day by day.

Landing layout (what ``recforge world`` writes; docs/raw_formats.md)::

    <landing>/slates/YYYY-MM-DD.parquet
    <landing>/{impressions,events,reviews}/YYYY-MM-DD.jsonl[.gz]
    <landing>/catalog/items.{jsonl,csv}      <landing>/catalog/users.csv

Used by the Dagster raw assets and by the CLI; plain Python, no Dagster.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from transforms.engine import Engine
from transforms.engine.sources import SourceFile, SourceFormat, read_csv_as_lines
from transforms.ingest.staging import SPECS, StagingRules, day_window, reason_counts, stage
from warehouse import contracts
from warehouse.store import Warehouse

LOG_TABLES = ("slates", "impressions", "events", "reviews")
CATALOG_TABLES = ("items", "users")
NOT_BAD_REASONS = ("duplicate",)  # exact copies are removed, not counted against the bad-row limit


@dataclass(frozen=True)
class LandingRules:
    """Settings of a landing-zone ingestion run.

    Attributes:
        max_bad_share: Fail when a partition's share of rejected rows passes this.
        late_tolerance_hours: How far outside its log day a row's timestamp may lie.
    """

    max_bad_share: float = 0.05
    late_tolerance_hours: int = 24

    def staging_rules(self) -> StagingRules:
        return StagingRules(late_tolerance=dt.timedelta(hours=self.late_tolerance_hours))


class BadRowShareExceeded(RuntimeError):
    """Too large a share of input rows was rejected: the run fails rather than stage a broken day.

    ``report`` is what the run wrote (the rejected rows are in quarantine), for callers that print it.
    """

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class RejectedShare:
    """Bad-row arithmetic for any report with ``read``, ``quarantined`` and ``reasons``."""

    read: int
    quarantined: int
    reasons: dict[str, int]

    @property
    def bad(self) -> int:
        """Quarantined rows that count against the limit (exact copies do not)."""
        return self.quarantined - sum(n for r, n in self.reasons.items() if r in NOT_BAD_REASONS)

    @property
    def bad_share(self) -> float:
        return self.bad / self.read if self.read else 0.0

    def top_reasons(self, n: int = 3) -> list[tuple[str, int]]:
        """The ``n`` most common quarantine reasons with their counts, most common first."""
        return sorted(self.reasons.items(), key=lambda kv: -kv[1])[:n]


R = TypeVar("R", bound=RejectedShare)


def worst_over_limit(reports: Iterable[R], max_bad_share: float) -> R | None:
    """The report with the largest bad-row share when that share passes ``max_bad_share``, else None."""
    worst = max(reports, key=lambda r: r.bad_share, default=None)
    return worst if worst is not None and worst.bad_share > max_bad_share else None


@dataclass(frozen=True)
class IngestReport(RejectedShare):
    """What one ingestion of one table partition did."""

    table: str
    partition: dt.date | None
    source_files: list[str]
    read: int
    staged: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    kept: bool = False  # no landing file: the partition's stored rows were left as they are


def holds_rows(warehouse: Warehouse, contract: contracts.TableContract, day: dt.date | None) -> bool:
    """Whether the stored partition (or unpartitioned table) exists and holds at least one row."""
    partition = day if contract.partitioned else None
    if not warehouse.exists(contract, partition):
        return False
    rows, _ = warehouse.stored_stats(contract, partition)
    return rows > 0


def landing_files(landing: Path, table: str, day: dt.date | None = None) -> list[Path]:
    """Source files of one table (for one day, for the log tables)."""
    if table in CATALOG_TABLES:
        folder = Path(landing) / "catalog"
        return sorted(p for p in folder.glob(f"{table}.*") if p.suffix in {".jsonl", ".csv", ".gz"})
    if day is None:
        raise ValueError(f"{table} is a daily log: name the day")
    folder = Path(landing) / table
    return sorted(folder.glob(f"{day.isoformat()}.*"))


def read_source(path: Path, table: str, landing: Path) -> pa.Table | SourceFile:
    """The relation :func:`transforms.ingest.stage` expects for one landing file.

    JSONL and Parquet files are handed to the engine to read itself; CSV is converted to JSON lines here.
    """
    name = str(path.relative_to(landing)) if path.is_relative_to(landing) else str(path)
    if path.suffix == ".parquet":
        return SourceFile(path, name, SourceFormat.PARQUET)
    if path.suffix == ".csv":
        required = SPECS[table].required
        if table == "users":
            return read_csv_as_lines(path, attribute_key="user_id", source_name=name, required=required)
        return read_csv_as_lines(path, list_columns=("categories",), json_columns=("attributes",), source_name=name, required=required)
    return SourceFile(path, name, SourceFormat.JSON_LINES)


def ingest_table(
    warehouse: Warehouse,
    engine: Engine,
    table: str,
    landing: Path,
    day: dt.date | None = None,
    rules: StagingRules | None = None,
    quarantine_to: Warehouse | None = None,
) -> IngestReport:
    """Stage one table (one day of a log, or the whole catalog table) and write it atomically.

    The staged rows and the quarantined rows are both written, so ``staged + quarantined = read``; the
    quarantine goes to ``quarantine_to`` when given (a run that stages its raw partitions aside, to swap
    them in only if the run passes its checks, still keeps what it rejected and why). A day
    with no source file is written as an empty partition, so that "no data" is distinguishable from
    "not ingested yet", unless the warehouse already holds rows there: data staged by a connector
    (``recforge ingest``) or by an earlier run whose landing files are gone is never replaced by nothing.
    """
    spec = SPECS[table]
    files = landing_files(landing, table, day)
    if not files and holds_rows(warehouse, spec.contract, day):
        return IngestReport(table=table, partition=day, source_files=[], read=0, staged=0, quarantined=0, kept=True)
    window = day_window(day) if day is not None else None
    staged_parts, quarantined_parts = [], []
    for path in files:
        result = stage(engine, table, read_source(path, table, landing), window, rules)
        staged_parts.append(result.staged)
        quarantined_parts.append(result.quarantined)
    q_contract = contracts.quarantine_contract(spec.contract)
    staged = pa.concat_tables(staged_parts) if staged_parts else spec.contract.schema.empty_table()
    quarantined = pa.concat_tables(quarantined_parts) if quarantined_parts else q_contract.schema.empty_table()
    warehouse.write(spec.contract, staged, day)
    (quarantine_to or warehouse).write(q_contract, quarantined, day)
    return IngestReport(
        table=table,
        partition=day,
        source_files=[str(p) for p in files],
        read=staged.num_rows + quarantined.num_rows,
        staged=staged.num_rows,
        quarantined=quarantined.num_rows,
        reasons=reason_counts(quarantined),
    )


def ingest_days(
    warehouse: Warehouse,
    engine: Engine,
    table: str,
    landing: Path,
    days: Sequence[dt.date | None],
    rules: StagingRules | None = None,
    quarantine_to: Warehouse | None = None,
) -> list[IngestReport]:
    """:func:`ingest_table` for each of ``days`` (``[None]`` for a catalog table), reports in day order.

    Days are independent (each is staged, deduplicated and written on its own), so where the engine
    runs several queries at once (:attr:`Engine.parallel_workers`) they are staged by that many threads,
    each through its own :meth:`Engine.worker`. The first error stops the run and is raised.
    """
    workers = min(engine.parallel_workers, len(days))
    if workers <= 1:
        return [ingest_table(warehouse, engine, table, landing, day, rules, quarantine_to) for day in days]
    local = threading.local()
    opened: list[Engine] = []
    guard = threading.Lock()

    def one_day(day: dt.date | None) -> IngestReport:
        if not hasattr(local, "engine"):
            local.engine = engine.worker()
            with guard:
                opened.append(local.engine)
        return ingest_table(warehouse, local.engine, table, landing, day, rules, quarantine_to)

    try:
        with ThreadPoolExecutor(workers, thread_name_prefix=f"stage-{table}") as pool:
            return list(pool.map(one_day, days))  # an error cancels the days not yet started
    finally:
        for worker in opened:
            worker.close()


@dataclass(frozen=True)
class IngestSummary:
    """Totals over several partitions, for metadata and the command line."""

    partitions: int
    rows_read: int
    rows_staged: int
    rows_quarantined: int
    bad_share: float
    quarantine_reasons: dict[str, int]
    partitions_kept: int = 0  # partitions without a landing file whose stored rows were left in place


def summarize(reports: list[IngestReport]) -> IngestSummary:
    """Add up several partitions' reports."""
    reasons: dict[str, int] = {}
    for report in reports:
        for reason, n in report.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    read = sum(r.read for r in reports)
    bad = sum(r.bad for r in reports)
    return IngestSummary(
        partitions=len(reports),
        rows_read=read,
        rows_staged=sum(r.staged for r in reports),
        rows_quarantined=sum(r.quarantined for r in reports),
        bad_share=round(bad / read, 6) if read else 0.0,
        quarantine_reasons=dict(sorted(reasons.items())),
        partitions_kept=sum(r.kept for r in reports),
    )


def enforce_bad_share(reports: list[IngestReport], max_bad_share: float) -> None:
    """Raise :class:`BadRowShareExceeded` naming the worst partition if any passes the limit."""
    worst = worst_over_limit(reports, max_bad_share)
    if worst is not None:
        top = worst.top_reasons()
        raise BadRowShareExceeded(
            f"raw_{worst.table} {worst.partition or ''}: {worst.bad} of {worst.read} rows "
            f"({worst.bad_share:.1%}) were rejected, above the limit of {max_bad_share:.1%}. "
            f"Most common reasons: {top}. The rejected rows are in quarantine_{worst.table}; "
            "fix the source or raise max_bad_share."
        )


def observed_ids(warehouse: Warehouse, engine: Engine) -> pa.Table:
    """Every (entity, external_id, first_seen) in the staged tables, for the id map."""
    sources = {
        "events": ("user_id", "item_id", "ts"),
        "impressions": ("user_id", "item_id", "ts"),
        "reviews": ("user_id", "item_id", "ts"),
        "slates": ("user_id", None, "ts"),
        "items": (None, "item_id", "available_from"),
        "users": ("user_id", None, None),
    }
    selects = []
    for table, (user_col, item_col, ts_col) in sources.items():
        files = warehouse.files(SPECS[table].contract)
        if not files:
            continue
        engine.register_parquet(f"ids_{table}", files)
        ts = ts_col or "CAST(NULL AS TIMESTAMP)"
        if user_col:
            selects.append(f"SELECT 'user' AS entity, {user_col} AS external_id, {ts} AS first_seen FROM ids_{table}")
        if item_col:
            selects.append(f"SELECT 'item' AS entity, {item_col} AS external_id, {ts} AS first_seen FROM ids_{table}")
    if not selects:
        from transforms.ingest.id_maps import OBSERVED_SCHEMA

        return OBSERVED_SCHEMA.empty_table()
    union = " UNION ALL ".join(selects)
    return engine.query(
        f"SELECT entity, external_id, MIN(first_seen) AS first_seen FROM ({union}) u "
        "WHERE external_id IS NOT NULL GROUP BY entity, external_id"
    )
