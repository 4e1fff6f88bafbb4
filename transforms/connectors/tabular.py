"""Your own logs: CSV, TSV, JSONL or Parquet, with a small YAML mapping onto one raw table.

A mapping names the raw table, which source column fills which raw field, how timestamps are
written, constants for fields the source lacks, and value maps for codes::

    table: events                     # slates, impressions, events, reviews, items, users
    columns:                          # raw field: your column
      user_id: uid
      item_id: sku
      ts: when
      event_type: action
      value: dwell_ms
    timestamps: {format: "%d/%m/%Y %H:%M:%S"}   # or {unit: ms} for epoch numbers; ISO-8601 by default
    constants: {surface: home}
    value_maps: {event_type: {pv: view, buy: purchase}}
    list_separator: "|"               # list fields (item_ids, categories) in CSV/TSV cells
    attributes: [color, size]         # columns gathered into the JSON ``attributes`` (items, users)

Ids the table's key needs but the source lacks (``event_id``, ``review_id``, a slate's
``request_id``) are made from a hash of the mapped row unless ``generate_ids: false``.

The mapping is checked before any row is read (:class:`TabularMapping`, with messages that name the
offending key), the header is checked against it, and every quarantined row can be explained in
terms of *your* column and what was expected (:meth:`TabularConnector.explain`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from transforms.connectors.base import (
    CONNECTOR_SPECS,
    Connector,
    ConnectorError,
    Record,
    dumps,
    iso_from_epoch,
    iso_ts,
    iter_lines,
    stable_id,
)
from transforms.ingest.staging import FieldKind

GENERATED_KEYS = {"events": "event_id", "reviews": "review_id", "slates": "request_id"}


class FileFormat(StrEnum):
    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"
    PARQUET = "parquet"


class EpochUnit(StrEnum):
    S = "s"
    MS = "ms"
    US = "us"
    NS = "ns"


class TimestampRule(BaseModel):
    """How timestamp fields are written in the source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str | None = Field(default=None, description="strptime format, e.g. '%d/%m/%Y %H:%M'")
    unit: EpochUnit | None = Field(default=None, description="epoch numbers in s, ms, us or ns")
    timezone: str = Field(default="UTC", description="zone of times written without an offset")

    @model_validator(mode="after")
    def _one_way(self) -> TimestampRule:
        if self.format and self.unit:
            raise ValueError("give either 'format' (text timestamps) or 'unit' (epoch numbers), not both")
        if self.format and "%" not in self.format:
            raise ValueError(f"format {self.format!r} has no strptime directive (e.g. '%Y-%m-%d %H:%M:%S')")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r} (use an IANA name such as 'Europe/Paris')") from exc
        return self

    def expectation(self) -> str:
        if self.unit:
            return f"a number of {self.unit.value} since 1970-01-01 UTC"
        if self.format:
            return f"a time in the format {self.format!r}"
        return "an ISO-8601 time such as 2026-01-03T14:05:09.123Z"


class TabularMapping(BaseModel):
    """A mapping from your columns to one raw table's fields (validated before anything is read)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str
    format: FileFormat | None = None
    delimiter: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    timestamps: TimestampRule = Field(default_factory=TimestampRule)
    constants: dict[str, Any] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    list_separator: str = "|"
    attributes: list[str] | None = None
    generate_ids: bool = True

    @field_validator("table")
    @classmethod
    def _known_table(cls, value: str) -> str:
        if value not in CONNECTOR_SPECS:
            raise ValueError(f"{value!r} is not a raw table; choose one of {sorted(CONNECTOR_SPECS)}")
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"delimiter must be one character, got {value!r}")
        return value

    @model_validator(mode="after")
    def _fits_table(self) -> TabularMapping:
        spec = CONNECTOR_SPECS[self.table]
        fields = dict(spec.fields)
        problems = []
        for section, names in (("columns", self.columns), ("constants", self.constants), ("value_maps", self.value_maps)):
            for name in names:
                if name not in fields:
                    problems.append(f"{section}.{name}: {name!r} is not a field of {self.table} (fields: {', '.join(fields)})")
        for name in set(self.columns) & set(self.constants):
            problems.append(f"constants.{name}: {name!r} is also mapped to column {self.columns[name]!r}; give one or the other")
        for name in self.value_maps:
            if name not in self.columns:
                problems.append(f"value_maps.{name}: {name!r} is not mapped from a column, so there is nothing to translate")
        if self.attributes is not None and "attributes" not in fields:
            problems.append(f"attributes: {self.table} has no attributes field")
        generated = GENERATED_KEYS.get(self.table) if self.generate_ids else None
        for name in spec.required:
            if name not in self.columns and name not in self.constants and name != generated:
                problems.append(f"columns.{name}: {self.table} requires {name!r}; map it to a column or give a constant")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def field_kinds(self) -> dict[str, FieldKind]:
        return dict(CONNECTOR_SPECS[self.table].fields)


class TabularMappingError(ConnectorError):
    """The YAML mapping is invalid, or does not fit the file it is applied to."""


def load_mapping(path: Path) -> TabularMapping:
    """Read and validate a YAML mapping, raising :class:`TabularMappingError` with every problem named."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise TabularMappingError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TabularMappingError(f"{path}: expected a mapping with at least 'table' and 'columns', got {type(raw).__name__}")
    return mapping_from_dict(raw, str(path))


def mapping_from_dict(raw: dict[str, Any], where: str = "mapping") -> TabularMapping:
    try:
        return TabularMapping.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error["loc"]) or "(top level)"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"  {loc}: {message}")
        raise TabularMappingError(f"{where} is not a valid tabular mapping:\n" + "\n".join(lines)) from exc


class TabularConnector(Connector):
    format = "tabular"
    tables = tuple(CONNECTOR_SPECS)
    DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".csv.gz", ".tsv.gz", ".jsonl.gz")
    # Read only when the mapping's `format:` says what they hold (the suffix does not).
    DECLARED_SUFFIXES = (".txt", ".dat", ".txt.gz", ".dat.gz")

    def __init__(self, path: Path, name: str | None = None, mapping: TabularMapping | Path | None = None) -> None:
        super().__init__(path, name)
        if mapping is None:
            folder = self.path if self.path.is_dir() else self.path.parent
            default = folder / "mapping.yaml"
            if not default.exists():
                raise TabularMappingError(f"tabular: no mapping given and no {default}; pass --mapping FILE.yaml")
            mapping = default
        self.mapping = mapping if isinstance(mapping, TabularMapping) else load_mapping(Path(mapping))
        self._headers: dict[str, list[str]] = {}

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        suffixes = self.DATA_SUFFIXES + (self.DECLARED_SUFFIXES if self.mapping.format else ())
        return sorted(p for p in self.path.iterdir() if p.is_file() and p.name.endswith(suffixes))

    def records(self) -> Iterator[Record]:
        files = self.files()
        if not files:
            raise ConnectorError(
                f"tabular: no data files ({', '.join(self.DATA_SUFFIXES)}; {', '.join(self.DECLARED_SUFFIXES)} with"
                f" `format:` in the mapping) in {self.path}"
            )
        for path in files:
            fmt = self._format(path)
            if fmt is FileFormat.PARQUET:
                yield from self._parquet(path)
            elif fmt is FileFormat.JSONL:
                yield from self._jsonl(path)
            else:
                yield from self._delimited(path, fmt)

    # --- readers -----------------------------------------------------------------------------------

    def _format(self, path: Path) -> FileFormat:
        if self.mapping.format:
            return self.mapping.format
        name = path.name.removesuffix(".gz")
        for fmt in FileFormat:
            if name.endswith(f".{fmt.value}"):
                return fmt
        if name.endswith(".json"):
            return FileFormat.JSONL
        raise TabularMappingError(f"tabular: cannot tell the format of {path.name}; set 'format' in the mapping")

    def _check_columns(self, path: Path, header: list[str]) -> None:
        wanted = dict(self.mapping.columns)
        for column in self.mapping.attributes or []:
            wanted[f"attributes[{column}]"] = column
        missing = [f"{col!r} (for {field})" for field, col in wanted.items() if col not in header]
        if missing:
            raise TabularMappingError(
                f"tabular: {path.name} has no column {', '.join(missing)}; its columns are: {', '.join(header)}"
            )

    def _delimited(self, path: Path, fmt: FileFormat) -> Iterator[Record]:
        delimiter = self.mapping.delimiter or ("\t" if fmt is FileFormat.TSV else ",")
        src = self.source_name(path)
        lines = iter_lines(path)
        first = next(lines, None)
        if first is None:
            return
        header = next(csv.reader([first[1]], delimiter=delimiter))
        self._check_columns(path, header)
        self._headers[src] = header
        for no, text in lines:
            try:
                fields = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
            except csv.Error:
                fields = []
            if len(fields) != len(header):
                yield Record(self.mapping.table, src, no, text)
                continue
            row = {col: value for col, value in zip(header, fields, strict=True) if value != ""}
            yield Record(self.mapping.table, src, no, dumps(self.map_row(row, text_cells=True)))

    def _jsonl(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        for no, text in iter_lines(path):
            try:
                row = json.loads(text)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                yield Record(self.mapping.table, src, no, text)
                continue
            yield Record(self.mapping.table, src, no, dumps(self.map_row(row, text_cells=False)))

    def _parquet(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        handle = pq.ParquetFile(path)
        self._check_columns(path, handle.schema_arrow.names)
        no = 0
        for batch in handle.iter_batches(batch_size=64 * 1024):
            for row in batch.to_pylist():
                no += 1
                yield Record(self.mapping.table, src, no, dumps(self.map_row(row, text_cells=False)))

    # --- mapping one row ---------------------------------------------------------------------------

    def map_row(self, row: dict[str, Any], text_cells: bool) -> dict[str, Any]:
        """One source row (column → value) as a raw-table JSON object."""
        m = self.mapping
        kinds = m.field_kinds()
        out: dict[str, Any] = {}
        for field, column in m.columns.items():
            value = row.get(column)
            if value is None:
                continue
            if field in m.value_maps:
                value = m.value_maps[field].get(str(value), value)
            out[field] = self._convert(value, kinds[field], text_cells)
        for field, value in m.constants.items():
            out[field] = value
        if m.attributes is not None:
            out["attributes"] = {c: _jsonable(row[c]) for c in m.attributes if row.get(c) is not None}
        generated = GENERATED_KEYS.get(m.table)
        if m.generate_ids and generated and generated not in out:
            out = {generated: f"{self.name}:{stable_id(dumps(out))}", **out}
        return out

    def _convert(self, value: Any, kind: FieldKind, text_cells: bool) -> Any:
        if kind is FieldKind.TS:
            return self._timestamp(value)
        if kind in (FieldKind.TEXT_LIST, FieldKind.DOUBLE_LIST):
            items = value.split(self.mapping.list_separator) if isinstance(value, str) else value
            if kind is FieldKind.DOUBLE_LIST and isinstance(items, list):
                return [_number(v) for v in items]
            return items
        if kind is FieldKind.JSON and isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        return value

    def _timestamp(self, value: Any) -> str:
        rule = self.mapping.timestamps
        if isinstance(value, dt.datetime):
            return iso_ts(value if value.tzinfo else value.replace(tzinfo=ZoneInfo(rule.timezone)))
        parsed: str | None = None
        if rule.unit:
            parsed = iso_from_epoch(value, rule.unit.value)
        else:
            try:
                moment = (
                    dt.datetime.strptime(str(value), rule.format) if rule.format else dt.datetime.fromisoformat(str(value))
                )
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=ZoneInfo(rule.timezone))
                parsed = iso_ts(moment)
            except ValueError:
                parsed = None
        # A value that does not fit the rule is kept, with what was expected, in a form no engine parses:
        # staging quarantines it as bad_value and the quarantined line says why.
        return parsed if parsed is not None else f"{value} (expected {rule.expectation()})"

    # --- explaining quarantined rows ---------------------------------------------------------------

    def explain(self, table: str, reason: str, line: str) -> str | None:
        m = self.mapping
        kind, _, field = reason.partition(":")
        if kind == "unknown_event_type":
            field = "event_type"
        column = m.columns.get(field)
        where = f"column {column!r} (mapped to {field})" if column else f"field {field!r}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        value = row.get(field) if isinstance(row, dict) else None
        if kind == "invalid_json":
            if self.mapping.format in (FileFormat.JSONL,) or row is not None:
                return "expected one JSON object per line"
            widths = {len(h) for h in self._headers.values()}
            return f"expected {' or '.join(str(w) for w in sorted(widths))} fields as in the header, got a row that does not split into them"
        if kind == "missing":
            if column:
                return f"{where} is empty or absent, but {field} is required"
            return f"{field} is required: map it to a column or give a constant"
        if kind == "bad_value":
            is_ts = m.field_kinds().get(field) is FieldKind.TS
            expected = m.timestamps.expectation() if is_ts else _expected(m.field_kinds().get(field))
            if is_ts and isinstance(value, str):
                value = value.removesuffix(f" (expected {expected})")
            return f"{where}: expected {expected}, got {value!r}"
        if kind == "out_of_range":
            return f"{where}: value {value!r} is out of range"
        if kind == "unknown_event_type":
            hint = " (add a value_maps.event_type entry)" if "event_type" in m.columns else ""
            return f"{where}: {value!r} is not a known event type{hint}"
        return None


def _expected(kind: FieldKind | None) -> str:
    return {
        FieldKind.ID: "a non-blank string or a whole number",
        FieldKind.DOUBLE: "a finite number",
        FieldKind.INT: "a whole number within the 64-bit range",
        FieldKind.TEXT_LIST: "a list",
        FieldKind.DOUBLE_LIST: "a list of numbers",
    }.get(kind, "a value of the field's type") if kind else "a value"


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
