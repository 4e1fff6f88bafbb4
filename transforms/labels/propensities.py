"""Propensity estimators: the click model's examination curves (position bias) and item popularity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from transforms.cutoffs import Split, ts_literal
from transforms.engine import Engine
from transforms.labels.click_model import ExaminationFit, fit_examination
from transforms.labels.config import Engagement, ExposureBasis, LabelConfig, RelevanceGrouping
from transforms.labels.exposures import (
    DEFAULT_SURFACE,
    _before,
    _exposures_sql,
    _ratings_sql,
    engagement_of,
    register_slate_slots,
    split_modes,
)
from warehouse import contracts


@dataclass(frozen=True)
class SurfaceFit:
    """The click-model fit of one surface for one split's scope (for metadata)."""

    split: Split
    surface: str
    fit: ExaminationFit


# --- click model -------------------------------------------------------------------------------------


def click_model_cells(
    engine: Engine, config: LabelConfig, end: dt.datetime | None, engagement: Engagement | None = None
) -> pa.Table:
    """Impressions and clicks per ``(surface, position, item, segment)`` from data before ``end`` (None: all).

    A click counts only when it, too, happened before ``end``. The segment holds the context flags of
    :class:`RelevanceGrouping` (or is empty).
    """
    d = engine.dialect
    register_slate_slots(engine)
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

    A split without impressions before its end (ratings only) has no fit. The curve is anchored at
    position 0, so a surface without impressions at position 0 cannot be fitted: a slate surface fails
    at once (its positions are not 0-based), while orphan impressions (no slate, surface ``default``)
    beside slate surfaces are left without a fit, and their label rows out (:func:`exposure_diagnostics`
    counts them).

    Returns:
        The ``labels/position_bias`` table (contract ``LABELS_POSITION_BIAS``) and the fits.

    Raises:
        ValueError: A surface has impressions but none at position 0 in a split's scope.
    """
    rows: dict[str, list[object]] = {f.name: [] for f in contracts.LABELS_POSITION_BIAS.schema}
    fits: list[SurfaceFit] = []
    modes = split_modes(engine, config.cutoffs)
    for split in Split:
        if not modes[split].exposure:
            continue
        end = config.cutoffs.end_of(split)
        cells = click_model_cells(engine, config, end, modes[split].engagement)
        if cells.num_rows == 0:
            continue
        columns = {n: np.asarray(cells.column(n).to_pylist(), dtype=object) for n in ("surface", "item_id", "segment")}
        position = cells.column("position").to_numpy().astype(np.int64)
        impressions = cells.column("impressions").to_numpy().astype(np.int64)
        clicks = cells.column("clicks").to_numpy().astype(np.int64)
        surfaces = sorted(set(columns["surface"].tolist()))
        for surface in surfaces:
            mask = columns["surface"] == surface
            if not np.any(position[mask] == 0):
                if surface == DEFAULT_SURFACE and len(surfaces) > 1:
                    continue  # orphan impressions: no anchor, no fit; their rows are left out and counted
                raise ValueError(
                    f"surface '{surface}' has {int(impressions[mask].sum())} impressions before "
                    f"{end or 'the end of the data'} but none at position 0 (its smallest position is "
                    f"{int(position[mask].min())}): positions must be 0-based, the top slot anchors the examination curve"
                )
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
    register_slate_slots(engine)
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

    ``n_i`` counts impressions when the split has exposure logs before its end, and observed ratings
    (each once, :func:`transforms.labels.exposures._ratings_sql`) otherwise.

    Returns:
        The ``labels/exposure_propensities`` table (contract ``LABELS_EXPOSURE_PROPENSITIES``).
    """
    modes = split_modes(engine, config.cutoffs)
    parts = []
    for split in Split:
        basis = ExposureBasis.IMPRESSIONS if modes[split].exposure else ExposureBasis.RATINGS
        source = "impressions" if basis is ExposureBasis.IMPRESSIONS else f"({_ratings_sql()}) r"
        end = config.cutoffs.end_of(split)
        until = "CAST(NULL AS TIMESTAMP)" if end is None else ts_literal(end)
        counts = f"SELECT item_id, COUNT(*) AS n FROM {source} WHERE {_before('ts', end)} GROUP BY item_id"
        parts.append(f"""
            SELECT '{split}' AS split, {until} AS fitted_until, c.item_id, c.n AS exposures,
                   POWER(CAST(c.n AS DOUBLE) / m.top, {float(config.popularity_eta)!r}) AS propensity,
                   '{basis}' AS basis
            FROM ({counts}) c CROSS JOIN (SELECT MAX(n) AS top FROM ({counts}) t) m""")
    table = engine.query(" UNION ALL ".join(parts))
    order = [(c, "ascending") for c in ("split", "item_id")]
    return table.sort_by(order).select(contracts.LABELS_EXPOSURE_PROPENSITIES.schema.names).cast(
        contracts.LABELS_EXPOSURE_PROPENSITIES.schema
    )
