"""models/metrics and models/promoted collect the sequence models (SASRec, HSTU, TIGER) like mf/two_tower:
every version's rows in the one metrics table, promotion only with every blocking check passed."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pytest

from assets import models as M
from assets.resources import WarehouseResource
from warehouse.contracts import MODELS_METRICS, MODELS_PROMOTED
from warehouse.store import Warehouse

from .test_sasrec import cycle_data, write_loo_shards

SASREC = "sasrec.dim=32;sasrec.dropout=0.0;sasrec.lr=0.01;run.threads=1"
HSTU = ("hstu.dim=32;hstu.attention_dim=16;hstu.linear_dim=16;hstu.dropout=0.0;hstu.lr=0.01;hstu.negatives=16;"
        "hstu.num_buckets=16;run.threads=1")
TIGER = ("tiger.dim=32;tiger.layers=1;tiger.heads=2;tiger.ff=64;tiger.dropout=0.0;tiger.max_items=4;tiger.user_buckets=8;"
         "tiger.lr=0.005;tiger.beam=10;tiger.valid_beam=10;run.threads=1")
RUN = {"batch_size": 16, "max_epochs": 6, "patience": 0}


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    write_loo_shards(tmp_path / "training_data" / "sequence_shards", cycle_data())
    return tmp_path


def _run(home: Path, selection: list, settings: dict[str, str], run: dict | None = None) -> dg.ExecuteInProcessResult:
    ops = {f"models__{name}": {"config": (run or RUN) | {"settings": value}} for name, value in settings.items()}
    return dg.materialize(selection, resources={"warehouse": WarehouseResource(home=str(home))}, run_config={"ops": ops},
                          raise_on_error=False)  # a failed blocking check fails the run: that is the gate under test


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    return {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}


def test_sequence_models_reach_the_metrics_table_and_the_registry(home: Path) -> None:
    result = _run(home, [M.sasrec, M.hstu, M.tiger, M.metrics, M.promoted], {"sasrec": SASREC, "hstu": HSTU, "tiger": TIGER})
    assert result.success, _checks(result)
    store = Warehouse(home)
    rows = store.read(MODELS_METRICS).to_pylist()
    protocols = {(r["model"], r["protocol"]) for r in rows}
    assert {("sasrec", "loo_full_seen_filtered"), ("hstu", "loo_full_seen_filtered"), ("tiger", "loo_beam10_seen_filtered")} <= protocols
    assert all(r["seen_filtered"] and r["split"] == "test" for r in rows)
    registry = {r["model"]: r for r in store.read(MODELS_PROMOTED).to_pylist()}
    assert set(registry) == {"sasrec", "hstu", "tiger"}
    for name, row in registry.items():
        assert row["headline_metric"] == "ndcg@10" and (home / row["checkpoint"]).exists()
        ndcg10 = [r["value"] for r in rows if r["model"] == name and r["metric"] == "ndcg" and r["k"] == 10 and r["version"] == row["version"]]
        assert ndcg10 == [pytest.approx(row["headline_value"])]


def test_a_sequence_model_that_fails_a_check_is_kept_but_not_promoted(home: Path) -> None:
    assert _run(home, [M.sasrec, M.metrics, M.promoted], {"sasrec": SASREC}).success
    store = Warehouse(home)
    promoted = {r["model"]: r for r in store.read(MODELS_PROMOTED).to_pylist()}["sasrec"]

    # Nothing learnt (lr 0): far below the promoted version, the blocking no_regression check fails.
    broken = _run(home, [M.sasrec, M.promoted], {"sasrec": SASREC.replace("sasrec.lr=0.01", "sasrec.lr=0.0")}, RUN | {"max_epochs": 1})
    assert not broken.success and not _checks(broken)[("models/sasrec", "no_regression")]
    assert {r["model"]: r for r in store.read(MODELS_PROMOTED).to_pylist()}["sasrec"]["version"] == promoted["version"]

    # models/promoted alone re-reads the candidate's check results: still nothing promoted.
    assert _run(home, [M.promoted], {}).success
    assert {r["model"]: r for r in store.read(MODELS_PROMOTED).to_pylist()}["sasrec"]["version"] == promoted["version"]

    # The next metrics run collects the failed version's rows too.
    assert _run(home, [M.metrics], {}).success
    table = store.read(MODELS_METRICS)
    assert len(set(table.filter(pc.equal(table["model"], "sasrec"))["version"].to_pylist())) == 2


def test_a_warm_started_sequence_model_begins_from_the_promoted_weights(home: Path) -> None:
    assert _run(home, [M.sasrec, M.metrics, M.promoted], {"sasrec": SASREC}).success
    promoted = {r["model"]: r for r in Warehouse(home).read(MODELS_PROMOTED).to_pylist()}["sasrec"]

    # Learning rate 0: the retraining cannot move its weights. Cold it scores at random and fails no_regression
    # (the test above); warm-started it ends where the promoted version was, and passes.
    frozen = SASREC.replace("sasrec.lr=0.01", "sasrec.lr=0.0")
    warm = dg.materialize([M.sasrec], resources={"warehouse": WarehouseResource(home=str(home))},
                          run_config={"ops": {"models__sasrec": {"config": RUN | {"max_epochs": 1, "settings": frozen, "warm_start": True}}}})
    metadata = next(e for e in warm.get_asset_materialization_events()).materialization.metadata
    assert metadata["warm_started_from"].value == promoted["version"]
    assert metadata["ndcg@10"].value == pytest.approx(promoted["headline_value"])
    assert all(e.passed for e in warm.get_asset_check_evaluations())


def test_the_warm_start_job_starts_the_sequence_models_from_their_promoted_weights() -> None:
    from recforge.definitions import defs

    assert defs.resolve_job_def("models_warm_start_job")  # resolves over the assets' config schemas
    configured = M.models_warm_start_job.config["ops"]  # type: ignore[index]
    assert set(configured) == {"models__mf", "models__two_tower", "models__sasrec", "models__hstu", "models__tiger"}
    assert all(op["config"]["warm_start"] for op in configured.values())
