"""Id maps append and never renumber; the audit catches any map that would."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from transforms.engine import Engine
from transforms.ingest.id_maps import OBSERVED_SCHEMA, audit_id_map, extend_id_map
from warehouse.contracts import CORE_ID_MAPS

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def observed(*rows: tuple[str, str, int]) -> pa.Table:
    return pa.table(
        {"entity": [r[0] for r in rows], "external_id": [r[1] for r in rows],
         "first_seen": [T + dt.timedelta(days=r[2]) for r in rows]},
        schema=OBSERVED_SCHEMA,
    )


def test_new_ids_are_appended_in_order_of_first_appearance(duckdb_engine: Engine) -> None:
    # bob appears first, then alice; a later night brings carol and alice again.
    first = extend_id_map(duckdb_engine, CORE_ID_MAPS.schema.empty_table(), observed(("user", "alice", 2), ("user", "bob", 1)))
    second = extend_id_map(duckdb_engine, first, observed(("user", "carol", 0), ("user", "alice", 0)))

    assert [(r["external_id"], r["idx"]) for r in second.to_pylist()] == [("bob", 0), ("alice", 1), ("carol", 2)]
    assert audit_id_map(first, second).ok


def test_audit_catches_renumbered_dropped_and_gappy_maps(duckdb_engine: Engine) -> None:
    good = extend_id_map(duckdb_engine, CORE_ID_MAPS.schema.empty_table(), observed(("user", "a", 0), ("user", "b", 1)))
    renumbered = good.set_column(2, "idx", pa.array([1, 0], pa.int64()))
    dropped = good.slice(0, 1)
    gappy = good.set_column(2, "idx", pa.array([0, 5], pa.int64()))

    assert audit_id_map(good, renumbered).changed_ids == 2
    assert audit_id_map(good, dropped).changed_ids == 1
    assert audit_id_map(good, gappy).dense is False
    assert audit_id_map(good, good).counts == {"user": 2}
