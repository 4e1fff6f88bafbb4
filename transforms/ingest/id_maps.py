"""Stable dense integer ids.

The id map is append-only: an id, once assigned, keeps its integer forever; ids seen for the first
time are appended after the current maximum, ordered by when they were first seen and then by their
external id, so the assignment is deterministic for the same inputs and never renumbers the past.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from transforms.engine import Engine
from warehouse.contracts import CORE_ID_MAPS

OBSERVED_SCHEMA = pa.schema(
    [
        pa.field("entity", pa.string()),
        pa.field("external_id", pa.string()),
        pa.field("first_seen", pa.timestamp("ms", tz="UTC")),
    ]
)


def extend_id_map(engine: Engine, existing: pa.Table, observed: pa.Table) -> pa.Table:
    """Append ids in ``observed`` that ``existing`` lacks; existing rows are returned unchanged.

    Args:
        engine: DuckDB or Spark.
        existing: The current id map (``CORE_ID_MAPS`` schema), possibly empty.
        observed: ``entity, external_id, first_seen`` rows, duplicates allowed.

    Returns:
        The full id map, sorted by entity then idx.
    """
    engine.register_arrow("id_existing", existing.cast(CORE_ID_MAPS.schema))
    engine.register_arrow("id_observed", observed.select(OBSERVED_SCHEMA.names).cast(OBSERVED_SCHEMA))
    result = engine.query(
        """
WITH seen AS (
    SELECT entity, external_id, MIN(first_seen) AS first_seen
    FROM id_observed
    WHERE external_id IS NOT NULL
    GROUP BY entity, external_id
), fresh AS (
    SELECT s.* FROM seen s
    WHERE NOT EXISTS (
        SELECT 1 FROM id_existing e WHERE e.entity = s.entity AND e.external_id = s.external_id)
), offsets AS (
    SELECT entity, MAX(idx) AS max_idx FROM id_existing GROUP BY entity
)
SELECT entity, external_id, idx, first_seen FROM id_existing
UNION ALL
SELECT f.entity, f.external_id,
       COALESCE(o.max_idx, -1)
         + ROW_NUMBER() OVER (PARTITION BY f.entity ORDER BY f.first_seen NULLS LAST, f.external_id) AS idx,
       f.first_seen
FROM fresh f LEFT JOIN offsets o ON o.entity = f.entity
ORDER BY entity, idx
"""
    )
    return result.cast(CORE_ID_MAPS.schema)


@dataclass(frozen=True)
class IdMapAudit:
    """What an id-map update did to the ids that existed before it."""

    changed_ids: int  # existing ids whose integer changed, or that disappeared
    dense: bool  # per entity, the integers are exactly 0..n-1
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.changed_ids == 0 and self.dense


def audit_id_map(existing: pa.Table, updated: pa.Table) -> IdMapAudit:
    """Check that ``updated`` keeps every id of ``existing`` and stays dense per entity."""
    keys = ["entity", "external_id"]
    joined = existing.select([*keys, "idx"]).join(
        updated.select([*keys, "idx"]), keys, right_suffix="_new", join_type="left outer"
    )
    changed = pc.sum(pc.fill_null(pc.not_equal(joined["idx"], joined["idx_new"]), True)).as_py() or 0
    stats = updated.group_by("entity").aggregate(
        [("idx", "count"), ("idx", "count_distinct"), ("idx", "min"), ("idx", "max")]
    ).to_pylist()
    dense = all(
        s["idx_min"] == 0 and s["idx_max"] == s["idx_count"] - 1 and s["idx_count_distinct"] == s["idx_count"]
        for s in stats
    )
    return IdMapAudit(changed_ids=int(changed), dense=dense, counts={s["entity"]: s["idx_count"] for s in stats})
