"""The model assets on a tiny warehouse: they train, write metrics rows, and promotion is gated."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from assets import models as M
from assets.resources import WarehouseResource
from warehouse.contracts import (
    MODELS_METRICS,
    MODELS_PROMOTED,
    TRAINING_ITEM_FREQUENCIES,
    TRAINING_TWO_TOWER_EXAMPLES,
)
from warehouse.store import Warehouse

from .test_two_tower import tiny_examples

SMALL_TT = {"dim": 16, "hidden": 32, "temperature": 0.1, "lr": 0.03, "batch_size": 64, "max_epochs": 20, "patience": 0}
SMALL_MF = {"dim": 16, "lr": 0.05, "batch_size": 256, "max_epochs": 6, "patience": 0}


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    store = Warehouse(tmp_path)
    examples = tiny_examples(users=120, items=240)  # four taste groups of 60 items: K = 50 is below the catalogue
    store.write(TRAINING_TWO_TOWER_EXAMPLES, examples)
    counts = examples.group_by("item_idx").aggregate([("item_idx", "count")]).rename_columns(["item_idx", "count"])
    total = pc.sum(counts["count"]).as_py()
    store.write(TRAINING_ITEM_FREQUENCIES, counts.append_column("probability", pa.array([c / total for c in counts["count"].to_pylist()])))
    return tmp_path


def _run(home: Path, two_tower: dict[str, object], selection: list | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        selection or [M.mf, M.two_tower, M.baselines, M.metrics, M.promoted],
        resources={"warehouse": WarehouseResource(home=str(home))},
        run_config={"ops": {op: {"config": cfg} for op, cfg in (("models__mf", SMALL_MF), ("models__two_tower", two_tower))
                            if any(a.op.name == op for a in selection or [M.mf, M.two_tower])}},
        raise_on_error=False,  # a failed blocking check fails the run: that is the gate under test
    )


@pytest.mark.slow
def test_models_train_report_and_promote(home: Path) -> None:
    result = _run(home, SMALL_TT)
    assert result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks[("models/two_tower", "beats_popularity")] and checks[("models/mf", "finite")]
    store = Warehouse(home)
    rows = store.read(MODELS_METRICS)
    assert {"mf", "two_tower", "popularity", "item_knn"} <= set(rows["model"].to_pylist())
    registry = {r["model"]: r for r in store.read(MODELS_PROMOTED).to_pylist()}
    assert "two_tower" in registry and (home / registry["two_tower"]["checkpoint"]).exists()

    # A model that learns nothing fails its blocking checks: kept (metrics rows), not promoted.
    broken = _run(home, SMALL_TT | {"lr": 0.0, "max_epochs": 1}, [M.two_tower, M.promoted])
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in broken.get_asset_check_evaluations()}
    assert not checks[("models/two_tower", "no_regression")]
    after = {r["model"]: r for r in store.read(MODELS_PROMOTED).to_pylist()}
    assert not broken.success and after["two_tower"]["version"] == registry["two_tower"]["version"]
    _run(home, SMALL_TT, [M.metrics])  # the next metrics run collects the failed version's rows too
    assert len(set(store.read(MODELS_METRICS).filter(pc.equal(store.read(MODELS_METRICS)["model"], "two_tower"))["version"].to_pylist())) == 2


@pytest.mark.slow
def test_a_warm_started_retraining_loads_the_promoted_weights(home: Path) -> None:
    import torch

    first = _run(home, SMALL_TT, [M.two_tower, M.promoted])
    assert first.success
    promoted = {r["model"]: r for r in Warehouse(home).read(MODELS_PROMOTED).to_pylist()}["two_tower"]

    # Learning rate 0: the retraining cannot move its weights. Started cold it would score at random and
    # fail no_regression (the test above); warm-started it ends exactly where the promoted version was.
    warm = _run(home, SMALL_TT | {"lr": 0.0, "max_epochs": 1, "warm_start": True}, [M.two_tower, M.promoted])

    assert warm.success
    event = next(e for e in warm.get_asset_materialization_events() if e.asset_key == M.TWO_TOWER_KEY)
    metadata = event.materialization.metadata
    assert metadata["warm_started_from"].value == promoted["version"]
    assert metadata["recall@50"].value == promoted["headline_value"]
    new = torch.load(home / "models" / "checkpoints" / "two_tower" / f"{metadata['version'].value}.pt", weights_only=False)
    old = torch.load(home / promoted["checkpoint"], weights_only=False)
    best_new, best_old = new["state"]["early_stopping"]["best_task"], old["state"]["early_stopping"]["best_task"]
    assert all(torch.equal(best_new[name], best_old[name]) for name in best_old)
