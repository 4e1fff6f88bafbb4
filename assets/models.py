"""Models trained on the current training data: matrix factorisation, two-tower retrieval and the
baselines beside them; the one metrics table; and the registry of promoted versions.

    training_data/two_tower_examples + item_frequencies -> models/mf, models/two_tower, models/baselines
    training_data/sequence_shards                        -> models/sasrec, models/hstu, models/tiger
    every model above and models/baselines               -> models/metrics (every version's rows, appended)
    every trained model (all its checks passed)          -> models/promoted (the registry)

The models of the two-tower examples are evaluated under one protocol: each user's first example in the
last 10 % of the training window's timestamps is the query, all their positives from then on are relevant,
the whole catalogue is ranked with the items of the query's history filtered (``training.data.two_tower``);
the sequence models under leave-one-out with full ranking (headline NDCG@10, see the end of this module).
Promotion is gated by blocking checks on each model: finite loss and weights, the headline metric
beats popularity, and no regression beyond ``REGRESSION_TOLERANCE`` against the promoted version.
A model that fails is kept (its checkpoint and metrics rows stay) but not promoted: a failed blocking
check stops ``models/promoted`` in the same run, and ``models/promoted`` re-reads each candidate's
check results, so materialising it alone promotes nothing that failed.

Nightly: every asset here is eager, so the downstream automation sensor retrains after the nightly
data layers refresh ``training_data``; ``models_job`` runs the group on demand, and
``models_warm_start_job`` retrains MF, two-tower and the sequence models from their promoted weights (``warm_start``).
"""


import dataclasses
import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from assets.resources import WarehouseResource
from training.config import (
    DataConfig,
    DataSource,
    MFConfig,
    ModelKind,
    RunConfig,
    TrainConfig,
    TwoTowerConfig,
)
from training.generative.config import ScheduledRun
from training.report import checkpoint_version, metrics_rows
from warehouse.atomic import write_bytes, write_json, write_parquet
from warehouse.contracts import MODELS_METRICS, MODELS_PROMOTED
from warehouse.store import Warehouse

if TYPE_CHECKING:  # torch and the training code load when a model asset runs, not with the definitions
    from training.data.two_tower import TwoTowerData
    from training.train import TrainResult

GROUP = "models"
EXAMPLES_KEY = dg.AssetKey(["training_data", "two_tower_examples"])
FREQUENCIES_KEY = dg.AssetKey(["training_data", "item_frequencies"])
MF_KEY = dg.AssetKey(["models", "mf"])
TWO_TOWER_KEY = dg.AssetKey(["models", "two_tower"])
BASELINES_KEY = dg.AssetKey(["models", "baselines"])
METRICS_KEY = dg.AssetKey(["models", "metrics"])
PROMOTED_KEY = dg.AssetKey(["models", "promoted"])
HGNN_KEY = dg.AssetKey(["models", "hgnn"])  # 2T-HGNN, defined in assets/models_hgnn.py
GENERATIVE_MODELS = ("sasrec", "hstu", "tiger")  # leave-one-out sequence models, defined at the end of this module
GENERATIVE_KEYS = [dg.AssetKey(["models", name]) for name in GENERATIVE_MODELS]
TRAINED_MODELS = ("mf", "two_tower", "hgnn", *GENERATIVE_MODELS)  # each writes a candidate.json with its promotion checks
HEADLINE = "recall@50"  # the metric promotion compares
VALID_K = 50  # validation picks the epoch by recall@50 (two-tower) / map@50 (MF)
REGRESSION_TOLERANCE = 0.01  # absolute drop of the headline metric tolerated against the promoted version
PROTOCOL = "temporal_test_full_seen_filtered"
# Nightly retraining: when the nightly data layers refresh the training data, the downstream automation
# sensor (assets/jobs.py) materialises the models, then the metrics table and the registry, in order.
NIGHTLY = dg.AutomationCondition.eager()


class MFModelConfig(dg.Config):
    """Settings of ``models/mf`` (the defaults are those of ``MFConfig`` and ``RunConfig``; ``warm_start``:
    start from the promoted version's weights, when there is one)."""

    builds: ClassVar[tuple[type, ...]] = (MFConfig, RunConfig)
    own_fields: ClassVar[tuple[str, ...]] = ("warm_start",)
    warm_start: bool = False
    loss: str = MFConfig.loss.value
    dim: int = MFConfig.dim
    lr: float = MFConfig.lr
    l2: float = MFConfig.l2
    clip_min: float = MFConfig.clip_min
    seed: int = RunConfig.seed
    batch_size: int = RunConfig.batch_size
    max_epochs: int = RunConfig.max_epochs
    patience: int = RunConfig.patience
    threads: int = RunConfig.threads


class TwoTowerModelConfig(dg.Config):
    """Settings of ``models/two_tower`` (the defaults are those of ``TwoTowerConfig`` and ``RunConfig``;
    ``warm_start``: start from the promoted version's weights, when there is one)."""

    builds: ClassVar[tuple[type, ...]] = (TwoTowerConfig, RunConfig)
    own_fields: ClassVar[tuple[str, ...]] = ("warm_start",)
    warm_start: bool = False
    dim: int = TwoTowerConfig.dim
    hidden: int = TwoTowerConfig.hidden
    max_history: int = TwoTowerConfig.max_history
    temperature: float = TwoTowerConfig.temperature
    logq: bool = TwoTowerConfig.logq
    uniform_negatives: int = TwoTowerConfig.uniform_negatives
    use_weights: bool = TwoTowerConfig.use_weights
    ssl_weight: float = TwoTowerConfig.ssl_weight
    lr: float = TwoTowerConfig.lr
    seed: int = RunConfig.seed
    batch_size: int = RunConfig.batch_size
    max_epochs: int = RunConfig.max_epochs
    patience: int = RunConfig.patience
    threads: int = RunConfig.threads


def _train_config(model: ModelKind, config: dg.Config, root: Path, name: str) -> TrainConfig:
    values = config.model_dump()
    sections: dict[str, Any] = {}
    for section, dc in (("mf", MFConfig), ("two_tower", TwoTowerConfig), ("run", RunConfig)):
        names = {f.name for f in dataclasses.fields(dc)}
        sections[section] = {k: v for k, v in values.items() if k in names and (section == "run" or section == model.value)}
    cfg = TrainConfig(model=model, data=DataConfig(source=DataSource.TWO_TOWER, path=str(root)))
    overrides = {f"{s}.{k}": v for s, kv in sections.items() for k, v in kv.items()}
    overrides |= {"run.valid_k": VALID_K, "run.out_dir": str(_model_dir(root, name) / "run"), "run.resume": False}
    promoted = _promoted(Warehouse(root)).get(name) if values.get("warm_start") else None
    if promoted is not None:  # warm start: the promoted checkpoint's best weights, a fresh optimiser (training.checkpoint.warm_start)
        overrides["run.init_from"] = str(root / promoted["checkpoint"])
    return cfg.with_overrides(overrides)


def _model_dir(root: Path, name: str) -> Path:
    return root / "models" / "checkpoints" / name


def _promoted(store: Warehouse) -> dict[str, dict[str, Any]]:
    if not store.exists(MODELS_PROMOTED):
        return {}
    return {row["model"]: row for row in store.read(MODELS_PROMOTED).to_pylist()}


def _finite(result: "TrainResult") -> tuple[bool, dict[str, Any]]:
    import torch

    losses_ok = all(math.isfinite(v) for v in result.epoch_losses)
    weights_ok = all(bool(torch.isfinite(t).all()) for t in result.task.state_dict().values() if t.is_floating_point())
    return losses_ok and weights_ok, {"finite_losses": losses_ok, "finite_weights": weights_ok, "last_loss": result.epoch_losses[-1] if result.epoch_losses else None}


def _model_asset(name: str, result: "TrainResult", data: "TwoTowerData", store: Warehouse) -> dg.MaterializeResult:
    from training.baselines import BASELINES
    from training.evaluate import evaluate

    """Keep the checkpoint and its metrics rows, run the promotion checks, record the candidate."""
    folder = _model_dir(store.root, name)
    version = checkpoint_version(result.checkpoint)
    checkpoint = folder / f"{version}.pt"
    if result.checkpoint is not None:
        write_bytes(checkpoint, Path(result.checkpoint).read_bytes())
    rows = metrics_rows(result.test, model=name, version=version, dataset=data.dataset or "warehouse", split="test", protocol=PROTOCOL,
                        seen_filtered=True, seed=result.config.run.seed, data_versions=result.versions)
    write_parquet(rows, folder / f"{version}.metrics.parquet")
    popularity = evaluate(BASELINES["popularity"](data), data.test.ranking, [50])[HEADLINE]
    value = result.test[HEADLINE]
    promoted = _promoted(store).get(name)
    finite, finite_meta = _finite(result)
    beats = value > popularity
    no_regression = promoted is None or value >= promoted["headline_value"] - REGRESSION_TOLERANCE
    checks = {"finite": finite, "beats_popularity": beats, "no_regression": no_regression}
    write_json(folder / "candidate.json", {"model": name, "version": version, "checkpoint": str(checkpoint.relative_to(store.root)),
                                          "headline_metric": HEADLINE, "headline_value": value, "checks": checks})
    return dg.MaterializeResult(
        metadata={"version": version, HEADLINE: dg.MetadataValue.float(value), "epochs": result.epochs, "best_epoch": result.best_epoch,
                  "warm_started_from": Path(result.config.run.init_from).stem if result.warm_started is not None else None,
                  "test": dg.MetadataValue.json({k: round(v, 4) for k, v in result.test.items()}), "checkpoint": str(checkpoint)},
        check_results=[
            dg.AssetCheckResult(check_name="finite", passed=finite, metadata=finite_meta),
            dg.AssetCheckResult(check_name="beats_popularity", passed=beats, metadata={HEADLINE: value, f"popularity_{HEADLINE}": popularity}),
            dg.AssetCheckResult(check_name="no_regression", passed=no_regression,
                                metadata={HEADLINE: value, "promoted_version": promoted["version"] if promoted else None,
                                          "promoted_value": promoted["headline_value"] if promoted else None, "tolerance": REGRESSION_TOLERANCE}),
        ],
    )


def _checks(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("finite", asset=key, blocking=True, description="Training loss and every weight are finite."),
        dg.AssetCheckSpec("beats_popularity", asset=key, blocking=True, description=f"Test {HEADLINE} above the popularity baseline's."),
        dg.AssetCheckSpec("no_regression", asset=key, blocking=True,
                          description=f"Test {HEADLINE} at most {REGRESSION_TOLERANCE} below the promoted version's."),
    ]


@dg.asset(key=MF_KEY, deps=[EXAMPLES_KEY], group_name=GROUP, automation_condition=NIGHTLY, check_specs=_checks(MF_KEY), kinds={"pytorch"},
          description="Pointwise matrix factorisation (naive, Rel-MF or MF-DU loss) on every user-item pair of the training data.")
def mf(config: MFModelConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from training.data.two_tower import TwoTowerData, pairs_from_examples
    from training.train import load_data, train

    cfg = _train_config(ModelKind.MF, config, warehouse.root, "mf")
    data = load_data(cfg.with_overrides({"model": "two_tower"}))
    assert isinstance(data, TwoTowerData)
    return _model_asset("mf", train(cfg, pairs_from_examples(data)), data, warehouse.store())


@dg.asset(key=TWO_TOWER_KEY, deps=[EXAMPLES_KEY, FREQUENCIES_KEY], group_name=GROUP, automation_condition=NIGHTLY, check_specs=_checks(TWO_TOWER_KEY), kinds={"pytorch"},
          description="Two-tower retrieval: in-batch sampled softmax with log-Q, weighted by the debiased labels.")
def two_tower(config: TwoTowerModelConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from training.data.two_tower import TwoTowerData
    from training.train import load_data, train

    cfg = _train_config(ModelKind.TWO_TOWER, config, warehouse.root, "two_tower")
    data = load_data(cfg)
    assert isinstance(data, TwoTowerData)
    return _model_asset("two_tower", train(cfg, data), data, warehouse.store())


@dg.asset(key=BASELINES_KEY, deps=[EXAMPLES_KEY], group_name=GROUP, automation_condition=NIGHTLY, kinds={"python"},
          check_specs=[dg.AssetCheckSpec("metrics_finite", asset=BASELINES_KEY, blocking=True, description="Every baseline metric is a finite number in [0, 1].")],
          description="Popularity and item-kNN under the models' protocol: the floor beside every metric.")
def baselines(warehouse: WarehouseResource) -> dg.MaterializeResult:
    from training.baselines import BASELINES
    from training.data.two_tower import TwoTowerData
    from training.evaluate import evaluate
    from training.train import TWO_TOWER_KS, load_data

    store = warehouse.store()
    data = load_data(TrainConfig(model=ModelKind.TWO_TOWER, data=DataConfig(source=DataSource.TWO_TOWER, path=str(store.root))))
    assert isinstance(data, TwoTowerData)
    version = hashlib.sha256(json.dumps(data.versions, sort_keys=True).encode()).hexdigest()[:16]  # a baseline's version is its data's
    metrics: dict[str, dict[str, float]] = {}
    for name, make in BASELINES.items():
        scorer = make(data)
        metrics[name] = evaluate(scorer, data.test.ranking, TWO_TOWER_KS)
        metrics[name] |= {f"tail_{k}": v for k, v in evaluate(scorer, data.test.ranking, TWO_TOWER_KS, items=data.tail_items).items()}
        rows = metrics_rows(metrics[name], model=name, version=version, dataset=data.dataset or "warehouse", split="test", protocol=PROTOCOL,
                            seen_filtered=True, seed=0, data_versions=data.versions)
        write_parquet(rows, _model_dir(store.root, name) / f"{version}.metrics.parquet")
        write_json(_model_dir(store.root, name) / "candidate.json", {"model": name, "version": version})
    bad = {f"{m}/{k}": v for m, values in metrics.items() for k, v in values.items() if not (math.isfinite(v) and 0.0 <= v <= 1.0)}
    return dg.MaterializeResult(
        metadata={f"{m}_{HEADLINE}": dg.MetadataValue.float(v[HEADLINE]) for m, v in metrics.items()},
        check_results=[dg.AssetCheckResult(check_name="metrics_finite", passed=not bad, metadata={"bad": dg.MetadataValue.json(bad)})],
    )


@dg.asset(key=METRICS_KEY, deps=[MF_KEY, TWO_TOWER_KEY, HGNN_KEY, BASELINES_KEY, *GENERATIVE_KEYS], group_name=GROUP, automation_condition=NIGHTLY, kinds={"parquet", "duckdb"},
          check_specs=[dg.AssetCheckSpec("rows_unique", asset=METRICS_KEY, blocking=True, description="One row per key of the metrics table.")],
          description=MODELS_METRICS.description)
def metrics(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Every model version's rows in one table (one writer: the model assets write their own files)."""
    store = warehouse.store()
    parts = [store.read(MODELS_METRICS)] if store.exists(MODELS_METRICS) else []
    from training.baselines import BASELINES

    for name in (*TRAINED_MODELS, *BASELINES):
        # Every version's rows, those of versions that failed their checks too (kept, not promoted); a
        # failed blocking check skips this asset in its own run, so the next run collects them.
        for path in sorted(_model_dir(store.root, name).glob("*.metrics.parquet")):
            parts.append(pq.read_table(path).cast(MODELS_METRICS.schema))
    table = pa.concat_tables(parts) if parts else MODELS_METRICS.schema.empty_table()
    key = list(MODELS_METRICS.key)
    # A re-run of the same version replaces its rows: keep the last row of each key.
    seen: dict[tuple[Any, ...], int] = {}
    for i, row in enumerate(table.select(key).to_pylist()):
        seen[tuple(row.values())] = i
    table = table.take(sorted(seen.values()))
    store.write(MODELS_METRICS, table)
    duplicates = table.num_rows - len(seen)
    return dg.MaterializeResult(metadata={"rows": table.num_rows},
                                check_results=[dg.AssetCheckResult(check_name="rows_unique", passed=duplicates == 0, metadata={"duplicates": duplicates})])


@dg.asset(key=PROMOTED_KEY, deps=[MF_KEY, TWO_TOWER_KEY, HGNN_KEY, *GENERATIVE_KEYS], group_name=GROUP, automation_condition=NIGHTLY, kinds={"parquet"},
          check_specs=[dg.AssetCheckSpec("checkpoints_exist", asset=PROMOTED_KEY, blocking=True, description="Every promoted version's checkpoint is on disk.")],
          description=MODELS_PROMOTED.description)
def promoted(warehouse: WarehouseResource) -> dg.MaterializeResult:
    store = warehouse.store()
    registry = _promoted(store)
    changed = []
    for name in TRAINED_MODELS:
        path = _model_dir(store.root, name) / "candidate.json"
        if not path.exists():
            continue
        candidate = json.loads(path.read_text())
        if all(candidate["checks"].values()) and registry.get(name, {}).get("version") != candidate["version"]:
            registry[name] = {k: candidate[k] for k in ("model", "version", "checkpoint", "headline_metric", "headline_value")} | {"promoted_at": dt.datetime.now(dt.UTC)}
            changed.append(name)
    table = pa.Table.from_pylist(sorted(registry.values(), key=lambda r: r["model"]), schema=MODELS_PROMOTED.schema)
    store.write(MODELS_PROMOTED, table)
    missing = [r["checkpoint"] for r in registry.values() if not (store.root / r["checkpoint"]).exists()]
    return dg.MaterializeResult(metadata={"promoted_now": dg.MetadataValue.json(changed), "registry": dg.MetadataValue.json({k: v["version"] for k, v in registry.items()})},
                                check_results=[dg.AssetCheckResult(check_name="checkpoints_exist", passed=not missing, metadata={"missing": dg.MetadataValue.json(missing)})])


models_job = dg.define_asset_job("models_job", selection=dg.AssetSelection.groups(GROUP))  # retrain and re-evaluate on demand


# --- Generative recommenders (issue 16): SASRec, HSTU, TIGER on the leave-one-out sequence shards ---------------

SHARDS_KEY = dg.AssetKey(["training_data", "sequence_shards"])
GENERATIVE_HEADLINE = "ndcg@10"  # leave-one-out, full ranking (TIGER: its beams), what promotion compares


class GenerativeModelConfig(dg.Config):
    """Settings of ``models/sasrec``, ``models/hstu`` and ``models/tiger``: the run's knobs, a training budget,
    ``preset`` (``benchmark``: the benchmark's configuration of the model, sized for a CPU, as ``recforge train
    --preset benchmark``; the knobs apply on top of it) and any ``GenerativeConfig`` settings on top of both, as
    ``section.key=value`` separated by ``;`` (e.g. ``sasrec.dim=128;sasrec.layers=3``). ``warm_start``: start from
    the promoted version's best weights when there is one (a fresh optimiser; items added since keep fresh rows)."""

    builds: ClassVar[tuple[type, ...]] = (ScheduledRun,)
    own_fields: ClassVar[tuple[str, ...]] = ("preset", "settings", "warm_start")  # GenerativeConfig overrides, named or free-form
    seed: int = ScheduledRun.seed
    batch_size: int = ScheduledRun.batch_size
    max_epochs: int = ScheduledRun.max_epochs
    patience: int = ScheduledRun.patience
    budget_seconds: float = ScheduledRun.budget_seconds
    preset: Literal["", "benchmark"] = ""
    settings: str = ""
    warm_start: bool = False


def _generative_asset(name: str, config: GenerativeModelConfig, store: Warehouse) -> dg.MaterializeResult:
    """Train on the current shards, keep the checkpoint and metrics rows, run the promotion checks, record the candidate."""
    from training.generative.config import (
        GenerativeConfig,
        SequenceDataConfig,
        SequenceSource,
        benchmark_preset,
    )
    from training.generative.evaluate import KS, full_ranks, popularity_scorer, rank_metrics
    from training.generative.train import load_sequence_data, train_generative

    settings = dict(s.strip().split("=", 1) for s in config.settings.split(";") if s.strip())
    # The preset first: the run's knobs (batch size, patience, ...) and ``settings`` apply on top of it.
    overrides: dict[str, Any] = {"model": name} | (benchmark_preset(name, settings.get("run.device", "auto")) if config.preset else {})
    overrides |= {"run.seed": config.seed, "run.batch_size": config.batch_size, "run.max_epochs": config.max_epochs,
                  "run.patience": config.patience, "run.valid_k": 10, "budget_seconds": config.budget_seconds,
                  "run.out_dir": str(_model_dir(store.root, name) / "run"), "run.resume": False} | settings
    promoted = _promoted(store).get(name)
    if config.warm_start and promoted is not None:  # training.checkpoint.warm_start: its best weights, a fresh optimiser
        overrides["run.init_from"] = str(store.root / promoted["checkpoint"])
    shards = store.root / "training_data" / "sequence_shards"
    cfg = GenerativeConfig(data=SequenceDataConfig(source=SequenceSource.SHARDS, path=str(shards), dataset="warehouse")).with_overrides(overrides)
    data, ids = load_sequence_data(cfg)
    result = train_generative(cfg, data, ids)
    folder = _model_dir(store.root, name)
    version = checkpoint_version(result.checkpoint)
    checkpoint = folder / f"{version}.pt"
    if result.checkpoint is not None:
        write_bytes(checkpoint, Path(result.checkpoint).read_bytes())
    rows = metrics_rows(result.test, model=name, version=version, dataset=data.dataset, split="test", protocol=result.protocol,
                        seen_filtered=data.filter_seen, seed=cfg.run.seed, data_versions=result.versions)
    write_parquet(rows, folder / f"{version}.metrics.parquet")
    ranks = full_ranks(popularity_scorer(data.popularity), data.test, data.num_items, filter_seen=data.filter_seen)
    popularity = rank_metrics(ranks, KS)[GENERATIVE_HEADLINE]
    value = result.test[GENERATIVE_HEADLINE]
    finite, finite_meta = _finite(result)
    beats = value > popularity
    no_regression = promoted is None or value >= promoted["headline_value"] - REGRESSION_TOLERANCE
    checks = {"finite": finite, "beats_popularity": beats, "no_regression": no_regression}
    write_json(folder / "candidate.json", {"model": name, "version": version, "checkpoint": str(checkpoint.relative_to(store.root)),
                                          "headline_metric": GENERATIVE_HEADLINE, "headline_value": value, "checks": checks})
    return dg.MaterializeResult(
        metadata={"version": version, GENERATIVE_HEADLINE: dg.MetadataValue.float(value), "protocol": result.protocol, "epochs": result.epochs,
                  "best_epoch": result.best_epoch, "train_seconds": round(result.seconds, 1),
                  "warm_started_from": Path(cfg.run.init_from).stem if result.warm_started is not None else None,
                  "test": dg.MetadataValue.json({k: round(v, 4) for k, v in result.test.items()}), "checkpoint": str(checkpoint)},
        check_results=[
            dg.AssetCheckResult(check_name="finite", passed=finite, metadata=finite_meta),
            dg.AssetCheckResult(check_name="beats_popularity", passed=beats,
                                metadata={GENERATIVE_HEADLINE: value, f"popularity_{GENERATIVE_HEADLINE}": popularity}),
            dg.AssetCheckResult(check_name="no_regression", passed=no_regression,
                                metadata={GENERATIVE_HEADLINE: value, "promoted_version": promoted["version"] if promoted else None,
                                          "promoted_value": promoted["headline_value"] if promoted else None, "tolerance": REGRESSION_TOLERANCE}),
        ],
    )


def _generative_checks(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("finite", asset=key, blocking=True, description="Training loss and every weight are finite."),
        dg.AssetCheckSpec("beats_popularity", asset=key, blocking=True, description=f"Test {GENERATIVE_HEADLINE} above the popularity baseline's."),
        dg.AssetCheckSpec("no_regression", asset=key, blocking=True,
                          description=f"Test {GENERATIVE_HEADLINE} at most {REGRESSION_TOLERANCE} below the promoted version's."),
    ]


def _generative_model(name: str, description: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["models", name])

    @dg.asset(key=key, deps=[SHARDS_KEY], group_name=GROUP, automation_condition=NIGHTLY, check_specs=_generative_checks(key),
              kinds={"pytorch"}, description=description)
    def _model(config: GenerativeModelConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
        return _generative_asset(name, config, warehouse.store())

    return _model


sasrec = _generative_model("sasrec", "SASRec: causal self-attention over the item history, full softmax, leave-one-out.")
hstu = _generative_model("hstu", "HSTU: pointwise SiLU attention with relative position and time biases over jagged histories.")
tiger = _generative_model("tiger", "TIGER: encoder-decoder over semantic-ID tokens, beam search constrained to valid IDs.")

# The same retraining, each model starting from its promoted version's weights (the HGNN is in models_hgnn.py).
WARM_STARTED = ("mf", "two_tower", *GENERATIVE_MODELS)
models_warm_start_job = dg.define_asset_job(
    "models_warm_start_job",
    selection=dg.AssetSelection.assets(*(dg.AssetKey(["models", m]) for m in WARM_STARTED), BASELINES_KEY, METRICS_KEY, PROMOTED_KEY),
    config={"ops": {f"models__{m}": {"config": {"warm_start": True}} for m in WARM_STARTED}},
)

JOBS = [models_job, models_warm_start_job]
