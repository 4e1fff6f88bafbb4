"""Two-tower content features: the item tower over id, semantic-ID codes, text and catalog features, the user
tower over the same item representation, new items served from content, and the config switches."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from training.config import ContentGroup, ModelKind, TrainConfig
from training.data.two_tower import TwoTowerData, two_tower_data, with_content
from training.data.two_tower_content import ItemContent, hash_bucket, item_content
from training.evaluate import evaluate
from training.models.two_tower import TwoTower
from training.models.two_tower_features import ContentEncoder, content_neighbours
from training.tasks import TwoTowerRetrieval
from training.train import build_task, train
from warehouse.contracts import TRAINING_TWO_TOWER_EXAMPLES

ALL = tuple(ContentGroup)


def catalogue(items: int, topics: int = 4, seed: int = 0, width: int = 8) -> ItemContent:
    """Item i belongs to topic i % topics: its text is the topic's direction plus noise, its first code level and
    category are the topic, its brand and price are noise (a quarter of the items have no brand, one no text)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(topics, width))
    text = directions[np.arange(items) % topics] + 0.3 * rng.normal(size=(items, width))
    text[1] = 0.0  # item 1 has no text
    codes = np.stack([np.arange(items) % topics, rng.integers(0, 3, items)], 1)
    return item_content(items, text=text.astype(np.float32), codes=codes, categories=[[f"topic {i % topics}"] for i in range(items)],
                        brands=[None if i % 4 == 3 else f"brand {rng.integers(5)}" for i in range(items)],
                        prices=[float(rng.uniform(1, 100)) for _ in range(items)], buckets=64, price_buckets=4, versions={"catalog": "v1"})


def topic_examples(users: int = 120, items: int = 96, per_user: int = 12, topics: int = 8, seed: int = 0) -> pa.Table:
    """Users consume items of their topic (item % topics == user % topics) in time order. Items >= 3/4 of the
    catalogue are only consumed in the last fifth of the time line: new at test time, known only by content."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    late = int(items * 0.75)
    rows = []
    for u in range(users):
        old = [i for i in range(late) if i % topics == u % topics]
        new = [i for i in range(late, items) if i % topics == u % topics]
        seq = rng.choice(old, per_user - 2).tolist() + rng.choice(new, 2).tolist()
        for t, item in enumerate(seq):
            hours = t * 10 if t < per_user - 2 else 10_000 + t * 10  # the new items come last, after everyone's old ones
            rows.append({"user_idx": u, "history_item_ids": seq[:t], "history_length": t, "user_prior_events": t, "surface": None,
                         "event_type": "click", "item_idx": item, "weight": 1.0, "ts": start + dt.timedelta(hours=hours + u % 7)})
    return pa.Table.from_pylist(rows, schema=TRAINING_TWO_TOWER_EXAMPLES.schema)


def topic_data(content: bool = True) -> TwoTowerData:
    data = two_tower_data(topic_examples(), None, max_history=10, valid_share=0.1, test_share=0.1)
    return with_content(data, catalogue(data.num_items, topics=8)) if content else data


def tiny_config(**overrides: object) -> TrainConfig:
    base = {"model": ModelKind.TWO_TOWER, "two_tower.dim": 16, "two_tower.hidden": 32, "two_tower.temperature": 0.1, "two_tower.lr": 0.01,
            "run.batch_size": 64, "run.max_epochs": 10, "run.patience": 0, "run.threads": 1, "run.valid_k": 10}
    return TrainConfig().with_overrides(base | overrides)


def test_content_tensors_hash_bucket_and_mark_missing_values() -> None:
    content = item_content(3, text=np.array([[1.0, 0.0], [0.0, 0.0]], np.float32), codes=np.array([[2, 0]]),
                           categories=[["Drama", "Comedy"], [], [" drama "]], brands=["Acme", None, ""], prices=[10.0, None, 30.0],
                           buckets=50, price_buckets=2)
    assert content.has_text.tolist() == [True, False, False]  # item 2 is past the text rows
    assert content.codes.tolist() == [[2, 0], [-1, -1], [-1, -1]]
    assert content.categories[2, 0] == hash_bucket("Drama", 50) == hash_bucket("drama", 50)  # case and spaces do not matter
    assert (content.categories[1] == 0).all() and content.brand.tolist() == [hash_bucket("acme", 50), 0, 0]
    assert content.price.tolist() == [1, 0, 2]  # the cheaper and the dearer half; no price: 0
    assert content.available == ALL and content.code_sizes == (3, 1)


def test_tower_shapes_and_feature_groups() -> None:
    content = catalogue(20)
    encoder = ContentEncoder(content, ALL, hidden=12)
    model = TwoTower(20, dim=6, hidden=12, user_buckets=5, encoder=encoder)
    assert model.item_tower.features(torch.arange(4)).shape == (4, 1 + len(ALL), 12)  # id + five content groups
    assert encoder(torch.zeros(3, 7, dtype=torch.long)).shape == (3, 7, len(ALL), 12)
    users, items = model(torch.tensor([[0, 3, 4], [1, 2, 0]]), torch.tensor([2, 30]), torch.tensor([0, 1]))
    assert users.shape == items.shape == (2, 6)
    assert torch.allclose(items.norm(dim=1), torch.ones(2))
    # the encoder is one module in both towers: the history is pooled over the item tower's content vectors
    assert model.user_tower.encoder is model.item_tower.encoder
    assert model.content_groups == tuple(g.value for g in ALL)


def test_a_new_item_is_served_from_content_alone() -> None:
    content = catalogue(20)
    torch.manual_seed(0)
    model = TwoTower(20, dim=8, hidden=16, encoder=ContentEncoder(content, ALL, hidden=16))
    known = torch.ones(20, dtype=torch.bool)
    known[[4, 5, 9]] = False  # never a training positive
    model.set_known(known)
    model.eval()
    vectors = model.item_tower(torch.arange(22))  # 20, 21: past the catalogue
    assert torch.isfinite(vectors).all()
    # 4 and 5 (topics 0 and 1) share the unseen id row, so they differ only through their content
    assert (vectors[4] - vectors[5]).abs().max() > 1e-3
    # an id past the catalogue has neither an id row nor content: every such id is the same vector
    assert torch.equal(vectors[20], vectors[21]) and (vectors[20] - vectors[4]).abs().max() > 1e-3
    # without content the unseen items would all be one vector
    plain = TwoTower(20, dim=8, hidden=16)
    plain.set_known(known)
    plain.eval()
    assert torch.equal(plain.item_tower(torch.tensor([4])), plain.item_tower(torch.tensor([5])))


def test_an_untrained_item_takes_its_text_neighbours_id_rows() -> None:
    # 0 and 1 read alike, 2 and 3 read alike; 3 was never trained; 4 has no text
    text = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.0, 0.0]])
    known = torch.tensor([True, True, True, False, True])
    index, weights = content_neighbours(text, text.norm(dim=1) > 0, known, k=1)
    assert index[:4, 0].tolist() == [1, 0, 1, 2]  # never itself, only trained items with text
    assert torch.allclose(weights[:4].sum(1), torch.ones(4)) and weights[4].sum() == 0
    model = TwoTower(5, dim=4, hidden=8)
    model.set_known(known)
    model.set_neighbours(index, weights)
    model.eval()
    tower = model.item_tower
    assert torch.equal(tower.id_embedding(torch.tensor([3])), tower.embed.weight[2:3])  # served from item 2's row
    assert torch.equal(tower.id_embedding(torch.tensor([4, 9])), tower.embed.weight[[4, 5]])  # own row; past the catalogue: unseen row
    # the user tower pools an untrained history item the same way: item 3 (history id 4) reads as item 2 (id 3)
    assert torch.equal(model.user_tower(torch.tensor([[0, 4]])), model.user_tower(torch.tensor([[0, 3]])))
    assert not torch.equal(model.user_tower(torch.tensor([[0, 4]])), model.user_tower(torch.tensor([[0, 5]])))


def test_content_beats_ids_on_items_new_at_test_time() -> None:
    """New items (first consumed in the test period) are found through their content, not through ids."""
    with_text, ids_only = topic_data(), topic_data(content=False)
    assert int(with_text.new_items.sum()) == 24  # 3 per topic
    cfg = tiny_config(**{"two_tower.id_dropout": 0.3})
    torch.manual_seed(0)
    content_run = train(cfg, with_text)
    torch.manual_seed(0)
    id_run = train(cfg, ids_only)
    # Without content every new item is the same vector: at best the top 10 holds 10 of the 24 (0.42 expected).
    assert content_run.test["new_recall@10"] > 0.8
    assert content_run.test["new_recall@10"] > id_run.test["new_recall@10"] + 0.3
    assert content_run.test["recall@10"] > id_run.test["recall@10"]


def test_config_switches_content_groups() -> None:
    data = topic_data()
    assert build_task(tiny_config(), data).model.content_groups == tuple(g.value for g in ALL)  # auto: every group the data has
    assert build_task(tiny_config(**{"two_tower.content": "none"}), data).model.content_groups == ()
    chosen = build_task(tiny_config(**{"two_tower.content": "text,codes"}), data).model
    assert chosen.content_groups == ("codes", "text") and chosen.item_tower.num_groups == 3
    assert build_task(tiny_config(), topic_data(content=False)).model.content_groups == ()  # no content tables: ids only
    with pytest.raises(ValueError, match="brand"):
        build_task(tiny_config(**{"two_tower.content": "brand"}), topic_data(content=False))
    with pytest.raises(ValueError):
        tiny_config(**{"two_tower.content": "colour"}).two_tower.content_groups(ALL)


def test_ssl_masks_whole_groups_and_trains() -> None:
    data = topic_data()
    task = build_task(tiny_config(**{"two_tower.ssl_weight": 0.5}), data)
    loss = task(data.batch(torch.arange(64)))
    loss.backward()
    assert torch.isfinite(loss)
    assert task.model.item_tower.encoder.text.weight.grad is not None


def test_checkpoint_records_content_and_serving_a_grown_catalogue(tmp_path: Path) -> None:
    data = topic_data()
    result = train(tiny_config(**{"run.max_epochs": 1, "run.out_dir": str(tmp_path)}), data)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["content"] == [g.value for g in ALL] and meta["inputs"]["catalog"] == "v1"
    assert meta["config"]["two_tower"]["content"] == "auto"
    # the content tables are data, not weights: the checkpoint's state holds no copy of them
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["state"]["task"]
    assert not any("text_table" in name for name in saved)
    # a catalogue grown after training: the new item is served from its content through the same encoder
    model = result.task.model
    model.item_tower.encoder.set_content(catalogue(data.num_items + 2))
    retrieval = TwoTowerRetrieval(model, data.num_items + 2)
    assert retrieval.items.shape == (data.num_items + 2, 16)
    assert (retrieval.items[-1] - retrieval.items[-2]).abs().max() > 1e-4


def test_content_versions_join_the_data_versions() -> None:
    data = topic_data()
    assert data.versions["catalog"] == "v1"
    assert with_content(data, None).content is None and "catalog" not in with_content(data, None).versions
    with pytest.raises(ValueError):
        with_content(data, catalogue(data.num_items + 1))


def test_random_scores_are_below_content_model() -> None:
    data = topic_data()
    result = train(tiny_config(), data)
    generator = torch.Generator().manual_seed(0)
    random = evaluate(lambda idx: torch.rand(len(idx), data.num_items, generator=generator), data.test.ranking, [10])
    assert result.test["recall@10"] > random["recall@10"] + 0.2
