"""Metric dicts become rows of models/metrics with the subset, metric and K split out."""

from __future__ import annotations

from training.report import metrics_rows
from warehouse.contracts import MODELS_METRICS


def test_rows_follow_the_contract() -> None:
    table = metrics_rows({"ndcg@5": 0.4, "tail_recall@50": 0.1, "short_hr@10": 0.5}, model="relmf", version="abc", dataset="coat",
                         split="test", protocol="coat_lee2021", seen_filtered=False, seed=3, data_versions={"train.ascii": "x"})
    assert table.schema == MODELS_METRICS.schema
    rows = {(r["subset"], r["metric"], r["k"]): r["value"] for r in table.to_pylist()}
    assert rows == {("all", "ndcg", 5): 0.4, ("tail_items", "recall", 50): 0.1, ("short_history", "hr", 10): 0.5}


def test_ann_rows_are_their_own_subset_and_never_collide_with_the_exact_ones() -> None:
    # The exact recall@50, the same metric served by the ANN index, and the index's recall of the exact top-50.
    table = metrics_rows({"recall@50": 0.3, "ann_recall@50": 0.29, "ann_recall_vs_exact@50": 0.97}, model="two_tower", version="v",
                         dataset="d", split="test", protocol="p", seen_filtered=True, seed=1, data_versions={})
    rows = {(r["subset"], r["metric"], r["k"]): r["value"] for r in table.to_pylist()}
    assert rows == {("all", "recall", 50): 0.3, ("ann_index", "recall", 50): 0.29, ("ann_index", "recall_vs_exact", 50): 0.97}
