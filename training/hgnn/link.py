"""Training the HGNN with the contrastive link loss, and embedding every item with it.

Both go through PyG's loaders with :class:`TorchNeighborSampler`: ``LinkNeighborLoader`` over the
co-occurrence edges (each batch: a set of co-occurring pairs and the sampled neighbourhoods of their
items), ``NeighborLoader`` over every item for the embedding table. Memory is bounded by the batch and
the fanout, not by the graph.

Link loss: each pair's two items are positives, every other item of the batch a negative, symmetric
InfoNCE over ``<g_a, g_b> / temperature``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch_geometric.loader import LinkNeighborLoader, NeighborLoader

from training import losses
from training.config import HGNNConfig
from training.hgnn.graph import CO, ITEM, ItemGraph
from training.hgnn.sampler import TorchNeighborSampler
from training.models.hgnn import HGNN

ProgressFn = Callable[[int, int, float, float], None]  # step, total steps, loss, pairs/s


@dataclass
class LinkResult:
    losses: list[float]  # per epoch
    steps: int
    pairs_per_second: float
    seconds: float


def link_pairs(graph: ItemGraph) -> torch.Tensor:
    """``[2, P]`` each undirected co-occurrence pair once (the positives of the link loss)."""
    index = graph.cooccurrence[0]
    return index[:, index[0] < index[1]]


def link_loader(graph: ItemGraph, config: HGNNConfig, seed: int, pairs: torch.Tensor) -> LinkNeighborLoader:
    """Batches of ``pairs`` with the sampled neighbourhoods of their items."""
    data = graph.to_hetero_data()
    return LinkNeighborLoader(data, num_neighbors=config.fanout, edge_label_index=(CO, pairs), batch_size=config.link_batch_size,
                              shuffle=True, neighbor_sampler=TorchNeighborSampler(data, config.fanout, seed))


def train_hgnn(model: HGNN, graph: ItemGraph, config: HGNNConfig, seed: int = 1, progress: ProgressFn | None = None) -> LinkResult:
    """Train ``model`` in place with the link loss over ``graph``'s co-occurrence pairs."""
    pairs = link_pairs(graph)
    if pairs.shape[1] == 0:
        return LinkResult([], 0, 0.0, 0.0)
    loader = link_loader(graph, config, seed, pairs)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.link_lr)
    total = config.max_link_steps or config.link_epochs * math.ceil(pairs.shape[1] / config.link_batch_size)
    epoch_losses: list[float] = []
    steps = seen = 0
    started = time.perf_counter()
    model.train()
    for _ in range(config.link_epochs):
        loss_sum, batches = 0.0, 0
        for batch in loader:
            g = model(batch)
            a, b = batch[CO].edge_label_index
            loss = (losses.info_nce(g[a], g[b], config.link_temperature) + losses.info_nce(g[b], g[a], config.link_temperature)) / 2
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps, seen = steps + 1, seen + len(a)
            loss_sum, batches = loss_sum + float(loss.detach()), batches + 1
            if progress is not None:
                progress(steps, total, float(loss.detach()), seen / max(time.perf_counter() - started, 1e-9))
            if config.max_link_steps and steps >= config.max_link_steps:
                break
        if batches:
            epoch_losses.append(loss_sum / batches)
        if config.max_link_steps and steps >= config.max_link_steps:
            break
    elapsed = time.perf_counter() - started
    return LinkResult(epoch_losses, steps, seen / max(elapsed, 1e-9), elapsed)


@torch.no_grad()
def item_embeddings(model: HGNN, graph: ItemGraph, config: HGNNConfig, seed: int = 1, batch_size: int = 4096) -> torch.Tensor:
    """``[I, graph_dim]`` the HGNN embedding of every item (new ones through their content and attribute edges)."""
    data = graph.to_hetero_data()
    loader = NeighborLoader(data, num_neighbors=config.fanout, input_nodes=(ITEM, torch.arange(graph.num_items)), batch_size=batch_size,
                            shuffle=False, neighbor_sampler=TorchNeighborSampler(data, config.fanout, seed))
    model.eval()
    out = torch.empty(graph.num_items, model.out.out_features)
    for batch in loader:
        seeds = batch[ITEM].batch_size
        out[batch[ITEM].n[:seeds]] = model(batch)[:seeds]
    return out
