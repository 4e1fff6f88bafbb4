"""Fault 14.1: two runs writing one data root at once must not lose either run's rows or ids."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc

from tests.faults.helpers import python
from warehouse.contracts import CORE_ID_MAPS, RAW_EVENTS
from warehouse.store import Warehouse

DAY = dt.date(2026, 1, 3)
USERS_PER_FILE = 200

# Each worker ingests its own file with the real connector. Its store waits (up to two seconds) before
# writing the day's events and again before writing the id map, until the other worker is there too: so
# without a lock both would have read the same old partition and id map, and the later write would win.
WORKER = """
import sys, time
from pathlib import Path
from pipelines.connect import ingest_dataset
from transforms.connectors import connector_for
from transforms.engine import DuckDBEngine, EngineConfig
from warehouse.contracts import CORE_ID_MAPS, RAW_EVENTS
from warehouse.store import Warehouse

root, csv, mapping, barrier, me = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]


class Meeting(Warehouse):
    def write(self, contract, table, partition=None):
        if contract in (RAW_EVENTS, CORE_ID_MAPS):
            here = barrier / contract.view_name
            here.mkdir(exist_ok=True)
            (here / me).touch()
            deadline = time.monotonic() + 2
            while len(list(here.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        return super().write(contract, table, partition)


with DuckDBEngine(EngineConfig(memory_limit="512MB", spill_dir=str(root / ".spill"))) as engine:
    report = ingest_dataset(connector_for("tabular", csv, "shop", mapping), Meeting(root), engine, work_dir=root)
print(report.tables["events"].staged)
"""

MAPPING = """\
table: events
columns: {user_id: uid, item_id: sku, ts: when, event_type: action}
timestamps: {format: "%Y-%m-%d %H:%M:%S"}
"""


def _csv(path: Path, prefix: str) -> Path:
    # Same day, disjoint users and items: every row of both files must end up staged.
    lines = ["uid,sku,when,action"]
    lines += [f"{prefix}_u{i},{prefix}_i{i},2026-01-03 10:{i // 60:02d}:{i % 60:02d},click" for i in range(USERS_PER_FILE)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_two_concurrent_ingests_into_one_root_keep_every_row_and_id(tmp_path: Path) -> None:
    root = tmp_path / "root"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    files = {name: _csv(tmp_path / f"{name}.csv", name) for name in ("a", "b")}
    workers = [python(WORKER, str(root), str(csv), str(mapping), str(barrier), name) for name, csv in files.items()]
    outputs = [w.communicate(timeout=240) for w in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert out.split()[-1] == str(USERS_PER_FILE)

    store = Warehouse(root)
    events = store.read(RAW_EVENTS, [DAY])
    assert sorted(set(events["user_id"].to_pylist())) == sorted(f"{p}_u{i}" for p in "ab" for i in range(USERS_PER_FILE))
    ids = store.read(CORE_ID_MAPS)
    users = ids.filter(pc.equal(ids["entity"], "user"))
    assert users.num_rows == 2 * USERS_PER_FILE
    assert sorted(users["idx"].to_pylist()) == list(range(2 * USERS_PER_FILE))  # dense: nobody's ids overwritten
