"""Reading raw sources into the relations staging expects.

Lines: ``source_file, line_no, line`` (1-based line numbers, blank lines skipped but counted), from JSONL
(gzip allowed) or from CSV rows converted to JSON objects. Rows: a Parquet file's columns plus
``source_file`` and ``line_no`` (the 1-based row number).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LINES_SCHEMA = pa.schema(
    [pa.field("source_file", pa.string()), pa.field("line_no", pa.int64()), pa.field("line", pa.string())]
)
# Blocks of 4 MiB: each block's numpy temporaries (a mask, the bytes without newlines) are then small
# enough for the allocator to reuse from one block to the next. With 64 MiB blocks every block's arrays
# were fresh pages from the system, and faulting them in made reading a day of impressions twice as slow.
READ_BLOCK_BYTES = 4 << 20
# A line whose bytes are not UTF-8 is kept, its bad bytes written as \xNN, behind this mark (U+FFFF, a
# Unicode noncharacter that text does not contain): staging quarantines it as invalid_encoding.
UNDECODABLE_MARK = "\uffff"


class SourceFormat(StrEnum):
    JSON_LINES = "json_lines"
    PARQUET = "parquet"


@dataclass(frozen=True)
class SourceFile:
    """A file for the engine to read itself (so Spark reads it distributed, not through the driver)."""

    path: Path
    name: str
    format: SourceFormat



class CorruptSourceError(ValueError):
    """A source file cannot be read to its end (a truncated or damaged compressed file)."""


@contextlib.contextmanager
def naming_source(path: Path) -> Iterator[None]:
    """Re-raise a decompression error with the file's name (gzip's own errors do not say which file)."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise CorruptSourceError(
            f"{path}: the file is truncated or damaged ({type(exc).__name__}: {exc}); nothing from it was staged. "
            "Replace the file (or move it out of the landing zone) and run again."
        ) from exc


class CsvHeaderError(ValueError):
    """A CSV file's first line does not name the columns its table needs."""


def read_lines(path: Path, source_name: str | None = None) -> pa.Table:
    """Read a JSONL file (optionally gzipped) as ``source_file, line_no, line`` (1-based line numbers).

    Reads in large blocks and splits on newlines in C, so it stays fast on millions of lines. Blank
    lines are skipped (they are not rows) but still counted in the numbering.
    """
    name = source_name or str(path)
    opener = gzip.open if str(path).endswith(".gz") else open
    chunks: list[pa.Table] = []
    next_line_no = 1
    carry = b""
    with opener(path, "rb") as handle, naming_source(path):
        while block := handle.read(READ_BLOCK_BYTES):
            block = carry + block
            cut = block.rfind(b"\n")
            if cut < 0:
                carry = block
                continue
            carry = block[cut + 1 :]
            table, next_line_no = _lines_table(memoryview(block)[:cut], name, next_line_no)
            chunks.append(table)
    if carry:
        table, _ = _lines_table(carry, name, next_line_no)
        chunks.append(table)
    return pa.concat_tables(chunks) if chunks else LINES_SCHEMA.empty_table()


_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True


def _lines_table(block: bytes | memoryview, name: str, first_line_no: int) -> tuple[pa.Table, int]:
    # Numpy finds the newlines and drops them from the bytes, which then are the string data as they are
    # (no Python str per line, no per-line Arrow kernel); the cast to string checks the whole block's
    # UTF-8 at once. A line is blank when it is empty or starts with whitespace and holds nothing else.
    data = np.frombuffer(block, dtype=np.uint8)
    newline = data == 10
    ends = np.flatnonzero(newline)  # as bytes.split: n newlines, n + 1 lines
    count = len(ends) + 1
    offsets = np.empty(count + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1] = ends - np.arange(len(ends))  # line k starts k newlines later in the original
    offsets[-1] = len(data) - len(ends)
    text = data[~newline] if len(ends) else data
    raw = pa.Array.from_buffers(pa.binary(), count, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(text)])
    try:
        lines = raw.cast(pa.string())
    except pa.ArrowInvalid:  # rare: decode line by line and mark the lines that fail
        lines = pa.array([_decoded(line) for line in bytes(block).split(b"\n")], pa.string())
    lengths = np.diff(offsets)
    firsts = text[np.minimum(offsets[:-1], max(len(text) - 1, 0))] if len(text) else np.zeros(count, dtype=np.uint8)
    maybe_blank = np.flatnonzero((lengths == 0) | _WHITESPACE[firsts])
    keep = np.ones(count, dtype=bool)
    for k in maybe_blank:
        keep[k] = text[offsets[k] : offsets[k + 1]].tobytes().strip() != b""
    numbers = pa.array(np.arange(first_line_no, first_line_no + count, dtype=np.int64))
    table = pa.table({"source_file": _repeated(name, count), "line_no": numbers, "line": lines})
    return (table if len(maybe_blank) == 0 or keep.all() else table.filter(pa.array(keep))), first_line_no + count


def _repeated(text: str, count: int) -> pa.Array:
    """``count`` copies of ``text`` as a string array (one dictionary entry, decoded in Arrow: no Python object per row)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(count, dtype=np.int32)), pa.array([text], pa.string())).cast(pa.string())


def _decoded(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return UNDECODABLE_MARK + line.decode("utf-8", errors="backslashreplace")


def read_csv_as_lines(
    path: Path,
    list_columns: Sequence[str] = (),
    json_columns: Sequence[str] = (),
    attribute_key: str | None = None,
    source_name: str | None = None,
    delimiter: str = ",",
    required: Sequence[str] = (),
) -> pa.Table:
    """Read a CSV file as JSON-object lines so it is validated by the same SQL as JSONL.

    Args:
        path: The CSV file (header row first).
        list_columns: Columns holding ``|``-joined lists, turned into JSON lists.
        json_columns: Columns holding JSON text, embedded as parsed JSON where valid.
        attribute_key: When set, columns other than this key are gathered into an ``attributes`` object.
        source_name: Name recorded as ``source_file``.
        delimiter: Field separator.
        required: Columns the header must name; without them the file fails before anything is read
            (a file whose header line is missing would otherwise take its first row for the header).

    Raises:
        CsvHeaderError: The header lacks a required column.
    """
    name = source_name or str(path)
    numbers: list[int] = []
    lines: list[str] = []
    opener = gzip.open if str(path).endswith(".gz") else open
    # surrogateescape keeps undecodable bytes as lone surrogates, so a row holding one can be marked.
    with opener(path, "rt", newline="", encoding="utf-8", errors="surrogateescape") as handle, naming_source(path):
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return LINES_SCHEMA.empty_table()
        missing = [c for c in required if c not in header]
        if missing:
            raise CsvHeaderError(
                f"{name}: the header line {delimiter.join(header)!r} does not name {', '.join(missing)}; the first line of a "
                f"CSV file must name its columns (nothing was read from this file)"
            )
        for record in reader:
            line_no = reader.line_num
            if not record:
                continue
            if any(_undecodable(value) for value in record):
                lines.append(UNDECODABLE_MARK + delimiter.join(record).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
                numbers.append(line_no)
                continue
            if len(record) != len(header):
                # Keep the row so it is quarantined as invalid_json with its location.
                lines.append(delimiter.join(record))
                numbers.append(line_no)
                continue
            row: dict[str, object] = {}
            for column, value in zip(header, record, strict=True):
                if value == "":
                    continue
                if column in list_columns:
                    row[column] = value.split("|")
                elif column in json_columns:
                    row[column] = _json_or_text(value)
                else:
                    row[column] = value
            if attribute_key is not None:
                row = {attribute_key: row.get(attribute_key), "attributes": {k: v for k, v in row.items() if k != attribute_key}}
            lines.append(json.dumps(row, ensure_ascii=False))
            numbers.append(line_no)
    return pa.table(
        {"source_file": pa.array([name] * len(lines), pa.string()), "line_no": pa.array(numbers, pa.int64()), "line": pa.array(lines, pa.string())}
    )


def _undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text) if not text.isascii() else False


def _json_or_text(value: str) -> object:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def read_parquet_rows(path: Path, source_name: str | None = None) -> pa.Table:
    """Read a Parquet log with ``source_file`` and 1-based ``line_no`` (the row number) added."""
    table = pq.read_table(path)
    name = source_name or str(path)
    return table.append_column("source_file", pa.array([name] * table.num_rows, pa.string())).append_column(
        "line_no", pa.array(range(1, table.num_rows + 1), pa.int64())
    )


def lines_from_text(text: str, source_name: str = "<memory>") -> pa.Table:
    """Lines of an in-memory text, numbered like :func:`read_lines` (used by connectors and tests)."""
    table, _ = _lines_table(text.rstrip("\n").encode(), source_name, 1)
    return table
