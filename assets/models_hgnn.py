"""``models/hgnn``: 2T-HGNN (training/hgnn/, issue 17) on the two-tower examples and the item graph.

    training_data/two_tower_examples + item_frequencies + graph_nodes + graph_edges -> models/hgnn

The HGNN is trained with the link loss on the co-occurrence of the examples' training rows (the graph
tables give the items' text embeddings and their category and brand nodes), every item is embedded,
and the two towers are trained on top. It is evaluated under the two-tower model's protocol and carries
the same rows, checks and promotion (``assets.models``: finite, beats popularity, no regression);
``models/metrics`` collects its rows and ``models/promoted`` promotes it. Retrained nightly (eager).
"""

from typing import Any, ClassVar

import dagster as dg

from assets.models import (
    EXAMPLES_KEY,
    FREQUENCIES_KEY,
    GROUP,
    HGNN_KEY,
    NIGHTLY,
    VALID_K,
    _checks,
    _model_asset,
    _model_dir,
)
from assets.resources import WarehouseResource
from training.config import (
    DataConfig,
    DataSource,
    HGNNConfig,
    ModelKind,
    RunConfig,
    TrainConfig,
    TwoTowerConfig,
)

GRAPH_NODES_KEY = dg.AssetKey(["training_data", "graph_nodes"])
GRAPH_EDGES_KEY = dg.AssetKey(["training_data", "graph_edges"])


class HGNNModelConfig(dg.Config):
    """Settings of ``models/hgnn`` (the defaults are those of ``TwoTowerConfig``, ``HGNNConfig`` and ``RunConfig``)."""

    builds: ClassVar[tuple[type, ...]] = (TwoTowerConfig, HGNNConfig, RunConfig)
    own_fields: ClassVar[tuple[str, ...]] = ()
    dim: int = TwoTowerConfig.dim
    hidden: int = TwoTowerConfig.hidden
    max_history: int = TwoTowerConfig.max_history
    temperature: float = TwoTowerConfig.temperature
    logq: bool = TwoTowerConfig.logq
    use_weights: bool = TwoTowerConfig.use_weights
    lr: float = TwoTowerConfig.lr
    graph_dim: int = HGNNConfig.graph_dim
    graph_hidden: int = HGNNConfig.graph_hidden
    neighbours: str = HGNNConfig.neighbours
    cooc_window: int = HGNNConfig.cooc_window
    knn: int = HGNNConfig.knn
    link_epochs: int = HGNNConfig.link_epochs
    link_batch_size: int = HGNNConfig.link_batch_size
    link_lr: float = HGNNConfig.link_lr
    max_link_steps: int = HGNNConfig.max_link_steps
    seed: int = RunConfig.seed
    batch_size: int = RunConfig.batch_size
    max_epochs: int = RunConfig.max_epochs
    patience: int = RunConfig.patience
    threads: int = RunConfig.threads


def hgnn_train_config(config: HGNNModelConfig, root: Any) -> TrainConfig:
    """The trainer's config from the asset's: each field goes to the section that declares it."""
    values = config.model_dump()
    overrides: dict[str, Any] = {}
    for section, dc in (("two_tower", TwoTowerConfig), ("hgnn", HGNNConfig), ("run", RunConfig)):
        overrides |= {f"{section}.{f.name}": values[f.name] for f in dc.__dataclass_fields__.values() if f.name in values}
    overrides |= {"run.valid_k": VALID_K, "run.out_dir": str(_model_dir(root, "hgnn") / "run"), "run.resume": False}
    return TrainConfig(model=ModelKind.HGNN, data=DataConfig(source=DataSource.TWO_TOWER, path=str(root))).with_overrides(overrides)


@dg.asset(key=HGNN_KEY, deps=[EXAMPLES_KEY, FREQUENCIES_KEY, GRAPH_NODES_KEY, GRAPH_EDGES_KEY], group_name=GROUP, automation_condition=NIGHTLY,
          check_specs=_checks(HGNN_KEY), kinds={"pytorch"},
          description="2T-HGNN: a heterogeneous GNN over items, attributes, co-occurrence and content kNN, two towers on top (in-batch softmax, log-Q).")
def hgnn(config: HGNNModelConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    cfg = hgnn_train_config(config, warehouse.root)
    from training.data.two_tower import TwoTowerData
    from training.train import load_data, train

    data = load_data(cfg)
    assert isinstance(data, TwoTowerData)
    return _model_asset("hgnn", train(cfg, data), data, warehouse.store())
