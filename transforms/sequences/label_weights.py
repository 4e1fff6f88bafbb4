"""Label weights of the training data, each taken only from label rows its split may see.

Label weights under a temporal split never come from data after an event's split: an event before
``train_end`` (everything a training row holds) takes its weight only from label rows of the labels'
``train`` split, whose propensities were fitted on data before ``train_end``; an event before
``valid_end`` only from ``train`` or ``valid`` rows. A labels table whose split column disagrees with
the run's cut-offs (built with other cut-offs) is refused.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from transforms import sequences as seq
from transforms.cutoffs import Cutoffs, Split
from transforms.engine import Engine


def label_weights_within_splits(eng: Engine, interactions: seq.Source, labels: pa.Table, cutoffs: Cutoffs) -> pa.Table:
    """Each event's label weight (``event_id, weight``), taken only from label rows of its split or earlier.

    An event before ``train_end`` (all a training row holds, history and targets) takes its weight only
    from ``train`` label rows, whose propensities saw nothing at or after ``train_end``; one before
    ``valid_end`` from ``train`` or ``valid`` rows; a later one from any row.

    Raises:
        ValueError: The labels' ``split`` column disagrees with ``cutoffs`` (the labels were built
            with other cut-offs): rematerialize ``labels/debiased_labels`` with the same ``cutoffs``.
    """
    check_label_splits(labels, cutoffs)
    allowed = {Split.TRAIN: [Split.TRAIN], Split.VALID: [Split.TRAIN, Split.VALID], Split.TEST: list(Split)}
    for split, splits in allowed.items():
        subset = labels.filter(pc.is_in(labels["split"], value_set=pa.array([str(s) for s in splits])))
        eng.register_arrow(f"td_weights_{split}", seq.label_weights_from_debiased(eng, interactions, subset))
    seq.register_source(eng, "td_events", interactions)
    split = cutoffs.split_sql(eng.dialect.epoch_ms("e.ts"), epoch_ms=True)
    chosen = f"CASE {split} WHEN '{Split.TRAIN}' THEN tr.weight WHEN '{Split.VALID}' THEN va.weight ELSE te.weight END"
    result = eng.query(f"""
SELECT event_id, weight FROM (
    SELECT e.event_id, {chosen} AS weight FROM td_events e
    LEFT JOIN td_weights_{Split.TRAIN} tr ON tr.event_id = e.event_id
    LEFT JOIN td_weights_{Split.VALID} va ON va.event_id = e.event_id
    LEFT JOIN td_weights_{Split.TEST} te ON te.event_id = e.event_id
) w WHERE weight IS NOT NULL ORDER BY event_id""")
    return result.select(seq.LABEL_WEIGHTS_SCHEMA.names).cast(seq.LABEL_WEIGHTS_SCHEMA)


def check_label_splits(labels: pa.Table, cutoffs: Cutoffs) -> None:
    """Refuse label rows whose ``split`` is not the one ``cutoffs`` give their ``ts``."""
    wrong = int(pc.sum(pc.not_equal(cutoffs.split_array(labels["ts"]), labels["split"])).as_py() or 0)
    if wrong:
        raise ValueError(
            f"labels_debiased_labels has {wrong} rows whose split disagrees with the cut-offs "
            f"(train_end {cutoffs.train_end.isoformat()}, valid_end {cutoffs.valid_end.isoformat()}): it was built with "
            "other cut-offs; rematerialize labels/debiased_labels with the same cutoffs resource"
        )


def label_weights_for_split(engine: Engine, interactions: seq.Source, labels: pa.Table, cutoffs: Cutoffs | None) -> pa.Table:
    """The label weights a split may use: within splits for a temporal split (``cutoffs``), else from every row.

    Leave-one-out (``cutoffs`` None) has no time boundary to respect: every label row counts
    (:func:`transforms.sequences.label_weights_from_debiased`).
    """
    if cutoffs is None:
        return seq.label_weights_from_debiased(engine, interactions, labels)
    return label_weights_within_splits(engine, interactions, labels, cutoffs)
