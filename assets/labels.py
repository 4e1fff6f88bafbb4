"""Labels layer: propensities (logged, click model, popularity) and MNAR-debiased labels with IPS weights.

Three assets read the staged raw tables as whole tables from the warehouse (SQL over their Parquet
files; nothing is loaded whole into memory) and share one settings resource, so the cut-offs and
knobs are the same for all three:

    raw/* ──> labels/position_bias ─────────┐
          └─> labels/exposure_propensities ─┴─> labels/debiased_labels
"""

import base64
import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import pyarrow as pa

from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from transforms import labels as L
from transforms.cutoffs import Cutoffs
from transforms.engine import Engine
from transforms.labels.click_model import ClickModelConfig
from warehouse.contracts import (
    LABELS_DEBIASED_LABELS,
    LABELS_EXPOSURE_PROPENSITIES,
    LABELS_POSITION_BIAS,
    TableContract,
)
from warehouse.store import Warehouse

RAW_LOG_KEYS = [dg.AssetKey(["raw", t]) for t in ("slates", "impressions", "events", "reviews", "items")]
POSITION_BIAS_KEY = dg.AssetKey(["labels", "position_bias"])
EXPOSURE_PROPENSITIES_KEY = dg.AssetKey(["labels", "exposure_propensities"])
DEBIASED_LABELS_KEY = dg.AssetKey(["labels", "debiased_labels"])
RANDOMIZED_POLICY = "uniform_random"  # the sample world's exploration policy (OBD calls it "random")
TRUTH_FILE = Path("truth") / "examination.json"


class LabelSettings(dg.ConfigurableResource):
    """Settings of the label assets (one source of truth for all three); the cut-offs are not here but
    in the shared ``cutoffs`` resource. Every default is the frozen config dataclass's own."""

    builds: ClassVar[tuple[type, ...]] = (L.LabelConfig, ClickModelConfig, L.LabelCheckConfig)
    clip_min: float = L.LabelConfig.clip_min
    snips: bool = L.LabelConfig.snips
    estimand: L.Estimand = L.LabelConfig.estimand
    popularity_eta: float = L.LabelConfig.popularity_eta
    positive_rating: float = L.LabelConfig.positive_rating
    relevance_by: L.RelevanceGrouping = L.LabelConfig.relevance_by
    min_position_clicks: int = ClickModelConfig.min_position_clicks
    max_clipped_share: float = L.LabelCheckConfig.max_clipped_share

    def label_config(self, cutoffs: Cutoffs) -> L.LabelConfig:
        return L.LabelConfig(
            cutoffs=cutoffs,
            clip_min=self.clip_min,
            snips=self.snips,
            estimand=self.estimand,
            popularity_eta=self.popularity_eta,
            positive_rating=self.positive_rating,
            relevance_by=self.relevance_by,
            click_model=ClickModelConfig(min_position_clicks=self.min_position_clicks),
        )


RESOURCES = {"label_settings": LabelSettings()}


@contextlib.contextmanager
def _label_run(
    store: Warehouse, engine: EngineResource, label_settings: LabelSettings, cutoffs: CutoffsResource
) -> Iterator[tuple[Engine, L.LabelConfig]]:
    """An open engine with the raw sources registered, and the label config at the run's cut-offs."""
    with engine.open() as eng:
        L.register_sources(eng, {name: store.files(c) for name, c in L.SOURCE_RELATIONS.items()})
        yield eng, label_settings.label_config(cutoffs.resolve(store))


# --- labels/position_bias -----------------------------------------------------------------------


@dg.asset(
    key=POSITION_BIAS_KEY,
    deps=RAW_LOG_KEYS,
    group_name="labels",
    description=LABELS_POSITION_BIAS.description,
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("examination_in_unit_interval", asset=POSITION_BIAS_KEY, blocking=True,
                          description="Every examination probability is in (0, 1] and 1 at position 0."),
        dg.AssetCheckSpec("click_model_converged", asset=POSITION_BIAS_KEY,
                          description="EM reached its tolerance for every surface and split scope."),
    ],
)
def position_bias(
    warehouse: WarehouseResource, engine: EngineResource, label_settings: LabelSettings,
    cutoffs: CutoffsResource,
) -> dg.MaterializeResult:
    """Examination curve per surface from a position-based click model (EM), one fit per split scope."""
    store = warehouse.store()
    with _label_run(store, engine, label_settings, cutoffs) as (eng, config):
        table, fits = L.fit_position_bias(eng, config)
        randomized = L.click_rates_under_policy(eng, config, RANDOMIZED_POLICY)
    store.write(LABELS_POSITION_BIAS, table)
    warehouse.refresh_catalog()

    truth_path = warehouse.landing / TRUTH_FILE  # there when the landing zone came from ``recforge world``
    truth = L.truth_curves(json.loads(truth_path.read_text())) if truth_path.exists() else {}
    report = L.position_bias_report(table, fits, truth)
    metadata: dict[str, Any] = {**config.cutoffs.as_metadata(), "fits": dg.MetadataValue.json(report.fits)}
    if report.max_abs_error_vs_truth is not None:
        metadata["max_abs_error_vs_truth"] = dg.MetadataValue.float(report.max_abs_error_vs_truth)
    png = L.examination_curve_png(table, truth, randomized, RANDOMIZED_POLICY)
    if png is not None:
        metadata["examination_curve"] = dg.MetadataValue.md(
            f"![examination curve](data:image/png;base64,{base64.b64encode(png).decode()})"
        )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(check_name="examination_in_unit_interval", passed=not report.out_of_range,
                                metadata={"failing_rows": dg.MetadataValue.json(L.json_safe(report.out_of_range[:20]))}),
            dg.AssetCheckResult(check_name="click_model_converged", passed=not report.unconverged,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"unconverged": ", ".join(report.unconverged) or "none"}),
        ],
    )


# --- labels/exposure_propensities ---------------------------------------------------------------


@dg.asset(
    key=EXPOSURE_PROPENSITIES_KEY,
    deps=RAW_LOG_KEYS,
    group_name="labels",
    description=LABELS_EXPOSURE_PROPENSITIES.description,
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("propensities_in_unit_interval", asset=EXPOSURE_PROPENSITIES_KEY, blocking=True,
                          description="Every popularity propensity is in (0, 1]."),
    ],
)
def exposure_propensities(
    warehouse: WarehouseResource, engine: EngineResource, label_settings: LabelSettings,
    cutoffs: CutoffsResource,
) -> dg.MaterializeResult:
    """Item exposure counts and the popularity heuristic (n_i / max n) ** eta, one set per split scope."""
    store = warehouse.store()
    with _label_run(store, engine, label_settings, cutoffs) as (eng, config):
        table = L.exposure_propensities(eng, config)
    store.write(LABELS_EXPOSURE_PROPENSITIES, table)
    warehouse.refresh_catalog()
    report = L.exposure_propensities_report(table)
    return dg.MaterializeResult(
        metadata={
            **config.cutoffs.as_metadata(),
            "rows": report.rows,
            "basis": report.basis,
            "min_propensity": dg.MetadataValue.float(report.min_propensity) if report.min_propensity is not None else None,
        },
        check_results=[
            dg.AssetCheckResult(check_name="propensities_in_unit_interval", passed=not report.out_of_range,
                                metadata={"failing_values": dg.MetadataValue.json(L.json_safe(report.out_of_range[:20]))}),
        ],
    )


# --- labels/debiased_labels ---------------------------------------------------------------------


@dg.asset(
    key=DEBIASED_LABELS_KEY,
    deps=[POSITION_BIAS_KEY, EXPOSURE_PROPENSITIES_KEY, *RAW_LOG_KEYS],
    group_name="labels",
    description=LABELS_DEBIASED_LABELS.description,
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("weights_finite_positive", asset=DEBIASED_LABELS_KEY, blocking=True,
                          description="Inverse-propensity weights are finite and positive; both loss weights finite."),
        dg.AssetCheckSpec("propensities_in_unit_interval", asset=DEBIASED_LABELS_KEY, blocking=True,
                          description="Every propensity is in (0, 1]."),
        dg.AssetCheckSpec("clipped_share", asset=DEBIASED_LABELS_KEY,
                          description="Share of rows whose propensity was clipped at M (warns above max_clipped_share)."),
    ],
)
def debiased_labels(
    warehouse: WarehouseResource, engine: EngineResource, label_settings: LabelSettings,
    cutoffs: CutoffsResource,
) -> dg.MaterializeResult:
    """One row per exposure (or observed positive) with Y, graded relevance, propensity, source, IPS weights, split."""
    store = warehouse.store()
    bias = store.read(LABELS_POSITION_BIAS)
    popularity = store.read(LABELS_EXPOSURE_PROPENSITIES)
    with _label_run(store, engine, label_settings, cutoffs) as (eng, config):
        written = _replace_partitions(store, LABELS_DEBIASED_LABELS, L.iter_debiased_labels(eng, config, bias, popularity))
        diagnostics = L.exposure_diagnostics(eng, config, bias)
        files = store.files(LABELS_DEBIASED_LABELS)
        if files:
            eng.register_parquet("debiased_labels", files)
            stats = L.label_stats(eng, "debiased_labels")
        else:
            stats = L.LabelStats.empty()
    warehouse.refresh_catalog()
    return dg.MaterializeResult(
        metadata={
            **config.cutoffs.as_metadata(),
            "rows": stats.rows,
            "positives": stats.positives,
            "partitions_written": len(written),
            "rows_by_source": dg.MetadataValue.json(stats.rows_by_source),
            "rows_by_split": dg.MetadataValue.json(stats.rows_by_split),
            "clipped_share": dg.MetadataValue.float(round(stats.clipped_share, 6)),
            "clip_min": config.clip_min,
            "snips": config.snips,
            "estimand": str(config.estimand),
            # What each split's weights estimate: train rows are what a training table takes.
            "sources_by_split": dg.MetadataValue.json(stats.sources_by_split),
            "orphan_impressions": diagnostics.orphan_impressions,
            "orphans_excluded": diagnostics.orphans_excluded,
            "slot_mismatches": diagnostics.slot_mismatches,
        },
        check_results=[
            dg.AssetCheckResult(check_name="weights_finite_positive",
                                passed=stats.non_finite_weights == 0 and stats.non_positive_ips == 0,
                                metadata={"non_finite_rows": stats.non_finite_weights,
                                          "non_positive_ips_rows": stats.non_positive_ips}),
            dg.AssetCheckResult(check_name="propensities_in_unit_interval", passed=stats.propensity_out_of_range == 0,
                                metadata={"out_of_range_rows": stats.propensity_out_of_range}),
            dg.AssetCheckResult(check_name="clipped_share", passed=stats.clipped_share <= label_settings.max_clipped_share,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"clipped_share": dg.MetadataValue.float(round(stats.clipped_share, 6)),
                                          "clipped_rows": stats.clipped, "limit": label_settings.max_clipped_share}),
        ],
    )


def _replace_partitions(
    store: Warehouse, contract: TableContract, parts: Iterable[tuple[dt.date, pa.Table]]
) -> list[dt.date]:
    """Write a table day by day; a rebuild replaces the whole table: days without rows any more go."""
    written = []
    for day, table in parts:
        store.write(contract, table, day)
        written.append(day)
    for day in sorted(set(store.partitions(contract)) - set(written)):
        store.delete_partition(contract, day)
    return written
