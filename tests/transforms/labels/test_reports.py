"""The label assets' check facts, computed from tiny literal tables and fits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from transforms import labels as L
from transforms.cutoffs import Split
from transforms.labels.click_model import ExaminationFit

from .helpers import position_bias


def _fit(converged: bool) -> ExaminationFit:
    return ExaminationFit(
        examination=np.array([1.0, 0.5]), impressions=np.array([60, 40]), clicks=np.array([6, 2]),
        relevance=np.array([0.1]), pooled_from=2, iterations=7, converged=converged, log_likelihood=-12.34567,
    )


def test_position_bias_report_names_bad_rows_unconverged_fits_and_the_error_against_truth() -> None:
    table = position_bias([
        ("test", "home", 0, 1.0), ("test", "home", 1, 0.55), ("test", "home", 2, 0.2),
        ("train", "home", 0, 0.9),  # position 0 must be exactly 1
        ("train", "home", 1, 0.0),  # examination must be positive
        ("train", "home", 2, 0.9),  # a train-scope fit is never compared with the truth
        ("test", "related", 0, 1.0),  # no truth for this surface
    ])
    fits = [L.SurfaceFit(Split.TRAIN, "home", _fit(False)), L.SurfaceFit(Split.TEST, "home", _fit(True))]
    report = L.position_bias_report(table, fits, {"home": [1.0, 0.5]})  # the truth stops at position 1

    assert [(r["split"], r["position"]) for r in report.out_of_range] == [("train", 0), ("train", 1)]
    assert report.unconverged == ["train/home"]
    assert report.max_abs_error_vs_truth == 0.05  # position 1 only: 0.55 vs 0.5
    assert report.fits[0] == {"split": "train", "surface": "home", "iterations": 7, "converged": False,
                              "log_likelihood": -12.346, "pooled_from": 2, "impressions": 100, "clicks": 8}


def test_position_bias_report_without_truth_has_no_error() -> None:
    report = L.position_bias_report(position_bias([("test", "home", 0, 1.0)]), [], {})
    assert report.max_abs_error_vs_truth is None and report.out_of_range == [] and report.unconverged == []


def test_truth_curves_read_the_sample_worlds_examination_document() -> None:
    document = {"surfaces": {"home": {"curve": [1.0, 0.6], "kind": "cascade"}, "related": {"curve": [1.0]}}}
    assert L.truth_curves(document) == {"home": [1.0, 0.6], "related": [1.0]}
    assert L.truth_curves({}) == {}


def test_exposure_propensities_report_flags_values_outside_the_unit_interval() -> None:
    # Popularity propensities lie in (0, 1]: a zero and a 1.5 fail, 1.0 passes.
    table = pa.table({"propensity": [0.5, 1.0, 0.0, 1.5], "basis": ["ratings", "impressions", "impressions", "impressions"]})
    report = L.exposure_propensities_report(table)
    assert report.rows == 4 and report.basis == "impressions, ratings"
    assert report.min_propensity == 0.0
    assert report.out_of_range == [0.0, 1.5]


def test_exposure_propensities_report_of_an_empty_table() -> None:
    empty = pa.table({"propensity": pa.array([], pa.float64()), "basis": pa.array([], pa.string())})
    report = L.exposure_propensities_report(empty)
    assert (report.rows, report.basis, report.min_propensity, report.out_of_range) == (0, "none", None, [])


def test_label_stats_of_no_rows_share_nothing_clipped() -> None:
    stats = L.LabelStats.empty()
    assert stats.rows == 0 and stats.clipped_share == 0.0 and stats.rows_by_source == {}
