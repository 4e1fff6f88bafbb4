"""Labels layer: propensities (logged, click model, popularity) and MNAR-debiased labels with IPS weights.

Three assets read the staged raw tables as whole tables from the warehouse (SQL over their Parquet
files; nothing is loaded whole into memory) and share one settings resource, so the cut-offs and
knobs are the same for all three:

    raw/* ──> labels/position_bias ─────────┐
          └─> labels/exposure_propensities ─┴─> labels/debiased_labels
"""

import base64
import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from transforms import labels as L
from transforms.cutoffs import Cutoffs
from transforms.engine import Engine
from transforms.labels.click_model import ClickModelConfig
from warehouse.contracts import LABELS_DEBIASED_LABELS, LABELS_EXPOSURE_PROPENSITIES, LABELS_POSITION_BIAS
from warehouse.store import Warehouse

RAW_LOG_KEYS = [dg.AssetKey(["raw", t]) for t in ("slates", "impressions", "events", "reviews", "items")]
POSITION_BIAS_KEY = dg.AssetKey(["labels", "position_bias"])
EXPOSURE_PROPENSITIES_KEY = dg.AssetKey(["labels", "exposure_propensities"])
DEBIASED_LABELS_KEY = dg.AssetKey(["labels", "debiased_labels"])
RANDOMIZED_POLICY = "uniform_random"  # the sample world's exploration policy (OBD calls it "random")
TRUTH_FILE = Path("truth") / "examination.json"


class LabelSettings(dg.ConfigurableResource):
    """Settings of the label assets (one source of truth for all three); the cut-offs are not here but
    in the shared ``cutoffs`` resource."""

    clip_min: float = 0.01
    snips: bool = False
    use_logged_propensities: bool = True
    popularity_eta: float = 0.5
    positive_rating: float = 4.0
    relevance_by: L.RelevanceGrouping = L.RelevanceGrouping.ITEM_CONTEXT
    min_position_clicks: int = 200
    max_clipped_share: float = 0.5  # above it the clipped-share check warns: the weights are mostly 1/M

    def label_config(self, cutoffs: Cutoffs) -> L.LabelConfig:
        return L.LabelConfig(
            cutoffs=cutoffs,
            clip_min=self.clip_min,
            snips=self.snips,
            use_logged_propensities=self.use_logged_propensities,
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
        randomized = L.click_rates_under_policy(eng, config, RANDOMIZED_POLICY).to_pylist()
    store.write(LABELS_POSITION_BIAS, table)
    warehouse.refresh_catalog()

    rows = table.to_pylist()
    bad = [r for r in rows if not (0 < r["examination"] <= 1) or (r["position"] == 0 and r["examination"] != 1.0)]
    unconverged = [f"{f.split}/{f.surface}" for f in fits if not f.fit.converged]
    truth = _truth_curves(warehouse.landing / TRUTH_FILE)
    metadata: dict[str, Any] = {
        **config.cutoffs.as_metadata(),
        "fits": dg.MetadataValue.json([
            {"split": str(f.split), "surface": f.surface, "iterations": f.fit.iterations, "converged": f.fit.converged,
             "log_likelihood": round(f.fit.log_likelihood, 3), "pooled_from": f.fit.pooled_from,
             "impressions": int(f.fit.impressions.sum()), "clicks": int(f.fit.clicks.sum())}
            for f in fits
        ]),
    }
    if truth:
        errors = [abs(r["examination"] - truth[r["surface"]][r["position"]]) for r in rows
                  if r["split"] == L.Split.TEST and r["surface"] in truth and r["position"] < len(truth[r["surface"]])]
        if errors:
            metadata["max_abs_error_vs_truth"] = dg.MetadataValue.float(round(max(errors), 4))
    plot = examination_plot_markdown(rows, truth, randomized)
    if plot:
        metadata["examination_curve"] = dg.MetadataValue.md(plot)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(check_name="examination_in_unit_interval", passed=not bad,
                                metadata={"failing_rows": dg.MetadataValue.json(bad[:20])}),
            dg.AssetCheckResult(check_name="click_model_converged", passed=not unconverged,
                                severity=dg.AssetCheckSeverity.WARN, metadata={"unconverged": ", ".join(unconverged) or "none"}),
        ],
    )


def _truth_curves(path: Path) -> dict[str, list[float]]:
    """The sample world's true examination curves, when the landing zone came from ``recforge world``."""
    if not path.exists():
        return {}
    surfaces = json.loads(path.read_text()).get("surfaces", {})
    return {name: list(spec["curve"]) for name, spec in surfaces.items()}


def examination_plot_markdown(
    rows: list[dict[str, Any]], truth: dict[str, list[float]], randomized: list[dict[str, Any]]
) -> str:
    """Estimated (full-data fit) vs true and randomized examination curves as an inline PNG in Markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    estimated: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        if r["split"] == L.Split.TEST:
            estimated.setdefault(str(r["surface"]), []).append((int(r["position"]), float(r["examination"])))
    if not estimated:
        return ""
    random_by_surface: dict[str, dict[int, float]] = {}
    for r in randomized:
        random_by_surface.setdefault(str(r["surface"]), {})[int(r["position"])] = float(r["click_rate"])
    fig, axes = plt.subplots(1, len(estimated), figsize=(4.5 * len(estimated), 3.5), squeeze=False)
    for ax, (surface, points) in zip(axes[0], sorted(estimated.items()), strict=True):
        points.sort()
        ax.plot([p for p, _ in points], [v for _, v in points], "o-", label="estimated (EM)")
        if surface in truth:
            ax.plot(range(len(truth[surface])), truth[surface], "k--", label="true")
        rates = random_by_surface.get(surface, {})
        if rates.get(0):
            ax.plot(sorted(rates), [rates[k] / rates[0] for k in sorted(rates)], "s:", alpha=0.7,
                    label=f"click rate / position 0 ({RANDOMIZED_POLICY})")
        ax.set_title(surface)
        ax.set_xlabel("position")
        ax.set_ylabel("P(examined | position)")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![examination curve](data:image/png;base64,{encoded})"


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
    values = table.column("propensity").to_pylist()
    bad = [v for v in values if not (v is not None and 0 < v <= 1)]
    return dg.MaterializeResult(
        metadata={
            **config.cutoffs.as_metadata(),
            "rows": table.num_rows,
            "basis": ", ".join(sorted(set(table.column("basis").to_pylist()))) or "none",
            "min_propensity": dg.MetadataValue.float(float(min(values))) if values else None,
        },
        check_results=[
            dg.AssetCheckResult(check_name="propensities_in_unit_interval", passed=not bad,
                                metadata={"failing_values": dg.MetadataValue.json(bad[:20])}),
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
        written = []
        for day, table in L.iter_debiased_labels(eng, config, bias, popularity):
            store.write(LABELS_DEBIASED_LABELS, table, day)
            written.append(day)
        stale = sorted(set(store.partitions(LABELS_DEBIASED_LABELS)) - set(written))
        for day in stale:  # a rebuild replaces the whole table: days without rows any more go
            store.delete_partition(LABELS_DEBIASED_LABELS, day)
        files = store.files(LABELS_DEBIASED_LABELS)
        if files:
            eng.register_parquet("debiased_labels", files)
            stats = L.label_stats(eng, "debiased_labels")
        else:
            stats = L.LabelStats(0, 0, 0, 0, 0, 0, {}, {})
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
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="weights_finite_positive",
                passed=stats.non_finite_weights == 0 and stats.non_positive_ips == 0,
                metadata={"non_finite_rows": stats.non_finite_weights, "non_positive_ips_rows": stats.non_positive_ips},
            ),
            dg.AssetCheckResult(
                check_name="propensities_in_unit_interval",
                passed=stats.propensity_out_of_range == 0,
                metadata={"out_of_range_rows": stats.propensity_out_of_range},
            ),
            dg.AssetCheckResult(
                check_name="clipped_share",
                passed=stats.clipped_share <= label_settings.max_clipped_share,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"clipped_share": dg.MetadataValue.float(round(stats.clipped_share, 6)), "clipped_rows": stats.clipped,
                          "limit": label_settings.max_clipped_share},
            ),
        ],
    )
