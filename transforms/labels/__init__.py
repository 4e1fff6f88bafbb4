"""MNAR-debiased labels: propensities from exposure logs, a click model, or popularity; IPS weights.

Following Saito et al. (WSDM 2020), an observed engagement is ``Y = O * R``: exposure ``O`` times
relevance ``R``. With ``theta = P(O = 1)`` clipped from below at ``M``, the unbiased point-wise loss
weights the positive term by ``Y / theta`` and the negative term by ``1 - Y / theta``. This module
turns staged raw tables into one label row per exposure, each carrying its propensity and the
estimator that produced it, in the preference order of DESIGN.md section 2:

=================  ================================================================================
``logged``          the logging policy's probability of the item in its slot (``impressions.propensity``
                    or ``slates.propensities[position]``), times the click model's examination of the
                    slot: being served is not being seen, the policy's propensity knows nothing of it
``click_model``     ``P(examined | surface, position)`` from a position-based click model fitted by EM
                    (:mod:`transforms.labels.click_model`) to impressions and the clicks linked to them
``popularity``      ``(n_i / max n) ** eta`` for datasets without exposure logs (ratings only), ``n_i``
                    the item's observed interactions
=================  ================================================================================

Rows. With exposure logs: one row per rendered impression ``(request, user, item, position)``; ``Y``
is 1 when a click links to it (``events.request_id``). Without them (ratings-only data): one row per
observed positive (a rating at or above ``positive_rating``).

Graded relevance comes from explicit signals that follow a click on the same item by the same user
within ``attribution_window`` (dwell of a view, add to cart, purchase, a review's rating), mapped by
:class:`GradeRule`\\s; the best grade wins.

Leakage. Each split (train before ``train_end``, valid before ``valid_end``, test after) has its own
fit: the click model and the popularity counts used for a split's rows see only impressions, clicks
and ratings from before that split's end (test: everything). A row's outcome (``Y`` and its grade)
likewise counts only events before its split's end. Training rows therefore never depend on anything
at or after ``train_end``. The cut-offs are :class:`transforms.cutoffs.Cutoffs`, the same pair every
layer uses (resolved once per run by ``assets.resources.CutoffsResource``).

Scale. Every relational step (joins of impressions with slates and clicks, per-cell counts, popularity,
label assembly, clipping, SNIPS sums) is SQL run by the engine over Parquet files, written once with
:class:`transforms.engine.Dialect` macros for DuckDB and Spark. Python only sees aggregates (per
``(surface, position, item)`` click-model cells and per-item counts) and one day of labels at a time
(:func:`iter_debiased_labels`), so memory does not grow with the number of impressions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pyarrow as pa

from transforms.cutoffs import Cutoffs, Split
from transforms.engine import Dialect, Engine
from transforms.labels.click_model import ClickModelConfig, ExaminationFit, fit_examination
from warehouse import contracts
from warehouse.contracts import EventType

DEFAULT_SURFACE = "default"  # impressions whose slate is unknown share one examination curve
SOURCE_RELATIONS: Mapping[str, contracts.TableContract] = {
    "slates": contracts.RAW_SLATES,
    "impressions": contracts.RAW_IMPRESSIONS,
    "events": contracts.RAW_EVENTS,
    "reviews": contracts.RAW_REVIEWS,
    "items": contracts.RAW_ITEMS,
}
_BIAS_RELATION = "labels_position_bias"
_POPULARITY_RELATION = "labels_item_propensity"
_SNIPS_RELATION = "labels_snips_scale"


class PropensitySource(StrEnum):
    """Which estimator produced a row's propensity, in order of preference."""

    LOGGED = "logged"
    CLICK_MODEL = "click_model"
    POPULARITY = "popularity"


class Engagement(StrEnum):
    """What makes an exposure's ``Y`` 1: a linked click, or (logs without clicks) a positive rating."""

    CLICKS = "clicks"
    RATINGS = "ratings"


class RelevanceGrouping(StrEnum):
    """What the click model's relevance parameters are per.

    ``item``: one per item. ``item_context``: one per item and two context flags: whether the item's
    top-level category is the most common one among the items rendered with it (the slate's context),
    and whether it is the category the user was shown most (the user's taste, as the policy sees it).
    A personalized or contextual logging policy ranks the items of the user's (or the anchor's)
    category first, so even for one item relevance falls with position; with one parameter per item
    that drop leaks into the examination curve (on the sample world's ``related`` surface, noise-free,
    the deepest positions came out up to 0.07 too low; with both flags, 0.03). The flags are defined
    by what was rendered, never by clicks, so they do not depend on the outcome the model explains,
    and only by impressions before the scope's cut-off.
    """

    ITEM = "item"
    ITEM_CONTEXT = "item_context"


class ExposureBasis(StrEnum):
    """What the popularity counts ``n_i`` count."""

    IMPRESSIONS = "impressions"
    RATINGS = "ratings"


@dataclass(frozen=True)
class GradeRule:
    """An explicit signal that earns a relevance grade.

    Attributes:
        signal: The event type (``rating`` covers reviews too).
        grade: The grade earned (higher is more relevant).
        min_value: When set, the event's value (dwell seconds, rating) must be at least this.
    """

    signal: EventType
    grade: int
    min_value: float | None = None


DEFAULT_GRADES: tuple[GradeRule, ...] = (
    GradeRule(EventType.CLICK, 1),
    GradeRule(EventType.VIEW, 2, min_value=30.0),  # a half-minute read is more than a mis-click
    GradeRule(EventType.ADD_TO_CART, 2),
    GradeRule(EventType.PURCHASE, 3),
    GradeRule(EventType.RATING, 4, min_value=4.0),
)


@dataclass(frozen=True)
class LabelConfig:
    """How labels are built.

    Attributes:
        cutoffs: Split boundaries; propensities of a split use only data before its end.
        clip_min: ``M``: propensities are clipped from below at this value before inverting.
        snips: Self-normalize the inverse propensities per (split, source) to average 1.
        use_logged_propensities: Use logged policy propensities where present (DESIGN.md's first
            choice). Off, every exposure row is debiased for position only (``click_model``).
        popularity_eta: ``eta`` of the popularity heuristic (Saito et al. use 0.5).
        positive_rating: Ratings-only data: a rating at or above this is an observed positive.
        grades: Signal to grade mapping for graded relevance.
        attribution_window: Signals after a click count for it within this window.
        relevance_by: Grouping of the click model's relevance parameters.
        click_model: EM settings.
    """

    cutoffs: Cutoffs
    clip_min: float = 0.01
    snips: bool = False
    use_logged_propensities: bool = True
    popularity_eta: float = 0.5
    positive_rating: float = 4.0
    grades: tuple[GradeRule, ...] = DEFAULT_GRADES
    attribution_window: dt.timedelta = dt.timedelta(hours=24)
    relevance_by: RelevanceGrouping = RelevanceGrouping.ITEM_CONTEXT
    click_model: ClickModelConfig = field(default_factory=ClickModelConfig)

    def __post_init__(self) -> None:
        if not 0.0 < self.clip_min <= 1.0:
            raise ValueError(f"clip_min (M) must be in (0, 1], got {self.clip_min}")
        if self.popularity_eta < 0:
            raise ValueError(f"popularity_eta must be non-negative, got {self.popularity_eta}")
        object.__setattr__(self, "grades", tuple(GradeRule(EventType(g.signal), g.grade, g.min_value) for g in self.grades))


@dataclass(frozen=True)
class SurfaceFit:
    """The click-model fit of one surface for one split's scope (for metadata)."""

    split: Split
    surface: str
    fit: ExaminationFit


# --- inputs -----------------------------------------------------------------------------------------


def register_sources(engine: Engine, files: Mapping[str, Sequence[Path]]) -> None:
    """Register the raw tables as the relations this module reads; a missing table becomes empty.

    Args:
        engine: The engine to register in.
        files: Parquet files per relation name (``slates``, ``impressions``, ``events``, ``reviews``).
    """
    for name, contract in SOURCE_RELATIONS.items():
        paths = list(files.get(name, ()))
        if paths:
            engine.register_parquet(name, paths)
        else:
            engine.register_arrow(name, contract.schema.empty_table())


def has_exposure_logs(engine: Engine) -> bool:
    """True when there is at least one impression (otherwise labels come from ratings)."""
    return int(engine.query("SELECT COUNT(*) AS n FROM impressions").column(0)[0].as_py()) > 0


# --- SQL building blocks (one definition, rendered per dialect) ---------------------------------------


def _ts_literal(value: dt.datetime) -> str:
    utc = value.astimezone(dt.UTC)
    return f"TIMESTAMP '{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _before(col: str, end: dt.datetime | None) -> str:
    return "TRUE" if end is None else f"{col} < {_ts_literal(end)}"


def _split_expr(col: str, cutoffs: Cutoffs) -> str:
    return (
        f"CASE WHEN {col} < {_ts_literal(cutoffs.train_end)} THEN '{Split.TRAIN}' "
        f"WHEN {col} < {_ts_literal(cutoffs.valid_end)} THEN '{Split.VALID}' ELSE '{Split.TEST}' END"
    )


def _within_split(col: str, split_col: str, cutoffs: Cutoffs) -> str:
    """True when ``col`` lies before the end of the split named by ``split_col`` (test: always)."""
    return (
        f"({split_col} = '{Split.TEST}' OR ({split_col} = '{Split.TRAIN}' AND {col} < {_ts_literal(cutoffs.train_end)})"
        f" OR ({split_col} = '{Split.VALID}' AND {col} < {_ts_literal(cutoffs.valid_end)}))"
    )


def _exposures_sql(d: Dialect, config: LabelConfig, engagement: Engagement) -> str:
    """Impressions with their slate's surface and policy, the logged propensity of their slot, and
    ``click_ts``, the time of their engagement (NULL when none): the first click linked to them by
    ``request_id`` or, for logs that carry ratings instead of clicks (Coat's exposures), the first
    rating at or above ``positive_rating`` by the same user on the same item within
    ``attribution_window`` after the impression.
    """
    if engagement is Engagement.CLICKS:
        engaged = f"""
        LEFT JOIN (
            SELECT request_id, item_id, MIN(ts) AS click_ts FROM events
            WHERE event_type = '{EventType.CLICK}' AND request_id IS NOT NULL AND item_id IS NOT NULL
            GROUP BY request_id, item_id
        ) c ON c.request_id = i.request_id AND c.item_id = i.item_id"""
    else:
        window_ms = int(config.attribution_window.total_seconds() * 1000)
        engaged = f"""
        LEFT JOIN (
            SELECT user_id, item_id, MIN(ts) AS click_ts FROM ({_ratings_sql()}) r
            WHERE rating >= {float(config.positive_rating)!r} GROUP BY user_id, item_id
        ) c ON c.user_id = i.user_id AND c.item_id = i.item_id
            AND {d.epoch_ms('c.click_ts')} >= {d.epoch_ms('i.ts')}
            AND {d.epoch_ms('c.click_ts')} <= {d.epoch_ms('i.ts')} + {window_ms}"""
    return f"""
        SELECT i.request_id, i.user_id, i.item_id, i.position, i.ts,
               COALESCE(s.surface, '{DEFAULT_SURFACE}') AS surface, s.policy,
               COALESCE(i.propensity, {d.list_element('s.propensities', 'i.position')}) AS policy_propensity,
               c.click_ts
        FROM impressions i
        LEFT JOIN slates s ON s.request_id = i.request_id{engaged}"""


def engagement_of(engine: Engine) -> Engagement:
    """Clicks when any click links to a request, ratings otherwise."""
    linked = engine.query(
        f"SELECT COUNT(*) AS n FROM events WHERE event_type = '{EventType.CLICK}' AND request_id IS NOT NULL"
    )
    return Engagement.CLICKS if int(linked.column(0)[0].as_py()) > 0 else Engagement.RATINGS


def _ratings_sql() -> str:
    """Every observed rating: reviews and ``rating`` events."""
    return f"""
        SELECT user_id, item_id, ts, rating FROM reviews WHERE rating IS NOT NULL
        UNION ALL
        SELECT user_id, item_id, ts, value AS rating FROM events
        WHERE event_type = '{EventType.RATING}' AND item_id IS NOT NULL AND value IS NOT NULL"""


def _grade_case(grades: Sequence[GradeRule], signal: str, value: str) -> str:
    if not grades:
        return "0"
    whens = []
    for rule in sorted(grades, key=lambda r: -r.grade):  # the first match is the best grade
        cond = f"{signal} = '{rule.signal}'"
        if rule.min_value is not None:
            cond += f" AND {value} >= {float(rule.min_value)!r}"
        whens.append(f"WHEN {cond} THEN {int(rule.grade)}")
    return f"CASE {' '.join(whens)} ELSE 0 END"


def _signals_sql(grades: Sequence[GradeRule]) -> str:
    grade = _grade_case(grades, "signal", "value")
    return f"""
        SELECT user_id, item_id, ts, {grade} AS grade FROM (
            SELECT user_id, item_id, ts, event_type AS signal, value FROM events WHERE item_id IS NOT NULL
            UNION ALL
            SELECT user_id, item_id, ts, '{EventType.RATING}' AS signal, rating AS value FROM reviews
        ) s"""


# --- click model -------------------------------------------------------------------------------------


def click_model_cells(
    engine: Engine, config: LabelConfig, end: dt.datetime | None, engagement: Engagement | None = None
) -> pa.Table:
    """Impressions and clicks per ``(surface, position, item, segment)`` from data before ``end`` (None: all).

    A click counts only when it, too, happened before ``end``. The segment holds the context flags of
    :class:`RelevanceGrouping` (or is empty).
    """
    d = engine.dialect
    if config.relevance_by is RelevanceGrouping.ITEM_CONTEXT:
        category = d.list_element("it.categories", "0")

        def modal(key: str) -> str:
            # The most common top-level category per ``key`` among impressions before ``end``.
            return f"""
            SELECT {key}, category AS modal FROM (
                SELECT {key}, category, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY n DESC, category) AS rk
                FROM (
                    SELECT im.{key}, {category} AS category, COUNT(*) AS n
                    FROM impressions im JOIN items it ON it.item_id = im.item_id
                    WHERE {_before('im.ts', end)}
                    GROUP BY im.{key}, {category}
                ) counts WHERE category IS NOT NULL
            ) ranked WHERE rk = 1"""

        segments = f"""
        LEFT JOIN (SELECT item_id, {category} AS category FROM items it) ic ON ic.item_id = e.item_id
        LEFT JOIN ({modal('request_id')}) m ON m.request_id = e.request_id
        LEFT JOIN ({modal('user_id')}) u ON u.user_id = e.user_id"""
        segment = (
            "CONCAT(CASE WHEN ic.category IS NOT NULL AND ic.category = m.modal THEN 'slate' ELSE '-' END, "
            "CASE WHEN ic.category IS NOT NULL AND ic.category = u.modal THEN 'user' ELSE '-' END)"
        )
    else:
        segments, segment = "", "''"
    return engine.query(f"""
        SELECT e.surface, CAST(e.position AS INT) AS position, e.item_id, {segment} AS segment,
               COUNT(*) AS impressions,
               CAST(SUM(CASE WHEN e.click_ts IS NOT NULL AND {_before('e.click_ts', end)} THEN 1 ELSE 0 END) AS BIGINT) AS clicks
        FROM ({_exposures_sql(d, config, engagement or engagement_of(engine))}) e{segments}
        WHERE {_before('e.ts', end)}
        GROUP BY e.surface, e.position, e.item_id, {segment}""")


def fit_position_bias(engine: Engine, config: LabelConfig) -> tuple[pa.Table, list[SurfaceFit]]:
    """Fit the examination curve of every surface, once per split scope.

    Returns:
        The ``labels/position_bias`` table (contract ``LABELS_POSITION_BIAS``) and the fits.
    """
    rows: dict[str, list[object]] = {f.name: [] for f in contracts.LABELS_POSITION_BIAS.schema}
    fits: list[SurfaceFit] = []
    engagement = engagement_of(engine)
    for split in Split:
        end = config.cutoffs.end_of(split)
        cells = click_model_cells(engine, config, end, engagement)
        if cells.num_rows == 0:
            continue
        columns = {n: np.asarray(cells.column(n).to_pylist(), dtype=object) for n in ("surface", "item_id", "segment")}
        position = cells.column("position").to_numpy().astype(np.int64)
        impressions = cells.column("impressions").to_numpy().astype(np.int64)
        clicks = cells.column("clicks").to_numpy().astype(np.int64)
        for surface in sorted(set(columns["surface"].tolist())):
            mask = columns["surface"] == surface
            # One relevance parameter per (item, segment); cells sorted so the EM sums run in one
            # order whatever order the engine returned them in.
            keys = np.array([f"{i}\x1f{g}" for i, g in zip(columns["item_id"][mask], columns["segment"][mask], strict=True)])
            order = np.lexsort((keys, position[mask]))
            _, codes = np.unique(keys[order], return_inverse=True)
            fit = fit_examination(
                position[mask][order], codes, impressions[mask][order], clicks[mask][order], config.click_model
            )
            fits.append(SurfaceFit(split, surface, fit))
            for k, exam in enumerate(fit.examination):
                rows["split"].append(str(split))
                rows["fitted_until"].append(end)
                rows["surface"].append(surface)
                rows["position"].append(k)
                rows["examination"].append(float(exam))
                rows["impressions"].append(int(fit.impressions[k]))
                rows["clicks"].append(int(fit.clicks[k]))
                rows["click_rate"].append(float(fit.clicks[k] / fit.impressions[k]) if fit.impressions[k] else None)
                rows["pooled"].append(bool(k >= fit.pooled_from))
                rows["iterations"].append(fit.iterations)
                rows["converged"].append(fit.converged)
    return pa.table(rows, schema=contracts.LABELS_POSITION_BIAS.schema), fits


def click_rates_under_policy(engine: Engine, config: LabelConfig, policy: str) -> pa.Table:
    """Click rate per (surface, position) of the slates a given (randomized) policy served.

    Under a policy that places items at random, position is independent of relevance, so the click
    rate per position divided by that of position 0 is the examination curve, free of the click
    model's assumptions: the reference the EM curve is compared with when no truth is known.
    """
    d = engine.dialect
    return engine.query(f"""
        SELECT surface, CAST(position AS INT) AS position, COUNT(*) AS impressions,
               CAST(SUM(CASE WHEN click_ts IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS clicks,
               AVG(CASE WHEN click_ts IS NOT NULL THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END) AS click_rate
        FROM ({_exposures_sql(d, config, engagement_of(engine))}) e
        WHERE policy = '{policy.replace("'", "''")}'
        GROUP BY surface, position ORDER BY surface, position""")


# --- popularity --------------------------------------------------------------------------------------


def exposure_propensities(engine: Engine, config: LabelConfig) -> pa.Table:
    """Per split scope and item: interaction count ``n_i`` and ``theta_i = (n_i / max n) ** eta``.

    ``n_i`` counts impressions when there are exposure logs and observed ratings otherwise.

    Returns:
        The ``labels/exposure_propensities`` table (contract ``LABELS_EXPOSURE_PROPENSITIES``).
    """
    basis = ExposureBasis.IMPRESSIONS if has_exposure_logs(engine) else ExposureBasis.RATINGS
    source = "impressions" if basis is ExposureBasis.IMPRESSIONS else f"({_ratings_sql()}) r"
    parts = []
    for split in Split:
        end = config.cutoffs.end_of(split)
        until = "CAST(NULL AS TIMESTAMP)" if end is None else _ts_literal(end)
        parts.append(f"""
            SELECT '{split}' AS split, {until} AS fitted_until, c.item_id, c.n AS exposures,
                   POWER(CAST(c.n AS DOUBLE) / m.top, {float(config.popularity_eta)!r}) AS propensity,
                   '{basis}' AS basis
            FROM (SELECT item_id, COUNT(*) AS n FROM {source} WHERE {_before('ts', end)} GROUP BY item_id) c
            CROSS JOIN (SELECT MAX(n) AS top FROM (
                SELECT item_id, COUNT(*) AS n FROM {source} WHERE {_before('ts', end)} GROUP BY item_id) t) m""")
    table = engine.query(" UNION ALL ".join(parts))
    order = [(c, "ascending") for c in ("split", "item_id")]
    return table.sort_by(order).select(contracts.LABELS_EXPOSURE_PROPENSITIES.schema.names).cast(
        contracts.LABELS_EXPOSURE_PROPENSITIES.schema
    )


# --- labels ------------------------------------------------------------------------------------------


def _core_sql(engine: Engine, config: LabelConfig, exposure: bool, day: dt.date | None, engagement: Engagement) -> str:
    """Label rows before grading and weighting: key columns, split, Y, and each propensity candidate."""
    d = engine.dialect
    window = ""
    if day is not None:
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        window = f"AND ts >= {_ts_literal(start)} AND ts < {_ts_literal(start + dt.timedelta(days=1))}"
    split = _split_expr("q.ts", config.cutoffs)
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
