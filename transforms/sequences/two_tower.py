"""Two-tower training examples and item sampling frequencies (log-Q), from the training window."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from transforms.engine import Engine
from transforms.sequences.config import ITEM_FREQUENCIES_SCHEMA, TWO_TOWER_SCHEMA, _conform
from transforms.sequences.inputs import PreparedInputs, _base_cte


def build_two_tower_examples(engine: Engine, prep: PreparedInputs, history_len: int = 50) -> tuple[pa.Table, pa.Table]:
    """One example per training-window event: the user's previous ``history_len`` items, the positive
    item and its label weight; plus each item's share of the positives, for log-Q correction.

    The history of an example holds only events before it in the training window, so no example
    (and no sampling frequency) reads an event at or after the cut-off.

    Returns:
        ``(examples, item_frequencies)``: tables of :data:`TWO_TOWER_SCHEMA` (sorted by user, time)
        and :data:`ITEM_FREQUENCIES_SCHEMA` (sorted by item).
    """
    if history_len < 1:
        raise ValueError("history_len must be positive")
    d = engine.dialect
    history = d.window_list("item_idx", "user_idx", "pos", history_len)
    sql = f"""
WITH {_base_cte(d, prep)},
train AS (SELECT * FROM base WHERE in_train = 1)
SELECT user_idx, {history} AS history_item_ids,
       CAST(LEAST(ROW_NUMBER() OVER (PARTITION BY user_idx ORDER BY pos) - 1, {history_len}) AS INT) AS history_length,
       ROW_NUMBER() OVER (PARTITION BY user_idx ORDER BY pos) - 1 AS user_prior_events,
       session_surface AS surface, event_type, item_idx, weight, ts
FROM train
ORDER BY user_idx, ts, item_idx
"""
    examples = _conform(engine.query(sql), TWO_TOWER_SCHEMA)
    frequencies = item_frequencies(examples)
    return examples, frequencies


def item_frequencies(examples: pa.Table) -> pa.Table:
    """Each positive item's count and share among ``examples`` (what log-Q correction subtracts)."""
    grouped = examples.group_by("item_idx").aggregate([("item_idx", "count")]).rename_columns(["item_idx", "count"])
    total = max(examples.num_rows, 1)
    grouped = grouped.append_column("probability", pc.divide(pc.cast(grouped["count"], pa.float64()), float(total)))
    return _conform(grouped.sort_by("item_idx"), ITEM_FREQUENCIES_SCHEMA)
