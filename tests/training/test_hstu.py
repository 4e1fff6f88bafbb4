"""HSTU: jagged equals padded, causal masking, relative biases, learning on tiny seeded data."""

from __future__ import annotations

import pytest
import torch

from tests.training.test_sasrec import NUM_ITEMS, cycle_data, tiny
from training.data import BatchLayout
from training.generative.config import GenerativeConfig
from training.generative.data import from_loader
from training.generative.train import train_generative
from training.models.hstu import HSTU, RelativeBias, jagged_to_padded


def model(**kw) -> HSTU:
    torch.manual_seed(0)
    return HSTU(NUM_ITEMS, 8, num_event_types=3, dim=16, layers=2, heads=2, attention_dim=8, linear_dim=8, dropout=0.0, **kw).eval()


def test_jagged_to_padded_places_rows_at_the_front() -> None:
    values = torch.tensor([1, 2, 3, 4, 5])
    padded, row, col = jagged_to_padded(values, torch.tensor([0, 3, 3, 5]), 4)
    assert padded.tolist() == [[1, 2, 3, 0], [0, 0, 0, 0], [4, 5, 0, 0]]
    assert torch.equal(padded[row, col], values)


def test_time_buckets_follow_the_reference() -> None:
    bias = RelativeBias(max_len=4, num_buckets=10)
    with torch.no_grad():
        bias.position.zero_()
        bias.time.copy_(torch.arange(11.0))
    # dt of 0 or 1 s: bucket 0; 10 s: floor(ln 10 / 0.301) = 7; 1e9 s: clamped to 10
    out = bias(torch.tensor([[0, 0, 0]]), torch.tensor([[1, 10, 10**9]]))
    assert out[0, :, 0].tolist() == [0.0, 7.0, 10.0]


def test_outputs_are_unit_vectors_and_batches_of_one_or_many_agree() -> None:
    hstu = model()
    items, offsets = torch.tensor([3, 4, 5, 7, 8]), torch.tensor([0, 3, 5])
    ts, types, query = torch.tensor([0, 60, 120, 0, 3600]), torch.tensor([1, 2, 1, 1, 1]), torch.tensor([180, 7200])
    out = hstu(items, offsets, ts, query, types)
    assert out.shape == (5, 16) and torch.allclose(out.norm(dim=-1), torch.ones(5), atol=1e-5)
    alone = hstu(items[3:], torch.tensor([0, 2]), ts[3:], query[1:], types[3:])
    assert torch.allclose(out[3:], alone, atol=1e-5)  # a row's output does not depend on its batch neighbours


def test_no_position_sees_a_later_item_or_action() -> None:
    hstu = model()
    items, offsets = torch.tensor([3, 4, 5, 6, 7]), torch.tensor([0, 5])
    ts, types, query = torch.arange(5) * 60, torch.tensor([1, 1, 1, 1, 1]), torch.tensor([300])
    before = hstu(items, offsets, ts, query, types)
    after = hstu(torch.tensor([3, 4, 5, 30, 31]), offsets, ts, query, torch.tensor([1, 1, 1, 2, 2]))
    assert torch.allclose(before[:3], after[:3], atol=1e-6)
    assert not torch.allclose(before[3], after[3])


def test_action_types_are_features() -> None:
    hstu = model()
    items, offsets, ts, query = torch.tensor([3, 4]), torch.tensor([0, 2]), torch.tensor([0, 60]), torch.tensor([120])
    assert not torch.allclose(hstu(items, offsets, ts, query, torch.tensor([1, 1])), hstu(items, offsets, ts, query, torch.tensor([1, 2])))


def test_loader_batches_convert_in_both_layouts() -> None:
    padded = {"user_idx": torch.tensor([5]), "item_ids": torch.tensor([[0, 3, 4]], dtype=torch.int32),
              "event_types": torch.tensor([[0, 1, 2]], dtype=torch.int32), "timestamps": torch.tensor([[0, 60_000, 120_000]]),
              "targets": torch.tensor([[9]]), "target_lengths": torch.tensor([1]), "mask": torch.tensor([[False, True, True]])}
    batch = from_loader(padded)
    assert batch.items.tolist() == [[0, 3, 4]] and batch.timestamps.tolist() == [[0, 60, 120]] and batch.targets.tolist() == [9]
    jagged = {**{k: v for k, v in padded.items() if k != "mask"}, "item_ids": torch.tensor([3, 4], dtype=torch.int32),
              "event_types": torch.tensor([1, 2], dtype=torch.int32), "timestamps": torch.tensor([60_000, 120_000]), "offsets": torch.tensor([0, 2])}
    converted = from_loader(jagged)
    assert torch.equal(converted.items, batch.jagged().items) and converted.query_ts.tolist() == [120]


@pytest.mark.parametrize("loss", ["sampled", "full"])
def test_loss_falls_and_beats_a_random_model(loss: str) -> None:
    torch.manual_seed(0)
    data = cycle_data()
    cfg = tiny("hstu", **{"hstu.dim": 32, "hstu.attention_dim": 16, "hstu.linear_dim": 16, "hstu.dropout": 0.0, "hstu.lr": 0.01,
                          "hstu.negatives": 16, "hstu.num_buckets": 16, "hstu.loss": loss})
    result = train_generative(cfg, data)
    assert result.epoch_losses[-1] < 0.7 * result.epoch_losses[0]
    assert result.test["hr@10"] > 2 * 10 / (NUM_ITEMS - 8)


def test_trains_on_jagged_batches() -> None:
    data = cycle_data(users=4).with_layout(BatchLayout.JAGGED)
    batch = data.batch(torch.arange(4))
    assert batch.offsets.tolist() == [0, 8, 16, 24, 32]  # the loader's JAGGED layout: values back to back


def test_adam_beta2_is_a_setting_whose_default_keeps_earlier_runs() -> None:
    assert GenerativeConfig().with_overrides({"model": "hstu"}).betas == (0.9, 0.999)
    assert GenerativeConfig().with_overrides({"model": "hstu", "hstu.beta2": 0.98}).betas == (0.9, 0.98)
