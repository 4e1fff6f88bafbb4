"""2T-HGNN on small graphs built here: the sampler against a plain loop, the graph, no leakage of
held-out interactions into any sampled subgraph, learning, and serving items that had no interaction."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import NeighborLoader

from training.config import HGNNConfig, ModelKind, TrainConfig
from training.data.two_tower import two_tower_data
from training.evaluate import evaluate
from training.hgnn import HGNNData, build_item_graph, item_embeddings, train_hgnn, with_graph
from training.hgnn.graph import CO, ITEM, SIMILAR, attribute_edges, cooccurrence_edges, knn_edges
from training.hgnn.link import link_loader, link_pairs
from training.hgnn.sampler import TorchNeighborSampler
from training.models.hgnn import HGNN
from training.train import train
from warehouse.contracts import TRAINING_TWO_TOWER_EXAMPLES

GROUPS = 4


def world(users: int = 80, items: int = 48, new: int = 8, per_user: int = 14, seed: int = 0) -> pa.Table:
    """Users in four taste groups consume items of their group (item % 4 == user % 4). The last ``new``
    items are released late: only a user's last two events may pick one (half the time), so they fall in
    the validation and test periods and have no training interaction."""
    rng = np.random.default_rng(seed)
    rows = []
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for u in range(users):
        old = [i for i in range(items - new) if i % GROUPS == u % GROUPS]
        late = [i for i in range(items - new, items) if i % GROUPS == u % GROUPS]
        seq = [int(rng.choice(late)) if t >= per_user - 2 and rng.random() < 0.5 else int(rng.choice(old)) for t in range(per_user)]
        for t, item in enumerate(seq):
            rows.append({"user_idx": u, "history_item_ids": seq[:t], "history_length": t, "user_prior_events": t, "surface": None,
                         "event_type": "click", "item_idx": item, "weight": 1.0, "ts": start + dt.timedelta(hours=t * 10 + u % 7)})
    return pa.Table.from_pylist(rows, schema=TRAINING_TWO_TOWER_EXAMPLES.schema)


def content(items: int = 48, seed: int = 0) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, int]]]:
    """Text embeddings that carry the item's group (plus noise), and a genre attribute = the group."""
    generator = torch.Generator().manual_seed(seed)
    groups = torch.arange(items) % GROUPS
    features = torch.cat([torch.nn.functional.one_hot(groups, GROUPS).float(), 0.3 * torch.randn(items, 4, generator=generator)], 1)
    genre, count, _ = attribute_edges([[f"genre{g}"] for g in groups.tolist()])
    return features, {"genre": (genre, count)}


def small_config(**overrides: object) -> TrainConfig:
    base = {"model": ModelKind.HGNN, "two_tower.dim": 16, "two_tower.hidden": 32, "two_tower.temperature": 0.1, "two_tower.lr": 0.01,
            "hgnn.graph_dim": 16, "hgnn.graph_hidden": 16, "hgnn.neighbours": "5,5", "hgnn.knn": 4, "hgnn.link_epochs": 4,
            "hgnn.link_batch_size": 64, "hgnn.link_lr": 0.01, "run.batch_size": 64, "run.max_epochs": 8, "run.patience": 0,
            "run.threads": 1, "run.valid_k": 10}
    return TrainConfig().with_overrides(base | overrides)


def make_data(config: HGNNConfig | None = None) -> HGNNData:
    features, attributes = content()
    return with_graph(two_tower_data(world(), None, max_history=10), config or small_config().hgnn, features, attributes)


# --- the graph ---------------------------------------------------------------------------------------


def test_cooccurrence_pairs_each_item_with_its_recent_history_both_ways() -> None:
    # Example 1: item 2 after history [0, 1]; example 2: item 1 after [2]. Window 1 pairs only the last history item.
    history = torch.tensor([[1, 2], [0, 3]])  # ids + 1, 0 = pad
    edges, weights = cooccurrence_edges(history, torch.tensor([2, 1]), num_items=3, window=1)
    assert {(a, b): w for (a, b), w in zip(edges.T.tolist(), weights.tolist(), strict=True)} == {(1, 2): 2.0, (2, 1): 2.0}
    edges, _ = cooccurrence_edges(history, torch.tensor([2, 1]), num_items=3, window=2)
    assert {tuple(e) for e in edges.T.tolist()} == {(0, 2), (2, 0), (1, 2), (2, 1)}


def test_knn_connects_items_by_text_and_skips_items_without_text() -> None:
    features = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.0, 0.0]])  # item 4: no text
    edges, weights = knn_edges(features, k=1)
    assert {tuple(e) for e in edges.T.tolist()} == {(1, 0), (0, 1), (3, 2), (2, 3)}  # neighbour -> item
    assert (weights > 0.9).all()


# --- the sampler -------------------------------------------------------------------------------------


def random_graph(items: int = 30, seed: int = 0) -> HeteroData:
    generator = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data[ITEM].num_nodes = items
    data[ITEM].n = torch.arange(items)
    co = torch.randint(items, (2, 150), generator=generator).unique(dim=1)
    data[CO].edge_index, data[CO].weight = co, torch.rand(co.shape[1], generator=generator) + 0.1
    genre = torch.stack([torch.arange(items), torch.arange(items) % 3])
    data["genre"].num_nodes, data["genre"].n = 3, torch.arange(3)
    data[ITEM, "has_genre", "genre"].edge_index = genre
    data["genre", "rev_has_genre", ITEM].edge_index = genre.flip(0)
    return data


def sampled_edges(batch: HeteroData) -> dict[tuple[str, str, str], set[tuple[int, int]]]:
    """Each edge type's sampled edges in global ids."""
    return {et: {(int(batch[et[0]].n[s]), int(batch[et[2]].n[d])) for s, d in batch[et].edge_index.T.tolist()} for et in batch.edge_types}


def test_sampler_takes_every_in_edge_of_low_degree_nodes_like_a_plain_loop() -> None:
    data = random_graph()
    loader = NeighborLoader(data, num_neighbors=[-1], input_nodes=(ITEM, torch.arange(30)), batch_size=7,
                            neighbor_sampler=TorchNeighborSampler(data, [-1]))
    for batch in loader:
        seeds = set(batch[ITEM].n[: batch[ITEM].batch_size].tolist())
        got = sampled_edges(batch)
        for et in data.edge_types:
            if et[2] != ITEM:
                continue  # one hop from item seeds reaches only the edges into items
            expected = {(s, d) for s, d in data[et].edge_index.T.tolist() if d in seeds}  # the reference: a plain loop
            assert got[et] == expected


def test_sampler_respects_the_fanout_and_samples_real_edges() -> None:
    data = random_graph()
    real = {et: {tuple(e) for e in data[et].edge_index.T.tolist()} for et in data.edge_types}
    loader = NeighborLoader(data, num_neighbors=[2, 1], input_nodes=(ITEM, torch.arange(30)), batch_size=5,
                            neighbor_sampler=TorchNeighborSampler(data, [2, 1], seed=3))
    for batch in loader:
        for et, edges in sampled_edges(batch).items():
            assert edges <= real[et]
            per_dst = np.bincount(batch[et].edge_index[1].numpy(), minlength=1)
            assert per_dst.max(initial=0) <= 2  # each node is expanded once, with at most the largest fanout


def test_weighted_sampling_follows_the_edge_weights() -> None:
    # Item 0 has two in-edges: from item 1 (weight 9) and item 2 (weight 1); one neighbour is drawn.
    data = HeteroData()
    data[ITEM].num_nodes, data[ITEM].n = 3, torch.arange(3)
    data[CO].edge_index, data[CO].weight = torch.tensor([[1, 2], [0, 0]]), torch.tensor([9.0, 1.0])
    sampler = TorchNeighborSampler(data, [1], seed=0)
    heavy = sum(int(sampler._sample({ITEM: torch.tensor([0])}).node[ITEM][1]) == 1 for _ in range(2000))
    assert abs(heavy / 2000 - 0.9) < 0.03


# --- no leakage ---------------------------------------------------------------------------------------


def test_no_validation_or_test_interaction_is_an_edge_of_any_sampled_subgraph() -> None:
    config = small_config().hgnn
    examples = world()
    data = make_data(config)
    assert data.graph is not None
    # The held-out co-occurrences: each validation / test example's item with its recent history, minus training pairs.
    tt = two_tower_data(examples, None, max_history=10)
    ts = examples["ts"].cast(pa.int64()).to_numpy()
    held_out_rows = ts >= np.quantile(ts, 0.8)
    history = torch.from_numpy(np.stack([np.pad(np.asarray(h[-10:], np.int64) + 1, (10 - len(h[-10:]), 0)) for h in examples["history_item_ids"].to_pylist()]))
    items = torch.from_numpy(examples["item_idx"].to_numpy().copy())
    held, _ = cooccurrence_edges(history[held_out_rows], items[held_out_rows], tt.num_items, config.cooc_window)
    train_pairs, _ = cooccurrence_edges(tt.history, tt.items, tt.num_items, config.cooc_window)
    leaked = {tuple(e) for e in held.T.tolist()} - {tuple(e) for e in train_pairs.T.tolist()}
    assert len(leaked) > 20 and data.new_items.sum() >= 6  # the fixture holds held-out pairs and new items to leak
    assert not leaked & {tuple(e) for e in data.graph.cooccurrence[0].T.tolist()}
    hetero = data.graph.to_hetero_data()
    loaders = [
        link_loader(data.graph, config, seed=0, pairs=link_pairs(data.graph)),
        NeighborLoader(hetero, num_neighbors=[-1, -1], input_nodes=(ITEM, torch.arange(data.graph.num_items)), batch_size=16,
                       neighbor_sampler=TorchNeighborSampler(hetero, [-1, -1])),
    ]
    batches = 0
    for loader in loaders:
        for batch in loader:
            edges = sampled_edges(batch)[CO]
            assert not edges & leaked
            assert not any(a in set(torch.nonzero(data.new_items).squeeze(1).tolist()) for a, _ in edges)
            batches += 1
    assert batches > 3


# --- the model ----------------------------------------------------------------------------------------


def test_hgnn_embeds_every_item_including_new_ones_and_its_link_loss_falls() -> None:
    config = small_config()
    data = make_data(config.hgnn)
    assert data.graph is not None
    torch.manual_seed(0)
    from training.hgnn import make_hgnn

    model = make_hgnn(config, data.graph)
    full = model(data.graph.to_hetero_data())
    assert full.shape == (data.graph.num_items, 16) and torch.allclose(full.norm(dim=1), torch.ones(len(full)), atol=1e-5)
    result = train_hgnn(model, data.graph, config.hgnn, seed=1)
    assert result.steps > 0 and result.losses[-1] < result.losses[0] - 0.1
    table = item_embeddings(model, data.graph, config.hgnn)
    assert table.shape == (data.graph.num_items, 16) and torch.isfinite(table).all()
    # New items (no interaction) sit with their group through content and genre edges.
    groups = torch.arange(data.graph.num_items) % GROUPS
    new = torch.nonzero(data.new_items).squeeze(1)
    similarity = table[new] @ table.T
    similarity[torch.arange(len(new)), new] = -2
    assert (groups[similarity.argmax(1)] == groups[new]).float().mean() >= 0.75


def test_hgnn_learns_beats_random_and_reaches_new_items_two_tower_cannot() -> None:
    data = make_data()
    result = train(small_config(), data)
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    generator = torch.Generator().manual_seed(0)
    random = evaluate(lambda idx: torch.rand(len(idx), data.num_items, generator=generator), data.test.ranking, [10], items=data.new_items)
    assert {"cold_recall@50", "new_ndcg@10", "tail_recall@10"} <= set(result.test)
    assert result.test["recall@10"] > 0.3
    assert result.test["new_recall@10"] > random["recall@10"] + 0.2
    two_tower = train(small_config(model=ModelKind.TWO_TOWER), two_tower_data(world(), None, max_history=10))
    assert result.test["new_recall@10"] > two_tower.test["new_recall@10"] + 0.1


def test_a_new_item_added_after_training_is_served_from_its_content() -> None:
    config = small_config(**{"run.max_epochs": 4})
    data = make_data(config.hgnn)
    assert data.graph is not None
    task = train(config, data).task
    # Item I: a copy of item 0's text and genre, never seen by the model.
    features, attributes = content()
    features = torch.cat([features, features[:1]])
    genre, count = attributes["genre"]
    grown = build_item_graph(data.history, data.items, data.graph.num_items + 1, features,
                             {"genre": (torch.cat([genre, torch.tensor([[data.graph.num_items], [0]])], 1), count)}, window=3, knn=4)
    table = item_embeddings(task.model.hgnn, grown, config.hgnn)
    task.model.set_graph(table, grown.trained)
    with torch.no_grad():
        vectors = task.model.item_tower(torch.arange(grown.num_items))
    similarity = vectors[:-1] @ vectors[-1]
    groups = torch.arange(grown.num_items - 1) % GROUPS
    assert similarity[groups == 0].mean() > similarity[groups != 0].mean() + 0.2


@pytest.mark.parametrize("neighbours", ["4", "4,2,2"])
def test_depth_follows_the_fanout(neighbours: str) -> None:
    config = small_config(**{"hgnn.neighbours": neighbours})
    data = make_data(config.hgnn)
    assert data.graph is not None
    from training.hgnn import make_hgnn

    model = make_hgnn(config, data.graph)
    assert isinstance(model, HGNN) and len(model.convs) == len(neighbours.split(","))
    assert item_embeddings(model, data.graph, config.hgnn).shape == (data.graph.num_items, 16)
    assert SIMILAR in data.graph.to_hetero_data().edge_types


def test_semantic_id_codes_feed_the_item_input() -> None:
    from training.hgnn import make_hgnn
    from training.hgnn.data import codes_matrix

    # Item 0 and 2 have two-level semantic IDs, item 1 none.
    assert codes_matrix(pa.table({"item_idx": [0, 2], "codes": [[1, 2], [3, 0]]})).tolist() == [[1, 2], [-1, -1], [3, 0]]
    features, attributes = content()
    codes = torch.stack([torch.arange(48) % GROUPS, torch.arange(48) % 3], 1)
    codes[0] = -1  # an item without a semantic ID
    data = with_graph(two_tower_data(world(), None, max_history=10), small_config().hgnn, features, attributes, codes)
    assert data.graph is not None
    model = make_hgnn(small_config(), data.graph)
    assert model.codes is not None and model.codes.num_embeddings == 4 * 2 + 1  # (level, code) rows and a padding row
    model(data.graph.to_hetero_data()).sum().backward()
    grad = model.codes.weight.grad
    assert grad is not None and grad[:8].abs().sum() > 0 and grad[-1].abs().sum() == 0
