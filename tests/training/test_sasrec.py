"""SASRec, the leave-one-out data and the evaluation it shares with HSTU: tiny seeded data, a few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.generative.config import GenerativeConfig
from training.generative.data import leave_one_out
from training.generative.evaluate import full_ranks, rank_metrics, ranks_from_lists
from training.generative.train import build_generative_task, train_generative
from training.models.sasrec import SASRec, align_right

NUM_ITEMS = 40


def cycle_data(users: int = 64, length: int = 12, seed: int = 0):
    """Every user walks the catalogue in steps of one from a random start: the next item is always
    the current one + 1 (mod I), a rule a sequential model learns in a few steps and a random one cannot."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, NUM_ITEMS, users)
    items = (starts[:, None] + np.arange(length)) % NUM_ITEMS
    user = np.repeat(np.arange(users), length)
    times = np.tile(np.arange(length) * 60, users)
    return leave_one_out(user, items.ravel(), times, max_len=8, num_items=NUM_ITEMS)


def tiny(model: str, **overrides) -> GenerativeConfig:
    return GenerativeConfig().with_overrides({
        "model": model, "run.batch_size": 16, "run.max_epochs": 8, "run.patience": 0, "run.valid_k": 10, "run.threads": 1,
        "sasrec.dim": 32, "sasrec.dropout": 0.0, "sasrec.lr": 0.01, **overrides})


def test_leave_one_out_holds_out_the_last_two_items() -> None:
    # alice: 10 11 12 13 (in time order, given shuffled); bob: 20 21 (too short: dropped)
    data = leave_one_out(np.array([0, 0, 0, 0, 1, 1]), np.array([12, 10, 13, 11, 20, 21]), np.array([3, 1, 4, 2, 1, 2]),
                         max_len=4, num_items=30)
    assert data.num_users == 1
    assert data.train.items.tolist() == [[0, 0, 11, 12]]  # ids + 1: items 10, 11
    assert data.valid.items.tolist() == [[0, 0, 11, 12]] and data.valid.targets.tolist() == [13]
    assert data.test.items.tolist() == [[0, 11, 12, 13]] and data.test.targets.tolist() == [14]
    assert data.popularity[[10, 11, 12, 13]].tolist() == [1, 1, 0, 0]  # held-out items are not counted


def test_jagged_batch_drops_the_padding_in_order() -> None:
    data = cycle_data(users=3, length=5)
    jagged = data.train.rows(torch.arange(3)).jagged()
    assert jagged.offsets.tolist() == [0, 3, 6, 9]
    assert torch.equal(jagged.items, data.train.items[data.train.items > 0])


def test_ties_count_against_the_model_and_seen_items_are_filtered() -> None:
    data = cycle_data(users=4)
    constant = full_ranks(lambda q: torch.zeros(len(q), NUM_ITEMS), data.test, NUM_ITEMS, filter_seen=False)
    assert constant.tolist() == [NUM_ITEMS - 1] * 4  # all tied: ranked last, not first
    filtered = full_ranks(lambda q: torch.zeros(len(q), NUM_ITEMS), data.test, NUM_ITEMS, filter_seen=True)
    assert (filtered == NUM_ITEMS - 1 - 8).all()  # the 8 (max_len) history items are no longer candidates


def test_rank_metrics_from_ranks() -> None:
    metrics = rank_metrics(torch.tensor([0, 1, 9, 60]), ks=(1, 10), num_items=100)
    assert metrics["hr@1"] == pytest.approx(0.25) and metrics["hr@10"] == pytest.approx(0.75)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(11)) / 4)
    assert metrics["mrr@100"] == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 61) / 4)
    # lists (-1 = an empty slot): the target at position 2 -> rank 2; absent -> the miss rank
    ranks = ranks_from_lists(torch.tensor([[5, 7, 9], [5, -1, -1]]), torch.tensor([9, 7]), miss=100)
    assert ranks.tolist() == [2, 100]


def test_align_right_and_shapes() -> None:
    items = torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4]])
    aligned, lengths = align_right(items)
    assert aligned.tolist() == [[3, 4, 0, 0], [1, 2, 3, 4]] and lengths.tolist() == [2, 4]
    model = SASRec(NUM_ITEMS, 4, dim=16, layers=1, heads=2, dropout=0.0)
    hidden, _, _ = model(items)
    assert hidden.shape == (2, 4, 16) and model.last(items).shape == (2, 16)


def test_no_position_sees_a_later_one() -> None:
    torch.manual_seed(0)
    model = SASRec(NUM_ITEMS, 6, dim=16, layers=2, heads=2, dropout=0.0).eval()
    items = torch.tensor([[0, 5, 6, 7, 8, 9]])
    changed = items.clone()
    changed[0, 4:] = torch.tensor([30, 31])  # perturb the future (the last two items)
    before, after = model(items)[0], model(changed)[0]
    assert torch.allclose(before[0, :3], after[0, :3], atol=1e-6)  # positions of items 5, 6, 7: unchanged
    assert not torch.allclose(before[0, 3], after[0, 3])  # the perturbed position itself does change


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_loss_falls_and_beats_a_random_model(loss: str) -> None:
    torch.manual_seed(0)
    data = cycle_data()
    cfg = tiny("sasrec", **{"sasrec.loss": loss, "sasrec.negatives": 16, "sasrec.temperature": 0.5 if loss == "sampled" else 1.0})
    result = train_generative(cfg, data)
    assert result.epoch_losses[-1] < 0.7 * result.epoch_losses[0]
    random_hr10 = 10 / (NUM_ITEMS - 8)  # a random ranking of the candidates left after filtering
    assert result.test["hr@10"] > 2 * random_hr10
    assert set(result.test) >= {"hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@50", "ndcg@50", f"mrr@{NUM_ITEMS}"}
    assert len(result.curve) == result.epochs and result.protocol == "loo_full_seen_filtered"


def test_untrained_model_scores_every_item() -> None:
    data = cycle_data(users=4)
    task = build_generative_task(tiny("sasrec"), data)
    assert task.scores(data.test).shape == (4, NUM_ITEMS)


def test_leave_one_out_shards_read_through_the_loader_match_the_events(tmp_path) -> None:
    """The same users as ``cycle_data`` written as a leave-one-out shard set (the pipeline's path)."""
    from training.generative.data import shards_with_codes

    expected = cycle_data(users=6, length=7)
    write_loo_shards(tmp_path, expected)
    data, codes = shards_with_codes(tmp_path, max_len=8)
    order = torch.argsort(data.test.users)
    assert torch.equal(data.test.items[order], expected.test.items) and torch.equal(data.test.targets[order], expected.test.targets)
    assert torch.equal(data.train.items[torch.argsort(data.train.users)], expected.train.items)
    assert codes is not None and codes[5].tolist() == [1, 1]  # item 5's codes as written
    assert data.protocol == "loo_full_seen_filtered"


def test_recforge_train_sasrec_on_a_movielens_folder(tmp_path, capsys) -> None:
    from recforge.cli import main

    # 6 users x 6 ratings, each user rating items u, u+1, ... in time order (ml-100k's u.data layout)
    lines = [f"{u}\t{(u + k) % 9 + 1}\t4\t{1000 * u + k}" for u in range(1, 7) for k in range(6)]
    (tmp_path / "u.data").write_text("\n".join(lines) + "\n")
    code = main(["train", "sasrec", "--no-progress", "--set", "data.source=movielens", "--set", f"data.path={tmp_path}",
                 "--set", "run.max_epochs=2", "--set", "run.threads=1", "--set", "sasrec.dim=16"])
    assert code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("sasrec: 2 epochs") and "loo_full_seen_filtered" in out and '"hr@10"' in out


def write_loo_shards(root, data) -> None:  # type: ignore[no-untyped-def]
    """``data``'s splits as a leave-one-out shard set under ``root`` (the columns of the pipeline's split rows)."""
    import pyarrow as pa

    from transforms.sequences import SPLIT_ROWS_SCHEMA
    from warehouse.shards import ShardConfig, write_shard_set

    rows = []
    for split, batch in (("train", data.train), ("valid", data.valid), ("test", data.test)):
        for u in range(len(batch)):
            kept = batch.items[u] > 0
            items = (batch.items[u][kept] - 1).tolist()
            target = [] if split == "train" else [int(batch.targets[u]) - 1]
            rows.append({"split": split, "user_idx": u, "item_ids": items, "event_types": [1] * len(items),
                         "timestamps": [t * 1000 for t in batch.timestamps[u][kept].tolist()], "weights": [1.0] * len(items),
                         "semantic_ids": [[i % 4, i // 4] for i in items], "event_type_masks": [2] * len(items),
                         "target_item_ids": target, "target_timestamps": [0] * len(target), "target_weights": [1.0] * len(target)})
    write_shard_set(root, pa.Table.from_pylist(rows, schema=SPLIT_ROWS_SCHEMA), ShardConfig(world_size=1, shards_per_rank=2, row_group_rows=16),
                    vocab={"items": NUM_ITEMS, "semantic_id_levels": 2, "event_types": {"click": 1}})


def test_models_sasrec_asset_trains_gates_and_records_a_candidate(tmp_path) -> None:
    import json

    import dagster as dg

    from assets import models as M
    from assets.resources import WarehouseResource

    write_loo_shards(tmp_path / "training_data" / "sequence_shards", cycle_data())
    config = {"batch_size": 16, "max_epochs": 6, "patience": 0, "settings": "sasrec.dim=32;sasrec.dropout=0.0;sasrec.lr=0.01;run.threads=1"}
    result = dg.materialize([M.sasrec], resources={"warehouse": WarehouseResource(home=str(tmp_path))},
                            run_config={"ops": {"models__sasrec": {"config": config}}}, raise_on_error=False)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"finite": True, "beats_popularity": True, "no_regression": True}
    candidate = json.loads((tmp_path / "models" / "checkpoints" / "sasrec" / "candidate.json").read_text())
    assert candidate["headline_metric"] == "ndcg@10" and (tmp_path / candidate["checkpoint"]).exists()


def test_a_run_resumes_from_its_checkpoint(tmp_path) -> None:
    data = cycle_data()
    first = train_generative(tiny("sasrec", **{"run.max_epochs": 2, "run.out_dir": str(tmp_path)}), data)
    assert first.checkpoint is not None and first.checkpoint.exists()
    second = train_generative(tiny("sasrec", **{"run.max_epochs": 3, "run.out_dir": str(tmp_path)}), data)
    assert second.resumed_from_epoch == 2 and second.epochs == 3 and len(second.epoch_losses) == 3
    # The learning curve and training time of the first call come back from the checkpoint (a killed call's too).
    assert [c["epoch"] for c in second.curve] == [1, 2, 3] and second.curve[:2] == first.curve
    # (the curve's seconds are rounded to 0.01)
    assert first.curve[-1]["seconds"] - 0.005 <= second.seconds_all_calls - second.seconds <= first.seconds_all_calls
    assert second.curve[2]["seconds"] >= first.curve[-1]["seconds"]


def test_a_stop_file_ends_a_run_after_its_epoch_and_a_later_call_continues_it(tmp_path) -> None:
    data = cycle_data()
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "STOP").touch()
    stopped = train_generative(tiny("sasrec", **{"run.max_epochs": 3, "run.out_dir": str(tmp_path)}), data)
    assert stopped.epochs == 1 and stopped.test and not (tmp_path / "STOP").exists()  # tested on its best epoch
    continued = train_generative(tiny("sasrec", **{"run.max_epochs": 3, "run.out_dir": str(tmp_path)}), data)
    assert continued.resumed_from_epoch == 1 and continued.epochs == 3


DDP_WORKER = """
import os, sys, torch
sys.path.insert(0, {root!r})
from tests.training.test_sasrec import cycle_data, tiny
from training.generative.train import train_generative
result = train_generative(tiny("sasrec", **{{"run.max_epochs": 1, "run.device": "cpu"}}), cycle_data())
torch.save({{"state": result.task.state_dict(), "losses": result.epoch_losses}}, os.path.join(sys.argv[1], f"rank{{os.environ['RANK']}}.pt"))
"""


@pytest.mark.slow
def test_two_ranks_match_one_process(tmp_path) -> None:
    """The same train_generative under torchrun (Gloo): every sequence has the same length, so the mean of the two
    ranks' per-position means is the global batch's, and the weights match a one-process run to 1e-4; the losses too.
    The attention's input-projection bias is left out: its key part has a numerically zero gradient (softmax is
    invariant to it), which Adam's normalisation turns into steps of +-lr whose sign is rounding noise."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    root = str(Path(__file__).resolve().parents[2])
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_WORKER.format(root=root))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root}
    subprocess.run([torchrun, "--nproc_per_node", "2", "--standalone", str(worker), str(tmp_path)], check=True, env=env, timeout=180,
                   capture_output=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    single = train_generative(tiny("sasrec", **{"run.max_epochs": 1, "run.device": "cpu"}), cycle_data())
    for name, value in single.task.state_dict().items():
        assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name]), name  # DDP keeps the replicas equal
        if not name.endswith("in_proj_bias"):
            assert torch.allclose(ranks[0]["state"][name], value, atol=1e-4), name
    assert ranks[0]["losses"] == pytest.approx(single.epoch_losses, abs=1e-4)


def test_length_grouped_batches_keep_every_row_and_hold_similar_lengths() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 40, 200)  # users with 3..39 events: training rows of 1..37 items
    users = np.repeat(np.arange(200), lengths)
    items = rng.integers(0, NUM_ITEMS, len(users))
    data = leave_one_out(users, items, np.arange(len(users)), max_len=40, num_items=NUM_ITEMS).grouped(4, 16)
    order = data.epoch_order(0, 0)
    assert sorted(order.tolist()) == list(range(200))  # every row once
    row_lengths = (data.train.items > 0).sum(1)
    spread = [int(row_lengths[b].max() - row_lengths[b].min()) for b in order[: 192].split(16)]
    plain = [int(row_lengths[b].max() - row_lengths[b].min()) for b in data.grouped(0, 0).epoch_order(0, 0)[:192].split(16)]
    assert np.mean(spread) < 0.5 * np.mean(plain)
    assert not torch.equal(order, data.epoch_order(0, 1))  # a new grouping every epoch


def test_models_sasrec_asset_preset_benchmark_under_its_knobs_and_settings(tmp_path) -> None:
    import json

    import dagster as dg

    from assets import models as M
    from assets.resources import WarehouseResource

    write_loo_shards(tmp_path / "training_data" / "sequence_shards", cycle_data())
    config = {"batch_size": 16, "max_epochs": 1, "patience": 0, "preset": "benchmark", "settings": "sasrec.dim=32;run.threads=1"}
    result = dg.materialize([M.sasrec], resources={"warehouse": WarehouseResource(home=str(tmp_path))},
                            run_config={"ops": {"models__sasrec": {"config": config}}}, raise_on_error=False)
    assert result.success
    trained = json.loads((tmp_path / "models" / "checkpoints" / "sasrec" / "run" / "checkpoint.json").read_text())["config"]
    assert trained["sasrec"]["dropout"] == 0.5 and trained["data"]["length_groups"] == 50  # the preset's
    assert trained["run"]["batch_size"] == 16 and trained["run"]["patience"] == 0 and trained["sasrec"]["dim"] == 32  # knobs, settings
