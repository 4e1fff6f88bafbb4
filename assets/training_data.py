"""Interactions and training data: the training window, user sequences, sequence shards, two-tower
examples with item frequencies, the HGNN graph.

Every asset here reads the same :class:`SequenceDataConfig`, so their splits agree: by default a
temporal split at ``train_end`` / ``valid_end`` of the shared ``cutoffs`` resource
(:class:`assets.resources.CutoffsResource`, the one the labels, enrichment and semantic-ID layers
use), or leave-one-out. Debiased labels and semantic IDs are joined when their tables exist in the
warehouse (label weights, :mod:`transforms.sequences.label_weights`; semantic-ID tokens).

The training window (:mod:`transforms.sequences.window`) is built once: the k-cored interactions with
their label weights and semantic IDs. The other training-data assets read it, and refuse one built
with another split or k-core than their own run's::

    core/interactions, labels, semantic IDs -> training_window -> user_sequences, sequence_shards,
                                                                  two_tower_examples + item_frequencies,
                                                                  graph_nodes + graph_edges
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets.enrichment import USER_PROFILES_KEY, text_leaks
from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from assets.training_data_config import SequenceDataConfig
from transforms import sequences as seq
from transforms.cutoffs import Cutoffs
from transforms.engine import Engine
from transforms.sequences import summaries
from transforms.sequences.window import (
    HeldOutSettings,
    WindowParams,
    build_training_window,
    prepare_window,
    window_params,
)
from warehouse import contracts
from warehouse.atomic import write_json
from warehouse.contracts import (
    CORE_ID_MAPS,
    CORE_INTERACTIONS,
    RAW_EVENTS,
    RAW_ITEMS,
    RAW_SLATES,
    TRAINING_GRAPH_EDGES,
    TRAINING_GRAPH_NODES,
    TRAINING_ITEM_FREQUENCIES,
    TRAINING_TWO_TOWER_EXAMPLES,
    TRAINING_USER_SEQUENCES,
    TRAINING_WINDOW,
    TableContract,
)
from warehouse.shards import ShardConfig, item_counts, shard_root, verify_shard_set, write_shard_set
from warehouse.store import Warehouse

INTERACTIONS_KEY = dg.AssetKey(["core", "interactions"])
TRAINING_WINDOW_KEY = dg.AssetKey(["training_data", "training_window"])
USER_SEQUENCES_KEY = dg.AssetKey(["training_data", "user_sequences"])
SEQUENCE_SHARDS_KEY = dg.AssetKey(["training_data", "sequence_shards"])
TWO_TOWER_KEY = dg.AssetKey(["training_data", "two_tower_examples"])
ITEM_FREQUENCIES_KEY = dg.AssetKey(["training_data", "item_frequencies"])
GRAPH_NODES_KEY = dg.AssetKey(["training_data", "graph_nodes"])
GRAPH_EDGES_KEY = dg.AssetKey(["training_data", "graph_edges"])

# Optional upstreams: read when their tables exist (label weights, semantic-ID tokens, item embeddings).
DEBIASED_LABELS_KEY = dg.AssetKey(["labels", "debiased_labels"])
ITEM_SEMANTIC_IDS_KEY = dg.AssetKey(["semantic_ids", "item_semantic_ids"])
ITEM_EMBEDDINGS_KEY = dg.AssetKey(["enrichment", "item_embeddings"])

LABELS_TABLE = ("labels", "debiased_labels")
SEMANTIC_IDS_TABLE = ("semantic_ids", "item_semantic_ids")
CODEBOOKS_TABLE = ("semantic_ids", "codebooks")
LABEL_COLUMNS = ["request_id", "user_id", "item_id", "ts", "observed", "ips_weight", "split", "propensity_source", "examination"]
ITEM_EMBEDDINGS_TABLE = ("enrichment", "item_embeddings")
WINDOW_PARAMS_FILE = "_window.json"  # beside the training window's part file: what it was built with
MAX_SHARD_IMBALANCE_ROWS = 1  # the writer's promise: shard row counts within a split differ by at most one
PROBABILITY_TOLERANCE = 1e-9  # item sampling probabilities add up to one within float rounding


# --- assets ------------------------------------------------------------------------------------------


@dg.asset(
    key=INTERACTIONS_KEY,
    deps=[dg.AssetKey(["raw", "events"]), dg.AssetKey(["raw", "slates"]), dg.AssetKey(["core", "id_maps"])],
    group_name="core",
    description=CORE_INTERACTIONS.description,
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("events_unique", asset=INTERACTIONS_KEY, blocking=True, description="No event id appears twice."),
    ],
)
def interactions(config: SequenceDataConfig, warehouse: WarehouseResource, engine: EngineResource) -> dg.MaterializeResult:
    """Deduplicate and sessionize the staged events, with dense ids from the id map."""
    store = warehouse.store()
    with engine.open() as eng:
        events = store.files(RAW_EVENTS)
        if not events:
            raise ValueError("raw_events has no partitions yet: materialize raw/events first")
        table = seq.build_interactions(
            eng,
            events,
            store.read(CORE_ID_MAPS),
            store.files(RAW_SLATES) or None,
            seq.SessionConfig(gap=dt.timedelta(minutes=config.session_gap_minutes)),
        )
    store.write(CORE_INTERACTIONS, table)
    repeated = table.num_rows - pc.count_distinct(table["event_id"]).as_py()
    sessions = pc.count_distinct(pc.binary_join_element_wise(pc.cast(table["user_idx"], pa.string()), table["session_id"], "|")).as_py()
    return dg.MaterializeResult(
        metadata={"rows": table.num_rows, "users": pc.count_distinct(table["user_idx"]).as_py(), "sessions": sessions},
        check_results=[dg.AssetCheckResult(check_name="events_unique", passed=repeated == 0, metadata={"repeated": repeated})],
    )


@dg.asset(
    key=TRAINING_WINDOW_KEY,
    # The user profiles too: the check text_holds_out_this_split reads both text tables (the item descriptions
    # come before it through the semantic IDs), so a run that regenerates them does so before the window.
    deps=[INTERACTIONS_KEY, dg.AssetKey(["core", "id_maps"]), DEBIASED_LABELS_KEY, ITEM_SEMANTIC_IDS_KEY, USER_PROFILES_KEY],
    group_name="training_data",
    description=TRAINING_WINDOW.description,
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("events_unique", asset=TRAINING_WINDOW_KEY, blocking=True, description="No event id appears twice (the joins fan out nothing)."),
        dg.AssetCheckSpec("k_core_holds", asset=TRAINING_WINDOW_KEY, blocking=True, description="Every kept user and item has at least k distinct partners in the training window."),
        dg.AssetCheckSpec("text_holds_out_this_split", asset=TRAINING_WINDOW_KEY, blocking=True,
                          description="Under leave-one-out, the generated item and user text left out the steps this window holds out."),
    ],
)
def training_window(
    config: SequenceDataConfig, warehouse: WarehouseResource, engine: EngineResource, cutoffs: CutoffsResource
) -> dg.MaterializeResult:
    """The interactions k-cored on the training window, with label weights and semantic IDs, built once."""
    store = warehouse.store()
    interactions = store.files(CORE_INTERACTIONS)
    if not interactions:
        raise ValueError("core_interactions is missing: materialize core/interactions first")
    split = config.split_config(_resolve(config, cutoffs, store))
    id_maps = store.read(CORE_ID_MAPS)
    labels = _optional(store, LABELS_TABLE, LABEL_COLUMNS)
    semantic = _optional(store, SEMANTIC_IDS_TABLE, ["item_id", "codes", "codebook_version"])
    codes = seq.item_codes_from_semantic_ids(semantic, id_maps) if semantic is not None else None
    label_cutoffs = cutoffs.resolve(store) if labels is not None and split.kind is not seq.SplitKind.TEMPORAL else split.cutoffs
    weights = config.weight_config()
    with engine.open() as eng:
        window = build_training_window(eng, interactions, config.sequence_config(), split, labels, codes, weights, label_cutoffs)
        pairs = None
        if config.k_core is not None and split.kind is not seq.SplitKind.TEMPORAL:
            seq.register_source(eng, "td_all_interactions", interactions)
            pairs = seq.training_pairs(eng, "td_all_interactions", config.sequence_config(), split)
    written = store.write(TRAINING_WINDOW, window.events)
    params = window_params(
        window, config.sequence_config(), split, summaries.id_space(id_maps),
        _sources(store, labels is not None, semantic is not None), labels is not None, semantic is not None,
        weights, summaries.codebook_sizes(semantic, _optional(store, CODEBOOKS_TABLE, ["version", "levels", "codes_per_level"])),
    )
    write_json(store.table_dir(TRAINING_WINDOW) / WINDOW_PARAMS_FILE, {**params.to_json(), "content_hash": written.content_hash})
    repeated = summaries.duplicate_rows(window.events, ["event_id"])
    below_k = summaries.k_core_violations(window.events, config.k_core, split.cutoffs, pairs)
    leaks = text_leaks(store, HeldOutSettings.of(split.kind, config.sequence_config()))
    return dg.MaterializeResult(
        metadata={"events": window.events.num_rows, "k_core_iterations": params.k_core_iterations, "split": dg.MetadataValue.json(params.split),
                  "weights": dg.MetadataValue.json(params.weights),
                  "with_label_weights": params.has_label_weights, "with_semantic_ids": params.has_semantic_ids},
        check_results=[
            dg.AssetCheckResult(check_name="events_unique", passed=repeated == 0, metadata={"repeated": repeated}),
            dg.AssetCheckResult(check_name="k_core_holds", passed=below_k == 0, metadata={"below_k": below_k}),
            dg.AssetCheckResult(check_name="text_holds_out_this_split", passed=not leaks, metadata={"leaks": dg.MetadataValue.json(leaks)}),
        ],
    )


@dg.asset(
    key=USER_SEQUENCES_KEY,
    deps=[TRAINING_WINDOW_KEY],
    group_name="training_data",
    description=TRAINING_USER_SEQUENCES.description,
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("time_ordered", asset=USER_SEQUENCES_KEY, blocking=True, description="Every sequence is in non-decreasing time order."),
    ],
)
def user_sequences(
    config: SequenceDataConfig, warehouse: WarehouseResource, engine: EngineResource, cutoffs: CutoffsResource
) -> dg.MaterializeResult:
    """Per-user time-ordered sequences (most recent ``max_len``), with label weights and semantic IDs when built."""
    store = warehouse.store()
    with engine.open() as eng:
        prep, params = _open_window(eng, store, config, cutoffs)
        table = seq.build_user_sequences(eng, prep)
    store.write(TRAINING_USER_SEQUENCES, table)
    unordered = summaries.unordered_rows(table["timestamps"])
    return dg.MaterializeResult(
        metadata={
            "users": table.num_rows,
            "events": int(pc.sum(table["length"]).as_py() or 0),
            "k_core_iterations": params.k_core_iterations,
            "with_label_weights": params.has_label_weights,
            "with_semantic_ids": params.has_semantic_ids,
            "split": dg.MetadataValue.json(params.split),
        },
        check_results=[dg.AssetCheckResult(check_name="time_ordered", passed=unordered == 0, metadata={"unordered_rows": unordered})],
    )


@dg.asset(
    key=SEQUENCE_SHARDS_KEY,
    deps=[TRAINING_WINDOW_KEY],
    group_name="training_data",
    description="Train / valid / test sequence shards (balanced Parquet, a manifest with schema, statistics and hashes), swapped in atomically.",
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec("no_leakage", asset=SEQUENCE_SHARDS_KEY, blocking=True, description="No history event at or after its split's cut-off."),
        dg.AssetCheckSpec("shards_balanced", asset=SEQUENCE_SHARDS_KEY, blocking=True, description="Shard row counts within a split differ by at most one."),
        dg.AssetCheckSpec("content_hashes", asset=SEQUENCE_SHARDS_KEY, blocking=True, description="Every shard matches the content hash in the manifest."),
    ],
)
def sequence_shards(
    config: SequenceDataConfig, warehouse: WarehouseResource, engine: EngineResource, cutoffs: CutoffsResource
) -> dg.MaterializeResult:
    """Split leakage-free and write balanced shards with a manifest; the new version replaces the old atomically."""
    store = warehouse.store()
    with engine.open() as eng:
        prep, params = _open_window(eng, store, config, cutoffs)
        rows = seq.build_splits(eng, prep)
    vocab = summaries.vocab(params.id_space, params.has_semantic_ids, rows, params.semantic_id_codebook_sizes)
    train = rows.filter(pc.equal(rows["split"], "train"))
    shard_set = write_shard_set(
        shard_root(warehouse.root),
        rows,
        ShardConfig(world_size=config.world_size, shards_per_rank=config.shards_per_rank, row_group_rows=config.row_group_rows, seed=config.shard_seed),
        params={"split": params.split, "sequence": prep.config.params(), "k_core_iterations": params.k_core_iterations,
                "weights": params.weights},
        sources=params.sources,
        vocab=vocab,
        statistics={"item_frequencies_train": item_counts(train["item_ids"], vocab["items"]), "lengths": summaries.length_summary(rows)},
    )
    leaks = summaries.leaking_rows(rows, prep.split.cutoffs if prep.split else None)
    sizes = {name: [s["rows"] for s in split["shards"]] for name, split in shard_set.manifest["splits"].items()}
    imbalance = max((max(v) - min(v) for v in sizes.values() if v), default=0)
    problems = verify_shard_set(shard_set.version_dir)
    return dg.MaterializeResult(
        metadata={
            "version": shard_set.version,
            "path": dg.MetadataValue.path(str(shard_set.version_dir)),
            "rows": dg.MetadataValue.json(shard_set.manifest["rows"]),
            "split": dg.MetadataValue.json(params.split),
            "estimand": params.weights.get("resolved", "none"),
            "item_vocab": vocab["items"],
        },
        check_results=[
            dg.AssetCheckResult(check_name="no_leakage", passed=leaks == 0, metadata={"leaking_rows": leaks}),
            dg.AssetCheckResult(check_name="shards_balanced", passed=imbalance <= MAX_SHARD_IMBALANCE_ROWS, metadata={"rows_per_shard": dg.MetadataValue.json(sizes)}),
            dg.AssetCheckResult(check_name="content_hashes", passed=not problems, metadata={"problems": dg.MetadataValue.json(problems)}),
        ],
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(TWO_TOWER_KEY, deps=[TRAINING_WINDOW_KEY], group_name="training_data", description=TRAINING_TWO_TOWER_EXAMPLES.description, kinds={"parquet", "duckdb"}),
        dg.AssetSpec(ITEM_FREQUENCIES_KEY, deps=[TRAINING_WINDOW_KEY], group_name="training_data", description=TRAINING_ITEM_FREQUENCIES.description, kinds={"parquet", "duckdb"}),
    ],
    check_specs=[
        dg.AssetCheckSpec("training_window_only", asset=TWO_TOWER_KEY, blocking=True, description="No example at or after train_end."),
        dg.AssetCheckSpec("frequencies_add_up", asset=ITEM_FREQUENCIES_KEY, blocking=True, description="Counts add up to the examples, probabilities to one."),
    ],
)
def two_tower_examples(
    config: SequenceDataConfig, warehouse: WarehouseResource, engine: EngineResource, cutoffs: CutoffsResource
) -> Iterator[dg.MaterializeResult]:
    """(history, positive, weight) rows from the training window and item sampling frequencies for log-Q."""
    store = warehouse.store()
    with engine.open() as eng:
        prep, params = _open_window(eng, store, config, cutoffs)
        examples, frequencies = seq.build_two_tower_examples(eng, prep, seq.TwoTowerConfig(config.two_tower_history).two_tower_history)
    store.write(TRAINING_TWO_TOWER_EXAMPLES, examples)
    store.write(TRAINING_ITEM_FREQUENCIES, frequencies)
    late = summaries.rows_after_training(examples["ts"], prep.split.cutoffs if prep.split else None)
    counted = int(pc.sum(frequencies["count"]).as_py() or 0)
    total = float(pc.sum(frequencies["probability"]).as_py() or 0.0)
    adds_up = counted == examples.num_rows and (examples.num_rows == 0 or abs(total - 1.0) <= PROBABILITY_TOLERANCE)
    yield dg.MaterializeResult(
        asset_key=TWO_TOWER_KEY,
        metadata={"examples": examples.num_rows, "split": dg.MetadataValue.json(params.split)},
        check_results=[dg.AssetCheckResult(asset_key=TWO_TOWER_KEY, check_name="training_window_only", passed=late == 0, metadata={"late_examples": late})],
    )
    yield dg.MaterializeResult(
        asset_key=ITEM_FREQUENCIES_KEY,
        metadata={"items": frequencies.num_rows},
        check_results=[dg.AssetCheckResult(asset_key=ITEM_FREQUENCIES_KEY, check_name="frequencies_add_up", passed=adds_up,
                                           metadata={"counted_examples": counted, "examples": examples.num_rows, "probability_sum": total})],
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(GRAPH_NODES_KEY, deps=[TRAINING_WINDOW_KEY, dg.AssetKey(["raw", "items"]), dg.AssetKey(["core", "id_maps"]), ITEM_EMBEDDINGS_KEY],
                     group_name="training_data", description=TRAINING_GRAPH_NODES.description, kinds={"parquet", "duckdb"}),
        dg.AssetSpec(GRAPH_EDGES_KEY, deps=[TRAINING_WINDOW_KEY, dg.AssetKey(["raw", "items"])],
                     group_name="training_data", description=TRAINING_GRAPH_EDGES.description, kinds={"parquet", "duckdb"}),
    ],
    check_specs=[
        dg.AssetCheckSpec("nodes_unique", asset=GRAPH_NODES_KEY, blocking=True, description="No (node type, index) appears twice."),
        dg.AssetCheckSpec("edges_reference_nodes", asset=GRAPH_EDGES_KEY, blocking=True, description="Every edge endpoint is a node."),
    ],
)
def graph(
    config: SequenceDataConfig, warehouse: WarehouseResource, engine: EngineResource, cutoffs: CutoffsResource
) -> Iterator[dg.MaterializeResult]:
    """Node and edge tables (users, items with text embeddings, categories, brands) from the training window."""
    store = warehouse.store()
    id_maps = store.read(CORE_ID_MAPS)
    embeddings = _optional(store, ITEM_EMBEDDINGS_TABLE, ["item_id", "embedding"])
    by_idx = seq.item_embeddings_by_idx(embeddings, id_maps) if embeddings is not None else None
    with engine.open() as eng:
        prep, params = _open_window(eng, store, config, cutoffs)
        nodes, edges = seq.build_graph(eng, prep, store.read(RAW_ITEMS), id_maps, by_idx, seq.GraphConfig(max_session_items=config.max_session_items))
    store.write(TRAINING_GRAPH_NODES, nodes)
    store.write(TRAINING_GRAPH_EDGES, edges)
    repeated = summaries.duplicate_rows(nodes, ["node_type", "node_idx"])
    dangling = summaries.dangling_edges(nodes, edges)
    counts = {c["values"]: c["counts"] for c in pc.value_counts(nodes["node_type"]).to_pylist()}
    edge_counts = {c["values"]: c["counts"] for c in pc.value_counts(edges["edge_type"]).to_pylist()}
    yield dg.MaterializeResult(
        asset_key=GRAPH_NODES_KEY,
        metadata={"nodes": dg.MetadataValue.json(counts), "split": dg.MetadataValue.json(params.split), "with_item_embeddings": embeddings is not None},
        check_results=[dg.AssetCheckResult(asset_key=GRAPH_NODES_KEY, check_name="nodes_unique", passed=repeated == 0, metadata={"repeated": repeated})],
    )
    yield dg.MaterializeResult(
        asset_key=GRAPH_EDGES_KEY,
        metadata={"edges": dg.MetadataValue.json(edge_counts), "split": dg.MetadataValue.json(params.split)},
        check_results=[dg.AssetCheckResult(asset_key=GRAPH_EDGES_KEY, check_name="edges_reference_nodes", passed=dangling == 0, metadata={"dangling_edges": dangling})],
    )


# --- helpers -----------------------------------------------------------------------------------------


def _resolve(config: SequenceDataConfig, cutoffs: CutoffsResource, store: Warehouse) -> Cutoffs | None:
    """The run's cut-offs for a temporal split; a session split's from the last day of the interactions;
    None for leave-one-out."""
    if config.kind is seq.SplitKind.TEMPORAL:
        return cutoffs.resolve(store)
    if config.kind is seq.SplitKind.SESSION:
        last = pc.max(store.read_as_stored(CORE_INTERACTIONS, ["ts"])["ts"]).as_py()
        if last is None:
            raise ValueError("core_interactions is empty: a session split needs interactions")
        return seq.session_cutoffs(last, config.session_test_days, config.session_valid_days)
    return None


def _open_window(
    eng: Engine, store: Warehouse, config: SequenceDataConfig, cutoffs: CutoffsResource
) -> tuple[seq.PreparedInputs, WindowParams]:
    """Register the stored training window for the builders, after checking it was built for this run."""
    files = store.files(TRAINING_WINDOW)
    path = store.table_dir(TRAINING_WINDOW) / WINDOW_PARAMS_FILE
    if not files or not path.exists():
        raise ValueError("training_data/training_window is missing: materialize it first")
    params = WindowParams.from_json(json.loads(path.read_text()))
    _, content_hash = store.stored_stats(TRAINING_WINDOW)
    if params.content_hash != content_hash:
        raise ValueError(f"{path} describes another version of training_data/training_window (an interrupted write): rematerialize it")
    split = config.split_config(_resolve(config, cutoffs, store))
    return prepare_window(eng, files, params, config.sequence_config(), split, config.weight_config()), params


def _sources(store: Warehouse, with_labels: bool, with_semantic_ids: bool) -> dict[str, str]:
    """The snapshot hash of every table the training window was built from."""
    tables = [RAW_EVENTS, RAW_SLATES, CORE_ID_MAPS, CORE_INTERACTIONS]
    sources = {c.view_name: _snapshot_hash(store, c) for c in tables}
    if with_labels:
        sources["labels"] = _snapshot_hash(store, contracts.contract_for(*LABELS_TABLE))
    if with_semantic_ids:
        sources["semantic_ids"] = _snapshot_hash(store, contracts.contract_for(*SEMANTIC_IDS_TABLE))
    return sources


def _optional(store: Warehouse, table: tuple[str, str], columns: list[str] | None = None) -> pa.Table | None:
    """A table written by another layer, or None while that layer has no contract or no data yet.

    Files are read as written (only ``columns``), not cast to the registered contract: the semantic-ID
    table's width depends on the ID length its run chose.
    """
    try:
        contract = contracts.contract_for(*table)
    except KeyError:
        return None
    return store.read_as_stored(contract, columns)


def _snapshot_hash(store: Warehouse, contract: TableContract) -> str:
    """One hash of a table's snapshot: its partitions' row counts and content hashes."""
    return hashlib.sha256(json.dumps(store.manifest(contract), sort_keys=True).encode()).hexdigest()
