"""What the label assets check and report: facts computed from their tables and fits (no Dagster)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from transforms.cutoffs import Split
from transforms.labels.propensities import SurfaceFit


@dataclass(frozen=True)
class LabelCheckConfig:
    """Thresholds of the label checks.

    Attributes:
        max_clipped_share: Above this share of rows clipped at ``M`` the clipped-share check warns:
            the weights are mostly ``1 / M``.
    """

    max_clipped_share: float = 0.5


@dataclass(frozen=True)
class PositionBiasReport:
    """Facts about a fitted ``labels/position_bias`` table.

    Attributes:
        out_of_range: Rows whose examination is not in (0, 1], or not 1 at position 0 (JSON-safe:
            :func:`json_safe`).
        unconverged: ``split/surface`` of every fit whose EM did not reach its tolerance.
        fits: One summary per fit (iterations, log-likelihood, pooled tail, counts).
        max_abs_error_vs_truth: Largest distance of the full-data fit from the true curve, rounded to
            4 decimals (None without truth).
    """

    out_of_range: list[dict[str, Any]]
    unconverged: list[str]
    fits: list[dict[str, Any]]
    max_abs_error_vs_truth: float | None


def json_safe(value: Any) -> Any:
    """``value`` with everything JSON cannot hold spelled out: datetimes and dates as ISO text,
    NaN and infinities as text; dicts and lists recursively. Check metadata goes through this, so no
    value in a failing row can make the check itself fail to serialize."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def truth_curves(document: Mapping[str, Any]) -> dict[str, list[float]]:
    """The true examination curve per surface from the sample world's ``truth/examination.json``."""
    surfaces = document.get("surfaces", {})
    return {name: list(spec["curve"]) for name, spec in surfaces.items()}


def position_bias_report(
    table: pa.Table, fits: Sequence[SurfaceFit], truth: Mapping[str, list[float]]
) -> PositionBiasReport:
    """Check facts and per-fit summaries of :func:`transforms.labels.fit_position_bias`'s output.

    Args:
        table: The ``labels/position_bias`` table.
        fits: The fits that produced it.
        truth: True curve per surface (empty when unknown).
    """
    rows = table.to_pylist()
    out_of_range = [
        r for r in rows if not (0 < r["examination"] <= 1) or (r["position"] == 0 and r["examination"] != 1.0)
    ]
    errors = [
        abs(r["examination"] - truth[r["surface"]][r["position"]]) for r in rows
        if r["split"] == Split.TEST and r["surface"] in truth and r["position"] < len(truth[r["surface"]])
    ]
    return PositionBiasReport(
        out_of_range=json_safe(out_of_range),
        unconverged=[f"{f.split}/{f.surface}" for f in fits if not f.fit.converged],
        fits=json_safe([
            {"split": str(f.split), "surface": f.surface, "iterations": f.fit.iterations, "converged": f.fit.converged,
             "log_likelihood": round(f.fit.log_likelihood, 3), "pooled_from": f.fit.pooled_from,
             "impressions": int(f.fit.impressions.sum()), "clicks": int(f.fit.clicks.sum())}
            for f in fits
        ]),
        max_abs_error_vs_truth=round(max(errors), 4) if errors else None,
    )


@dataclass(frozen=True)
class PropensityReport:
    """Facts about a ``labels/exposure_propensities`` table.

    Attributes:
        rows: Row count.
        basis: The bases counted (comma-separated, ``none`` when empty).
        min_propensity: The smallest propensity (None when empty).
        out_of_range: Propensities not in (0, 1] (nulls included).
    """

    rows: int
    basis: str
    min_propensity: float | None
    out_of_range: list[float | None]


def exposure_propensities_report(table: pa.Table) -> PropensityReport:
    """Check facts of :func:`transforms.labels.exposure_propensities`'s output."""
    values = table.column("propensity").to_pylist()
    return PropensityReport(
        rows=table.num_rows,
        basis=", ".join(sorted(set(table.column("basis").to_pylist()))) or "none",
        min_propensity=float(min(values)) if values else None,
        out_of_range=json_safe([v for v in values if not (v is not None and 0 < v <= 1)]),
    )
