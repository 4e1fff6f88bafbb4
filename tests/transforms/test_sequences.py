"""Interactions, sequences, splits, k-core, two-tower examples and the graph: behaviour, leakage, parity."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import random
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms import sequences as seq
from transforms.cutoffs import Cutoffs, Split
from transforms.engine import Engine
from transforms.ingest.id_maps import extend_id_map
from transforms.sequences.exports import full_sequences_from_leave_one_out, write_hstu
from warehouse.contracts import CORE_ID_MAPS, RAW_EVENTS, RAW_ITEMS, RAW_SLATES, TS

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def ev(eid: str, user: str, minutes: float, event_type: str, item: str, session: str | None = None, request: str | None = None) -> dict:
    return {"event_id": eid, "user_id": user, "ts": T0 + dt.timedelta(minutes=minutes), "event_type": event_type,
            "item_id": item, "request_id": request, "value": None, "session_id": session}


def events_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=RAW_EVENTS.schema)


def id_maps_for(rows: list[dict]) -> pa.Table:
    users = sorted({r["user_id"] for r in rows})
    items = sorted({r["item_id"] for r in rows if r["item_id"]})
    maps = [{"entity": "user", "external_id": u, "idx": i, "first_seen": None} for i, u in enumerate(users)]
    maps += [{"entity": "item", "external_id": x, "idx": i, "first_seen": None} for i, x in enumerate(items)]
    return pa.Table.from_pylist(maps, schema=CORE_ID_MAPS.schema)


def random_events(rng: random.Random, users: int, items: int, events: int, days: int = 6) -> list[dict]:
    rows = []
    for n in range(events):
        rows.append(ev(f"e{n:05d}", f"u{rng.randrange(users)}", rng.randrange(days * 24 * 60) // 7 * 7,
                       rng.choice(["click", "view", "purchase"]), f"i{rng.randrange(items)}",
                       session=rng.choice([None, None, f"s{rng.randrange(5)}"])))
    return rows


# Alice (u1): two clicks 5 minutes apart (one gap session, surface from her slate), a view and a purchase
# 95 minutes later (a new session), and a click two days on. Bob (u2): a logged session s9 spanning 8 hours
# stays one session; then an unlogged click, logged twice under two event ids (one copy is kept).
TINY = [
    ev("e1", "u1", 0, "click", "i1", request="r1"), ev("e2", "u1", 5, "click", "i2"),
    ev("e3", "u1", 100, "view", "i3"), ev("e4", "u1", 101, "purchase", "i1"),
    ev("e5", "u2", 0, "click", "i2", "s9"), ev("e6", "u2", 500, "click", "i3", "s9"),
    ev("e7", "u2", 501, "click", "i1"), ev("e7b", "u2", 501, "click", "i1"),
    ev("e8", "u3", 3000, "click", "i1"), ev("e9", "u1", 3000, "click", "i2"),
]
SLATES = pa.Table.from_pylist(
    [{"request_id": "r1", "user_id": "u1", "ts": T0, "surface": "home", "item_ids": ["i1"], "policy": None, "propensities": None}],
    schema=RAW_SLATES.schema,
)


def interactions(engine: Engine, rows: list[dict]) -> pa.Table:
    return seq.build_interactions(engine, events_table(rows), id_maps_for(rows), SLATES)


def test_sessions_dedup_and_features(duckdb_engine: Engine) -> None:
    out = interactions(duckdb_engine, TINY)
    by_id = {r["event_id"]: r for r in out.to_pylist()}
    assert "e7b" not in by_id and "e7" in by_id  # the duplicate click is gone, the first id kept
    assert by_id["e1"]["session_id"] == by_id["e2"]["session_id"] == "gap:u1:1"
    assert by_id["e3"]["session_id"] == by_id["e4"]["session_id"] == "gap:u1:2"  # 95 min > 30 min gap
    assert by_id["e9"]["session_index"] == 2
    assert by_id["e5"]["session_id"] == by_id["e6"]["session_id"] == "s9"  # logged id respected across 8 hours
    # Session features see only the session so far: s9 at its first event has one event and lasted 0 ms.
    assert by_id["e5"]["session_length"] == 1 and by_id["e5"]["session_duration_ms"] == 0
    assert by_id["e6"]["session_length"] == 2 and by_id["e6"]["session_duration_ms"] == 500 * 60_000
    assert by_id["e7"]["session_index"] == 1  # unlogged click after s9 is a session of its own
    assert by_id["e2"]["session_surface"] == "home" and by_id["e2"]["surface"] is None
    assert by_id["e3"]["session_surface"] is None


def test_session_features_never_read_later_events(duckdb_engine: Engine) -> None:
    # A view, then (in the same logged session) a click from a slate on the "home" surface 10 minutes later.
    # The view's session surface, length and duration must not come from the click.
    rows = [ev("v1", "u1", 0, "view", "i1", "s1"), ev("c1", "u1", 10, "click", "i2", "s1", request="r1")]
    out = {r["event_id"]: r for r in seq.build_interactions(duckdb_engine, events_table(rows), id_maps_for(rows), SLATES).to_pylist()}
    assert out["v1"]["session_surface"] is None and out["v1"]["session_length"] == 1 and out["v1"]["session_duration_ms"] == 0
    assert out["c1"]["session_surface"] == "home" and out["c1"]["session_length"] == 2
    split = seq.SplitConfig(cutoffs=Cutoffs(T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(days=1)))
    prep = seq.prepare(duckdb_engine, seq.build_interactions(duckdb_engine, events_table(rows), id_maps_for(rows), SLATES),
                       seq.SequenceConfig(min_len=1), split)
    examples, _ = seq.build_two_tower_examples(duckdb_engine, prep)
    assert examples.num_rows == 1 and examples["surface"].to_pylist() == [None]  # the click is after train_end


def test_gap_is_configurable(duckdb_engine: Engine) -> None:
    out = seq.build_interactions(duckdb_engine, events_table(TINY), id_maps_for(TINY), None, seq.SessionConfig(gap=dt.timedelta(hours=2)))
    by_id = {r["event_id"]: r for r in out.to_pylist()}
    assert by_id["e1"]["session_id"] == by_id["e4"]["session_id"]  # 101 minutes now fit in one session


@settings(SETTINGS, max_examples=10)
@given(seed=st.integers(0, 10_000))
def test_result_does_not_depend_on_input_order(duckdb_engine: Engine, seed: int) -> None:
    rows = random_events(random.Random(seed), users=4, items=6, events=40)
    shuffled = rows[:]
    random.Random(seed + 1).shuffle(shuffled)
    ids = id_maps_for(rows)
    a = seq.build_interactions(duckdb_engine, events_table(rows), ids)
    b = seq.build_interactions(duckdb_engine, events_table(shuffled).combine_chunks(), ids)
    assert a.equals(b)
    prep = seq.prepare(duckdb_engine, a, seq.SequenceConfig(max_len=5, min_len=1))
    sa = seq.build_user_sequences(duckdb_engine, prep)
    prep = seq.prepare(duckdb_engine, b.take(pa.array(list(reversed(range(b.num_rows))))), seq.SequenceConfig(max_len=5, min_len=1))
    assert sa.equals(seq.build_user_sequences(duckdb_engine, prep))


def test_user_sequences_keep_the_most_recent(duckdb_engine: Engine) -> None:
    inter = interactions(duckdb_engine, TINY)
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(max_len=3, min_len=2))
    out = {r["user_idx"]: r for r in seq.build_user_sequences(duckdb_engine, prep).to_pylist()}
    # u1 (idx 0): i1 i2 i3 i1 i2 -> the last three; u3 has one event, below min_len
    assert out[0]["item_ids"] == [2, 0, 1] and out[0]["total_events"] == 5 and out[0]["length"] == 3
    assert out[0]["event_types"] == [seq.EVENT_TYPE_CODES[t] for t in ("view", "purchase", "click")]
    assert 2 not in out
    assert out[0]["semantic_ids"] is None


def expected_by_user(inter: pa.Table, cutoffs: Cutoffs | None = None) -> dict[int, list[tuple[int, str, int]]]:
    """Plain-Python reference: per user, the interactions (ts_ms, event_id, item) in time order.

    Events are ordered by time, then by event id shorter first; consecutive events on the same item
    (within one split of ``cutoffs``) are one interaction, with its first event's time and id.
    """
    out: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for r in inter.to_pylist():
        out[r["user_idx"]].append((int(r["ts"].timestamp() * 1000), r["event_id"], r["item_idx"]))
    steps: dict[int, list[tuple[int, str, int]]] = {}
    for user, events in out.items():
        kept: list[tuple[int, str, int, object]] = []
        for ts, eid, item in sorted(events, key=lambda e: (e[0], len(e[1]), e[1])):
            part = None if cutoffs is None else cutoffs.split_of(dt.datetime.fromtimestamp(ts / 1000, dt.UTC))
            if kept and kept[-1][2] == item and kept[-1][3] == part:
                continue
            kept.append((ts, eid, item, part))
        steps[user] = [(ts, eid, item) for ts, eid, item, _ in kept]
    return steps


@SETTINGS
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 5), width=st.integers(1, 3), max_len=st.sampled_from([None, 2, 4]))
def test_temporal_split_never_leaks(duckdb_engine: Engine, seed: int, cut: int, width: int, max_len: int | None) -> None:
    rows = random_events(random.Random(seed), users=5, items=6, events=60)
    inter = seq.build_interactions(duckdb_engine, events_table(rows), id_maps_for(rows))
    cutoffs = Cutoffs(T0 + dt.timedelta(days=cut), T0 + dt.timedelta(days=cut + width))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(max_len=max_len, min_len=1), seq.SplitConfig(cutoffs=cutoffs))
    out = seq.build_splits(duckdb_engine, prep)
    t, v = (int(c.timestamp() * 1000) for c in (cutoffs.train_end, cutoffs.valid_end))
    reference = expected_by_user(inter, cutoffs)
    for r in out.to_pylist():
        limit = v if r["split"] == "test" else t
        assert all(ts < limit for ts in r["timestamps"]), "a history event at or after its cut-off"
        if r["split"] == "valid":
            assert all(t <= ts < v for ts in r["target_timestamps"]) and r["target_item_ids"]
        if r["split"] == "test":
            assert all(ts >= v for ts in r["target_timestamps"]) and r["target_item_ids"]
        # Histories are exactly the user's most recent events before the cut-off, in order.
        before = [item for ts, _, item in reference[r["user_idx"]] if ts < limit]
        assert r["item_ids"] == (before if max_len is None else before[-max_len:])
    train_users = {r["user_idx"] for r in out.to_pylist() if r["split"] == "train"}
    assert train_users == {u for u, evs in reference.items() if any(ts < t for ts, _, _ in evs)}


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_leave_one_out_targets_are_absent_from_the_training_prefix(duckdb_engine: Engine, seed: int) -> None:
    rows = random_events(random.Random(seed), users=5, items=8, events=50)
    inter = seq.build_interactions(duckdb_engine, events_table(rows), id_maps_for(rows))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(max_len=None, min_len=1), seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT))
    out = seq.build_splits(duckdb_engine, prep).to_pylist()
    rows_by = {(r["split"], r["user_idx"]): r for r in out}
    for user, events in expected_by_user(inter).items():
        items = [i for _, _, i in events]
        stamps = [ts for ts, _, _ in events]
        if len(items) < 3:
            assert not any(k[1] == user for k in rows_by)
            continue
        train, valid, test = rows_by[("train", user)], rows_by[("valid", user)], rows_by[("test", user)]
        assert train["item_ids"] == items[:-2] and train["timestamps"] == stamps[:-2]
        assert valid["item_ids"] == items[:-2] and valid["target_item_ids"] == [items[-2]]
        assert test["item_ids"] == items[:-1] and test["target_item_ids"] == [items[-1]]
        # The target events (by position and time) never appear in the training prefix.
        assert len(train["timestamps"]) == len(items) - 2 and max(train["timestamps"]) <= valid["target_timestamps"][0]


def reference_k_core(pairs: set[tuple[int, int]], k: int) -> set[tuple[int, int]]:
    """Slow, obvious k-core: remove one under-degree node at a time until none is left."""
    pairs = set(pairs)
    while True:
        users: dict[int, int] = defaultdict(int)
        items: dict[int, int] = defaultdict(int)
        for u, i in pairs:
            users[u] += 1
            items[i] += 1
        low = next(((u, i) for u, i in pairs if users[u] < k or items[i] < k), None)
        if low is None:
            return pairs
        u, i = low
        pairs = {(a, b) for a, b in pairs if a != u} if users[u] < k else {(a, b) for a, b in pairs if b != i}


@SETTINGS
@given(pairs=st.sets(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=90), k=st.integers(1, 5))
def test_k_core_reaches_its_fixed_point(duckdb_engine: Engine, pairs: set[tuple[int, int]], k: int) -> None:
    table = pa.table({"user_idx": pa.array([p[0] for p in pairs], pa.int64()), "item_idx": pa.array([p[1] for p in pairs], pa.int64())})
    result = seq.k_core(duckdb_engine, table, k)
    expected = reference_k_core(pairs, k)
    assert set(result.users["user_idx"].to_pylist()) == {u for u, _ in expected}
    assert set(result.items["item_idx"].to_pylist()) == {i for _, i in expected}
    assert result.pairs == len(expected)
    kept = {(u, i) for u, i in pairs if u in {a for a, _ in expected} and i in {b for _, b in expected}}
    degrees_u: dict[int, int] = defaultdict(int)
    degrees_i: dict[int, int] = defaultdict(int)
    for u, i in kept:
        degrees_u[u] += 1
        degrees_i[i] += 1
    assert all(d >= k for d in degrees_u.values()) and all(d >= k for d in degrees_i.values())


def test_k_core_is_computed_on_the_training_window(duckdb_engine: Engine) -> None:
    # u1 and u2 each touch i1 and i2 before the cut-off; u3 touches them only after it: a 2-core
    # on all events would keep u3, the training-window 2-core must not.
    rows = [ev(f"a{n}", u, m, "click", i) for n, (u, m, i) in enumerate(
        [("u1", 0, "i1"), ("u1", 1, "i2"), ("u2", 2, "i1"), ("u2", 3, "i2"), ("u3", 5000, "i1"), ("u3", 5001, "i2")])]
    inter = seq.build_interactions(duckdb_engine, events_table(rows), id_maps_for(rows))
    split = seq.SplitConfig(cutoffs=Cutoffs(T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(min_len=1, k_core=2), split)
    assert prep.k_core is not None and prep.k_core.users["user_idx"].to_pylist() == [0, 1]
    assert {r["user_idx"] for r in seq.build_user_sequences(duckdb_engine, prep).to_pylist()} == {0, 1}


def test_two_tower_examples_use_the_training_window_only(duckdb_engine: Engine) -> None:
    inter = interactions(duckdb_engine, TINY)
    split = seq.SplitConfig(cutoffs=Cutoffs(T0 + dt.timedelta(minutes=101), T0 + dt.timedelta(days=1)))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(min_len=1), split)
    examples, freqs = seq.build_two_tower_examples(duckdb_engine, prep, history_len=2)
    rows = examples.to_pylist()
    assert all(r["ts"] < split.cutoffs.train_end for r in rows)
    alice = [r for r in rows if r["user_idx"] == 0]  # i1, i2, i3 before the cut-off; the purchase at 101 is not
    assert [r["item_idx"] for r in alice] == [0, 1, 2]
    assert [r["history_item_ids"] for r in alice] == [[], [0], [0, 1]]
    assert alice[0]["surface"] == "home"
    assert sum(freqs["count"].to_pylist()) == examples.num_rows
    assert abs(sum(freqs["probability"].to_pylist()) - 1.0) < 1e-12


def test_history_window_is_capped(duckdb_engine: Engine) -> None:
    rows = [ev(f"x{n}", "u1", n, "click", f"i{n}") for n in range(6)]
    inter = seq.build_interactions(duckdb_engine, events_table(rows), id_maps_for(rows))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(min_len=1), seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT))
    examples, _ = seq.build_two_tower_examples(duckdb_engine, prep, history_len=2)
    assert examples["history_item_ids"].to_pylist() == [[], [0], [0, 1], [1, 2]]  # events 1..n-2 only
    assert examples["history_length"].to_pylist() == [0, 1, 2, 2]


def catalog() -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"item_id": "i1", "title": "Tent", "description": None, "categories": ["Outdoor", "Outdoor > Tents"], "brand": "Northpeak",
             "price": 1.0, "attributes": None, "available_from": None},
            {"item_id": "i2", "title": "Mug", "description": None, "categories": ["Kitchen"], "brand": None, "price": 1.0,
             "attributes": None, "available_from": None},
            {"item_id": "i9", "title": "Future", "description": None, "categories": ["Later"], "brand": "Soon", "price": 1.0,
             "attributes": None, "available_from": T0 + dt.timedelta(days=30)},
        ],
        schema=RAW_ITEMS.schema,
    )


def test_graph_from_the_training_window(duckdb_engine: Engine) -> None:
    rows = [*TINY, ev("z1", "u3", 3001, "click", "i9")]
    inter = seq.build_interactions(duckdb_engine, events_table(rows), id_maps_for(rows))
    ids = id_maps_for(rows)
    split = seq.SplitConfig(cutoffs=Cutoffs(T0 + dt.timedelta(minutes=101), T0 + dt.timedelta(days=1)))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(min_len=1), split)
    embeddings = pa.table({"item_id": ["i1"], "embedding": pa.array([[0.5, 0.25]], pa.list_(pa.float32(), 2))})
    nodes, edges = seq.build_graph(duckdb_engine, prep, catalog(), ids, seq.item_embeddings_by_idx(embeddings, ids))
    names = {(r["node_type"], r["name"]) for r in nodes.to_pylist()}
    assert ("item", "i9") not in names and ("category", "Later") not in names  # available only after train_end
    assert ("user", "u3") not in names  # u3 acts only after train_end
    assert {("brand", "Northpeak"), ("category", "Outdoor > Tents"), ("category", "Kitchen")} <= names
    item1 = next(r for r in nodes.to_pylist() if r["name"] == "i1")
    assert item1["embedding"] == [0.5, 0.25]
    co = {(r["src_idx"], r["dst_idx"]): r["weight"] for r in edges.to_pylist() if r["edge_type"] == "item_item:co_session"}
    # u1's first session holds i1, i2; her second has only i3 before the cut; u2's s9 pairs i2 with i3
    # only at minute 500, after the cut, so that pair must not be an edge.
    assert co == {(0, 1): 1.0, (1, 0): 1.0}
    user_item = [r for r in edges.to_pylist() if r["edge_type"].startswith("user_item:")]
    assert {r["edge_type"] for r in user_item} == {"user_item:click", "user_item:view"}  # the purchase is at train_end
    node_keys = {(r["node_type"], r["node_idx"]) for r in nodes.to_pylist()}
    assert all((r["src_type"], r["src_idx"]) in node_keys and (r["dst_type"], r["dst_idx"]) in node_keys for r in edges.to_pylist())


def test_label_weights_and_semantic_ids_join(duckdb_engine: Engine) -> None:
    inter = interactions(duckdb_engine, TINY)
    labels = pa.table({
        "request_id": ["r1", "r1", None], "user_id": ["u1", "u1", "u2"], "item_id": ["i1", "i2", "i3"],
        "ts": pa.array([T0, T0, T0 + dt.timedelta(minutes=500)], TS), "observed": pa.array([1, 0, 1], pa.int32()),
        "ips_weight": [4.0, 9.0, 2.5],
    })
    weights = seq.label_weights_from_debiased(duckdb_engine, inter, labels)
    # e1 clicked i1 from slate r1 (weight 4); e6 is u2's i3 at minute 500 without a request (weight 2.5).
    assert dict(zip(weights["event_id"].to_pylist(), weights["weight"].to_pylist(), strict=True)) == {"e1": 4.0, "e6": 2.5}
    codes = seq.item_codes_from_semantic_ids(
        pa.table({"item_id": ["i1", "i2", "i3"], "codes": [[1, 2, 0], [1, 3, 0], [4, 2, 0]]}), id_maps_for(TINY))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(min_len=1), None, weights, codes)
    out = {r["user_idx"]: r for r in seq.build_user_sequences(duckdb_engine, prep).to_pylist()}
    assert out[0]["weights"][0] == 4.0 and out[0]["weights"][1:] == [1.0] * 4
    assert out[0]["semantic_ids"] == [[1, 2, 0], [1, 3, 0], [4, 2, 0], [1, 2, 0], [1, 3, 0]]


def test_split_config_holds_the_run_cutoffs() -> None:
    with pytest.raises(ValueError, match="needs cutoffs"):
        seq.SplitConfig()
    with pytest.raises(ValueError, match="takes no cutoffs"):
        seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT, cutoffs=Cutoffs(T0, T0))
    with pytest.raises(ValueError, match="before train_end"):  # Cutoffs' own rule
        seq.SplitConfig(cutoffs=Cutoffs(T0 + dt.timedelta(days=1), T0))
    # The same rule as Cutoffs: equal cut-offs are a valid split, naive cut-offs are UTC.
    assert seq.SplitConfig(cutoffs=Cutoffs(T0, T0)).cutoffs == Cutoffs(T0, T0)
    naive = seq.SplitConfig(cutoffs=Cutoffs(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)))
    assert naive == seq.SplitConfig(cutoffs=Cutoffs(T0, T0 + dt.timedelta(days=1)))
    assert naive.params() == {"kind": "temporal", "train_end": "2026-01-01T00:00:00Z", "valid_end": "2026-01-02T00:00:00Z"}
    assert seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT).params()["kind"] == "leave_one_out"


@pytest.mark.parametrize("valid_days", [0, 1])
def test_events_at_the_cutoffs_fall_where_cutoffs_split_them(duckdb_engine: Engine, valid_days: int) -> None:
    # One user with an event a millisecond before, exactly at and a millisecond after each cut-off;
    # the split rows must put each event where Cutoffs.split_of does (equal cut-offs included).
    cutoffs = Cutoffs(T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=1 + valid_days))
    stamps = sorted({c + dt.timedelta(milliseconds=ms) for c in (cutoffs.train_end, cutoffs.valid_end) for ms in (-1, 0, 1)})
    rows = [ev(f"c{n}", "u1", (s - T0) / dt.timedelta(minutes=1), "click", f"i{n}") for n, s in enumerate(stamps)]
    inter = seq.build_interactions(duckdb_engine, events_table(rows), id_maps_for(rows))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(max_len=None, min_len=1), seq.SplitConfig(cutoffs=cutoffs))
    out = {r["split"]: r for r in seq.build_splits(duckdb_engine, prep).to_pylist()}

    def split_of(ms: int) -> Split:
        return cutoffs.split_of(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))

    all_ms = [int(s.timestamp() * 1000) for s in stamps]
    assert set(out) == {str(s) for s in Split if s is not Split.VALID or valid_days}
    assert out[Split.TRAIN]["timestamps"] == [ms for ms in all_ms if split_of(ms) is Split.TRAIN]
    assert out[Split.TEST]["timestamps"] == [ms for ms in all_ms if split_of(ms) is not Split.TEST]
    for name in out.keys() - {Split.TRAIN}:
        assert out[name]["target_timestamps"] == [ms for ms in all_ms if split_of(ms) == name]
    examples, _ = seq.build_two_tower_examples(duckdb_engine, prep)
    assert [int(ts.timestamp() * 1000) for ts in examples["ts"].to_pylist()] == out[Split.TRAIN]["timestamps"]


def test_equal_cutoffs_leave_validation_empty(duckdb_engine: Engine) -> None:
    # Alice's four events before minute 101 train; at train_end == valid_end, her purchase (minute 101)
    # and her later click are test targets, and nobody has a validation target.
    inter = interactions(duckdb_engine, TINY)
    cut = T0 + dt.timedelta(minutes=101)
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(min_len=1), seq.SplitConfig(cutoffs=Cutoffs(cut, cut)))
    rows = seq.build_splits(duckdb_engine, prep).to_pylist()
    assert {r["split"] for r in rows} == {"train", "test"}
    alice = {r["split"]: r for r in rows if r["user_idx"] == 0}
    assert alice["train"]["item_ids"] == alice["test"]["item_ids"] == [0, 1, 2]
    assert alice["test"]["target_item_ids"] == [0, 1]


# --- parity: one definition, two engines ------------------------------------------------------------


def everything(engine: Engine, rows: list[dict], split: seq.SplitConfig) -> dict[str, pa.Table]:
    ids = id_maps_for(rows)
    inter = seq.build_interactions(engine, events_table(rows), ids, SLATES)
    codes = seq.item_codes_from_semantic_ids(
        pa.table({"item_id": [f"i{n}" for n in range(8)], "codes": [[n % 3, n % 2] for n in range(8)]}), ids)
    prep = seq.prepare(engine, inter, seq.SequenceConfig(max_len=4, min_len=2, k_core=2), split, None, codes)
    examples, freqs = seq.build_two_tower_examples(engine, prep, history_len=3)
    nodes, edges = seq.build_graph(engine, prep, catalog(), ids)
    return {
        "interactions": inter,
        "sequences": seq.build_user_sequences(engine, prep),
        "splits": seq.build_splits(engine, prep),
        "examples": examples,
        "frequencies": freqs,
        "nodes": nodes,
        "edges": edges,
    }


@pytest.mark.spark
def test_duckdb_and_spark_agree_on_tiny_splits(duckdb_engine: Engine, spark_engine: Engine) -> None:
    split = seq.SplitConfig(cutoffs=Cutoffs(T0 + dt.timedelta(minutes=101), T0 + dt.timedelta(days=1)))
    outputs = []
    for engine in (duckdb_engine, spark_engine):
        inter = interactions(engine, TINY)
        outputs.append((inter, seq.build_splits(engine, seq.prepare(engine, inter, seq.SequenceConfig(min_len=1), split))))
    assert outputs[0][0].equals(outputs[1][0]) and outputs[0][1].equals(outputs[1][1])


@pytest.mark.spark
@pytest.mark.slow
def test_duckdb_and_spark_agree(duckdb_engine: Engine, spark_engine: Engine) -> None:
    rows = random_events(random.Random(3), users=6, items=8, events=120, days=4)
    rows.append(dict(rows[5], event_id="dup"))  # a duplicate action under another id
    temporal = seq.SplitConfig(cutoffs=Cutoffs(T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=3)))
    duck = everything(duckdb_engine, rows, temporal)
    spark = everything(spark_engine, rows, temporal)
    for name, table in duck.items():
        assert table.num_rows > 0, name
        assert table.equals(spark[name]), f"{name} differs between DuckDB and Spark"
    # The leave-one-out rules are the other branch of the split SQL.
    loo = seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT)
    config = seq.SequenceConfig(max_len=4, min_len=2)
    a = seq.build_splits(duckdb_engine, seq.prepare(duckdb_engine, duck["interactions"], config, loo))
    b = seq.build_splits(spark_engine, seq.prepare(spark_engine, duck["interactions"], config, loo))
    assert a.num_rows > 0 and a.equals(b)


# --- ML-100K: the HSTU export of the leave-one-out split --------------------------------------------


def read_u_data(path: Path) -> list[dict]:
    """A tiny reader for MovieLens-100K's u.data (user \\t item \\t rating \\t unix seconds)."""
    rows = []
    with open(path) as handle:
        for n, line in enumerate(handle):
            user, item, rating, seconds = line.split("\t")
            rows.append({"event_id": f"ml{n:06d}", "user_id": f"u{user}", "ts": dt.datetime.fromtimestamp(int(seconds), dt.UTC),
                         "event_type": "rating", "item_id": f"i{item}", "request_id": None, "value": float(rating), "session_id": None})
    return rows


@pytest.mark.datasets
def test_hstu_export_of_ml100k_leave_one_out(duckdb_engine: Engine, shared_datasets: Path, tmp_path: Path) -> None:
    u_data = shared_datasets / "movielens-100k" / "ml-100k" / "u.data"
    if not u_data.exists():
        pytest.skip("ml-100k/u.data is not present")
    rows = read_u_data(u_data)
    events = events_table(rows)
    observed = pa.table({
        "entity": ["user"] * len(rows) + ["item"] * len(rows),
        "external_id": events["user_id"].to_pylist() + events["item_id"].to_pylist(),
        "first_seen": pa.concat_arrays([events["ts"].combine_chunks()] * 2),
    })
    ids = extend_id_map(duckdb_engine, CORE_ID_MAPS.schema.empty_table(), observed)
    inter = seq.build_interactions(duckdb_engine, events, ids)
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(max_len=None, min_len=1), seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT))
    splits = seq.build_splits(duckdb_engine, prep)
    test_rows = splits.filter(pa.compute.equal(splits["split"], "test"))
    out = tmp_path / "sasrec_format.csv"
    report = write_hstu(full_sequences_from_leave_one_out([test_rows]), out)

    user_idx = {e: i for e, i, k in zip(ids["external_id"].to_pylist(), ids["idx"].to_pylist(), ids["entity"].to_pylist(), strict=True) if k == "user"}
    item_idx = {e: i for e, i, k in zip(ids["external_id"].to_pylist(), ids["idx"].to_pylist(), ids["entity"].to_pylist(), strict=True) if k == "item"}
    expected: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for r in rows:
        expected[user_idx[r["user_id"]] + 1].append((int(r["ts"].timestamp()), r["event_id"], item_idx[r["item_id"]] + 1))
    with open(out) as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(expected) == report.users == 943  # one line per user
    for line in lines:
        history = sorted(expected[int(line["user_id"])])  # time order, ties by event id
        assert [int(x) for x in line["sequence_item_ids"].split(",")] == [item for _, _, item in history]
        assert [int(x) for x in line["sequence_timestamps"].split(",")] == [ts for ts, _, _ in history]
    assert report.events == len(rows) == 100_000


# --- the sample world: targets are interactions, not the event before them repeated ------------------


def sample_world_events(root: Path) -> pa.Table:
    import json

    rows = []
    for path in sorted((root / "events").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            rows.append(dict(r, ts=dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))))
    return pa.Table.from_pylist(rows, schema=RAW_EVENTS.schema)


def test_leave_one_out_targets_on_the_sample_world_are_interactions(duckdb_engine: Engine, tmp_path: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from sample_world import WorldConfig, generate_world

    root = tmp_path / "world"
    generate_world(WorldConfig(users=300, items=200, days=3, seed=11, bad_share=0.0, dup_share=0.0), root)
    events = sample_world_events(root)
    inter = seq.build_interactions(duckdb_engine, events, id_maps_for(events.to_pylist()))
    prep = seq.prepare(duckdb_engine, inter, seq.SequenceConfig(max_len=None, min_len=1), seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT))
    splits = seq.build_splits(duckdb_engine, prep)
    test = splits.filter(pc.equal(splits["split"], "test"))
    repeats = [r["target_item_ids"][0] == r["item_ids"][-1] for r in test.to_pylist()]
    # The truth: each click is one interaction (its view, cart and purchase follow it); the share of a
    # user's consecutive clicks on the same item.
    served = pq.read_table(root / "truth" / "served").filter(pc.field("clicked")).to_pandas().sort_values(["user_id", "request_id", "position"])
    same = total = 0
    for _, clicks in served.groupby("user_id"):
        items = clicks["item_id"].tolist()
        same += sum(a == b for a, b in itertools.pairwise(items))
        total += max(len(items) - 1, 0)
    assert len(repeats) > 50 and total > 50
    # Over raw events the test target was the last history item for ~90 % of users.
    assert sum(repeats) / len(repeats) <= same / total
