"""Content hashes are reproducible from the files, whatever batches the writer was handed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from warehouse import store as store_module
from warehouse.contracts import all_contracts
from warehouse.integrity import check_file, verify_warehouse
from warehouse.store import Warehouse

DAY = dt.date(2026, 1, 1)


def _value(type_: pa.DataType, i: int) -> object:
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return f"s{i}" * (i % 4)
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
        return bytes([i % 256]) * (i % 3)
    if pa.types.is_integer(type_):
        return i % 100
    if pa.types.is_floating(type_):
        return i * 0.5
    if pa.types.is_timestamp(type_):
        return dt.datetime(2026, 1, 1) + dt.timedelta(seconds=i)
    if pa.types.is_date(type_):
        return DAY
    if pa.types.is_boolean(type_):
        return i % 2 == 0
    if pa.types.is_fixed_size_list(type_):
        return [_value(type_.value_type, i + j) for j in range(type_.list_size)]
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return [_value(type_.value_type, i + j) for j in range(i % 3)]
    if pa.types.is_struct(type_):
        return {f.name: _value(f.type, i) for f in type_}
    raise TypeError(type_)


def _rows(contract: object, n: int) -> pa.Table:
    schema = contract.schema  # type: ignore[attr-defined]
    return pa.table({f.name: pa.array([None if f.nullable and i % 7 == 0 else _value(f.type, i) for i in range(n)], f.type) for f in schema}, schema=schema)


@pytest.mark.parametrize("contract", all_contracts(), ids=lambda c: c.view_name)
def test_every_table_verifies_after_a_write_of_sliced_batches(contract: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "ROW_GROUP_ROWS", 100)  # several row groups from few rows
    table = _rows(contract, 250)
    # Slices of one batch, of uneven sizes: their IPC bytes differ from the same rows read back from disk.
    batches = [b for start, length in ((0, 70), (70, 120), (190, 60)) for b in table.slice(start, length).to_batches()]
    store = Warehouse(tmp_path)
    written = store.write_batches(contract, batches, DAY if contract.partitioned else None)  # type: ignore[attr-defined]
    assert check_file(written.path, contract.schema) is None  # type: ignore[attr-defined]


def test_verify_finds_nothing_in_an_intact_warehouse_and_every_flip(tmp_path: Path) -> None:
    from warehouse.contracts import RAW_ITEMS

    store = Warehouse(tmp_path)
    path = store.write(RAW_ITEMS, _rows(RAW_ITEMS, 500)).path
    assert verify_warehouse(tmp_path) == []
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    path.write_bytes(bytes(data))
    assert [d.path for d in verify_warehouse(tmp_path)] == [path]


def test_a_file_of_hash_format_2_is_still_checked_row_by_row(tmp_path: Path) -> None:
    """Partitions written before format 3 hashed their rows' IPC bytes: they verify, and a changed value is found."""
    import hashlib

    import pyarrow.parquet as pq

    from warehouse.contracts import RAW_ITEMS
    from warehouse.integrity import META_HASH, META_HASH_FORMAT, META_ROWS, ROWS_HASH_FORMAT, hash_batch

    def write_format_2(table: pa.Table, path: Path, hashed: pa.Table) -> None:
        digest = hashlib.sha256()
        for batch in hashed.to_batches():
            hash_batch(digest, batch)
        with pq.ParquetWriter(path, table.schema) as writer:
            writer.write_table(table)
            writer.add_key_value_metadata({META_ROWS: str(table.num_rows).encode(), META_HASH: digest.hexdigest().encode(),
                                           META_HASH_FORMAT: ROWS_HASH_FORMAT})

    table = _rows(RAW_ITEMS, 50).combine_chunks()
    intact, changed = tmp_path / "intact.parquet", tmp_path / "changed.parquet"
    write_format_2(table, intact, table)
    assert check_file(intact, RAW_ITEMS.schema) is None
    write_format_2(table.slice(1), changed, table.slice(0, 49))  # the stored rows are not the hashed ones
    assert check_file(changed, RAW_ITEMS.schema) == "content differs from its stored hash (damaged after it was written)"


@pytest.mark.parametrize("where", ["first data byte", "last data byte", "footer length", "truncated"])
def test_a_damaged_format_3_file_is_found(where: str, tmp_path: Path) -> None:
    import struct

    from warehouse.contracts import RAW_ITEMS

    path = Warehouse(tmp_path).write(RAW_ITEMS, _rows(RAW_ITEMS, 300)).path
    data = bytearray(path.read_bytes())
    footer = struct.unpack("<i", data[-8:-4])[0]
    if where == "first data byte":
        data[4] ^= 0x01  # just after the leading b"PAR1"
    elif where == "last data byte":
        data[len(data) - 8 - footer - 1] ^= 0x01
    elif where == "footer length":
        data[-8:-4] = struct.pack("<i", len(data) * 2)
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    assert check_file(path, RAW_ITEMS.schema) is not None
