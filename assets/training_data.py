"""Interactions and training data: user sequences, sequence shards, two-tower examples, the HGNN graph.

Every asset here reads the same :class:`SequenceDataConfig`, so their splits agree: by default a
temporal split at ``train_end`` / ``valid_end`` of the shared ``cutoffs`` resource
(:class:`assets.resources.CutoffsResource`, the one the labels, enrichment and semantic-ID layers
use), or leave-one-out. Debiased labels and semantic IDs are joined when their tables exist in the
warehouse (label weights; semantic-ID tokens).

Label weights under a temporal split never come from data after an event's split: an event before
``train_end`` (everything a training row holds) takes its weight only from label rows of the labels'
``train`` split, whose propensities were fitted on data before ``train_end``; an event before
``valid_end`` only from ``train`` or ``valid`` rows. A labels table whose split column disagrees with
the run's cut-offs (built with other cut-offs) is refused.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from transforms import sequences as seq
from transforms.cutoffs import Cutoffs
from transforms.sequences import summaries
from transforms.sequences.label_weights import label_weights_within_splits
from warehouse import contracts
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
    TableContract,
)
from warehouse.shards import ShardConfig, item_counts, verify_shard_set, write_shard_set
from warehouse.store import Warehouse

INTERACTIONS_KEY = dg.AssetKey(["core", "interactions"])
USER_SEQUENCES_KEY = dg.AssetKey(["training_data", "user_sequences"])
SEQUENCE_SHARDS_KEY = dg.AssetKey(["training_data", "sequence_shards"])
TWO_TOWER_KEY = dg.AssetKey(["training_data", "two_tower_examples"])
GRAPH_KEY = dg.AssetKey(["training_data", "graph"])

# Optional upstreams: read when their tables exist (label weights, semantic-ID tokens, item embeddings).
DEBIASED_LABELS_KEY = dg.AssetKey(["labels", "debiased_labels"])
ITEM_SEMANTIC_IDS_KEY = dg.AssetKey(["semantic_ids", "item_semantic_ids"])
ITEM_EMBEDDINGS_KEY = dg.AssetKey(["enrichment", "item_embeddings"])

SHARDS_DIR = ("training_data", "sequence_shards")
LABELS_TABLE = ("labels", "debiased_labels")
SEMANTIC_IDS_TABLE = ("semantic_ids", "item_semantic_ids")
ITEM_EMBEDDINGS_TABLE = ("enrichment", "item_embeddings")
MAX_SHARD_IMBALANCE_ROWS = 1  # the writer's promise: shard row counts within a split differ by at most one


class SequenceDataConfig(dg.Config):
    """Run configuration shared by the training-data assets (keep them equal across one run)."""

    split_kind: seq.SplitKind = seq.SplitKind.TEMPORAL  # temporal cut-offs: the ``cutoffs`` resource
    max_len: int = 200
    min_len: int = 2
    k_core: int | None = None
    session_gap_minutes: int = 30
    world_size: int = 1
    shards_per_rank: int = 2
    row_group_rows: int = 1024
    shard_seed: int = 0
    two_tower_history: int = 50
    max_session_items: int = 50

    def sequence_config(self) -> seq.SequenceConfig:
        return seq.SequenceConfig(max_len=self.max_len, min_len=self.min_len, k_core=self.k_core)

    def split_config(self, cutoffs: Cutoffs | None) -> seq.SplitConfig:
        """Leave-one-out, or the temporal split at ``cutoffs`` (required then)."""
        if self.split_kind is seq.SplitKind.LEAVE_ONE_OUT:
            return seq.SplitConfig(kind=seq.SplitKind.LEAVE_ONE_OUT)
        if cutoffs is None:
            raise ValueError("a temporal split needs the run's cut-offs")
        return seq.SplitConfig(train_end=cutoffs.train_end, valid_end=cutoffs.valid_end)


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
    warehouse.refresh_catalog()
    repeated = table.num_rows - pc.count_distinct(table["event_id"]).as_py()
    sessions = pc.count_distinct(pc.binary_join_element_wise(pc.cast(table["user_idx"], pa.string()), table["session_id"], "|")).as_py()
    return dg.MaterializeResult(
        metadata={"rows": table.num_rows, "users": pc.count_distinct(table["user_idx"]).as_py(), "sessions": sessions},
        check_results=[dg.AssetCheckResult(check_name="events_unique", passed=repeated == 0, metadata={"repeated": repeated})],
    )


@dg.asset(
    key=USER_SEQUENCES_KEY,
    deps=[INTERACTIONS_KEY, DEBIASED_LABELS_KEY, ITEM_SEMANTIC_IDS_KEY],
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
        prep, sources = _prepare(eng, store, config, cutoffs)
        table = seq.build_user_sequences(eng, prep)
    store.write(TRAINING_USER_SEQUENCES, table)
    warehouse.refresh_catalog()
    unordered = summaries.unordered_rows(table["timestamps"])
    return dg.MaterializeResult(
        metadata={
            "users": table.num_rows,
            "events": int(pc.sum(table["length"]).as_py() or 0),
            "k_core_iterations": prep.k_core.iterations if prep.k_core else 0,
            "with_label_weights": "labels" in sources,
            "with_semantic_ids": prep.has_semantic_ids,
            "split": dg.MetadataValue.json(prep.split.params() if prep.split else {}),
        },
        check_results=[dg.AssetCheckResult(check_name="time_ordered", passed=unordered == 0, metadata={"unordered_rows": unordered})],
    )


@dg.asset(
    key=SEQUENCE_SHARDS_KEY,
    deps=[INTERACTIONS_KEY, USER_SEQUENCES_KEY, DEBIASED_LABELS_KEY, ITEM_SEMANTIC_IDS_KEY],
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
        prep, sources = _prepare(eng, store, config, cutoffs)
        rows = seq.build_splits(eng, prep)
    id_maps = store.read(CORE_ID_MAPS)
    vocab = summaries.vocab(id_maps, prep, rows)
    train = rows.filter(pc.equal(rows["split"], "train"))
    statistics = {
        "item_frequencies_train": item_counts(train["item_ids"], vocab["items"]),
        "lengths": summaries.length_summary(rows),
    }
    assert prep.split is not None
    shard_set = write_shard_set(
        warehouse.root.joinpath(*SHARDS_DIR),
        rows,
        ShardConfig(
            world_size=config.world_size,
            shards_per_rank=config.shards_per_rank,
            row_group_rows=config.row_group_rows,
            seed=config.shard_seed,
        ),
        params={"split": prep.split.params(), "sequence": prep.config.params(), "k_core_iterations": prep.k_core.iterations if prep.k_core else 0},
        sources=sources,
        vocab=vocab,
        statistics=statistics,
    )
    leaks = summaries.leaks(rows, prep.split)
    sizes = {name: [s["rows"] for s in split["shards"]] for name, split in shard_set.manifest["splits"].items()}
    imbalance = max((max(v) - min(v) for v in sizes.values() if v), default=0)
    problems = verify_shard_set(shard_set.version_dir)
    return dg.MaterializeResult(
        metadata={
            "version": shard_set.version,
            "path": dg.MetadataValue.path(str(shard_set.version_dir)),
            "rows": dg.MetadataValue.json(shard_set.manifest["rows"]),
            "split": dg.MetadataValue.json(prep.split.params()),
            "item_vocab": vocab["items"],
        },
        check_results=[
            dg.AssetCheckResult(check_name="no_leakage", passed=leaks == 0, metadata={"leaking_rows": leaks}),
            dg.AssetCheckResult(check_name="shards_balanced", passed=imbalance <= MAX_SHARD_IMBALANCE_ROWS, metadata={"rows_per_shard": dg.MetadataValue.json(sizes)}),
            dg.AssetCheckResult(check_name="content_hashes", passed=not problems, metadata={"problems": dg.MetadataValue.json(problems)}),
        ],
    )


@dg.asset(
    key=TWO_TOWER_KEY,
    deps=[INTERACTIONS_KEY, DEBIASED_LABELS_KEY],
    group_name="training_data",
    description=TRAINING_TWO_TOWER_EXAMPLES.description + " Also writes training_data/item_frequencies (log-Q).",
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("training_window_only", asset=TWO_TOWER_KEY, blocking=True, description="No example at or after train_end."),
    ],
)
def two_tower_examples(
    config: SequenceDataConfig, warehouse: WarehouseResource, engine: EngineResource, cutoffs: CutoffsResource
) -> dg.MaterializeResult:
    """(history, positive, weight) rows from the training window and item sampling frequencies for log-Q."""
    store = warehouse.store()
    with engine.open() as eng:
        prep, _ = _prepare(eng, store, config, cutoffs)
        examples, frequencies = seq.build_two_tower_examples(eng, prep, config.two_tower_history)
    store.write(TRAINING_TWO_TOWER_EXAMPLES, examples)
    store.write(TRAINING_ITEM_FREQUENCIES, frequencies)
    warehouse.refresh_catalog()
    late = 0
    assert prep.split is not None
    if prep.split.kind is seq.SplitKind.TEMPORAL and examples.num_rows:
        cutoff = pa.scalar(prep.split.train_end, type=examples.schema.field("ts").type)
        late = int(pc.sum(pc.greater_equal(examples["ts"], cutoff)).as_py() or 0)
    return dg.MaterializeResult(
        metadata={"examples": examples.num_rows, "items": frequencies.num_rows, "split": dg.MetadataValue.json(prep.split.params())},
        check_results=[dg.AssetCheckResult(check_name="training_window_only", passed=late == 0, metadata={"late_examples": late})],
    )


@dg.asset(
    key=GRAPH_KEY,
    deps=[INTERACTIONS_KEY, dg.AssetKey(["raw", "items"]), ITEM_EMBEDDINGS_KEY],
    group_name="training_data",
    description="Heterogeneous graph for the HGNN from the training window: training_data/graph_nodes and training_data/graph_edges.",
    kinds={"parquet", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("edges_reference_nodes", asset=GRAPH_KEY, blocking=True, description="Every edge endpoint is a node."),
    ],
)
def graph(
    config: SequenceDataConfig, warehouse: WarehouseResource, engine: EngineResource, cutoffs: CutoffsResource
) -> dg.MaterializeResult:
    """Node and edge tables (users, items with text embeddings, categories, brands) from the training window."""
    store = warehouse.store()
    id_maps = store.read(CORE_ID_MAPS)
    embeddings = _optional(store, ITEM_EMBEDDINGS_TABLE, ["item_id", "embedding"])
    with engine.open() as eng:
        prep, _ = _prepare(eng, store, config, cutoffs)
        nodes, edges = seq.build_graph(
            eng,
            prep,
            store.read(RAW_ITEMS),
            id_maps,
            seq.item_embeddings_by_idx(embeddings, id_maps) if embeddings is not None else None,
            seq.GraphConfig(max_session_items=config.max_session_items),
        )
    store.write(TRAINING_GRAPH_NODES, nodes)
    store.write(TRAINING_GRAPH_EDGES, edges)
    warehouse.refresh_catalog()
    known = set(zip(nodes["node_type"].to_pylist(), nodes["node_idx"].to_pylist(), strict=True))
    dangling = sum(
        (s, si) not in known or (d, di) not in known
        for s, si, d, di in zip(
            edges["src_type"].to_pylist(), edges["src_idx"].to_pylist(), edges["dst_type"].to_pylist(), edges["dst_idx"].to_pylist(), strict=True
        )
    )
    counts = pc.value_counts(nodes["node_type"]).to_pylist()
    edge_counts = pc.value_counts(edges["edge_type"]).to_pylist()
    return dg.MaterializeResult(
        metadata={
            "nodes": dg.MetadataValue.json({c["values"]: c["counts"] for c in counts}),
            "edges": dg.MetadataValue.json({c["values"]: c["counts"] for c in edge_counts}),
            "split": dg.MetadataValue.json(prep.split.params() if prep.split else {}),
            "with_item_embeddings": embeddings is not None,
        },
        check_results=[dg.AssetCheckResult(check_name="edges_reference_nodes", passed=dangling == 0, metadata={"dangling_edges": dangling})],
    )


# --- helpers -----------------------------------------------------------------------------------------


def _prepare(
    eng: Any, store: Warehouse, config: SequenceDataConfig, cutoffs: CutoffsResource
) -> tuple[seq.PreparedInputs, dict[str, str]]:
    """Register interactions (+ label weights and semantic IDs when present) and run the k-core."""
    inter = store.files(CORE_INTERACTIONS)
    if not inter:
        raise ValueError("core_interactions is missing: materialize core/interactions first")
    id_maps = store.read(CORE_ID_MAPS)
    sources = {c.view_name: _snapshot_hash(store, c) for c in (RAW_EVENTS, RAW_SLATES, CORE_ID_MAPS, CORE_INTERACTIONS)}
    resolved = cutoffs.resolve(store) if config.split_kind is seq.SplitKind.TEMPORAL else None
    labels = _optional(store, LABELS_TABLE, ["request_id", "user_id", "item_id", "ts", "observed", "ips_weight", "split"])
    weights = None
    if labels is not None:
        weights = (
            seq.label_weights_from_debiased(eng, inter, labels) if resolved is None else label_weights_within_splits(eng, inter, labels, resolved)
        )
        sources["labels"] = _snapshot_hash(store, contracts.contract_for(*LABELS_TABLE))
    semantic = _optional(store, SEMANTIC_IDS_TABLE, ["item_id", "codes"])
    codes = None
    if semantic is not None:
        codes = seq.item_codes_from_semantic_ids(semantic, id_maps)
        sources["semantic_ids"] = _snapshot_hash(store, contracts.contract_for(*SEMANTIC_IDS_TABLE))
    prep = seq.prepare(eng, inter, config.sequence_config(), config.split_config(resolved), weights, codes)
    return prep, sources


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


def shard_root(root: Path) -> Path:
    """Where the sequence shards of a data root live (``current`` and ``versions/`` inside)."""
    return Path(root).joinpath(*SHARDS_DIR)

