"""Label assembly: one row per exposure with its propensity, clipped IPS weights, SNIPS, and diagnostics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa

from transforms.cutoffs import ts_literal
from transforms.engine import Engine
from transforms.labels.config import Engagement, LabelConfig, PropensitySource
from transforms.labels.exposures import (
    _exposures_sql,
    _ratings_sql,
    _signals_sql,
    _within_split,
    engagement_of,
    has_exposure_logs,
)
from warehouse import contracts

_BIAS_RELATION = "labels_position_bias"
_POPULARITY_RELATION = "labels_item_propensity"
_SNIPS_RELATION = "labels_snips_scale"


# --- labels ------------------------------------------------------------------------------------------


def _core_sql(engine: Engine, config: LabelConfig, exposure: bool, day: dt.date | None, engagement: Engagement) -> str:
    """Label rows before grading and weighting: key columns, split, Y, and each propensity candidate."""
    d = engine.dialect
    window = ""
    if day is not None:
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        window = f"AND ts >= {ts_literal(start)} AND ts < {ts_literal(start + dt.timedelta(days=1))}"
    split = config.cutoffs.split_sql("q.ts")
    if exposure:
        base = f"""
            SELECT request_id, user_id, item_id, position, ts, surface,
                   {"policy_propensity" if config.use_logged_propensities else "CAST(NULL AS DOUBLE) AS policy_propensity"}, click_ts,
                   CASE WHEN click_ts IS NULL THEN 0 ELSE 1 END AS observed
            FROM ({_exposures_sql(d, config, engagement)}) e WHERE TRUE {window}"""
    else:
        base = f"""
            SELECT CAST(NULL AS STRING) AS request_id, user_id, item_id, CAST(NULL AS INT) AS position, ts,
                   CAST(NULL AS STRING) AS surface, CAST(NULL AS DOUBLE) AS policy_propensity,
                   ts AS click_ts, 1 AS observed
            FROM ({_ratings_sql()}) x WHERE rating >= {float(config.positive_rating)!r} {window}"""
    # A row's outcome, like its propensity, only uses what happened before its split's end: a click
    # one second after train_end on a training impression is not seen by training.
    within = _within_split("r.click_ts", "r.split", config.cutoffs)
    source = (
        f"CASE WHEN r.policy_propensity IS NOT NULL THEN '{PropensitySource.LOGGED}' "
        f"WHEN b.examination IS NOT NULL THEN '{PropensitySource.CLICK_MODEL}' "
        f"ELSE '{PropensitySource.POPULARITY}' END"
    )
    propensity = (
        "CASE WHEN r.policy_propensity IS NOT NULL THEN r.policy_propensity * COALESCE(b.examination, 1.0) "
        "WHEN b.examination IS NOT NULL THEN b.examination ELSE p.propensity END"
    )
    return f"""
        SELECT r.request_id, r.user_id, r.item_id, r.position, r.ts, r.surface, r.split,
               CASE WHEN r.observed = 1 AND {within} THEN 1 ELSE 0 END AS observed,
               CASE WHEN r.observed = 1 AND {within} THEN r.click_ts END AS click_ts,
               r.policy_propensity, b.examination, {propensity} AS propensity, {source} AS propensity_source
        FROM (SELECT q.*, {split} AS split FROM ({base}) q) r
        LEFT JOIN {_BIAS_RELATION} b ON b.split = r.split AND b.surface = r.surface AND b.position = r.position
        LEFT JOIN {_POPULARITY_RELATION} p ON p.split = r.split AND p.item_id = r.item_id"""


def snips_scales(engine: Engine, config: LabelConfig, exposure: bool) -> pa.Table:
    """Per (split, source): rows, the sum of clipped inverse propensities, and the SNIPS scale ``n / sum``."""
    m = float(config.clip_min)
    return engine.query(f"""
        SELECT split, propensity_source, COUNT(*) AS n, SUM(1.0 / GREATEST(propensity, {m!r})) AS inverse_sum,
               COUNT(*) / SUM(1.0 / GREATEST(propensity, {m!r})) AS scale
        FROM ({_core_sql(engine, config, exposure, None, engagement_of(engine))}) c
        WHERE propensity IS NOT NULL
        GROUP BY split, propensity_source""")


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
    """Build the label rows day by day (bounded memory), each typed by ``LABELS_DEBIASED_LABELS``.

    Args:
        engine: Engine with the raw relations registered (:func:`register_sources`).
        config: Label settings.
        position_bias: Output of :func:`fit_position_bias`.
        item_propensities: Output of :func:`exposure_propensities`.
        days: Days to build (default: every day with data).

    Yields:
        ``(day, labels of that day)``.
    """
    prepare_label_inputs(engine, position_bias, item_propensities)
    exposure = has_exposure_logs(engine)
    engagement = engagement_of(engine)
    scale_by_group: dict[tuple[str, str], float] = {}
    if config.snips:
        for row in snips_scales(engine, config, exposure).to_pylist():
            scale_by_group[(row["split"], row["propensity_source"])] = float(row["scale"])
    engine.register_arrow(
        _SNIPS_RELATION,
        pa.table(
            {
                "split": [k[0] for k in scale_by_group],
                "propensity_source": [k[1] for k in scale_by_group],
                "scale": list(scale_by_group.values()),
            },
            schema=pa.schema([("split", pa.string()), ("propensity_source", pa.string()), ("scale", pa.float64())]),
        ),
    )
    for day in days if days is not None else label_days(engine, exposure):
        yield day, _labels_of_day(engine, config, exposure, day, engagement)


def _labels_of_day(engine: Engine, config: LabelConfig, exposure: bool, day: dt.date, engagement: Engagement) -> pa.Table:
    d = engine.dialect
    m = float(config.clip_min)
    window_ms = int(config.attribution_window.total_seconds() * 1000)
    core = _core_sql(engine, config, exposure, day, engagement)
    table = engine.query(f"""
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
                   GREATEST(c.propensity, {m!r}) AS propensity_clipped,
                   COALESCE(n.scale, 1.0) / GREATEST(c.propensity, {m!r}) AS ips_weight
            FROM core c
            LEFT JOIN graded g ON g.user_id = c.user_id AND g.item_id = c.item_id AND g.click_ts = c.click_ts AND g.split = c.split
            LEFT JOIN {_SNIPS_RELATION} n ON n.split = c.split AND n.propensity_source = c.propensity_source
        )
        SELECT request_id, user_id, item_id, ts, surface, CAST(position AS INT) AS position, split,
               CAST(observed AS INT) AS observed, CAST(relevance_grade AS INT) AS relevance_grade,
               policy_propensity, examination, propensity, propensity_source,
               propensity < {m!r} AS clipped, ips_weight,
               observed * ips_weight AS weight_positive,
               1.0 - observed * ips_weight AS weight_negative
        FROM weighted""")
    return _conform(table, contracts.LABELS_DEBIASED_LABELS)


def _conform(table: pa.Table, contract: contracts.TableContract) -> pa.Table:
    # A stable row order makes the written bytes deterministic whatever the engine's join order.
    ordered = table.sort_by([(c, "ascending") for c in ("ts", "user_id", "item_id", "request_id", "position")])
    return ordered.select(contract.schema.names).cast(contract.schema)


# --- summaries for checks and validation ------------------------------------------------------------


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

    @property
    def clipped_share(self) -> float:
        return self.clipped / self.rows if self.rows else 0.0

    @classmethod
    def empty(cls) -> LabelStats:
        """The facts of a table without rows."""
        return cls(0, 0, 0, 0, 0, 0, {}, {})


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
    return LabelStats(
        rows=int(totals["n_rows"]),
        positives=int(totals["positives"]),
        clipped=int(totals["n_clipped"]),
        non_finite_weights=int(totals["non_finite"]),
        non_positive_ips=int(totals["non_positive"]),
        propensity_out_of_range=int(totals["out_of_range"]),
        rows_by_source={r["k"]: int(r["n"]) for r in sorted(by_source, key=lambda r: str(r["k"]))},
        rows_by_split={r["k"]: int(r["n"]) for r in sorted(by_split, key=lambda r: str(r["k"]))},
    )
