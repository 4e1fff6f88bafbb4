"""Staging raw logs: parse, type, validate and deduplicate, with a quarantine for every rejected row.

One SQL definition per raw table, rendered for DuckDB or Spark through :class:`transforms.engine.Dialect`.
The input relation is either *lines* (``source_file, line_no, line`` holding one JSON object per line:
JSONL logs, and CSV rows converted to JSON objects) or *columns* (a Parquet file's typed columns plus
``source_file, line_no``). The query yields every input row once, with ``reason`` NULL for rows that
are staged and the first failing rule otherwise; :func:`stage` splits the two, so that
``staged + quarantined = input rows`` holds by construction.

Ids (``FieldKind.ID``) are text: a JSON integer becomes its decimal text (``42`` and ``"42"`` are one id), and
every id is normalised to Unicode NFC, so that one name typed two ways is one id.

Rules, in the order they are checked (the first failure is the reason):

=====================  =====================================================================
``invalid_json``        the line is not a JSON object
``missing:<field>``     a required field is absent or null
``invalid_encoding``    the line's bytes are not UTF-8 (marked by recforge's readers; found by Spark where it reads)
``bad_value:<field>``   a field is present but cannot be cast to its type: a number that is NaN, infinite or
                        out of the 64-bit range; a fraction in an integer field; an id that is blank, an
                        object, a list, a boolean or a fraction
``impossible_ts``       the timestamp lies outside the log day widened by ``late_tolerance``
``unknown_event_type``  an event type outside :class:`warehouse.contracts.EventType`
``missing:item_id``     an item-level event (anything but ``search``) without an item
``out_of_range:<f>``    negative price, position or votes; rating outside the scale; propensity outside (0, 1]
``duplicate``           an exact copy of an earlier line (kept: the first, by file and line)
``duplicate_key``       another row has the same key with different content
=====================  =====================================================================
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from transforms.engine import Dialect, Engine
from transforms.engine.sources import LINES_SCHEMA, UNDECODABLE_MARK, SourceFile, SourceFormat
from transforms.ingest.specs import (
    ITEMLESS_EVENT_TYPES,
    SPECS,
    FieldKind,
    SourceKind,
    StagingRules,
    TableSpec,
)
from warehouse import contracts
from warehouse.contracts import TableContract
from warehouse.store import with_optional_columns


@dataclass(frozen=True)
class StageResult:
    """Staged rows (typed to the contract) and quarantined rows (with reasons)."""

    staged: pa.Table
    quarantined: pa.Table

    @property
    def input_rows(self) -> int:
        return self.staged.num_rows + self.quarantined.num_rows



def reason_counts(quarantined: pa.Table) -> dict[str, int]:
    """Quarantined rows per reason, sorted by reason."""
    if quarantined.num_rows == 0:
        return {}
    counts = pc.value_counts(quarantined["reason"]).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


# --- the one SQL definition ---------------------------------------------------------------------------


def _extract(d: Dialect, name: str, kind: FieldKind, source: SourceKind, integer: str = "BIGINT",
             fields: bool = False) -> tuple[str, str]:
    """(typed expression, raw-presence expression) for one field.

    ``integer`` is the SQL type of an INT field; ``fields``: the line was parsed once into the struct
    ``fields`` (:meth:`Dialect.json_object_fields`), so the field is read from there.
    """
    if source is SourceKind.COLUMNS:
        raw = f"{name}"
        typed = {
            FieldKind.ID: f"CASE WHEN {d.has_text(f'CAST({name} AS STRING)')} THEN CAST({name} AS STRING) END",
            FieldKind.TEXT: f"CAST({name} AS STRING)",
            FieldKind.DOUBLE: _finite(f"TRY_CAST({name} AS DOUBLE)"),
            FieldKind.INT: f"TRY_CAST({name} AS {integer})",
            FieldKind.TS: f"{name}",
            FieldKind.TEXT_LIST: f"{name}",
            FieldKind.DOUBLE_LIST: f"{name}",
            FieldKind.JSON: f"CAST({name} AS STRING)",
        }[kind]
        return typed, raw
    col, key = (f'fields."{name}"', None) if fields else ("line", name)
    text = col if fields and kind in TEXT_FIELDS else d.json_str(col, key)
    if kind is FieldKind.ID:
        return d.json_id(col, key), d.json_raw(col, key)
    if kind is FieldKind.TEXT:
        return text, text
    if kind is FieldKind.DOUBLE:
        return _finite(f"TRY_CAST({text} AS DOUBLE)"), text
    if kind is FieldKind.INT:
        # Accept 3 and 3.0, reject 3.5: an integer field holding a fraction is a bad value (ROUND, not FLOOR:
        # Spark's FLOOR returns a BIGINT and overflows on 1e30 under ANSI mode). Integers are read
        # exactly when written as integers; TRY_CAST turns NaN and values past the column's range into NULL.
        as_double = f"TRY_CAST({text} AS DOUBLE)"
        return (f"CASE WHEN {as_double} = ROUND({as_double}, 0)"
                f" THEN COALESCE(TRY_CAST({text} AS {integer}), TRY_CAST({as_double} AS {integer})) END"), text
    if kind is FieldKind.TS:
        return d.try_timestamp(text), text
    raw = d.json_raw(col, key)
    if kind is FieldKind.TEXT_LIST:
        return d.json_str_list(col, key), raw
    if kind is FieldKind.DOUBLE_LIST:
        return d.double_list(d.json_str_list(col, key)), raw
    return raw, raw


TEXT_FIELDS = frozenset({FieldKind.TEXT, FieldKind.DOUBLE, FieldKind.INT, FieldKind.TS})
"""Kinds read from the text of a scalar: parsed once into the line's struct as text where the engine can."""


def _finite(expr: str) -> str:
    """``expr`` when it is a finite number, else NULL (x - x is 0 only for finite x, in both engines)."""
    return f"CASE WHEN {expr} - {expr} = 0 THEN {expr} END"


def staging_sql(
    d: Dialect,
    spec: TableSpec,
    source: SourceKind,
    relation: str,
    window: tuple[dt.datetime, dt.datetime] | None,
    rules: StagingRules,
    keep_lines: bool = False,
) -> str:
    """The staging query for one raw table: every input row once, with ``reason`` NULL when staged.

    ``line`` is the input line of a quarantined row, and NULL for a staged one unless ``keep_lines``
    (a caller that deduplicates across calls compares the staged rows' lines).
    """
    typed_cols = []
    raw_cols = []
    struct = (
        d.json_object_fields(
            "line", [n for n, k in spec.fields if k not in TEXT_FIELDS], [n for n, k in spec.fields if k in TEXT_FIELDS]
        )
        if source is SourceKind.LINES
        else None
    )
    for name, kind in spec.fields:
        integer = "INT" if spec.contract.schema.field(name).type == pa.int32() else "BIGINT"
        typed, raw = _extract(d, name, kind, source, integer, fields=struct is not None)
        typed_cols.append(f"{typed} AS {name}")
        raw_cols.append(f"{raw} AS raw_{name}")
    valid = d.json_valid_object("line") if source is SourceKind.LINES else "TRUE"

    checks: list[tuple[str, str]] = [("'invalid_encoding'", "bad_encoding"), ("'invalid_json'", "NOT ok_json")]
    checks += [(f"'missing:{f}'", f"raw_{f} IS NULL") for f in spec.required]
    checks += [(f"'bad_value:{f}'", f"raw_{f} IS NOT NULL AND {f} IS NULL") for f, _ in spec.fields]
    if spec.ts_field and window is not None:
        lo = (window[0] - rules.late_tolerance).strftime("%Y-%m-%d %H:%M:%S")
        hi = (window[1] + rules.late_tolerance).strftime("%Y-%m-%d %H:%M:%S")
        checks.append(
            ("'impossible_ts'", f"({spec.ts_field} < TIMESTAMP '{lo}' OR {spec.ts_field} >= TIMESTAMP '{hi}')")
        )
    checks += _range_rules(d, spec, rules)
    case = " ".join(f"WHEN {cond} THEN {reason}" for reason, cond in checks)
    key = ", ".join(spec.contract.key)
    dedup_on = "line" if source is SourceKind.LINES else ", ".join(name for name, _ in spec.fields)
    # Fields are extracted from `line` only where it is a JSON object (NULL elsewhere): DuckDB's JSON
    # functions raise on malformed text instead of returning NULL.
    # A line whose bytes are not UTF-8 is invalid_encoding: marked by recforge's own reader
    # (UNDECODABLE_MARK first), or found by the engine where it reads files itself (Dialect.undecodable).
    # Such a line is not parsed; the quarantine keeps its text as the dialect can show it.
    bad = d.undecodable("line", UNDECODABLE_MARK)
    guarded = (
        f"SELECT *, {valid} AS ok_json, false AS bad_encoding FROM {relation}"
        if source is SourceKind.COLUMNS
        else "SELECT source_file, line_no, original_line, ok_json, bad_encoding,"
        " CASE WHEN ok_json AND NOT bad_encoding THEN raw_line END AS line"
        f" FROM (SELECT source_file, line_no, line AS raw_line, {d.shown_line('line', UNDECODABLE_MARK)}"
        f" AS original_line, {valid} AS ok_json, {bad} AS bad_encoding FROM {relation}) lines"
    )
    parse_once = f"(SELECT *, {struct} AS fields FROM guarded) guarded" if struct else "guarded"
    line_expr = "CAST(NULL AS STRING)" if source is SourceKind.COLUMNS else "original_line"
    # Only a quarantined row keeps its line (a staged row's is dropped: copying every line out costs a
    # sixth of the query). A row with a non-ASCII id may yet become a duplicate_key after NFC
    # (_normalise_ids), so it keeps its line too.
    ids = [name for name, kind in spec.fields if kind is FieldKind.ID]
    kept_line = "TRUE" if keep_lines else " OR ".join(
        ["rule_reason IS NOT NULL", "copy_rank > 1", "key_rank > 1"] + [f"NOT {d.is_ascii(i)}" for i in ids]
    )
    return f"""
WITH guarded AS (
    {guarded}
), parsed AS (
    SELECT source_file, line_no, {line_expr} AS line, ok_json, bad_encoding,
           {", ".join(typed_cols)},
           {", ".join(raw_cols)}
    FROM {parse_once}
), checked AS {d.materialized() or ""} (
    SELECT *, CASE {case} END AS rule_reason{", row_number() OVER () AS row_id" if d.materialized() else ""} FROM parsed
){_ranked(d, dedup_on, key)}
SELECT source_file, line_no, CASE WHEN {kept_line} THEN line END AS line,
       CASE WHEN rule_reason IS NOT NULL THEN rule_reason
            WHEN copy_rank > 1 THEN 'duplicate'
            WHEN key_rank > 1 THEN 'duplicate_key'
       END AS reason,
       {", ".join(name for name, _ in spec.fields)}
FROM ranked
ORDER BY source_file, line_no
"""


def _ranked(d: Dialect, dedup_on: str, key: str) -> str:
    """The CTE ``ranked``: the rows of ``checked`` with ``copy_rank`` (the copies of one line, or row, in
    input order) and ``key_rank`` (the staged rows of one key, in input order), NULL for a row that is
    neither a copy nor a repeated key.

    Where the engine runs a CTE once for several references (``checked`` is then materialized), only
    the rows whose line or key hash is shared are ranked: duplicates are rare, so the windows sort a
    handful of rows instead of all of them. Elsewhere every row is ranked in one pass.
    """
    windows = f"""row_number() OVER (PARTITION BY {dedup_on} ORDER BY source_file, line_no) AS copy_rank,
        row_number() OVER (PARTITION BY rule_reason IS NULL, {key} ORDER BY source_file, line_no) AS key_rank"""
    if d.materialized() is None:
        return f""", ranked AS (
    SELECT *, {windows} FROM checked
)"""
    # row_id (numbered once, in the materialized ``checked``) identifies a row: one source line can give
    # several records (a connector's matrix row), so (source_file, line_no) does not.
    return f""", hashed AS (
    SELECT row_id, {d.hash64(dedup_on)} AS copy_hash, CASE WHEN rule_reason IS NULL THEN {d.hash64(key)} END AS key_hash
    FROM checked
), suspects AS (
    SELECT row_id FROM hashed
    WHERE copy_hash IN (SELECT copy_hash FROM hashed GROUP BY copy_hash HAVING COUNT(*) > 1)
       OR key_hash IN (SELECT key_hash FROM hashed WHERE key_hash IS NOT NULL GROUP BY key_hash HAVING COUNT(*) > 1)
), suspect_ranks AS (
    SELECT row_id, {windows}
    FROM checked WHERE row_id IN (SELECT row_id FROM suspects)
), ranked AS (
    SELECT c.*, r.copy_rank, r.key_rank FROM checked c LEFT JOIN suspect_ranks r ON r.row_id = c.row_id
)"""


def _range_rules(d: Dialect, spec: TableSpec, rules: StagingRules) -> list[tuple[str, str]]:
    out = [(f"'out_of_range:{f}'", f"{f} < 0") for f in spec.non_negative]
    if "event_type" in spec.extra_rules:
        allowed = ", ".join(f"'{t}'" for t in rules.event_types)
        out.append(("'unknown_event_type'", f"event_type NOT IN ({allowed})"))
        # Only a search may have no item; a click or purchase of nothing is a broken row.
        itemless = ", ".join(f"'{t}'" for t in ITEMLESS_EVENT_TYPES)
        out.append(("'missing:item_id'", f"(item_id IS NULL AND event_type NOT IN ({itemless}))"))
    if "rating" in spec.extra_rules:
        out.append(("'out_of_range:rating'", f"(rating < {rules.rating_min} OR rating > {rules.rating_max})"))
    if "propensity" in spec.extra_rules:
        out.append(("'out_of_range:propensity'", "(propensity <= 0 OR propensity > 1)"))
    if "propensities" in spec.extra_rules:
        out.append(("'empty_slate'", f"{d.list_len('item_ids')} = 0"))
        out.append(
            (
                "'out_of_range:propensities'",
                f"propensities IS NOT NULL AND ({d.list_len('propensities')} <> {d.list_len('item_ids')}"
                f" OR {d.list_min('propensities')} <= 0 OR {d.list_max('propensities')} > 1)",
            )
        )
    return out


def stage(
    engine: Engine,
    table_name: str,
    source: pa.Table | SourceFile,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    rules: StagingRules | None = None,
) -> StageResult:
    """Stage one raw table from a source relation on ``engine``.

    Args:
        engine: DuckDB or Spark.
        table_name: A key of :data:`SPECS` (``events``, ``slates``, ...).
        source: An Arrow relation (lines ``source_file, line_no, line``, or rows as read by
            :func:`read_parquet_rows`), or a :class:`SourceFile` that the engine reads itself.
        window: The log day ``[start, end)``; timestamps outside it (widened by the late tolerance) are
            impossible. None for catalog tables.
        rules: Validation settings.

    Returns:
        Staged rows cast to the raw contract and quarantined rows with their reasons.
    """
    spec = SPECS[table_name]
    rules = rules or StagingRules()
    relation = f"src_{table_name}"
    if isinstance(source, SourceFile):
        kind = SourceKind.LINES if source.format is SourceFormat.JSON_LINES else SourceKind.COLUMNS
        if kind is SourceKind.LINES:
            engine.register_text_lines(relation, source.path, source.name)
        else:
            engine.register_parquet_rows(relation, source.path, source.name)
    else:
        kind = SourceKind.LINES if source.column_names == LINES_SCHEMA.names else SourceKind.COLUMNS
        engine.register_arrow(relation, source)
    result = _normalise_ids(engine.query(staging_sql(engine.dialect, spec, kind, relation, window, rules)), spec)
    good = pc.is_null(result["reason"])
    staged = result.filter(good).drop_columns(["line", "reason"])  # source_file, line_no: the rows' provenance
    quarantined = result.filter(pc.invert(good))
    if kind is SourceKind.COLUMNS and quarantined.num_rows:
        quarantined = _render_rows_as_lines(quarantined, spec)
    q_contract = contracts.quarantine_contract(spec.contract)
    return StageResult(
        staged=conform_staged(staged, spec.contract),
        quarantined=quarantined.select(q_contract.schema.names).cast(q_contract.schema),
    )


def _normalise_ids(result: pa.Table, spec: TableSpec) -> pa.Table:
    """Ids in Unicode NFC; rows whose key only now equals an earlier staged row's become ``duplicate_key``.

    Applied to the engine's output (one code path for both engines; pyarrow's utf8_normalize leaves text
    as it is in this build, so Python's unicodedata does it). Most ids are ASCII: a column of ASCII ids is
    left as it is without a Python pass.
    """
    changed = False
    for name, kind in spec.fields:
        if kind is not FieldKind.ID:
            continue
        column = result[name]
        if pc.all(pc.fill_null(pc.string_is_ascii(column), True)).as_py():
            continue  # ASCII is its own NFC
        values = column.to_pylist()
        normal = [v if v is None or v.isascii() else unicodedata.normalize("NFC", v) for v in values]
        if normal != values:
            result = result.set_column(result.column_names.index(name), name, pa.array(normal, pa.string()))
            changed = True
    if not changed:
        return result
    reasons = result["reason"].to_pylist()
    keys = result.select(list(spec.contract.key)).to_pylist()
    seen: set[tuple[object, ...]] = set()
    for i, (reason, key) in enumerate(zip(reasons, keys, strict=True)):
        if reason is None:
            value = tuple(key.values())
            if value in seen:
                reasons[i] = "duplicate_key"
            seen.add(value)
    return result.set_column(result.column_names.index("reason"), "reason", pa.array(reasons, pa.string()))


def conform_staged(table: pa.Table, contract: TableContract) -> pa.Table:
    """Cast engine output to the contract; naive timestamps (Spark, DuckDB) are UTC."""
    table = with_optional_columns(table, contract)
    columns = []
    for f in contract.schema:
        col = table[f.name]
        if pa.types.is_timestamp(f.type) and pa.types.is_timestamp(col.type) and col.type.tz is None:
            col = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
        columns.append(col.cast(f.type))
    return pa.Table.from_arrays(columns, schema=contract.schema)


def _render_rows_as_lines(rows: pa.Table, spec: TableSpec) -> pa.Table:
    # Rejected Parquet rows are kept as JSON text so quarantine reads the same for every source.
    names = [n for n, _ in spec.fields]
    rendered = [json.dumps(r, default=str, ensure_ascii=False) for r in rows.select(names).to_pylist()]
    return rows.set_column(rows.column_names.index("line"), "line", pa.array(rendered, pa.string()))


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[day 00:00, next day 00:00)`` as naive UTC datetimes."""
    start = dt.datetime.combine(day, dt.time())
    return start, start + dt.timedelta(days=1)


def iter_days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """Days in ``[start, end)``."""
    day = start
    while day < end:
        yield day
        day += dt.timedelta(days=1)




__all__ = [
    "ITEMLESS_EVENT_TYPES",
    "SPECS",
    "FieldKind",
    "SourceKind",
    "StageResult",
    "StagingRules",
    "TableSpec",
    "conform_staged",
    "day_window",
    "iter_days",
    "reason_counts",
    "stage",
    "staging_sql",
]
