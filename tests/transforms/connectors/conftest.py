"""Helpers for connector tests: the fixtures folder and a connector's records grouped per table."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.connector_files import connector_root
from transforms.connectors import Connector, Record


@pytest.fixture()
def fixtures() -> Path:
    return connector_root()


def by_table(connector: Connector) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = defaultdict(list)
    for record in connector.records():
        out[record.table].append(record)
    return dict(out)


def parsed(record: Record) -> dict[str, object] | None:
    """The record's JSON object, or None for a line passed through unparsed."""
    try:
        value = json.loads(record.line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def objects(records: list[Record]) -> list[dict[str, object]]:
    return [o for o in (parsed(r) for r in records) if o is not None]


def passed_through(records: list[Record]) -> list[tuple[str, int, str]]:
    """(file name, line, text) of the lines a connector could not parse and passed on unchanged."""
    return [(r.source_file.rsplit("/", 1)[-1], r.line_no, r.line) for r in records if parsed(r) is None]
