"""``models/hgnn`` on a tiny warehouse: it reads the graph tables, trains, writes its metrics rows (with the
cold- and new-item views), passes the promotion checks and is promoted; a run that learns nothing is not."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from assets import models as M
from assets import models_hgnn as H
from assets.resources import WarehouseResource
from recforge.cli import main
from training.config import ModelKind
from training.train import load_data
from warehouse.contracts import (
    MODELS_METRICS,
    MODELS_PROMOTED,
    TRAINING_GRAPH_EDGES,
    TRAINING_GRAPH_NODES,
    TRAINING_ITEM_FREQUENCIES,
    TRAINING_TWO_TOWER_EXAMPLES,
)
from warehouse.store import Warehouse

from .test_hgnn import GROUPS, content, world

ITEMS = 240
SMALL = {"dim": 16, "hidden": 32, "temperature": 0.1, "lr": 0.01, "graph_dim": 16, "graph_hidden": 16, "neighbours": "5,5", "knn": 4,
         "link_epochs": 3, "link_batch_size": 64, "link_lr": 0.01, "batch_size": 64, "max_epochs": 8, "patience": 0, "threads": 1}


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    store = Warehouse(tmp_path)
    examples = world(users=160, items=ITEMS, new=24)  # four taste groups of 60 items: K = 50 is below the catalogue
    store.write(TRAINING_TWO_TOWER_EXAMPLES, examples)
    counts = examples.group_by("item_idx").aggregate([("item_idx", "count")]).rename_columns(["item_idx", "count"])
    total = pc.sum(counts["count"]).as_py()
    store.write(TRAINING_ITEM_FREQUENCIES, counts.append_column("probability", pa.array([c / total for c in counts["count"].to_pylist()])))
    # The graph tables as training_data/graph writes them: items with their text embeddings, one category per group.
    features, _ = content(ITEMS)
    items = [{"node_type": "item", "node_idx": i, "name": f"item{i}", "embedding": features[i].tolist()} for i in range(len(features))]
    categories = [{"node_type": "category", "node_idx": g, "name": f"genre{g}", "embedding": None} for g in range(GROUPS)]
    store.write(TRAINING_GRAPH_NODES, pa.Table.from_pylist(categories + items, schema=TRAINING_GRAPH_NODES.schema))
    edges = [{"edge_type": "item_category", "src_type": "item", "src_idx": i, "dst_type": "category", "dst_idx": i % GROUPS, "weight": 1.0}
             for i in range(len(features))]
    store.write(TRAINING_GRAPH_EDGES, pa.Table.from_pylist(edges, schema=TRAINING_GRAPH_EDGES.schema))
    return tmp_path


def test_hgnn_reads_the_graph_tables(home: Path) -> None:
    cfg = H.hgnn_train_config(H.HGNNModelConfig(**SMALL), home)
    assert cfg.model is ModelKind.HGNN and cfg.two_tower.dim == 16 and cfg.hgnn.graph_dim == 16 and cfg.hgnn.knn == 4
    data = load_data(cfg)
    graph = data.graph  # type: ignore[union-attr]
    assert graph.features.shape == (ITEMS, 8) and graph.attributes["category"][1] == GROUPS
    assert graph.similar[0].shape[1] == ITEMS * 4
    assert not graph.trained[data.new_items].any()  # items first seen in validation / test have no training edge


def _run(home: Path, config: dict[str, object], selection: list) -> dg.ExecuteInProcessResult:
    return dg.materialize(selection, resources={"warehouse": WarehouseResource(home=str(home))},
                          run_config={"ops": {"models__hgnn": {"config": config}}}, raise_on_error=False)


def test_hgnn_asset_reports_checks_and_is_promoted(home: Path) -> None:
    result = _run(home, SMALL, [H.hgnn, M.metrics, M.promoted])
    assert result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks[("models/hgnn", "beats_popularity")] and checks[("models/hgnn", "finite")]
    store = Warehouse(home)
    rows = store.read(MODELS_METRICS).filter(pc.equal(store.read(MODELS_METRICS)["model"], "hgnn")).to_pylist()
    assert {(r["subset"], r["metric"], r["k"]) for r in rows} >= {("all", "recall", 50), ("cold_items", "recall", 50), ("new_items", "ndcg", 10)}
    registry = {r["model"]: r for r in store.read(MODELS_PROMOTED).to_pylist()}
    assert "hgnn" in registry and (home / registry["hgnn"]["checkpoint"]).exists()

    broken = _run(home, SMALL | {"lr": 0.0, "link_lr": 0.0, "max_epochs": 1}, [H.hgnn, M.promoted])
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in broken.get_asset_check_evaluations()}
    assert not checks[("models/hgnn", "no_regression")]
    after = {r["model"]: r for r in store.read(MODELS_PROMOTED).to_pylist()}
    assert not broken.success and after["hgnn"]["version"] == registry["hgnn"]["version"]


def test_recforge_train_hgnn(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RECFORGE_HOME", str(home))
    settings = {"two_tower.dim": 16, "two_tower.hidden": 32, "hgnn.graph_dim": 16, "hgnn.graph_hidden": 16, "hgnn.neighbours": "5,5",
                "hgnn.link_epochs": 1, "run.max_epochs": 2, "run.batch_size": 128, "run.threads": 1, "run.out_dir": str(home / "ckpt")}
    assert main(["train", "hgnn", "--no-progress", "--metrics", *(a for k, v in settings.items() for a in ("--set", f"{k}={v}"))]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("hgnn: 2 epochs")
    rows = Warehouse(home).read(MODELS_METRICS).to_pylist()
    assert {(r["model"], r["subset"], r["metric"], r["k"]) for r in rows} >= {("hgnn", "all", "recall", 50), ("hgnn", "new_items", "recall", 50)}
