"""Label weights of the training data, each taken only from label rows its split may see.

Label weights under a temporal split never come from data after an event's split: an event before
``train_end`` (everything a training row holds) takes its weight only from label rows of the labels'
``train`` split, whose propensities were fitted on data before ``train_end``; an event before
``valid_end`` only from ``train`` or ``valid`` rows. A labels table whose split column disagrees with
the run's cut-offs (built with other cut-offs) is refused.
"""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pyarrow.compute as pc

from transforms import sequences as seq
from transforms.cutoffs import Cutoffs, Split
from transforms.engine import Engine
from transforms.sequences.inputs import steps_ctes


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
    split_of = cutoffs.split_sql(eng.dialect.epoch_ms("e.ts"), epoch_ms=True)
    chosen = f"CASE {split_of} WHEN '{Split.TRAIN}' THEN tr.weight WHEN '{Split.VALID}' THEN va.weight ELSE te.weight END"
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


def label_weights_for_split(
    engine: Engine,
    interactions: seq.Source,
    labels: pa.Table,
    cutoffs: Cutoffs | None,
    split: seq.SplitConfig | None = None,
    horizon_source: str | None = None,
) -> pa.Table:
    """The label weights a split may use.

    Temporal split (``split`` None or temporal, ``cutoffs`` the run's): within splits
    (:func:`label_weights_within_splits`). Leave-one-out and session splits: an event takes a label
    row's weight only when the propensities of that row (fitted on the labels' split, which ends at
    ``cutoffs``' ``end_of`` that split) could not have seen the data its training rows must not see:
    under leave-one-out the user's held-out interactions (the fit must end at or before the user's
    first held-out interaction, from ``horizon_source``: the registered relation of the interactions
    the steps are built from); under a session split the sessions after the split's ``train_end``.
    Without ``cutoffs`` (the labels' cut-offs unknown) every label row counts.
    """
    kind = seq.SplitKind.TEMPORAL if split is None else split.kind
    if kind is seq.SplitKind.TEMPORAL:
        if cutoffs is None:
            return seq.label_weights_from_debiased(engine, interactions, labels)
        return label_weights_within_splits(engine, interactions, labels, cutoffs)
    if cutoffs is None:
        return seq.label_weights_from_debiased(engine, interactions, labels)
    check_label_splits(labels, cutoffs)
    never = 2**62
    ends = {s: never if (end := cutoffs.end_of(s)) is None else _ms(end) for s in Split}
    fit_end = f"CASE l.split WHEN '{Split.TRAIN}' THEN {ends[Split.TRAIN]} WHEN '{Split.VALID}' THEN {ends[Split.VALID]} ELSE {never} END"
    seq.register_source(engine, "lw_events", interactions)
    engine.register_arrow("lw_labels", labels)
    if kind is seq.SplitKind.SESSION:
        assert split is not None and split.cutoffs is not None
        horizons = f"SELECT DISTINCT user_idx, {_ms(split.cutoffs.train_end)} AS horizon_ms FROM lw_events"
    else:
        assert horizon_source is not None
        config = seq.SequenceConfig(max_len=None, min_len=1)
        ctes = steps_ctes(engine.dialect, config, split, source=horizon_source, weights=None, codes=None)
        horizons = f"WITH {ctes} SELECT user_idx, MIN(CASE WHEN pos = n - 1 THEN ts_ms END) AS horizon_ms FROM base GROUP BY user_idx"
    engine.register_arrow("lw_horizons", engine.query(horizons))
    result = engine.query(f"""
WITH matched AS (
    SELECT e.event_id, e.user_idx, l.ips_weight, {fit_end} AS fit_end FROM lw_events e
    JOIN lw_labels l ON l.request_id = e.request_id AND l.user_id = e.user_id AND l.item_id = e.item_id
    WHERE l.observed = 1
    UNION ALL
    SELECT e.event_id, e.user_idx, l.ips_weight, {fit_end} AS fit_end FROM lw_events e
    JOIN lw_labels l ON l.user_id = e.user_id AND l.item_id = e.item_id AND l.ts = e.ts
    WHERE l.observed = 1 AND l.request_id IS NULL AND e.request_id IS NULL
)
SELECT m.event_id, AVG(m.ips_weight) AS weight FROM matched m
JOIN lw_horizons h ON h.user_idx = m.user_idx
WHERE m.fit_end <= h.horizon_ms
GROUP BY m.event_id ORDER BY m.event_id""")
    return result.select(seq.LABEL_WEIGHTS_SCHEMA.names).cast(seq.LABEL_WEIGHTS_SCHEMA)


def select_estimand(labels: pa.Table, config: seq.WeightConfig) -> tuple[pa.Table | None, seq.WeightEstimand]:
    """The label rows with ``ips_weight`` holding the weight of ONE estimand, and that estimand.

    ``position``: ``1 / max(examination, M)`` on every row with an examination (logged and click-model
    rows alike; rows without one, popularity rows, are left out: their events weigh 1). ``logged`` and
    ``popularity``: the labels' ``ips_weight``, refused when an observed positive has another
    ``propensity_source``. ``none``: no rows (None). ``auto``: ``popularity`` when every observed
    positive is a popularity row, else ``position``.

    Raises:
        ValueError: The labels cannot give the chosen estimand (naming the sources they hold).
    """
    positives = labels.filter(pc.equal(labels["observed"], 1))
    has_source = "propensity_source" in labels.column_names
    sources = set(pc.unique(positives["propensity_source"]).to_pylist()) - {None} if has_source else set()
    estimand = config.estimand
    if estimand is seq.WeightEstimand.AUTO:
        if not has_source or "examination" not in labels.column_names:
            raise ValueError("the labels carry no propensity_source / examination: choose the estimand explicitly (none)")
        estimand = seq.WeightEstimand.POPULARITY if sources and sources <= {"popularity"} else seq.WeightEstimand.POSITION
    if estimand is seq.WeightEstimand.NONE:
        return None, estimand
    if estimand is seq.WeightEstimand.POSITION:
        if "examination" not in labels.column_names:
            raise ValueError("the position estimand needs the labels' examination column")
        rows = positives.filter(pc.is_valid(positives["examination"]))
        if rows.num_rows == 0 and positives.num_rows:
            raise ValueError(f"the position estimand needs exposure rows; the labels' positives are {sorted(sources)}: use popularity")
        weight = pc.divide(1.0, pc.max_element_wise(pc.cast(rows["examination"], pa.float64()), config.clip_min))
        return rows.set_column(rows.column_names.index("ips_weight"), "ips_weight", weight), estimand
    wanted = estimand.value
    other = sources - {wanted}
    if not has_source or other:
        raise ValueError(
            f"the {wanted} estimand needs every labelled positive to be a {wanted} row; the labels hold {sorted(sources) or 'no sources'}: "
            "choose position (or none)"
        )
    return positives, estimand


def _ms(value: dt.datetime) -> int:
    """Epoch milliseconds of a cut-off, rounded up (as ``Cutoffs.split_sql``'s epoch-ms form has it)."""
    return math.ceil(value.timestamp() * 1000)
