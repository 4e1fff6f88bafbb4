"""``scripts/warehouse_fingerprint.py``: equal rows give equal fingerprints, however the files are laid out."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest

from warehouse import store as store_module
from warehouse.contracts import RAW_EVENTS
from warehouse.store import Warehouse

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "warehouse_fingerprint.py"
DAY = dt.date(2026, 1, 1)


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("warehouse_fingerprint", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _events(n: int, last_item: str = "i9") -> pa.Table:
    rows = [{"event_id": f"e{i}", "user_id": f"u{i % 7}", "item_id": f"i{i % 5}" if i < n - 1 else last_item,
             "event_type": "click", "ts": dt.datetime(2026, 1, 1, 0, 0, i % 60, tzinfo=dt.UTC),
             "request_id": None, "value": None, "session_id": f"s{i % 3}"} for i in range(n)]
    return pa.Table.from_pylist(rows).cast(pa.schema([RAW_EVENTS.schema.field(c) for c in rows[0]]))


def _write(root: Path, table: pa.Table) -> None:
    Warehouse(root).write(RAW_EVENTS, table, DAY)


def test_the_same_rows_in_other_row_groups_fingerprint_the_same_and_a_changed_row_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fingerprint = _script()
    _write(tmp_path / "a", _events(300))
    monkeypatch.setattr(store_module, "ROW_GROUP_ROWS", 64)  # other files: several row groups
    _write(tmp_path / "b", _events(300))
    _write(tmp_path / "c", _events(300, last_item="i8"))
    a, b, c = (fingerprint.snapshot(tmp_path / name) for name in "abc")
    assert Warehouse(tmp_path / "a").manifest(RAW_EVENTS) != Warehouse(tmp_path / "b").manifest(RAW_EVENTS)  # the files differ
    assert fingerprint.compare(a, b) == []
    assert [line.split(" (")[0] for line in fingerprint.compare(a, c)] == ["differs: raw/events/2026-01-01"]
