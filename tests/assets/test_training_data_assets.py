"""The training-data assets run end to end through Dagster on a tiny warehouse, and the export CLI reads them."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from assets import enrichment
from assets import training_data as td
from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from assets.resources_enrichment import ExtractiveGeneratorResource
from recforge.cli import main as cli
from training.data import LoaderConfig, ShardedSequenceDataset
from transforms.sequences import SplitKind
from warehouse.catalog import connect_catalog
from warehouse.contracts import (
    CORE_ID_MAPS,
    ENRICHMENT_ITEM_DESCRIPTIONS,
    RAW_EVENTS,
    RAW_ITEMS,
    RAW_SLATES,
    TRAINING_GRAPH_EDGES,
    TRAINING_TWO_TOWER_EXAMPLES,
)
from warehouse.shards import read_manifest, shard_root
from warehouse.store import Warehouse

START = dt.date(2026, 1, 1)
DAYS = 4
ASSETS = [td.interactions, td.training_window, td.user_sequences, td.sequence_shards, td.two_tower_examples, td.graph]
# Test = the last event day, valid = the day before.
CUTOFFS = CutoffsResource(train_end="2026-01-03T00:00:00Z", valid_end="2026-01-04T00:00:00Z")


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A warehouse with four days of events for 12 users over 10 items, written as the raw layer would."""
    root = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("RECFORGE_HOME", str(root))
    (tmp_path / "dagster").mkdir()
    store = Warehouse(root)
    rng = random.Random(11)
    for day in range(DAYS):
        date = START + dt.timedelta(days=day)
        rows = []
        for n in range(60):
            ts = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC) + dt.timedelta(minutes=rng.randrange(24 * 60))
            rows.append({"event_id": f"e{day}-{n:03d}", "user_id": f"u{rng.randrange(12)}", "ts": ts,
                         "event_type": rng.choice(["click", "view", "purchase"]), "item_id": f"i{rng.randrange(10)}",
                         "request_id": f"r{day}-{n % 7}", "value": None, "session_id": None})
        store.write(RAW_EVENTS, pa.Table.from_pylist(rows, schema=RAW_EVENTS.schema), date)
        slates = [{"request_id": f"r{day}-{k}", "user_id": "u0", "ts": dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC),
                   "surface": "home" if k % 2 else "related", "item_ids": ["i0"], "policy": "popularity", "propensities": None} for k in range(7)]
        store.write(RAW_SLATES, pa.Table.from_pylist(slates, schema=RAW_SLATES.schema), date)
    items = [{"item_id": f"i{k}", "title": f"Item {k}", "description": None, "categories": [f"C{k % 3}"], "brand": f"B{k % 2}",
              "price": 1.0, "attributes": None, "available_from": None} for k in range(10)]
    store.write(RAW_ITEMS, pa.Table.from_pylist(items, schema=RAW_ITEMS.schema))
    ids = [{"entity": "user", "external_id": f"u{k}", "idx": k, "first_seen": None} for k in range(12)]
    ids += [{"entity": "item", "external_id": f"i{k}", "idx": k, "first_seen": None} for k in range(10)]
    store.write(CORE_ID_MAPS, pa.Table.from_pylist(ids, schema=CORE_ID_MAPS.schema))
    return root


def materialize(
    home: Path, selection: list | None = None, config: td.SequenceDataConfig | None = None, cutoffs: CutoffsResource = CUTOFFS
) -> dg.ExecuteInProcessResult:
    resources = {"warehouse": WarehouseResource(home=str(home)), "engine": EngineResource(memory_limit="1GB"), "cutoffs": cutoffs}
    run_config = None
    if config is not None:
        ops = {a.node_def.name: config for a in (selection or ASSETS)}
        run_config = dg.RunConfig(ops=ops)
    return dg.materialize(selection or ASSETS, resources=resources, run_config=run_config, raise_on_error=True)


def test_training_data_assets_end_to_end(home: Path) -> None:
    result = materialize(home)
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 12 and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    materialized = {e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"training_data/training_window", "training_data/item_frequencies", "training_data/graph_nodes",
            "training_data/graph_edges"} <= materialized

    manifest = read_manifest(shard_root(home))
    # The split is the cutoffs resource's.
    assert manifest["params"]["split"] == {"kind": "temporal", "train_end": "2026-01-03T00:00:00Z", "valid_end": "2026-01-04T00:00:00Z"}
    assert manifest["vocab"]["items"] == 10 and manifest["vocab"]["users"] == 12
    assert len(manifest["statistics"]["item_frequencies_train"]) == 10
    assert set(manifest["sources"]) >= {"raw_events", "core_id_maps", "core_interactions"}
    assert manifest["shards"]["num_shards"] == 2 and set(manifest["splits"]) == {"train", "valid", "test"}

    train_end = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)
    batches = list(ShardedSequenceDataset(shard_root(home), "train", LoaderConfig(batch_size=4, max_len=50)))
    assert sum(len(b["user_idx"]) for b in batches) == manifest["rows"]["train"] > 0
    assert all(int(b["timestamps"].max()) < train_end.timestamp() * 1000 for b in batches)

    store = Warehouse(home)
    assert store.read(TRAINING_TWO_TOWER_EXAMPLES).num_rows > 0
    assert {"item_category", "item_brand", "user_item:click"} <= set(store.read(TRAINING_GRAPH_EDGES)["edge_type"].to_pylist())
    con = connect_catalog(home)
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    con.close()
    assert {"core_interactions", "training_data_training_window", "training_data_user_sequences", "training_data_two_tower_examples", "training_data_item_frequencies",
            "training_data_graph_nodes", "training_data_graph_edges"} <= views


def test_leave_one_out_shards_and_exports(home: Path, tmp_path: Path) -> None:
    # max_len 3 truncates the shards' histories; the exports still hold every interaction.
    config = td.SequenceDataConfig(split_kind=SplitKind.LEAVE_ONE_OUT, max_len=3, world_size=2, shards_per_rank=1)
    materialize(home, [td.interactions, td.training_window, td.sequence_shards], config)
    manifest = read_manifest(shard_root(home))
    assert manifest["params"]["split"]["kind"] == "leave_one_out" and manifest["shards"]["num_shards"] == 2

    out = tmp_path / "hstu.csv"
    assert cli(["export", "hstu", "--out", str(out)]) == 0
    with open(out) as handle:
        lines = list(csv.DictReader(handle))
    store = Warehouse(home)
    events = store.read(RAW_EVENTS).to_pylist()
    per_user: dict[str, list] = {}
    for e in events:
        if e["item_id"] is not None:
            per_user.setdefault(e["user_id"], []).append((e["ts"], len(e["event_id"]), e["event_id"], int(e["item_id"][1:]) + 1))
    expected = {}
    for user, evs in per_user.items():
        steps = [item for n, (*_, item) in enumerate(sorted(evs)) if n == 0 or sorted(evs)[n - 1][-1] != item]
        if len(steps) >= 3:
            expected[int(user[1:]) + 1] = steps  # consecutive events on one item are one interaction
    assert {int(line["user_id"]): [int(x) for x in line["sequence_item_ids"].split(",")] for line in lines} == expected
    assert max(len(v) for v in expected.values()) > 3  # full histories, not the last max_len + 1

    recbole = tmp_path / "recbole"
    assert cli(["export", "recbole", "--out", str(recbole), "--name", "demo"]) == 0
    with open(recbole / "demo.test.inter") as handle:
        test_lines = handle.read().splitlines()
    assert test_lines[0] == "user_id:token\titem_id:token\ttimestamp:float\tweight:float"
    assert len(test_lines) - 1 == len(expected)  # one held-out event per user
    assert (recbole / "demo.item").read_text().splitlines()[0].startswith("item_id:token")


def test_hstu_export_refuses_a_temporal_split(home: Path, tmp_path: Path) -> None:
    materialize(home, [td.interactions, td.training_window, td.sequence_shards])
    with pytest.raises(SystemExit, match="leave_one_out"):
        cli(["export", "hstu", "--out", str(tmp_path / "x.csv")])


def test_label_weights_and_semantic_ids_flow_into_sequences_and_shards(home: Path) -> None:
    from warehouse.contracts import (
        LABELS_DEBIASED_LABELS,
        SEMANTIC_IDS_ITEM_SEMANTIC_IDS,
        TRAINING_USER_SEQUENCES,
    )

    store = Warehouse(home)
    first = store.read(RAW_EVENTS, [START]).sort_by([("ts", "ascending"), ("event_id", "ascending")]).to_pylist()[0]
    # One observed positive for the first event of day one (its slate, user and item), weight 7.5.
    label = {"request_id": first["request_id"], "user_id": first["user_id"], "item_id": first["item_id"], "ts": first["ts"],
             "surface": None, "position": 0, "split": "train", "observed": 1, "relevance_grade": 1, "policy_propensity": None,
             "examination": None, "propensity": 0.1, "propensity_source": "popularity", "clipped": False, "ips_weight": 7.5,
             "weight_positive": 10.0, "weight_negative": -9.0}
    store.write(LABELS_DEBIASED_LABELS, pa.Table.from_pylist([label], schema=LABELS_DEBIASED_LABELS.schema), START)
    sids = [{"item_id": f"i{k}", "semantic_id": f"<a_{k % 3}><b_{k}><c_0><d_0>", "codes": [k % 3, k, 0, 0],
             "code_a": k % 3, "code_b": k, "code_c": 0, "code_d": 0, "codebook_version": 1, "text_hash": None} for k in range(10)]
    store.write(SEMANTIC_IDS_ITEM_SEMANTIC_IDS, pa.Table.from_pylist(sids, schema=SEMANTIC_IDS_ITEM_SEMANTIC_IDS.schema))

    result = materialize(home, [td.interactions, td.training_window, td.user_sequences, td.sequence_shards])
    assert all(c.passed for c in result.get_asset_check_evaluations())
    sequences = store.read(TRAINING_USER_SEQUENCES).to_pylist()
    weights = [w for r in sequences for w in r["weights"]]
    assert weights.count(7.5) == 1 and set(weights) == {1.0, 7.5}
    assert all(codes == [i % 3, i, 0, 0] for r in sequences for i, codes in zip(r["item_ids"], r["semantic_ids"], strict=True))
    manifest = read_manifest(shard_root(home))
    assert manifest["vocab"]["semantic_id_levels"] == 4 and manifest["vocab"]["semantic_id_codebook_sizes"] == [3, 10, 1, 1]
    assert {"labels", "semantic_ids"} <= set(manifest["sources"])
    batch = next(iter(ShardedSequenceDataset(shard_root(home), "train", LoaderConfig(batch_size=4, max_len=8))))
    assert batch["semantic_ids"].shape[-1] == 4


def test_a_window_built_for_another_run_is_refused(home: Path) -> None:
    # The window holds no k-core; a run asking for a 2-core must not build sequences from it.
    materialize(home, [td.interactions, td.training_window])
    with pytest.raises((ValueError, dg.DagsterExecutionStepExecutionError)) as raised:
        materialize(home, [td.user_sequences], td.SequenceDataConfig(k_core=2))
    assert "built with other cut-offs or settings" in f"{raised.value} {raised.value.__cause__}"
    # Same settings, later cut-offs: refused too.
    moved = CutoffsResource(train_end="2026-01-03T12:00:00Z", valid_end="2026-01-04T00:00:00Z")
    with pytest.raises((ValueError, dg.DagsterExecutionStepExecutionError)) as raised:
        materialize(home, [td.sequence_shards], cutoffs=moved)
    assert "built with other cut-offs or settings" in f"{raised.value} {raised.value.__cause__}"


def test_a_leave_one_out_window_refuses_text_that_kept_its_held_out_steps(home: Path) -> None:
    """The generated text must leave out the steps the window's split holds out: text generated for a temporal
    split, or for another k-core, fails the window's blocking check, and text generated alike passes it."""
    resources = {"warehouse": WarehouseResource(home=str(home)), "engine": EngineResource(memory_limit="1GB"), "cutoffs": CUTOFFS,
                 "enrichment_generator": ExtractiveGeneratorResource()}
    loo = td.SequenceDataConfig(split_kind=SplitKind.LEAVE_ONE_OUT, k_core=2)

    def window_check(text_config: dict[str, object]) -> dg.AssetCheckEvaluation:
        dg.materialize([enrichment.item_descriptions], resources=resources,
                       run_config={"ops": {"enrichment_item_descriptions": {"config": text_config}}})
        result = dg.materialize([td.training_window], resources=resources, run_config=dg.RunConfig(ops={"training_data__training_window": loo}),
                                raise_on_error=False)
        return next(c for c in result.get_asset_check_evaluations() if c.check_name == "text_holds_out_this_split")

    materialize(home, [td.interactions], loo)
    temporal = window_check({})  # the text's default: the temporal split
    assert not temporal.passed
    assert "temporal split" in temporal.metadata["leaks"].value["item_descriptions"]
    other_core = window_check({"split_kind": "LEAVE_ONE_OUT", "k_core": 3})
    assert not other_core.passed and "k_core=3" in other_core.metadata["leaks"].value["item_descriptions"]
    assert window_check({"split_kind": "LEAVE_ONE_OUT", "k_core": 2}).passed

    # Profiles left by a temporal run are regenerated before the window in a run that builds both (the window
    # depends on them, so the order does not rest on the executor's tie-breaking), and the check reads this run's record.
    dg.materialize([enrichment.user_profiles], resources=resources)
    text = {"split_kind": "LEAVE_ONE_OUT", "k_core": 2}
    both = dg.materialize([td.training_window, enrichment.user_profiles], resources=resources, run_config={"ops": {
        "enrichment_user_profiles": {"config": text}, "training_data__training_window": {"config": {"split_kind": "LEAVE_ONE_OUT", "k_core": 2}}}})
    assert all(c.passed for c in both.get_asset_check_evaluations() if c.check_name == "text_holds_out_this_split")

    # A text version without a record (written by something other than its asset) cannot be vouched for.
    store = Warehouse(home)
    store.write(ENRICHMENT_ITEM_DESCRIPTIONS, store.read(ENRICHMENT_ITEM_DESCRIPTIONS).slice(1))
    result = dg.materialize([td.training_window], resources=resources, run_config=dg.RunConfig(ops={"training_data__training_window": loo}),
                            raise_on_error=False)
    unrecorded = next(c for c in result.get_asset_check_evaluations() if c.check_name == "text_holds_out_this_split")
    assert not unrecorded.passed and "records no held-out settings" in unrecorded.metadata["leaks"].value["item_descriptions"]
