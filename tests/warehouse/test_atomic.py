"""Write aside, then swap: a failed write leaves the previous version, a good one replaces it whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from warehouse import atomic


def test_failed_file_write_keeps_the_previous_bytes_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "t.json"
    atomic.write_json(target, {"version": 1})
    with pytest.raises(RuntimeError), atomic.write_aside(target) as staged:
        staged.path.write_text("half written")
        raise RuntimeError("writer died")
    assert target.read_text() == '{\n  "version": 1\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_folder_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "world"
    for version in ("old", "new"):
        with atomic.write_aside(target, directory=True) as staged:
            (staged.path / f"{version}.txt").write_text(version)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]


def test_content_addressed_target_is_kept_when_present(tmp_path: Path) -> None:
    # The target's name is chosen inside the block (a content hash); an existing one is not rewritten.
    (tmp_path / "abc").mkdir()
    (tmp_path / "abc" / "data").write_text("first")
    with atomic.write_aside(tmp_path / "pending", directory=True, keep_existing=True) as staged:
        (staged.path / "data").write_text("second")
        staged.target = tmp_path / "abc"
    assert (tmp_path / "abc" / "data").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abc"]


def test_temporaries_of_dead_writers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "part.parquet"
    dead_pid = 2**22 + 12345  # above Linux's default pid_max: never a live process
    orphan = tmp_path / f".part.parquet.{dead_pid}.deadbeef.tmp"
    orphan.write_text("left by a killed writer")
    live = tmp_path / f".part.parquet.{os.getpid()}.cafe.tmp"
    live.write_text("another writer of this process, still running")
    atomic.write_bytes(target, b"x")
    assert not orphan.exists()
    assert live.exists()


def test_point_link_swaps_the_symlink(tmp_path: Path) -> None:
    for name in ("v1", "v2"):
        (tmp_path / name).mkdir()
        atomic.point_link(tmp_path / "current", tmp_path / name)
    assert os.readlink(tmp_path / "current") == "v2"
