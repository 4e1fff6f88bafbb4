"""2T-HGNN: the item graph (graph.py), PyG neighbour sampling in plain torch (sampler.py), the HGNN's
link-loss training and item embedding (link.py), its data (data.py), and the task the trainer builds.

``build_hgnn_task`` trains the HGNN on the training rows' graph, embeds every item, and returns the
two-tower task (in-batch softmax with log-Q, ``training.tasks.TwoTowerTask``) over that embedding
table, which ``training.train.train`` then trains and evaluates like the two-tower model.
"""

from __future__ import annotations

from training.config import TrainConfig
from training.hgnn.data import HGNNData, hgnn_data_from_warehouse, with_graph
from training.hgnn.graph import ItemGraph, build_item_graph
from training.hgnn.link import LinkResult, item_embeddings, train_hgnn
from training.models.hgnn import HGNN, HGNNTwoTower
from training.tasks import TwoTowerTask

__all__ = [
    "HGNNData",
    "ItemGraph",
    "LinkResult",
    "build_hgnn_task",
    "build_item_graph",
    "hgnn_data_from_warehouse",
    "item_embeddings",
    "make_hgnn",
    "train_hgnn",
    "with_graph",
]


def make_hgnn(cfg: TrainConfig, graph: ItemGraph) -> HGNN:
    """The HGNN for ``graph`` with ``cfg.hgnn``'s sizes (with id embeddings when no item has text)."""
    h = cfg.hgnn
    codes = graph.codes
    vocab = int(codes.max()) + 1 if codes is not None and codes.numel() and int(codes.max()) >= 0 else 0
    return HGNN(graph.to_hetero_data().metadata(), graph.num_items, graph.features.shape[1],
                {name: count for name, (_, count) in graph.attributes.items()}, h.graph_hidden, h.graph_dim, len(h.fanout),
                code_vocab=vocab, code_levels=codes.shape[1] if codes is not None and vocab else 0,
                id_embedding=h.id_embedding or graph.features.shape[1] == 0)  # without text the ids carry the items


def build_hgnn_task(cfg: TrainConfig, data: HGNNData) -> tuple[TwoTowerTask, LinkResult]:
    """Train the HGNN (link loss), embed every item, and put the two-tower task on top."""
    if data.graph is None:
        raise ValueError("the HGNN needs HGNNData with its graph (training.hgnn.with_graph)")
    hgnn = make_hgnn(cfg, data.graph)
    link = train_hgnn(hgnn, data.graph, cfg.hgnn, seed=cfg.run.seed)
    table = item_embeddings(hgnn, data.graph, cfg.hgnn, seed=cfg.run.seed)
    tt = cfg.two_tower
    model = HGNNTwoTower(hgnn, table, data.graph.trained, data.num_items, tt.dim, tt.hidden, cfg.hgnn.id_dropout)
    return TwoTowerTask(model, tt, data.log_q), link  # type: ignore[arg-type]  # HGNNTwoTower serves TwoTower's interface
