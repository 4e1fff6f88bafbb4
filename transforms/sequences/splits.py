"""User sequences and the leakage-free train / valid / test split rows."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from transforms.cutoffs import Cutoffs, Split
from transforms.engine import Dialect, Engine
from transforms.sequences.config import SPLIT_ROWS_SCHEMA, USER_SEQUENCES_SCHEMA, SplitKind, _conform
from transforms.sequences.inputs import PreparedInputs, _base_cte

EVENT_FIELDS = {"item": "item_idx", "code": "event_code", "ts": "ts_ms", "w": "weight"}


def _events_list(d: Dialect, has_sid: bool, masks: bool = False) -> str:
    """One ordered aggregate per group: the events as structs, sorted once by ``pos`` (one sort per
    group instead of one per output list)."""
    fields = dict(EVENT_FIELDS, **({"sid": "codes"} if has_sid else {}), **({"mask": "event_mask"} if masks else {}))
    return d.ordered_structs(fields, "pos")


def _lists(d: Dialect, source: str, has_sid: bool, masks: bool = False) -> str:
    """``item_ids, event_types, timestamps, weights, semantic_ids`` (and ``event_type_masks``) from an events list column."""
    sid = d.list_field(source, "sid") if has_sid else d.null_list("INT", 2)
    out = (
        f"{d.list_field(source, 'item')} AS item_ids, {d.list_field(source, 'code')} AS event_types, "
        f"{d.list_field(source, 'ts')} AS timestamps, {d.list_field(source, 'w')} AS weights, {sid} AS semantic_ids"
    )
    return out + (f", {d.list_field(source, 'mask')} AS event_type_masks" if masks else "")


def session_cutoffs(last_ts: dt.datetime, test_days: int = 1, valid_days: int = 1) -> Cutoffs:
    """The cut-offs of a session split: test sessions end in the last ``test_days`` days of the data (UTC
    days, the day of ``last_ts`` included), valid sessions in the ``valid_days`` days before."""
    last_day = dt.datetime.combine(last_ts.astimezone(dt.UTC).date(), dt.time(), dt.UTC)
    valid_end = last_day + dt.timedelta(days=1 - test_days)
    return Cutoffs(valid_end - dt.timedelta(days=valid_days), valid_end)


def build_user_sequences(engine: Engine, prep: PreparedInputs) -> pa.Table:
    """Per user, the time-ordered events (the most recent ``max_len``), for users with ``>= min_len``.

    Args:
        engine: The engine :func:`prepare` registered the inputs on.
        prep: What :func:`prepare` returned (its split is only used for the k-core window).

    Returns:
        A table of :data:`USER_SEQUENCES_SCHEMA`, sorted by user.
    """
    d = engine.dialect
    keep = "TRUE" if prep.config.max_len is None else f"pos > n - {prep.config.max_len}"
    sql = f"""
WITH {_base_cte(d, prep)},
grouped AS (
    SELECT user_idx, {_events_list(d, prep.has_semantic_ids)} AS evs, CAST(COUNT(*) AS INT) AS length, MAX(n) AS total_events
    FROM base WHERE {keep}
    GROUP BY user_idx
    HAVING MAX(n) >= {prep.config.min_len}
)
SELECT user_idx, {_lists(d, "evs", prep.has_semantic_ids)}, length, total_events FROM grouped
ORDER BY user_idx
"""
    return _conform(engine.query(sql), USER_SEQUENCES_SCHEMA)


def build_splits(engine: Engine, prep: PreparedInputs) -> pa.Table:
    """Train, valid and test rows of the split in ``prep`` (see the module docstring for the rules).

    A row is one user's history (the most recent ``max_len`` events before the split's cut-off) and,
    for valid and test rows, the target events. Training rows need ``min_len`` events; valid and
    test rows need at least one history event and one target.

    Returns:
        A table of :data:`SPLIT_ROWS_SCHEMA`, sorted by split then user.
    """
    if prep.split is None:
        raise ValueError("build_splits needs the split in prepare(..., split=...)")
    if prep.split.kind is SplitKind.SESSION:
        return _session_splits(engine, prep)
    d = engine.dialect
    split = prep.split
    max_len = prep.config.max_len
    if split.cutoffs is not None:
        # Each event's split by its timestamp: a history ends before its row's cut-off, a target is an
        # event of its row's split.
        of = split.cutoffs.split_sql("ts_ms", epoch_ms=True)
        hist = {Split.TRAIN: f"{of} = '{Split.TRAIN}'", Split.TEST: f"{of} <> '{Split.TEST}'"}
        target = {Split.VALID: f"{of} = '{Split.VALID}'", Split.TEST: f"{of} = '{Split.TEST}'"}
        # Each history's length in steps (steps are numbered in time, so a history is a prefix).
        hist_len = {Split.TRAIN: "n_train", Split.TEST: "n - n_test"}
    else:
        hist = {Split.TRAIN: "pos <= n - 2 AND n >= 3", Split.TEST: "pos <= n - 1 AND n >= 3"}
        target = {Split.VALID: "pos = n - 1 AND n >= 3", Split.TEST: "pos = n AND n >= 3"}
        hist_len = {Split.TRAIN: "n - 2", Split.TEST: "n - 1"}
    hist_counts = ", ".join(f"{length} AS h_{name}" for name, length in hist_len.items())

    def history(source: Split) -> str:
        recent = "TRUE" if max_len is None else f"pos > h_{source} - {max_len}"
        return f"SELECT '{source}' AS source, c.* FROM counted c WHERE {hist[source]} AND {recent}"

    # A valid row's history is its train row's (the events before train_end): aggregated once for both.
    sql = f"""
WITH {_base_cte(d, prep)},
counted AS (SELECT b.*, {hist_counts} FROM base b),
hist_rows AS (
    {history(Split.TRAIN)}
    UNION ALL {history(Split.TEST)}
),
target_rows AS (
    SELECT '{Split.VALID}' AS split, b.* FROM base b WHERE {target[Split.VALID]}
    UNION ALL SELECT '{Split.TEST}' AS split, b.* FROM base b WHERE {target[Split.TEST]}
),
source_histories AS {d.materialized() or ""} (
    SELECT source, user_idx, {_events_list(d, prep.has_semantic_ids, masks=True)} AS evs, COUNT(*) AS hist_len
    FROM hist_rows GROUP BY source, user_idx
),
histories AS (
    SELECT '{Split.TRAIN}' AS split, user_idx, evs, hist_len FROM source_histories WHERE source = '{Split.TRAIN}'
    UNION ALL SELECT '{Split.VALID}' AS split, user_idx, evs, hist_len FROM source_histories WHERE source = '{Split.TRAIN}'
    UNION ALL SELECT '{Split.TEST}' AS split, user_idx, evs, hist_len FROM source_histories WHERE source = '{Split.TEST}'
),
targets AS (
    SELECT split, user_idx, {d.ordered_structs(EVENT_FIELDS, "pos")} AS evs
    FROM target_rows GROUP BY split, user_idx
)
SELECT h.split, h.user_idx, {_lists(d, "h.evs", prep.has_semantic_ids, masks=True)},
       COALESCE({d.list_field("t.evs", "item")}, {d.empty_list("BIGINT")}) AS target_item_ids,
       COALESCE({d.list_field("t.evs", "ts")}, {d.empty_list("BIGINT")}) AS target_timestamps,
       COALESCE({d.list_field("t.evs", "w")}, {d.empty_list("DOUBLE")}) AS target_weights
FROM histories h LEFT JOIN targets t ON t.split = h.split AND t.user_idx = h.user_idx
WHERE (h.split = '{Split.TRAIN}' AND h.hist_len >= {prep.config.min_len})
   OR (h.split <> '{Split.TRAIN}' AND t.user_idx IS NOT NULL)
ORDER BY CASE h.split WHEN '{Split.TRAIN}' THEN 0 WHEN '{Split.VALID}' THEN 1 ELSE 2 END, h.user_idx
"""
    return _conform(engine.query(sql), SPLIT_ROWS_SCHEMA)


def _session_splits(engine: Engine, prep: PreparedInputs) -> pa.Table:
    """Rows of a session split (sessions as sequences, as session-rec and GRU4Rec evaluate).

    A session belongs to the split of its last interaction's time (``Cutoffs.split_sql``), so no
    session straddles two splits. Training rows: each train session with ``min_len`` interactions (its
    most recent ``max_len``). Valid and test rows: for each session of the split and each of its
    interactions ``k >= 2``, the history ``1..k-1`` of that session and the target ``k``.
    """
    d = engine.dialect
    split = prep.split
    assert split is not None and split.cutoffs is not None
    max_len = prep.config.max_len
    of = split.cutoffs.split_sql("session_end_ms", epoch_ms=True)
    recent = "TRUE" if max_len is None else f"h.srank >= t.srank - {max_len}"
    train_recent = "TRUE" if max_len is None else f"srank > slen - {max_len}"
    sql = f"""
WITH {_base_cte(d, prep)},
ranked AS (
    SELECT b.*, {of} AS session_split,
           ROW_NUMBER() OVER (PARTITION BY user_idx, session_id ORDER BY pos) AS srank,
           COUNT(*) OVER (PARTITION BY user_idx, session_id) AS slen,
           MIN(pos) OVER (PARTITION BY user_idx, session_id) AS session_pos
    FROM base b
),
train_hist AS (
    SELECT user_idx, session_pos, {_events_list(d, prep.has_semantic_ids, masks=True)} AS evs
    FROM ranked WHERE session_split = '{Split.TRAIN}' AND slen >= {prep.config.min_len} AND {train_recent}
    GROUP BY user_idx, session_pos
),
targets AS (SELECT * FROM ranked WHERE session_split <> '{Split.TRAIN}' AND srank >= 2),
eval_hist AS (
    SELECT t.session_split AS split, t.user_idx, t.session_pos, t.srank AS target_rank,
           {d.ordered_structs(dict({k: f"h.{v}" for k, v in EVENT_FIELDS.items()}, **({"sid": "h.codes"} if prep.has_semantic_ids else {}), mask="h.event_mask"), "h.pos")} AS evs
    FROM targets t JOIN ranked h ON h.user_idx = t.user_idx AND h.session_pos = t.session_pos AND h.srank < t.srank AND {recent}
    GROUP BY t.session_split, t.user_idx, t.session_pos, t.srank
),
target_lists AS (
    SELECT user_idx, session_pos, srank AS target_rank, {d.ordered_list("item_idx", "pos")} AS target_item_ids,
           {d.ordered_list("ts_ms", "pos")} AS target_timestamps, {d.ordered_list("weight", "pos")} AS target_weights
    FROM targets GROUP BY user_idx, session_pos, srank
),
rows AS (
    SELECT '{Split.TRAIN}' AS split, user_idx, session_pos, 0 AS target_rank, evs, {d.empty_list("BIGINT")} AS target_item_ids,
           {d.empty_list("BIGINT")} AS target_timestamps, {d.empty_list("DOUBLE")} AS target_weights
    FROM train_hist
    UNION ALL
    SELECT e.split, e.user_idx, e.session_pos, e.target_rank, e.evs, t.target_item_ids, t.target_timestamps, t.target_weights
    FROM eval_hist e JOIN target_lists t ON t.user_idx = e.user_idx AND t.session_pos = e.session_pos AND t.target_rank = e.target_rank
)
SELECT split, user_idx, {_lists(d, "evs", prep.has_semantic_ids, masks=True)}, target_item_ids, target_timestamps, target_weights
FROM rows
ORDER BY CASE split WHEN '{Split.TRAIN}' THEN 0 WHEN '{Split.VALID}' THEN 1 ELSE 2 END, user_idx, session_pos, target_rank
"""
    return _conform(engine.query(sql), SPLIT_ROWS_SCHEMA)
