"""Label assembly: one row per exposure with its propensity, clipped IPS weights, SNIPS, and diagnostics."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.cutoffs import Split
from transforms.engine import Engine
from transforms.labels.config import Engagement, Estimand, LabelConfig, PropensitySource
from transforms.labels.exposures import (
    DEFAULT_SURFACE,
    SplitMode,
    _before,
    _exposures_sql,
    _ratings_sql,
    _signals_sql,
    _within_split,
    register_slate_slots,
    split_modes,
)
from warehouse import contracts

_BIAS_RELATION = "labels_position_bias"
_POPULARITY_RELATION = "labels_item_propensity"
_SNIPS_RELATION = "labels_snips_scale"
_NO_SCALES = pa.table({"split": pa.array([], pa.string()), "scale": pa.array([], pa.float64())})  # SNIPS off


# --- labels ------------------------------------------------------------------------------------------


def _rows_sql(engine: Engine, config: LabelConfig, modes: dict[Split, SplitMode]) -> str:
    """The label rows of every split, each split by its own mode: impressions, or observed positives.

    Splits that share a mode share one sub-query (usually all three do).
    """
    d = engine.dialect
    split = config.cutoffs.split_sql("q.ts")
    by_mode: dict[SplitMode, list[Split]] = {}
    for s, mode in modes.items():
        by_mode.setdefault(mode, []).append(s)
    parts = []
    for mode, splits in by_mode.items():
        if mode.exposure:
            base = f"""
                SELECT request_id, user_id, item_id, position, ts, surface, policy_propensity, slot_mismatch,
                       click_ts, CASE WHEN click_ts IS NULL THEN 0 ELSE 1 END AS observed, 1 AS exposure
                FROM ({_exposures_sql(d, config, mode.engagement)}) e"""
        else:
            base = f"""
                SELECT CAST(NULL AS STRING) AS request_id, user_id, item_id, CAST(NULL AS INT) AS position, ts,
                       CAST(NULL AS STRING) AS surface, CAST(NULL AS DOUBLE) AS policy_propensity,
                       FALSE AS slot_mismatch, ts AS click_ts, 1 AS observed, 0 AS exposure
                FROM ({_ratings_sql()}) x WHERE rating >= {float(config.positive_rating)!r}"""
        names = ", ".join(f"'{s}'" for s in splits)
        parts.append(f"SELECT q.*, {split} AS split FROM ({base}) q WHERE {split} IN ({names})")
    return " UNION ALL ".join(parts)


def _core_sql(engine: Engine, config: LabelConfig, modes: dict[Split, SplitMode]) -> str:
    """Label rows before grading and weighting: key columns, split, Y, and the propensity of the estimand.

    Exposure rows without an examination (orphan impressions whose surface has no fit) are left out;
    under the ``logged`` estimand so are rows whose slot disagrees with their slate.
    """
    # A row's outcome, like its propensity, only uses what happened before its split's end: a click
    # one second after train_end on a training impression is not seen by training.
    within = _within_split("r.click_ts", "r.split", config.cutoffs)
    keep = "(r.exposure = 0 OR b.examination IS NOT NULL)"
    if config.estimand is Estimand.LOGGED:
        keep += " AND NOT (r.exposure = 1 AND r.slot_mismatch)"
    use_logged = {
        Estimand.LOGGED: "exposure = 1",
        Estimand.POSITION: "FALSE",
        # Per split: logged only when every exposure row of the split carries a logged propensity.
        Estimand.AUTO: "exposure = 1 AND all_logged = 1",
    }[config.estimand]
    return f"""
        SELECT request_id, user_id, item_id, position, ts, surface, split, observed, click_ts,
               policy_propensity, examination,
               CASE WHEN exposure = 0 THEN popularity WHEN {use_logged} THEN policy_propensity * examination
                    ELSE examination END AS propensity,
               CASE WHEN exposure = 0 THEN '{PropensitySource.POPULARITY}' WHEN {use_logged} THEN '{PropensitySource.LOGGED}'
                    ELSE '{PropensitySource.CLICK_MODEL}' END AS propensity_source
        FROM (
            SELECT r.request_id, r.user_id, r.item_id, r.position, r.ts, r.surface, r.split, r.exposure,
                   CASE WHEN r.observed = 1 AND {within} THEN 1 ELSE 0 END AS observed,
                   CASE WHEN r.observed = 1 AND {within} THEN r.click_ts END AS click_ts,
                   r.policy_propensity, b.examination, p.propensity AS popularity,
                   MIN(CASE WHEN r.policy_propensity IS NULL THEN 0 ELSE 1 END) OVER (PARTITION BY r.split) AS all_logged
            FROM ({_rows_sql(engine, config, modes)}) r
            LEFT JOIN {_BIAS_RELATION} b ON b.split = r.split AND b.surface = r.surface AND b.position = r.position
            LEFT JOIN {_POPULARITY_RELATION} p ON p.split = r.split AND p.item_id = r.item_id
            WHERE {keep}
        ) c"""


def snips_scales(
    engine: Engine, config: LabelConfig, item_propensities: pa.Table, modes: dict[Split, SplitMode] | None = None
) -> pa.Table:
    """Per ratings-only split: the SNIPS scale of its popularity propensities.

    The popularity heuristic ``(n_i / max n) ** eta`` has no absolute scale: if the true exposure
    probability is ``c * theta``, the weights ``1 / theta`` are ``c`` times too small and the estimand
    (``E[Y / theta] = c * R``) shrinks with them. Self-normalization estimates ``c`` from the data:
    ``sum over exposed pairs of 1 / (c * theta)`` estimates the number of (user, item) pairs, so

        scale = pairs / sum over exposed (user, item) pairs of 1 / max(theta_i, M)

    and ``scale / max(theta, M)`` is an inverse exposure probability again: ``Y * scale / theta``
    estimates relevance, and its mean over all pairs is the SNIPS estimate of mean relevance. Pairs are
    the split scope's distinct rating users times its distinct rated items. Logged and click-model
    propensities are probabilities already and are never rescaled.

    The sums are computed in Python from integer counts with :func:`math.fsum` (exactly rounded, so
    independent of order): the same bytes on every run and on both engines.

    Returns:
        ``split, pairs, inverse_sum, scale`` for each ratings-only split with rows.
    """
    modes = modes if modes is not None else split_modes(engine, config.cutoffs)
    rating_splits = [s for s in Split if not modes[s].exposure]
    schema = pa.schema([("split", pa.string()), ("pairs", pa.int64()), ("inverse_sum", pa.float64()), ("scale", pa.float64())])
    if not rating_splits:
        return schema.empty_table()
    ratings = f"({_ratings_sql()}) r"
    parts = []
    for split in rating_splits:
        before = _before("ts", config.cutoffs.end_of(split))
        parts.append(f"SELECT '{split}' AS split, item_id, COUNT(DISTINCT user_id) AS users FROM {ratings} "
                     f"WHERE {before} GROUP BY item_id")
        parts.append(f"SELECT '{split}' AS split, CAST(NULL AS STRING) AS item_id, COUNT(DISTINCT user_id) AS users "
                     f"FROM {ratings} WHERE {before}")
    counts = engine.query(" UNION ALL ".join(parts)).to_pylist()
    theta = {(r["split"], r["item_id"]): float(r["propensity"]) for r in item_propensities.to_pylist()}
    m = float(config.clip_min)
    rows = []
    for split in rating_splits:
        mine = [r for r in counts if r["split"] == split]
        users = next((int(r["users"]) for r in mine if r["item_id"] is None), 0)
        per_item = [(r["item_id"], int(r["users"])) for r in mine if r["item_id"] is not None]
        inverse_sum = math.fsum(n / max(theta[(str(split), item)], m) for item, n in per_item)
        if inverse_sum > 0:
            pairs = users * len(per_item)
            rows.append({"split": str(split), "pairs": pairs, "inverse_sum": inverse_sum, "scale": pairs / inverse_sum})
    return pa.Table.from_pylist(rows, schema=schema)


def label_days(engine: Engine, exposure: bool) -> list[dt.date]:
    """The days that have label rows (by the exposure's or rating's timestamp)."""
    d = engine.dialect
    source = "impressions" if exposure else f"({_ratings_sql()}) r"
    result = engine.query(f"SELECT DISTINCT {d.date_of('ts')} AS day FROM {source} ORDER BY day")
    return [v for v in result.column("day").to_pylist() if v is not None]


def prepare_label_inputs(engine: Engine, position_bias: pa.Table, item_propensities: pa.Table) -> None:
    """Register the fitted propensity tables that :func:`iter_debiased_labels` joins to."""
    engine.register_arrow(_BIAS_RELATION, position_bias.select(["split", "surface", "position", "examination"]))
    engine.register_arrow(_POPULARITY_RELATION, item_propensities.select(["split", "item_id", "propensity"]))


def iter_debiased_labels(
    engine: Engine,
    config: LabelConfig,
    position_bias: pa.Table,
    item_propensities: pa.Table,
    days: Sequence[dt.date] | None = None,
) -> Iterator[tuple[dt.date, pa.Table]]:
    """Build the label rows of the whole range in one set-based pass, and hand them out day by day.

    One query builds every row (its cost grows with rows, not with days: a 20-year dataset is one
    pass, not 7,000); its result, in time order, streams out of the engine and is cut into the daily
    partitions of ``LABELS_DEBIASED_LABELS``. Memory holds one day's rows (and one batch) as Arrow, not
    the run's: the engine sorts within its own memory limit, spilling to disk.

    Args:
        engine: Engine with the raw relations registered (:func:`register_sources`).
        config: Label settings.
        position_bias: Output of :func:`fit_position_bias`.
        item_propensities: Output of :func:`exposure_propensities`.
        days: Days to hand out (default: every day with rows; a listed day without rows is empty).

    Yields:
        ``(day, labels of that day)``, in day order.

    Raises:
        ValueError: The ``logged`` estimand and an exposure row without a logged propensity.
    """
    prepare_label_inputs(engine, position_bias, item_propensities)
    register_slate_slots(engine)
    modes = split_modes(engine, config.cutoffs)
    scales = snips_scales(engine, config, item_propensities, modes) if config.snips else None
    engine.register_arrow(_SNIPS_RELATION, (scales if scales is not None else _NO_SCALES).select(["split", "scale"]))
    sql = _labels_sql(engine, config, modes)
    if config.estimand is Estimand.LOGGED:
        # Checked before any day is handed out, so a refused run writes nothing (one more pass over the rows).
        _require_logged(engine.query(f"SELECT split, propensity FROM ({sql}) l WHERE propensity IS NULL"))
    contract = contracts.LABELS_DEBIASED_LABELS
    by_day = _days_of(engine.query_batches(f"SELECT * FROM ({sql}) l ORDER BY ts"))
    if days is None:
        for day, rows in by_day:
            yield day, _conform(rows, contract)
        return
    # The listed days in order: a day without rows is empty, rows of a day not listed are skipped.
    found = next(by_day, None)
    for day in sorted(days):
        while found is not None and found[0] < day:
            found = next(by_day, None)
        if found is not None and found[0] == day:
            yield day, _conform(found[1], contract)
        else:
            yield day, contract.schema.empty_table()


def _require_logged(table: pa.Table) -> None:
    missing = table.filter(pc.is_null(table["propensity"]))
    if missing.num_rows:
        by_split = {s: int(n) for s, n in zip(*np.unique(missing["split"].to_numpy(zero_copy_only=False), return_counts=True), strict=True)}
        raise ValueError(
            f"estimand 'logged' needs a logged propensity on every exposure row; rows without one per split: {by_split} "
            "(use estimand 'position' or 'auto')"
        )


def _days_of(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[dt.date, pa.Table]]:
    """Cut record batches in ``ts`` order into their UTC days, a day's rows at a time."""
    epoch = dt.date(1970, 1, 1)
    current: int | None = None
    held: list[pa.RecordBatch] = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        numbers = pc.cast(pc.cast(batch["ts"], pa.timestamp("ms")), pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(np.int64)
        starts = np.concatenate([[0], np.flatnonzero(np.diff(numbers)) + 1])
        ends = np.append(starts[1:], batch.num_rows)
        for a, b in zip(starts, ends, strict=True):
            number = int(numbers[a])
            if current is not None and number != current:
                yield epoch + dt.timedelta(days=current), pa.Table.from_batches(held)
                held = []
            current = number
            held.append(batch.slice(a, b - a))
    if current is not None:
        yield epoch + dt.timedelta(days=current), pa.Table.from_batches(held)


def _labels_sql(engine: Engine, config: LabelConfig, modes: dict[Split, SplitMode]) -> str:
    d = engine.dialect
    m = float(config.clip_min)
    window_ms = int(config.attribution_window.total_seconds() * 1000)
    core = _core_sql(engine, config, modes)
    return f"""
        WITH core AS ({core}),
        graded AS (
            SELECT x.user_id, x.item_id, x.click_ts, x.split, MAX(s.grade) AS grade
            FROM (SELECT DISTINCT user_id, item_id, click_ts, split FROM core WHERE click_ts IS NOT NULL) x
            JOIN ({_signals_sql(config.grades)}) s
              ON s.user_id = x.user_id AND s.item_id = x.item_id
             AND {d.epoch_ms('s.ts')} >= {d.epoch_ms('x.click_ts')}
             AND {d.epoch_ms('s.ts')} <= {d.epoch_ms('x.click_ts')} + {window_ms}
             AND {_within_split('s.ts', 'x.split', config.cutoffs)}
            GROUP BY x.user_id, x.item_id, x.click_ts, x.split
        ),
        weighted AS (
            SELECT c.*, COALESCE(g.grade, 0) AS relevance_grade,
                   COALESCE(n.scale, 1.0) / GREATEST(c.propensity, {m!r}) AS ips_weight
            FROM core c
            LEFT JOIN graded g ON g.user_id = c.user_id AND g.item_id = c.item_id AND g.click_ts = c.click_ts AND g.split = c.split
            LEFT JOIN {_SNIPS_RELATION} n ON n.split = c.split AND c.propensity_source = '{PropensitySource.POPULARITY}'
        )
        SELECT request_id, user_id, item_id, ts, surface, CAST(position AS INT) AS position, split,
               CAST(observed AS INT) AS observed, CAST(relevance_grade AS INT) AS relevance_grade,
               policy_propensity, examination, propensity, propensity_source,
               propensity < {m!r} AS clipped, ips_weight,
               observed * ips_weight AS weight_positive,
               1.0 - observed * ips_weight AS weight_negative
        FROM weighted"""


def _conform(table: pa.Table, contract: contracts.TableContract) -> pa.Table:
    # A stable row order makes the written bytes deterministic whatever the engine's join order.
    ordered = table.sort_by([(c, "ascending") for c in ("ts", "user_id", "item_id", "request_id", "position")])
    return ordered.select(contract.schema.names).cast(contract.schema)


# --- summaries for checks and validation ------------------------------------------------------------


@dataclass(frozen=True)
class ExposureDiagnostics:
    """Impressions the label table cannot use as they are (for metadata).

    Attributes:
        orphan_impressions: Impressions whose request has no slate (surface ``default``).
        orphans_excluded: Orphans left out of the labels: their surface has no fit in their split's
            scope (no orphan at position 0 to anchor a curve).
        slot_mismatches: Impressions whose slate logs propensities but lists the item at another slot
            than the impression's position (or not at all): they have no logged propensity, and the
            ``logged`` estimand leaves them out.
    """

    orphan_impressions: int
    orphans_excluded: int
    slot_mismatches: int


def exposure_diagnostics(engine: Engine, config: LabelConfig, position_bias: pa.Table) -> ExposureDiagnostics:
    """Count orphan impressions (and those left out) and slot mismatches, each against its split's fit."""
    register_slate_slots(engine)
    engine.register_arrow(_BIAS_RELATION, position_bias.select(["split", "surface", "position", "examination"]))
    split = config.cutoffs.split_sql("e.ts")
    row = engine.query(f"""
        SELECT COALESCE(SUM(CASE WHEN e.orphan THEN 1 ELSE 0 END), 0) AS orphans,
               COALESCE(SUM(CASE WHEN e.orphan AND b.examination IS NULL THEN 1 ELSE 0 END), 0) AS excluded,
               COALESCE(SUM(CASE WHEN e.slot_mismatch THEN 1 ELSE 0 END), 0) AS mismatches
        FROM ({_exposures_sql(engine.dialect, config, Engagement.CLICKS)}) e
        LEFT JOIN {_BIAS_RELATION} b ON b.split = {split} AND b.surface = e.surface AND b.position = e.position
        WHERE e.surface = '{DEFAULT_SURFACE}' OR e.slot_mismatch""").to_pylist()[0]
    return ExposureDiagnostics(int(row["orphans"]), int(row["excluded"]), int(row["mismatches"]))


@dataclass(frozen=True)
class LabelStats:
    """Facts about a label table, computed by the engine over its files."""

    rows: int
    positives: int
    clipped: int
    non_finite_weights: int
    non_positive_ips: int
    propensity_out_of_range: int
    rows_by_source: dict[str, int]
    rows_by_split: dict[str, int]
    sources_by_split: dict[str, list[str]]  # the estimand of each split: one source, unless a split mixes

    @property
    def clipped_share(self) -> float:
        return self.clipped / self.rows if self.rows else 0.0

    @classmethod
    def empty(cls) -> LabelStats:
        """The facts of a table without rows."""
        return cls(0, 0, 0, 0, 0, 0, {}, {}, {})


def label_stats(engine: Engine, relation: str) -> LabelStats:
    """Check facts of the label table registered as ``relation``."""
    totals = engine.query(f"""
        SELECT COUNT(*) AS n_rows, COALESCE(SUM(observed), 0) AS positives,
               COALESCE(SUM(CASE WHEN clipped THEN 1 ELSE 0 END), 0) AS n_clipped,
               COALESCE(SUM(CASE WHEN isnan(ips_weight) OR isnan(weight_positive) OR isnan(weight_negative)
                        OR ips_weight IS NULL OR weight_positive IS NULL OR weight_negative IS NULL
                        OR ABS(ips_weight) = CAST('Infinity' AS DOUBLE) OR ABS(weight_negative) = CAST('Infinity' AS DOUBLE)
                        THEN 1 ELSE 0 END), 0) AS non_finite,
               COALESCE(SUM(CASE WHEN NOT (ips_weight > 0) THEN 1 ELSE 0 END), 0) AS non_positive,
               COALESCE(SUM(CASE WHEN propensity IS NULL OR NOT (propensity > 0 AND propensity <= 1) THEN 1 ELSE 0 END), 0) AS out_of_range
        FROM {relation}""").to_pylist()[0]
    by_source = engine.query(f"SELECT propensity_source AS k, COUNT(*) AS n FROM {relation} GROUP BY propensity_source").to_pylist()
    by_split = engine.query(f"SELECT split AS k, COUNT(*) AS n FROM {relation} GROUP BY split").to_pylist()
    pairs = engine.query(f"SELECT DISTINCT split, propensity_source FROM {relation}").to_pylist()
    sources: dict[str, list[str]] = {}
    for r in sorted(pairs, key=lambda r: (str(r["split"]), str(r["propensity_source"]))):
        sources.setdefault(str(r["split"]), []).append(str(r["propensity_source"]))
    return LabelStats(
        rows=int(totals["n_rows"]),
        positives=int(totals["positives"]),
        clipped=int(totals["n_clipped"]),
        non_finite_weights=int(totals["non_finite"]),
        non_positive_ips=int(totals["non_positive"]),
        propensity_out_of_range=int(totals["out_of_range"]),
        rows_by_source={r["k"]: int(r["n"]) for r in sorted(by_source, key=lambda r: str(r["k"]))},
        rows_by_split={r["k"]: int(r["n"]) for r in sorted(by_split, key=lambda r: str(r["k"]))},
        sources_by_split=sources,
    )
