"""MNAR-debiased labels: propensities from exposure logs, a click model, or popularity; IPS weights.

Following Saito et al. (WSDM 2020), an observed engagement is ``Y = O * R``: exposure ``O`` times
relevance ``R``. With ``theta = P(O = 1)`` clipped from below at ``M``, the unbiased point-wise loss
weights the positive term by ``Y / theta`` and the negative term by ``1 - Y / theta``. This module
turns staged raw tables into one label row per exposure, each carrying its propensity and the
estimator that produced it (DESIGN.md section 2). Each split uses ONE estimand
(:class:`Estimand`, the ``estimand`` setting), named per row in ``propensity_source``:

=================  ================================================================================
``logged``          the logging policy's probability of the item in its slot (``impressions.propensity``
                    or ``slates.propensities[j]``, ``j`` the item's index in ``slates.item_ids``), times
                    the click model's examination of the slot: being served is not being seen
``click_model``     ``P(examined | surface, position)`` from a position-based click model fitted by EM
                    (:mod:`transforms.labels.click_model`) to impressions and the clicks linked to them
``popularity``      ``(n_i / max n) ** eta`` for splits without exposure logs (ratings only), ``n_i``
                    the item's observed interactions
=================  ================================================================================

``estimand``: ``position`` (``click_model`` for every exposure row), ``logged`` (every exposure row
must log a propensity), ``auto`` (``logged`` for a split logged throughout, else ``position``).

Rows. A split with exposure logs before its end: one row per rendered impression ``(request, user, item, position)``; ``Y``
is 1 when a click links to it (``events.request_id``). Without them (ratings-only data): one row per
observed positive (a rating at or above ``positive_rating``; a rating held both as an event and as a
review is one). Whether a split has exposure logs, and whether its clicks link to requests, is decided
from the data before its end (:func:`split_modes`).

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
label assembly, clipping) is SQL run by the engine over Parquet files, written once with
:class:`transforms.engine.Dialect` macros for DuckDB and Spark. Python sees aggregates (per
``(surface, position, item)`` click-model cells, per-item counts, from which it sums the SNIPS scales in
a fixed, exactly rounded way) and the label rows, built for the whole range in one set-based query and
cut into daily partitions (:func:`iter_debiased_labels`): cost grows with rows, not days.
"""

from transforms.cutoffs import Cutoffs, Split
from transforms.labels.config import (
    DEFAULT_GRADES,
    Engagement,
    Estimand,
    ExposureBasis,
    GradeRule,
    LabelConfig,
    PropensitySource,
    RelevanceGrouping,
)
from transforms.labels.exposures import (
    DEFAULT_SURFACE,
    SOURCE_RELATIONS,
    SplitMode,
    engagement_of,
    has_exposure_logs,
    register_slate_slots,
    register_sources,
    split_modes,
)
from transforms.labels.plots import examination_curve_png
from transforms.labels.propensities import (
    SurfaceFit,
    click_model_cells,
    click_rates_under_policy,
    exposure_propensities,
    fit_position_bias,
)
from transforms.labels.reports import (
    LabelCheckConfig,
    PositionBiasReport,
    PropensityReport,
    exposure_propensities_report,
    json_safe,
    position_bias_report,
    truth_curves,
)
from transforms.labels.weights import (
    ExposureDiagnostics,
    LabelStats,
    exposure_diagnostics,
    iter_debiased_labels,
    label_days,
    label_stats,
    prepare_label_inputs,
    snips_scales,
)

__all__ = [
    "DEFAULT_GRADES",
    "DEFAULT_SURFACE",
    "SOURCE_RELATIONS",
    "Cutoffs",
    "Engagement",
    "Estimand",
    "ExposureBasis",
    "ExposureDiagnostics",
    "GradeRule",
    "LabelCheckConfig",
    "LabelConfig",
    "LabelStats",
    "PositionBiasReport",
    "PropensityReport",
    "PropensitySource",
    "RelevanceGrouping",
    "Split",
    "SplitMode",
    "SurfaceFit",
    "click_model_cells",
    "click_rates_under_policy",
    "engagement_of",
    "examination_curve_png",
    "exposure_diagnostics",
    "exposure_propensities",
    "exposure_propensities_report",
    "fit_position_bias",
    "has_exposure_logs",
    "iter_debiased_labels",
    "json_safe",
    "label_days",
    "label_stats",
    "position_bias_report",
    "prepare_label_inputs",
    "register_slate_slots",
    "register_sources",
    "snips_scales",
    "split_modes",
    "truth_curves",
]
