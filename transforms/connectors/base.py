"""What every connector shares: the record it emits, the base class, and small parsing helpers.

A connector reads one public-dataset format (or your own logs) and turns every source record into a
JSON object line in a raw table's field names (``transforms.ingest.SPECS``), keeping the *original*
file and line number. The staging SQL of :mod:`transforms.ingest.staging` then types, validates and
deduplicates those lines exactly as it does for the landing zone, so one set of rules decides what
is staged and what is quarantined::

    source line ──connector──> Record(table, source_file, line_no, '{"user_id": ..., "ts": ...}')
    unparseable ──connector──> Record(table, source_file, line_no, <the original text>)  -> invalid_json

Nothing is dropped on the way: a line the connector cannot parse is passed through unchanged to the
file's primary table, where staging quarantines it as ``invalid_json`` with its location.
"""

from __future__ import annotations

import abc
import datetime as dt
import gzip
import hashlib
import html
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from transforms.engine.sources import UNDECODABLE_MARK, naming_source
from transforms.ingest.staging import SPECS, FieldKind, TableSpec
from warehouse import contracts

RANDOM_EXPOSURE_TABLE = "random_exposure_ratings"

RANDOM_EXPOSURE_SPEC = TableSpec(
    contracts.EVAL_RANDOM_RATINGS,
    (
        ("dataset", FieldKind.TEXT),
        ("user_id", FieldKind.ID),
        ("item_id", FieldKind.ID),
        ("rating", FieldKind.DOUBLE),
    ),
    required=("dataset", "user_id", "item_id", "rating"),
    ts_field=None,
    extra_rules=("rating",),
)

# Every table a connector may write: the raw tables plus the evaluation-only random-exposure ratings.
CONNECTOR_SPECS: dict[str, TableSpec] = {**SPECS, RANDOM_EXPOSURE_TABLE: RANDOM_EXPOSURE_SPEC}


class Record(NamedTuple):
    """One line for one table: a JSON object in the table's field names, or an unparseable original."""

    table: str
    source_file: str
    line_no: int
    line: str


class ConnectorError(ValueError):
    """The input does not look like the format at all (no such file, wrong layout, bad mapping)."""


class Connector(abc.ABC):
    """Reads one format from ``path`` and yields :class:`Record` s, streaming.

    Subclasses set ``format`` and implement :meth:`records`. ``name`` names the dataset: it prefixes
    ``source_file`` (``<name>/<file>``) and the synthetic ids a connector has to make up (event,
    review and request ids); user and item ids stay the dataset's own.
    """

    format: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ConnectorError(f"{self.format}: {self.path} does not exist")
        self.name = name or self.path.stem.removesuffix(".json")

    @abc.abstractmethod
    def records(self) -> Iterator[Record]:
        """Every record of the dataset, in file and line order."""

    def explain(self, table: str, reason: str, line: str) -> str | None:
        """A sentence that says what was expected, for a quarantined line (None: the reason says it)."""
        return None

    def source_name(self, path: Path) -> str:
        """``<name>/<path relative to the dataset root>``: what ``source_file`` records."""
        base = self.path if self.path.is_dir() else self.path.parent
        rel = path.relative_to(base) if path.is_relative_to(base) else Path(path.name)
        return f"{self.name}/{rel.as_posix()}"

    def find(self, *patterns: str) -> list[Path]:
        """Files directly in the dataset folder (or the file itself) matching any glob pattern."""
        if self.path.is_file():
            return [self.path] if any(self.path.match(p) for p in patterns) else []
        found = {p for pattern in patterns for p in self.path.glob(pattern) if p.is_file()}
        return sorted(found)


# --- helpers -------------------------------------------------------------------------------------------


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line_no, text)`` of a text file (gzip when it ends in ``.gz``), 1-based, newline stripped.

    Blank lines are not rows and are skipped, but they still count in the numbering (as in
    :func:`transforms.engine.sources.read_lines`). A line that is not valid in ``encoding`` does not stop the
    read: it comes marked (:data:`UNDECODABLE_MARK` first, its bad bytes as ``\\xNN``), so that connectors pass it
    through unparsed and staging quarantines it as ``invalid_encoding``.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, errors="surrogateescape", newline="") as handle, naming_source(path):
        for number, text in enumerate(handle, start=1):
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            if not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text):
                text = UNDECODABLE_MARK + text.encode(encoding, "surrogateescape").decode(encoding, "backslashreplace")
            yield number, text


def split_lines(path: Path, sep: str, width: int, encoding: str = "utf-8") -> Iterator[tuple[int, list[str] | None, str]]:
    """``(line_no, fields, text)`` of a delimited text file, as :func:`iter_lines` reads it.

    ``fields`` is ``text.split(sep)`` when the line has exactly ``width`` fields, else None (the caller
    passes such a line through unchanged, to be quarantined).
    """
    for number, text in iter_lines(path, encoding):
        fields = text.split(sep)
        whole = len(fields) == width and not text.startswith(UNDECODABLE_MARK)
        yield number, (fields if whole else None), text


def dumps(obj: Mapping[str, Any]) -> str:
    """Compact, key-order-preserving JSON: the same record always gives the same line."""
    return _COMPACT.encode(obj)


# One encoder for every record: json.dumps with non-default arguments builds a new one per call (a third of the
# time of a rating's two lines).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def iso_ts(moment: dt.datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z`` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso_from_epoch(value: float | int | str, unit: str = "s") -> str | None:
    """ISO text of an epoch number in ``unit`` (s, ms, us, ns); None when it is not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]
    try:
        return iso_ts(_EPOCH + dt.timedelta(seconds=number / scale))
    except (OverflowError, ValueError):
        return None


def stable_id(*parts: object) -> str:
    """A short, stable hexadecimal id of its parts (for ids a format does not have)."""
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def strip_html(text: str | None) -> str | None:
    """Plain text of an HTML fragment: tags removed, entities decoded, whitespace collapsed."""
    if text is None:
        return None
    plain = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", str(text)))).strip()
    return plain or None


def category_paths(paths: list[list[str]]) -> list[str]:
    """Category paths as the raw catalog spells them: every prefix, ``" > "``-joined, first seen first.

    ``[["Music", "Guitars"]]`` -> ``["Music", "Music > Guitars"]``.
    """
    out: list[str] = []
    for path in paths:
        parts = [str(p).strip() for p in path if str(p).strip()]
        for k in range(1, len(parts) + 1):
            joined = " > ".join(parts[:k])
            if joined not in out:
                out.append(joined)
    return out


def without_nulls(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Drop absent values (None, empty strings and lists): staging reads a missing key as NULL."""
    return {k: v for k, v in obj.items() if v is not None and v != "" and v != [] and v != {}}
