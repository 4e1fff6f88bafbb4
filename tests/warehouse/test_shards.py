"""Shard sets: balanced, deterministic, described by their manifest, swapped in atomically."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.engine import SparkEngine
from transforms.sequences import SPLIT_ROWS_SCHEMA
from warehouse import shards
from warehouse.shards import (
    ShardConfig,
    balanced_sizes,
    current_version_dir,
    read_manifest,
    verify_shard_set,
    write_shard_set,
)


def split_rows(users: int, seed: int = 0, splits: tuple[str, ...] = ("train", "valid", "test")) -> pa.Table:
    rows = []
    for split in splits:
        for u in range(users):
            n = 1 + (u * 7 + seed) % 5
            items = [(u + k + seed) % 11 for k in range(n)]
            rows.append({"split": split, "user_idx": u, "item_ids": items, "event_types": [2] * n, "timestamps": list(range(n)),
                         "weights": [1.0] * n, "semantic_ids": None,
                         "target_item_ids": [] if split == "train" else [u % 11], "target_timestamps": [] if split == "train" else [99],
                         "target_weights": [] if split == "train" else [1.0]})
    return pa.Table.from_pylist(rows, schema=SPLIT_ROWS_SCHEMA)


@given(rows=st.integers(0, 10_000), n=st.integers(1, 64))
def test_balanced_sizes(rows: int, n: int) -> None:
    sizes = balanced_sizes(rows, n)
    assert len(sizes) == n and sum(sizes) == rows and max(sizes) - min(sizes) <= 1


def test_shards_balanced_and_described(tmp_path: Path) -> None:
    table = split_rows(103)
    config = ShardConfig(world_size=3, shards_per_rank=2, row_group_rows=8)
    result = write_shard_set(
        tmp_path, table, config,
        params={"split": {"kind": "leave_one_out"}}, sources={"raw_events": "abc"}, vocab={"items": 11},
        statistics={"item_frequencies_train": [1] * 11},
    )
    manifest = read_manifest(tmp_path)
    assert manifest == result.manifest
    for name in ("train", "valid", "test"):
        split = manifest["splits"][name]
        sizes = [s["rows"] for s in split["shards"]]
        assert len(sizes) == 6 and len(sizes) % config.world_size == 0  # a multiple of the world size
        assert max(sizes) - min(sizes) <= 1 and sum(sizes) == split["rows"] == 103
        for shard in split["shards"]:
            meta = pq.read_metadata(result.version_dir / shard["path"])
            assert meta.num_rows == shard["rows"] and meta.num_row_groups == shard["row_groups"] == -(-shard["rows"] // 8)
    assert [f["name"] for f in manifest["schema"]] == [n for n in SPLIT_ROWS_SCHEMA.names if n != "split"]
    assert manifest["params"]["split"]["kind"] == "leave_one_out" and manifest["sources"] == {"raw_events": "abc"}
    assert manifest["vocab"]["items"] == 11 and manifest["rows"] == {"train": 103, "valid": 103, "test": 103}
    assert verify_shard_set(result.version_dir) == []
    # Every row is in exactly one shard of its split, and each shard mixes users (not one id range).
    users = [u for s in manifest["splits"]["train"]["shards"] for u in pq.read_table(result.version_dir / s["path"])["user_idx"].to_pylist()]
    assert sorted(users) == list(range(103))
    first = pq.read_table(result.version_dir / manifest["splits"]["train"]["shards"][0]["path"])["user_idx"].to_pylist()
    assert first != sorted(first) or max(first) - min(first) > len(first)


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    table = split_rows(50)
    a = write_shard_set(tmp_path / "a", table, ShardConfig(world_size=2, row_group_rows=16))
    b = write_shard_set(tmp_path / "b", table.take(pa.array(list(reversed(range(table.num_rows))))), ShardConfig(world_size=2, row_group_rows=16))
    assert a.version == b.version
    for path in sorted(p.relative_to(a.version_dir) for p in a.version_dir.rglob("*") if p.is_file()):
        assert (a.version_dir / path).read_bytes() == (b.version_dir / path).read_bytes(), path
    c = write_shard_set(tmp_path / "c", table, ShardConfig(world_size=2, row_group_rows=16, seed=1))
    assert c.version != a.version  # another seed, another assignment of rows to shards


def test_new_version_swaps_in_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write_shard_set(tmp_path, split_rows(40, seed=0), ShardConfig(row_group_rows=8))
    reader_dir = current_version_dir(tmp_path)  # a reader resolves `current` once
    second = write_shard_set(tmp_path, split_rows(40, seed=1), ShardConfig(row_group_rows=8))
    assert current_version_dir(tmp_path) == second.version_dir != first.version_dir
    assert os.path.islink(tmp_path / "current")
    assert verify_shard_set(reader_dir) == []  # the old version is intact for the reader still on it

    # A crash half-way through writing the next version leaves `current` on the second one and no debris.
    calls = {"n": 0}
    real_write = pq.write_table

    def failing_write(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shards.pq, "write_table", failing_write)
    with pytest.raises(OSError, match="disk full"):
        write_shard_set(tmp_path, split_rows(40, seed=2), ShardConfig(row_group_rows=8))
    assert current_version_dir(tmp_path) == second.version_dir
    assert not [p for p in (tmp_path / "versions").iterdir() if p.name.startswith(".")]

    monkeypatch.undo()
    third = write_shard_set(tmp_path, split_rows(40, seed=3), ShardConfig(row_group_rows=8, keep_versions=2))
    kept = sorted(p.name for p in (tmp_path / "versions").iterdir())
    assert kept == sorted([second.version, third.version])  # older versions pruned, the previous one kept


def test_tampered_shard_is_detected(tmp_path: Path) -> None:
    result = write_shard_set(tmp_path, split_rows(20), ShardConfig(row_group_rows=8))
    shard = result.version_dir / result.manifest["splits"]["train"]["shards"][0]["path"]
    pq.write_table(pq.read_table(shard).slice(1), shard)
    problems = verify_shard_set(result.version_dir)
    assert len(problems) == 1 and "content hash" in problems[0]


def test_item_counts() -> None:
    column = pa.chunked_array([pa.array([[0, 2, 2], [], [3]], pa.list_(pa.int64()))])
    assert shards.item_counts(column, 5) == [1, 0, 2, 1, 0]
    with pytest.raises(ValueError, match="outside"):
        shards.item_counts(column, 3)


def _valid_shard(root: Path) -> tuple[pa.Table, Path]:
    table = split_rows(40)
    write_shard_set(root, table, ShardConfig(world_size=1, shards_per_rank=2, row_group_rows=8))
    version = current_version_dir(root)
    return table, version / read_manifest(version)["splits"]["valid"]["shards"][0]["path"]


def test_timestamps_are_delta_encoded_and_read_back(tmp_path: Path) -> None:
    table, shard = _valid_shard(tmp_path)
    row_group = pq.read_metadata(shard).row_group(0)
    encodings = {row_group.column(i).path_in_schema: row_group.column(i).encodings for i in range(row_group.num_columns)}
    for column in ("timestamps.list.element", "target_timestamps.list.element"):
        assert "DELTA_BINARY_PACKED" in encodings[column] and "RLE_DICTIONARY" not in encodings[column]
    assert "RLE_DICTIONARY" in encodings["item_ids.list.element"]
    assert "RLE_DICTIONARY" in encodings["semantic_ids.list.element.list.element"]  # nested lists get their paths too
    # pyarrow and DuckDB read the values back exactly.
    back = _timelines(pq.read_table(shard).to_pylist())
    assert back <= _timelines(table.filter(pc.equal(table["split"], "valid")).to_pylist())
    rows = duckdb.connect().execute(f"SELECT user_idx, timestamps, target_timestamps FROM read_parquet('{shard}')").fetchall()
    assert _timelines([{"user_idx": u, "timestamps": t, "target_timestamps": tt} for u, t, tt in rows]) == back


def _timelines(rows: list[dict[str, object]]) -> set[tuple[object, ...]]:
    return {(r["user_idx"], tuple(r["timestamps"]), tuple(r["target_timestamps"])) for r in rows}  # type: ignore[arg-type]


@pytest.mark.spark
def test_spark_reads_the_delta_encoded_shards(tmp_path: Path, spark_engine: SparkEngine) -> None:
    _, shard = _valid_shard(tmp_path)
    rows = spark_engine.session.read.parquet(str(shard)).select("user_idx", "timestamps", "target_timestamps").collect()
    expected = pq.read_table(shard, columns=["user_idx", "timestamps", "target_timestamps"]).to_pylist()
    assert _timelines([r.asDict() for r in rows]) == _timelines(expected)
