"""Fault 14.13: what killed writers leave behind is swept by the next writer.

Writers are killed by pid in the middle of a write; names that earlier recforge versions used (no pid in
them) are laid down by hand, as an upgraded installation finds them.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pyarrow as pa

from tests.faults.helpers import python
from warehouse.atomic import sweep_leftovers
from warehouse.catalog import refresh_catalog
from warehouse.lock import writer_lock
from warehouse.shards import ShardConfig, write_shard_set

DEAD_PID = 2**22 + 4321  # above Linux's default pid_max: never a live process


def _rows(n: int) -> pa.Table:
    return pa.table({"user_idx": list(range(n)), "items": [[i, i + 1] for i in range(n)], "split": ["train"] * n})


def _killed_in(code: str, *args: str) -> None:
    run = python(code, *args)
    assert run.stdout is not None and run.stdout.readline().strip() == "inside", run.stderr.read() if run.stderr else ""
    os.kill(run.pid, signal.SIGKILL)
    run.wait()


SHARD_WRITER = """
import sys, time
from pathlib import Path
import pyarrow as pa
from warehouse import shards

real = shards._write_split
def write_then_hang(*args, **kwargs):
    written = real(*args, **kwargs)
    print("inside", flush=True)
    time.sleep(60)
    return written

shards._write_split = write_then_hang
rows = pa.table({"user_idx": list(range(50)), "items": [[i] for i in range(50)], "split": ["train"] * 50})
shards.write_shard_set(Path(sys.argv[1]), rows, shards.ShardConfig(row_group_rows=8))
"""


def test_a_killed_shard_writer_and_old_style_temporaries_are_swept_by_the_next_shard_writer(tmp_path: Path) -> None:
    root = tmp_path / "shards"
    _killed_in(SHARD_WRITER, str(root))
    versions = root / "versions"
    old_style = versions / f".tmp-{uuid.uuid4().hex}"  # how shard sets were staged before write_aside
    (old_style / "train").mkdir(parents=True)
    (old_style / "train" / "part-00000-of-00002.parquet").write_bytes(b"half")
    assert len([p for p in versions.iterdir() if p.name.startswith(".")]) == 2

    written = write_shard_set(root, _rows(20), ShardConfig(row_group_rows=8))
    assert sorted(p.name for p in versions.iterdir()) == [written.version]


CATALOG_WRITER = """
import sys, time
from pathlib import Path
from warehouse import catalog

real = catalog.discover_tables
def discover_then_hang(root):
    found = real(root)
    print("inside", flush=True)
    time.sleep(60)
    return found

catalog.discover_tables = discover_then_hang
catalog.refresh_catalog(Path(sys.argv[1]))
"""


def test_a_killed_catalog_rebuild_leaves_nothing_after_the_next_one(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _killed_in(CATALOG_WRITER, str(root))
    hex_ = uuid.uuid4().hex
    (root / f".catalog.duckdb.{DEAD_PID}.{hex_}.tmp.wal").write_bytes(b"wal")  # DuckDB's log beside a temporary
    (root / f".catalog.duckdb.{uuid.uuid4().hex}.tmp").write_bytes(b"old")  # an earlier version's name (no pid)
    assert len([p for p in root.iterdir() if ".catalog.duckdb." in p.name]) >= 3

    refresh_catalog(root)
    assert sorted(p.name for p in root.iterdir() if "catalog" in p.name) == [".catalog.lock", "catalog.duckdb"]


def test_a_folder_swap_killed_between_its_renames_gets_its_folder_back(tmp_path: Path) -> None:
    swapped_out = tmp_path / f".v1.{DEAD_PID}.{uuid.uuid4().hex}.old"
    swapped_out.mkdir()
    (swapped_out / "data").write_text("previous version")
    sweep_leftovers(tmp_path)
    assert (tmp_path / "v1" / "data").read_text() == "previous version"


def test_the_next_lock_holder_removes_a_killed_ingest_spill_folder(tmp_path: Path) -> None:
    spill = tmp_path / "recforge-connect-abc123" / "events"
    spill.mkdir(parents=True)
    (spill / "staged-00000.parquet").write_bytes(b"spilled rows")
    with writer_lock(tmp_path, timeout=0):
        assert not (tmp_path / "recforge-connect-abc123").exists()
