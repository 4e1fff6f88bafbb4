"""``recforge demo``'s model step: small two-tower and MF models trained, their rows in models/metrics, a table printed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from assets.resources import WarehouseResource
from recforge.definitions import defs
from recforge.demo import (
    DEMO_MODEL_CONFIG,
    demo_metrics,
    format_demo_metrics,
    print_demo_metrics,
    train_demo_models,
)
from tests.training.test_two_tower import tiny_examples
from warehouse.contracts import (
    MODELS_METRICS,
    MODELS_PROMOTED,
    TRAINING_ITEM_FREQUENCIES,
    TRAINING_TWO_TOWER_EXAMPLES,
)
from warehouse.store import Warehouse

# The demo's sizes, with a learning rate and temperature fit for 120 users in four taste groups of 60 items.
TINY = {"models__two_tower": {"config": {"temperature": 0.1, "lr": 0.03, "batch_size": 64, "max_epochs": 10}},
        "models__mf": {"config": {"lr": 0.05, "batch_size": 1024}}}


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".dagster"))
    store = Warehouse(tmp_path / "home")
    examples = tiny_examples(users=120, items=240)
    store.write(TRAINING_TWO_TOWER_EXAMPLES, examples)
    counts = examples.group_by("item_idx").aggregate([("item_idx", "count")]).rename_columns(["item_idx", "count"])
    total = pc.sum(counts["count"]).as_py()
    store.write(TRAINING_ITEM_FREQUENCIES, counts.append_column("probability", pa.array([c / total for c in counts["count"].to_pylist()])))
    return store.root


def test_demo_trains_both_models_and_prints_the_rows_of_the_metrics_table(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = train_demo_models(defs, home, resources={"warehouse": WarehouseResource(home=str(home))}, run_config={"ops": TINY})

    assert result.success
    built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # The two models, their floors, the metrics table and the registry; no generative model (those are models_job's).
    assert built == {"models/two_tower", "models/mf", "models/baselines", "models/metrics", "models/promoted"}
    store = Warehouse(home)
    table = store.read(MODELS_METRICS)
    rows = demo_metrics(home)
    assert [r["model"] for r in rows] == ["popularity", "item_knn", "mf", "two_tower"]
    for row in rows:
        # Each figure printed is the trained version's row of the one metrics table.
        assert row["in_metrics_table"]
        mine = table.filter(pc.and_(pc.equal(table["model"], row["model"]), pc.equal(table["version"], row["version"])))
        values = {(r["subset"], r["metric"], r["k"]): r["value"] for r in mine.to_pylist()}
        assert row["recall@50"] == values[("all", "recall", 50)]
        assert row["tail recall@50"] == values.get(("tail_items", "recall", 50))  # MF reports no tail view: n/a
    registry = {r["model"]: r["version"] for r in store.read(MODELS_PROMOTED).to_pylist()}
    by_model = {r["model"]: r for r in rows}
    assert by_model["two_tower"]["promoted"] and registry["two_tower"] == by_model["two_tower"]["version"]
    assert by_model["two_tower"]["recall@50"] > by_model["popularity"]["recall@50"]
    # The demo's own sizes reached the model: the two-tower checkpoint has 32-d item vectors, not the default 64.
    assert DEMO_MODEL_CONFIG["models__two_tower"]["dim"] == 32
    checkpoint = torch.load(home / f"models/checkpoints/two_tower/{registry['two_tower']}.pt", weights_only=False)
    assert checkpoint["meta"]["config"]["two_tower"]["dim"] == 32

    print_demo_metrics(home, 12.5)
    out = capsys.readouterr().out
    assert "trained in 12.5s" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("two_tower"))
    assert f"{by_model['two_tower']['recall@50']:.4f}" in line and line.rstrip().endswith("yes")


def test_the_table_says_which_check_kept_a_model_from_promotion() -> None:
    figures = {"recall@10": 0.1, "recall@50": 0.25, "ndcg@50": 0.12, "tail recall@50": 0.05, "short recall@50": None}
    rows = [{"model": "popularity", "promoted": None, "failed_checks": [], **figures},
            {"model": "mf", "promoted": False, "failed_checks": ["beats_popularity"], **figures}]

    lines = format_demo_metrics(rows).splitlines()

    assert lines[0].split() == ["model", "recall@10", "recall@50", "ndcg@50", "tail", "recall@50", "short", "recall@50", "promoted"]
    assert lines[1].split() == ["popularity", "0.1000", "0.2500", "0.1200", "0.0500", "n/a", "baseline"]
    assert lines[2].split()[-3:] == ["no:", "failed", "beats_popularity"]
