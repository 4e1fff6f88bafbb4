"""TIGER: ID tables (collision check, disambiguation level, imports), the trie, beam-search validity,
and learning on tiny seeded data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.training.test_sasrec import NUM_ITEMS, cycle_data, tiny
from training.generative.beam import constrained_beam_search
from training.generative.data import PrefixData
from training.generative.semantic_ids import Trie, cooccurrence_ids, disambiguate, import_codes
from training.generative.tasks import USER_HASH
from training.generative.train import _user_sample, build_generative_task, train_generative
from training.models.tiger import TIGER

# A TIGER small enough to learn the cycle data in a few epochs, over grid_ids().
TINY_TIGER = {"tiger.dim": 32, "tiger.layers": 1, "tiger.heads": 2, "tiger.ff": 64, "tiger.max_items": 4, "tiger.user_buckets": 8,
              "tiger.beam": 10, "tiger.valid_beam": 10}


def grid_ids():
    """Two-level IDs for the cycle data's items: item // 8, item % 8 (no collisions), with the disambiguation level."""
    return disambiguate(np.stack([np.arange(NUM_ITEMS) // 8, np.arange(NUM_ITEMS) % 8], axis=1))


def test_colliding_items_get_distinct_disambiguation_codes() -> None:
    # items 0 and 2 share (1, 2); item 1 is alone
    table = disambiguate(np.array([[1, 2], [0, 3], [1, 2]]))
    assert table.codes.tolist() == [[1, 2, 0], [0, 3, 0], [1, 2, 1]]
    assert table.colliding_items == 2 and table.distinct_before == 2 and table.sizes == (2, 4, 2)


def test_imported_tokens_are_parsed_by_level_and_checked() -> None:
    # the Beauty index's format; items "7" and "9" collide
    index = {"7": 0, "8": 1, "9": 2}
    table = import_codes({"7": ["<a_1>", "<b_5>"], "8": ["<a_0>", "<b_5>"], "9": ["<a_1>", "<b_5>"]}, index)
    assert table.codes.tolist() == [[1, 5, 0], [0, 5, 0], [1, 5, 1]]
    with pytest.raises(ValueError, match="is not <b_N>"):
        import_codes({"7": ["<a_1>", "<c_5>"], "8": ["<a_0>", "<b_5>"], "9": ["<a_2>", "<b_5>"]}, index)
    with pytest.raises(ValueError, match="no semantic ID"):
        import_codes({"7": ["<a_1>", "<b_5>"]}, index)


def test_trie_leads_every_valid_path_to_its_item() -> None:
    table = disambiguate(np.random.default_rng(0).integers(0, 3, (25, 2)))
    trie = Trie(table)
    for item, codes in enumerate(table.codes):
        node = 0
        for depth, code in enumerate(codes):
            assert trie.allowed[depth][node, code]
            node = int(trie.child[depth][node, code])
        assert node == item
    assert int(trie.allowed[0][0].sum()) == len(np.unique(table.codes[:, 0]))


def _tiny_tiger_query(items: int = 30):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    table = disambiguate(np.random.default_rng(1).integers(0, 4, (items, 2)))
    model = TIGER(table.sizes, max_items=3, user_buckets=10, dim=16, layers=1, heads=2, ff=32).eval()
    history = torch.from_numpy(table.codes[:6]).reshape(2, 3, 3)
    tokens, levels, padding = model.encoder_tokens(history, torch.tensor([1, 2]))
    return table, model, model.encode(tokens, levels, padding), padding


@pytest.mark.parametrize("beam", [5, 40])
def test_every_beam_is_a_valid_id_of_exactly_one_item(beam: int) -> None:
    table, model, memory, padding = _tiny_tiger_query()
    items, scores = constrained_beam_search(model, memory, padding, Trie(table), beam)
    assert items.shape == (2, beam)
    for row, row_scores in zip(items, scores, strict=True):
        live = row[row >= 0]
        assert len(live) == min(beam, 30) and len(set(live.tolist())) == len(live)  # distinct real items
        assert torch.all(row_scores[: len(live)][:-1] >= row_scores[: len(live)][1:])  # best first


def test_excluded_items_are_left_out_of_the_search_not_filtered_after_it() -> None:
    table, model, memory, padding = _tiny_tiger_query()
    exclude = torch.zeros(2, 30, dtype=torch.bool)
    exclude[0, :25] = True  # query 0 may only get items 25..29: whole prefixes of its trie are left out
    exclude[1, ::2] = True
    # a beam as wide as the catalogue is exact: every allowed item, ordered by its full log-probability
    items, scores = constrained_beam_search(model, memory, padding, Trie(table), 40, exclude)
    codes = torch.from_numpy(table.codes)
    for query in range(2):
        logits = model.decode(memory[query : query + 1].expand(30, -1, -1), padding[query : query + 1].expand(30, -1), codes[:, :-1])
        total = sum(F.log_softmax(model.level_logits(logits[:, level], level), -1).gather(1, codes[:, level : level + 1]).squeeze(1)
                    for level in range(codes.shape[1]))
        allowed = (~exclude[query]).nonzero().squeeze(1)
        expected = allowed[torch.argsort(total[allowed], descending=True)]
        live = items[query][items[query] >= 0]
        assert live.tolist() == expected.tolist()
        assert torch.allclose(scores[query][: len(live)], total[expected], atol=1e-5)
    # a narrow beam is not spent on left-out items: query 0 still gets all 5 of its items, in the same order
    narrow, _ = constrained_beam_search(model, memory, padding, Trie(table), 5, exclude)
    assert narrow[0].tolist() == items[0][:5].tolist() and (narrow >= 0).all()
    assert not exclude.gather(1, narrow).any()


def test_history_padding_is_moved_behind_the_items() -> None:
    model = TIGER((4, 4), max_items=3, user_buckets=5, dim=8, layers=1, heads=2, ff=16)
    history = torch.tensor([[[-1, -1], [1, 2], [3, 0]]])  # one missing item first (left padding)
    tokens, levels, padding = model.encoder_tokens(history, torch.tensor([7]))
    base = model.code_base
    assert tokens.tolist() == [[7 % 5 + 1, base + 1, base + 4 + 2, base + 3, base + 4 + 0, 0, 0]]
    assert padding.tolist() == [[False] * 5 + [True] * 2] and levels[0, :3].tolist() == [2, 0, 1]


def test_recency_positions_count_back_from_the_newest_item() -> None:
    torch.manual_seed(0)
    model = TIGER((4, 4), max_items=3, user_buckets=5, dim=8, layers=1, heads=2, ff=16, recency_positions=True).eval()
    long = torch.tensor([[[0, 1], [1, 2], [3, 0]]])
    short = torch.tensor([[[-1, -1], [1, 2], [3, 0]]])  # the same two newest items, one fewer before them
    tokens, levels, padding = model.encoder_tokens(short, torch.tensor([7]))
    assert model.token_positions(padding).tolist() == [[0, 4, 3, 2, 1, 0, 0]]
    assert TIGER((4, 4), 3, 5, 8, 1, 2, 16).token_positions(padding).tolist() == [[0, 1, 2, 3, 4, 5, 6]]
    # the newest item's tokens get the same position embedding in both histories
    long_padding = model.encoder_tokens(long, torch.tensor([7]))[2]
    assert model.token_positions(long_padding)[0, -2:].tolist() == model.token_positions(padding)[0, 3:5].tolist() == [2, 1]
    assert model.encode(tokens, levels, padding).shape == (1, 7, 8)


def test_without_a_user_token_the_encoder_reads_only_the_items() -> None:
    torch.manual_seed(0)
    model = TIGER((4, 4), max_items=3, user_buckets=0, dim=8, layers=1, heads=2, ff=16, recency_positions=True).eval()
    history = torch.tensor([[[-1, -1], [1, 2], [3, 0]], [[-1, -1], [-1, -1], [-1, -1]]])  # the second: no items at all
    tokens, levels, padding = model.encoder_tokens(history, torch.tensor([7, 8]))
    base = model.code_base
    assert base == 1 and tokens[0].tolist() == [base + 1, base + 4 + 2, base + 3, base + 4 + 0, 0, 0]
    assert levels[0].tolist() == [0, 1] * 3
    assert padding.tolist() == [[False] * 4 + [True] * 2, [False] + [True] * 5]  # an empty history keeps one key
    assert model.token_positions(padding)[0].tolist() == [4, 3, 2, 1, 0, 0]
    assert torch.isfinite(model.encode(tokens, levels, padding)).all()


def test_own_ids_from_cooccurrence_are_unique() -> None:
    data = cycle_data()
    table = cooccurrence_ids(data.train.items, NUM_ITEMS, levels=2, codes_per_level=4, dim=8)
    assert table.codes.shape == (NUM_ITEMS, 3) and len(np.unique(table.codes, axis=0)) == NUM_ITEMS


@pytest.mark.parametrize(("recency", "user_buckets"), [(False, 8), (True, 0)])
def test_loss_falls_and_beats_a_random_model(recency: bool, user_buckets: int) -> None:
    torch.manual_seed(0)
    data = cycle_data()
    ids = grid_ids()
    cfg = tiny("tiger", **{**TINY_TIGER, "tiger.dropout": 0.0, "tiger.lr": 0.005, "run.max_epochs": 4,
                           "tiger.recency_positions": recency, "tiger.user_buckets": user_buckets})
    result = train_generative(cfg, data, ids)
    assert result.epoch_losses[-1] < 0.7 * result.epoch_losses[0]
    assert result.test["recall@10"] > 2 * 10 / (NUM_ITEMS - 8)
    assert "hr@50" not in result.test  # K above the beam is not reported
    task = build_generative_task(cfg, data, ids)
    assert (task.recommend(data.test, beam=10) >= 0).all()


def test_beams_side_by_side_decode_like_separate_rows() -> None:
    torch.manual_seed(0)
    model = TIGER((4, 3, 2), max_items=2, user_buckets=5, dim=16, layers=2, heads=2, ff=32).eval()
    history = torch.tensor([[[0, 1, 0], [2, 2, 1]], [[3, 0, 0], [-1, -1, -1]]])
    tokens, levels, padding = model.encoder_tokens(history, torch.tensor([3, 4]))
    memory = model.encode(tokens, levels, padding)
    prefix = torch.tensor([[0, 1], [2, 0], [3, 2], [1, 1], [0, 0], [3, 1]])  # 3 beams per query
    together = model.decode_beams(memory, padding, prefix, 3)
    apart = model.decode(memory.repeat_interleave(3, 0), padding.repeat_interleave(3, 0), prefix)
    assert torch.allclose(together, apart, atol=1e-5)


def test_padding_columns_are_dropped_without_changing_the_loss() -> None:
    torch.manual_seed(0)
    data = cycle_data()
    ids = grid_ids()
    cfg = tiny("tiger", **{"tiger.dim": 16, "tiger.layers": 1, "tiger.heads": 2, "tiger.ff": 32, "tiger.dropout": 0.0, "tiger.max_items": 6})
    task = build_generative_task(cfg, data, ids).eval()
    prefixes = PrefixData.of(data, 6)
    batch = prefixes.batch((prefixes.columns <= 2).nonzero().squeeze(1))  # early targets: at most 2 history items of 6 columns
    assert (batch.items[:, :4] == 0).all() and (batch.items[:, 4] > 0).any()
    history = batch.items[:, -6:]  # what the encoder read before the padding columns were dropped
    tokens, levels, padding = task.model.encoder_tokens(task.codes[history], batch.users * USER_HASH)
    target = task.codes[batch.targets]
    logits = task.model.decode(task.model.encode(tokens, levels, padding), padding, target[:, :-1])
    untrimmed = sum(F.cross_entropy(task.model.level_logits(logits[:, lv], lv), target[:, lv]) for lv in range(task.model.levels)) / task.model.levels
    assert torch.allclose(task(batch), untrimmed, atol=1e-6)


def test_length_groups_batch_examples_of_similar_history() -> None:
    data = cycle_data(users=64, length=12)
    plain, grouped = PrefixData.of(data, 4), PrefixData.of(data, 4, length_window=4, batch_rows=16)
    order = grouped.epoch_order(1, 0)
    assert sorted(order.tolist()) == list(range(len(grouped)))  # every example once
    spread = lambda p, o: sum(int(p.lengths[b].max() - p.lengths[b].min()) for b in o.split(16))  # noqa: E731
    assert spread(grouped, order) < spread(plain, plain.epoch_order(1, 0)) / 2


def test_bf16_training_follows_float32() -> None:
    torch.manual_seed(0)
    data = cycle_data()
    ids = grid_ids()
    cfg = tiny("tiger", **{"tiger.dim": 16, "tiger.layers": 1, "tiger.heads": 2, "tiger.ff": 32, "tiger.dropout": 0.0, "tiger.max_items": 4})
    task = build_generative_task(cfg, data, ids)
    batch = PrefixData.of(data, 4).batch(torch.arange(32))
    fast = build_generative_task(cfg.with_overrides({"tiger.bf16": True}), data, ids)
    fast.load_state_dict(task.state_dict())
    with torch.no_grad():
        reference = float(task(batch))
        assert abs(float(fast(batch)) - reference) < 0.05 * reference


def test_validation_users_are_a_fixed_random_sample_not_the_first_rows() -> None:
    chosen = _user_sample(1000, 50, seed=1)
    assert torch.equal(chosen, _user_sample(1000, 50, seed=1))  # the same users at every evaluation
    assert len(chosen.unique()) == 50 and torch.equal(chosen, chosen.sort().values)
    assert int(chosen.max()) > 500 and not torch.equal(chosen, torch.arange(50))
    assert not torch.equal(chosen, _user_sample(1000, 50, seed=0))  # validation and test samples differ


def _train_tiger_cli(tmp_path, *extra: str) -> dict:  # type: ignore[type-arg]
    """``recforge train tiger`` for one epoch on tiny leave-one-out shards; the config its checkpoint records."""
    import json

    from recforge.cli import main
    from tests.training.test_sasrec import write_loo_shards

    write_loo_shards(tmp_path / "shards", cycle_data())
    settings = {"data.path": tmp_path / "shards", "run.out_dir": tmp_path / "run", "run.max_epochs": 1, "run.threads": 1, "tiger.dim": 32,
                "tiger.beam": 10, "tiger.valid_beam": 10}
    code = main(["train", "tiger", "--no-progress", *extra, *(a for k, v in settings.items() for a in ("--set", f"{k}={v}"))])
    assert code in (0, None)
    return json.loads((tmp_path / "run" / "checkpoint.json").read_text())["config"]


def test_recforge_train_tiger_preset_benchmark_trains_the_benchmark_configuration(tmp_path, capsys) -> None:
    from training.device import fast_bf16

    config = _train_tiger_cli(tmp_path, "--preset", "benchmark")
    tiger = config["tiger"]
    assert (tiger["layers"], tiger["ff"], tiger["bf16"]) == (2, 512, fast_bf16())  # the preset's
    assert tiger["dim"] == 32 and config["run"]["batch_size"] == 256  # --set on top of it; the preset's batch
    assert config["data"]["length_groups"] == 50
    captured = capsys.readouterr()
    assert captured.out.startswith("tiger: 1 epochs") and "note:" not in captured.err


def test_recforge_train_tiger_at_the_paper_size_on_a_cpu_says_how_to_go_faster(tmp_path, capsys) -> None:
    from recforge.cli import main

    config = _train_tiger_cli(tmp_path, "--set", "run.device=cpu")
    assert (config["tiger"]["layers"], config["tiger"]["ff"]) == (4, 1024)  # the paper's size: the defaults
    assert "--preset benchmark" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--preset benchmark is for sasrec, hstu and tiger"):
        main(["train", "mf", "--preset", "benchmark"])
