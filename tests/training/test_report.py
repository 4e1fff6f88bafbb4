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
