"""Unified interactions: deduplicated, sessionized, with dense ids and session features."""

from __future__ import annotations

import pyarrow as pa

from transforms.engine import Engine
from transforms.sequences.config import INTERACTIONS_SCHEMA, SessionConfig, Source, _conform
from transforms.sequences.inputs import TIE_ORDER, register_rows, register_source
from warehouse import contracts

_SO_FAR = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
# One deduplicated event's columns, before its session is known.
_EVENT_COLUMNS = (
    "event_id, user_id, item_id, ts, ts_ms, event_type, value, request_id, session_id, surface, user_idx, item_idx, "
    "source_file, line_no"
)


def build_interactions(
    engine: Engine,
    events: Source,
    id_maps: Source,
    slates: Source | None = None,
    config: SessionConfig = SessionConfig(),
) -> pa.Table:
    """Unified, deduplicated, sessionized interactions with dense ids and session features.

    Events without an item (searches) and events whose user or item is not in the id map are left
    out. Duplicates are the same action (user, item, timestamp, event type) logged more than once;
    the copy with the smallest event id is kept. Events that carry a logged ``session_id`` keep it;
    the others are split into sessions where the gap to the user's previous unlogged event exceeds
    ``config.gap`` and get the id ``gap:<user_id>:<n>``.

    Session features see only the session so far (at or before the event, in time order): its
    ``session_length`` is the event's 1-based place in its session, ``session_duration_ms`` the time
    since the session's first event, ``session_surface`` the surface (from the slate of ``request_id``)
    of the session's first event that has one, null while no event so far has one.

    Args:
        engine: DuckDB or Spark.
        events: Rows of the ``raw_events`` contract (a table, or its Parquet files: read in place).
        id_maps: Rows of the ``core_id_maps`` contract.
        slates: Rows of ``raw_slates`` (only ``request_id`` and ``surface`` are read), if any.
        config: Sessionization settings.

    Returns:
        A table of :data:`INTERACTIONS_SCHEMA`, sorted by user, time and event id.
    """
    d = engine.dialect
    register_rows(engine, "seq_events", events, contracts.RAW_EVENTS)  # staged before provenance: ties by event id
    register_source(engine, "seq_id_maps", id_maps)
    if slates is None or (isinstance(slates, (list, tuple)) and not slates):
        slates = pa.table({"request_id": pa.array([], pa.string()), "surface": pa.array([], pa.string())})
    register_source(engine, "seq_slates", slates)
    gap_ms = int(config.gap.total_seconds() * 1000)
    order = f"ts_ms, {TIE_ORDER}"
    sql = f"""
WITH users AS (SELECT external_id, idx FROM seq_id_maps WHERE entity = 'user'),
items AS (SELECT external_id, idx FROM seq_id_maps WHERE entity = 'item'),
surfaces AS (SELECT request_id, MIN(surface) AS surface FROM seq_slates WHERE surface IS NOT NULL GROUP BY request_id),
ev AS (
    SELECT e.event_id, e.user_id, e.item_id, e.ts, {d.epoch_ms("e.ts")} AS ts_ms, e.event_type, e.value,
           e.request_id, e.session_id, s.surface, u.idx AS user_idx, i.idx AS item_idx, e.source_file, e.line_no
    FROM seq_events e
    JOIN users u ON u.external_id = e.user_id
    JOIN items i ON i.external_id = e.item_id
    LEFT JOIN surfaces s ON s.request_id = e.request_id
    WHERE e.item_id IS NOT NULL
),
ranked AS (
    SELECT ev.*, ROW_NUMBER() OVER (PARTITION BY user_idx, item_idx, ts_ms, event_type ORDER BY event_id) AS copy_no
    FROM ev
),
dedup AS (
    SELECT {_EVENT_COLUMNS}
    FROM ranked WHERE copy_no = 1
),
unlogged AS (
    SELECT d.*,
           CASE WHEN LAG(ts_ms) OVER (PARTITION BY user_idx ORDER BY {order}) IS NULL
                  OR ts_ms - LAG(ts_ms) OVER (PARTITION BY user_idx ORDER BY {order}) > {gap_ms}
                THEN 1 ELSE 0 END AS starts,
           ROW_NUMBER() OVER (PARTITION BY user_idx ORDER BY {order}) AS urn
    FROM dedup d WHERE session_id IS NULL
),
sessioned AS (
    -- Gap sessions: runs of a user's unlogged events; an event's place in its run is its urn (place among
    -- the user's unlogged events) after the run's first one. Logged sessions need not be consecutive:
    -- a window over (user, session id) places their events.
    SELECT {_EVENT_COLUMNS},
           CONCAT('gap:', user_id, ':', CAST(SUM(starts) OVER (PARTITION BY user_idx ORDER BY {order} {_SO_FAR}) AS STRING)) AS sid,
           urn + 1 - MAX(CASE WHEN starts = 1 THEN urn END) OVER (PARTITION BY user_idx ORDER BY {order} {_SO_FAR}) AS spos,
           MAX(CASE WHEN starts = 1 THEN ts_ms END) OVER (PARTITION BY user_idx ORDER BY {order} {_SO_FAR}) AS first_ms
    FROM unlogged
    UNION ALL
    SELECT {_EVENT_COLUMNS}, session_id AS sid,
           ROW_NUMBER() OVER (PARTITION BY user_idx, session_id ORDER BY {order}) AS spos,
           MIN(ts_ms) OVER (PARTITION BY user_idx, session_id) AS first_ms
    FROM dedup WHERE session_id IS NOT NULL
),
session_rank AS (
    SELECT user_idx, sid, DENSE_RANK() OVER (PARTITION BY user_idx ORDER BY first_ms, sid) - 1 AS session_index
    FROM (SELECT user_idx, sid, MIN(first_ms) AS first_ms FROM sessioned GROUP BY user_idx, sid) f
),
so_far AS (
    SELECT s.*, r.session_index FROM sessioned s JOIN session_rank r ON r.user_idx = s.user_idx AND r.sid = s.sid
),
first_surface AS (
    SELECT user_idx, session_index, surface, spos FROM (
        SELECT user_idx, session_index, surface, spos, ROW_NUMBER() OVER (PARTITION BY user_idx, session_index ORDER BY spos) AS rn
        FROM so_far WHERE surface IS NOT NULL
    ) f WHERE rn = 1
)
SELECT * FROM (
    SELECT s.event_id, s.user_idx, s.item_idx, s.user_id, s.item_id, s.ts, s.event_type, s.value, s.request_id,
           s.surface, s.sid AS session_id, CAST(s.session_index AS INT) AS session_index,
           CAST(s.spos AS INT) AS session_length, CAST(s.ts_ms - s.first_ms AS BIGINT) AS session_duration_ms,
           CASE WHEN f.spos <= s.spos THEN f.surface END AS session_surface, s.source_file, s.line_no
    FROM so_far s
    LEFT JOIN first_surface f ON f.user_idx = s.user_idx AND f.session_index = s.session_index
) out
ORDER BY user_idx, ts, {TIE_ORDER}
"""
    return _conform(engine.query(sql), INTERACTIONS_SCHEMA)
