"""The training window: built once (k-core, label weights, semantic IDs), it gives the builders exactly the
tables they build from the interactions directly."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pyarrow as pa
import pytest

from tests.transforms.sequences.helpers import HOUR, T0, event, interactions, label, labels, random_world
from transforms import sequences as seq
from transforms.cutoffs import Cutoffs
from transforms.engine import Engine
from transforms.sequences.label_weights import label_weights_for_split
from transforms.sequences.window import (
    HeldOutSettings,
    WindowParams,
    build_training_window,
    check_window,
    held_out_steps,
    prepare_window,
    window_params,
)
from warehouse.contracts import TS, EventType

CUTOFFS = Cutoffs(T0 + 48 * HOUR, T0 + 72 * HOUR)  # four days: train two, valid one, test one
TEMPORAL = seq.SplitConfig(cutoffs=CUTOFFS)
LOO = seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT)
ITEMS = 12


def item_codes(items: int = ITEMS) -> pa.Table:
    """Semantic IDs for every item but the last (which has none)."""
    return pa.table({"item_idx": pa.array(range(items - 1), pa.int64()),
                     "codes": pa.array([[i % 3, i % 5, 1] for i in range(items - 1)], pa.list_(pa.int32()))})


def slot_labels(rows: list[dict], rng: random.Random) -> pa.Table:
    """One observed label for about half the events, logged at the event's time (its split)."""
    chosen = [r for r in rows if rng.random() < 0.5]
    return labels([label(r["request_id"], r["user_idx"], r["item_idx"], (r["ts"] - T0) / HOUR,
                         str(CUTOFFS.split_of(r["ts"])), float(rng.randrange(1, 9))) for r in chosen])


def params_of(window, config: seq.SequenceConfig, split: seq.SplitConfig, codes: bool = True) -> WindowParams:
    return window_params(window, config, split, {"users": 8, "items": ITEMS}, {}, True, codes)


# The builders, as the training-data assets call them.
BUILDERS: dict[str, Callable[[Engine, seq.PreparedInputs], object]] = {
    "user_sequences": seq.build_user_sequences,
    "splits": seq.build_splits,
    "two_tower": lambda e, p: seq.build_two_tower_examples(e, p, 5),
    "graph": lambda e, p: seq.build_graph(
        e, p, pa.table({"item_id": [f"i{i}" for i in range(ITEMS)], "categories": [[f"c{i % 2}"] for i in range(ITEMS)],
                        "brand": [f"b{i % 3}" for i in range(ITEMS)], "available_from": pa.nulls(ITEMS, TS)}),
        pa.table({"entity": ["user"] * 8 + ["item"] * ITEMS, "external_id": [f"u{i}" for i in range(8)] + [f"i{i}" for i in range(ITEMS)],
                  "idx": pa.array(list(range(8)) + list(range(ITEMS)), pa.int64())})),
}


@pytest.mark.parametrize("split", [TEMPORAL, LOO], ids=["temporal", "leave_one_out"])
@pytest.mark.parametrize("seed", [1, 2])
def test_builders_read_the_same_tables_from_the_window(duckdb_engine: Engine, split: seq.SplitConfig, seed: int) -> None:
    rng = random.Random(seed)
    # Seven users over eleven items, and a tail the 3-core drops: u7 with two items, i11 with one user.
    rows = random_world(rng, users=7, items=ITEMS - 1, events=100)
    rows += [event("t1", 7, 0, 1), event("t2", 7, 1, 2), event("t3", 0, ITEMS - 1, 3)]
    inter, labs, codes = interactions(rows), slot_labels(rows, rng), item_codes()
    config = seq.SequenceConfig(max_len=6, min_len=2, k_core=3)

    weights = label_weights_for_split(duckdb_engine, inter, labs, split.cutoffs)
    direct_prep = seq.prepare(duckdb_engine, inter, config, split, weights, codes)
    direct = {name: build(duckdb_engine, direct_prep) for name, build in BUILDERS.items()}

    window = build_training_window(duckdb_engine, inter, config, split, labs, codes)
    kept = set(window.events["event_id"].to_pylist())
    assert len(kept) > 50 and not kept & {"t1", "t2", "t3"}
    prep = prepare_window(duckdb_engine, window.events, params_of(window, config, split), config, split)
    assert prep.config == config and prep.has_semantic_ids
    for name, build in BUILDERS.items():
        assert build(duckdb_engine, prep) == direct[name], name


def test_window_keeps_the_k_core_of_the_train_split(duckdb_engine: Engine) -> None:
    # u1 and u2 both clicked i1 and i2 on day one: a 2-core. u3 clicked i1 only (dropped), and i3 only
    # in the test split (dropped: after train_end it counts for nothing). u1's later events stay.
    rows = [event("a", 1, 1, 1), event("b", 1, 2, 2), event("c", 2, 1, 3), event("d", 2, 2, 4),
            event("e", 3, 1, 5), event("f", 1, 3, 80), event("g", 2, 3, 81), event("h", 1, 2, 60, "view")]
    window = build_training_window(duckdb_engine, interactions(rows), seq.SequenceConfig(k_core=2), TEMPORAL)
    assert window.events["event_id"].to_pylist() == ["a", "b", "h", "c", "d"]  # by user, then time
    assert window.k_core is not None and window.k_core.iterations == 2
    # Leave-one-out computes the core on each user's training prefix (interactions 1..n-2): u1's
    # interactions are i1, i2 (b and the view h), i3 and u2's i1, i2, i3, so each prefix holds i1 only and
    # no user has two distinct training items. Counting the held-out targets kept everyone.
    loo = build_training_window(duckdb_engine, interactions(rows), seq.SequenceConfig(k_core=2), LOO)
    assert loo.events.num_rows == 0
    # With i4 first for u1 and u2, their prefixes are i4, i1: a 2-core of u1, u2 and i1, i4; i2 and i3
    # occur only as held-out targets and go (as items first seen after train_end do in a temporal split).
    more = [*rows, event("a2", 1, 4, 0.5), event("c2", 2, 4, 0.5)]
    loo = build_training_window(duckdb_engine, interactions(more), seq.SequenceConfig(k_core=2), LOO)
    assert sorted(loo.events["event_id"].to_pylist()) == ["a", "a2", "c", "c2"]


def test_window_joins_label_weights_semantic_ids_and_event_types(duckdb_engine: Engine) -> None:
    # u1 clicked i1 (labelled 4.0 in train) and viewed i2 (no label); i1 has a semantic ID, i2 none.
    rows = [event("a", 1, 1, 1, request="r1"), event("b", 1, 2, 2, "view", request="r2"), event("c", 1, 1, 60, "purchase")]
    codes = pa.table({"item_idx": pa.array([1], pa.int64()), "codes": pa.array([[7, 8]], pa.list_(pa.int32()))})
    config = seq.SequenceConfig(event_types=(EventType.CLICK, EventType.VIEW))
    window = build_training_window(duckdb_engine, interactions(rows), config, TEMPORAL, labels([label("r1", 1, 1, 1, "train", 4.0)]), codes)
    got = window.events.select(["event_id", "label_weight", "semantic_id"]).to_pylist()
    assert got == [{"event_id": "a", "label_weight": 4.0, "semantic_id": [7, 8]},
                   {"event_id": "b", "label_weight": None, "semantic_id": None}]  # c: a purchase, not kept
    assert window.k_core is None and window.events.schema == seq.INTERACTIONS_SCHEMA.append(
        pa.field("label_weight", pa.float64())).append(pa.field("semantic_id", pa.list_(pa.int32())))


def test_a_window_built_for_another_split_or_k_core_is_refused(duckdb_engine: Engine) -> None:
    config = seq.SequenceConfig(k_core=2)
    window = build_training_window(duckdb_engine, interactions([event("a", 1, 1, 1)]), config, TEMPORAL)
    params = params_of(window, config, TEMPORAL, codes=False)
    check_window(params, dataclasses.replace(config, max_len=5), TEMPORAL)  # max_len is the builders' own
    later = seq.SplitConfig(cutoffs=Cutoffs(CUTOFFS.train_end + HOUR, CUTOFFS.valid_end))
    for other_config, other_split in [(config, later), (config, LOO), (seq.SequenceConfig(k_core=3), TEMPORAL),
                                      (seq.SequenceConfig(k_core=2, event_types=(EventType.CLICK,)), TEMPORAL)]:
        with pytest.raises(ValueError, match="built with other cut-offs or settings"):
            prepare_window(duckdb_engine, window.events, params, other_config, other_split)
    assert WindowParams.from_json(params.to_json()) == params


@pytest.mark.spark
def test_spark_builds_the_same_window(duckdb_engine: Engine, spark_engine: Engine) -> None:
    rng = random.Random(5)
    rows = random_world(rng, users=8, items=ITEMS, events=120)
    labs, config = slot_labels(rows, rng), seq.SequenceConfig(k_core=2)
    duck = build_training_window(duckdb_engine, interactions(rows), config, TEMPORAL, labs, item_codes())
    spark = build_training_window(spark_engine, interactions(rows), config, TEMPORAL, labs, item_codes())
    assert duck.events.num_rows > 0 and spark.events.equals(duck.events)
    assert spark.k_core == duck.k_core


def test_one_estimand_per_window(duckdb_engine: Engine) -> None:
    # e1's click came from a slate that logged its propensity (ips_weight 56.8: logged x examination),
    # e2's from one that did not (click model, 1.9). Both were examined with probability 0.5: under the
    # position estimand both weigh 2, whichever slate logged what; the view after e1 (same item) shares it.
    rows = [event("e1", 1, 1, 1, request="r1"), event("e1v", 1, 1, 1.5, "view"), event("e2", 1, 2, 2, request="r2"),
            event("e3", 1, 3, 3)]
    labs = pa.Table.from_pylist([
        dict(label("r1", 1, 1, 1, "train", 56.8, source="logged"), examination=0.5),
        dict(label("r2", 1, 2, 2, "train", 1.9), examination=0.5),
    ], schema=labels([]).schema)
    config = seq.SequenceConfig(min_len=1)
    window = build_training_window(duckdb_engine, interactions(rows), config, TEMPORAL, labs)
    assert window.estimand is seq.WeightEstimand.POSITION
    got = dict(zip(window.events["event_id"].to_pylist(), window.events["label_weight"].to_pylist(), strict=True))
    assert got == {"e1": 2.0, "e1v": None, "e2": 2.0, "e3": None}
    prep = prepare_window(duckdb_engine, window.events, params_of(window, config, TEMPORAL), config, TEMPORAL)
    sequence = seq.build_user_sequences(duckdb_engine, prep).to_pylist()[0]
    assert sequence["item_ids"] == [1, 2, 3] and sequence["weights"] == [2.0, 2.0, 1.0]  # one step per interaction
    with pytest.raises(ValueError, match="logged estimand needs every labelled positive"):
        build_training_window(duckdb_engine, interactions(rows), config, TEMPORAL, labs, weights=seq.WeightConfig(seq.WeightEstimand.LOGGED))
    none = build_training_window(duckdb_engine, interactions(rows), config, TEMPORAL, labs, weights=seq.WeightConfig(seq.WeightEstimand.NONE))
    assert none.estimand is seq.WeightEstimand.NONE and none.events["label_weight"].null_count == none.events.num_rows


def test_session_split_keeps_test_sessions_out_of_training(duckdb_engine: Engine) -> None:
    # u1: session a on day 1 (items 1 2 3), session b on the last day (4 5 6); u2: session c on day 2 (1 2).
    rows = [event(f"a{k}", 1, k, k / 10, session="a") for k in (1, 2, 3)]
    rows += [event(f"b{k}", 1, k, 48 + k / 10, session="b") for k in (4, 5, 6)]
    rows += [event(f"c{k}", 2, k, 24 + k / 10, session="c") for k in (1, 2)]
    cutoffs = seq.session_cutoffs(max(r["ts"] for r in rows), test_days=1, valid_days=1)
    split = seq.SplitConfig(kind="session", cutoffs=cutoffs)
    prep = seq.prepare(duckdb_engine, interactions(rows), seq.SequenceConfig(min_len=2), split)
    out = [(r["split"], r["user_idx"], r["item_ids"], r["target_item_ids"]) for r in seq.build_splits(duckdb_engine, prep).to_pylist()]
    assert out == [("train", 1, [1, 2, 3], []), ("valid", 2, [1], [2]), ("test", 1, [4], [5]), ("test", 1, [4, 5], [6])]


def test_held_out_steps_are_the_leave_one_out_split_own(duckdb_engine: Engine) -> None:
    """What the generated text leaves out under leave-one-out is what the split holds out: its own steps (events
    on one item in a row are one step), over the event types and k-core the training data keeps."""
    # u1: i1, i2, i3, then a view and a purchase of i4 (one step): held out i3 (valid, from hour 3) and i4.
    # Counting raw events instead would put the valid step at the view of i4 and leave i3's text in.
    rows = [event("a", 1, 1, 1), event("b", 1, 2, 2), event("c", 1, 3, 3), event("d", 1, 4, 4, "view"), event("e", 1, 4, 5, "purchase"),
            event("f", 2, 1, 1), event("g", 2, 2, 2)]  # u2: two steps, no query, nothing held out
    held = held_out_steps(duckdb_engine, interactions(rows), seq.SequenceConfig())
    assert [(r["user_id"], r["item_id"], r["horizon"]) for r in held.to_pylist()] == [("u1", "i3", T0 + 3 * HOUR), ("u1", "i4", T0 + 3 * HOUR)]
    # Only clicks: u1's steps are i1, i2, i3, so i2 and i3 are held out from hour 2.
    clicks = held_out_steps(duckdb_engine, interactions(rows), seq.SequenceConfig(event_types=(EventType.CLICK,)))
    assert [(r["item_id"], r["horizon"]) for r in clicks.to_pylist()] == [("i2", T0 + 2 * HOUR), ("i3", T0 + 2 * HOUR)]
    # Against the split itself, with a k-core and an event-type filter, on random worlds.
    for seed in (1, 2, 3):
        inter = interactions(random_world(random.Random(seed), users=7, items=ITEMS - 1, events=120))
        config = seq.SequenceConfig(max_len=None, min_len=1, k_core=2, event_types=(EventType.CLICK, EventType.PURCHASE))
        splits = seq.build_splits(duckdb_engine, seq.prepare(duckdb_engine, inter, config, LOO))
        targets = {(f"u{r['user_idx']}", f"i{r['target_item_ids'][0]}") for r in splits.to_pylist() if r["split"] != "train"}
        valid = {f"u{r['user_idx']}": r["target_timestamps"][0] for r in splits.to_pylist() if r["split"] == "valid"}
        held = held_out_steps(duckdb_engine, inter, config)
        assert targets and {(r["user_id"], r["item_id"]) for r in held.to_pylist()} == targets
        ms = held["horizon"].cast(pa.int64()).to_pylist()
        assert {u: ms[k] for k, u in enumerate(held["user_id"].to_pylist())} == valid


def test_held_out_settings_name_the_leak_of_text_built_for_another_split() -> None:
    window = HeldOutSettings.of("leave-one-out", seq.SequenceConfig(k_core=5, event_types=(EventType.PURCHASE, EventType.CLICK)))
    assert window.event_types == ("click", "purchase")  # the order given does not matter
    assert HeldOutSettings.from_json(window.to_json()) == window
    assert HeldOutSettings.of(seq.SplitKind.LEAVE_ONE_OUT, seq.SequenceConfig(k_core=5, event_types=(EventType.CLICK, EventType.PURCHASE))).leak_against(window) is None
    temporal = HeldOutSettings.of(seq.SplitKind.TEMPORAL, seq.SequenceConfig())
    assert "temporal split" in (temporal.leak_against(window) or "")
    other = HeldOutSettings.of(seq.SplitKind.LEAVE_ONE_OUT, seq.SequenceConfig(k_core=5))
    assert "event_types=all" in (other.leak_against(window) or "") and "event_types=click,purchase" in (other.leak_against(window) or "")
    # A window with a global cut-off holds nothing out per user: text of any split keeps none of its held-out data.
    assert other.leak_against(temporal) is None and window.leak_against(HeldOutSettings(seq.SplitKind.SESSION)) is None
