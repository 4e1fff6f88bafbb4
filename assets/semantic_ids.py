"""Semantic-ID layer: versioned codebooks and each item's collision-free, invertible, stable ID.

``semantic_ids/codebooks`` trains a codebook version only when none exists or when a run asks for a
full rebuild (``rebuild: true``); otherwise it keeps the stored version untouched, so nightly runs
never retrain. ``semantic_ids/item_semantic_ids`` then encodes the items that have no ID yet with
the latest version, keeps every existing ID, and after a rebuild re-encodes everything under the new
version and appends the old -> new mapping to ``semantic_ids_id_mapping``. It also writes the
inverse lookup table ``semantic_ids_id_lookup``.

A codebook trains only on items available before the training cut-off (``train_end``, DESIGN.md
section 3 rule 1: nothing a model trains on is shaped by later data): items whose ``available_from``
in ``raw_items`` is null or earlier. Later (cold-start) items, and embedded items the catalogue does
not list, are still encoded with it. The cut-off is ``train_end`` of the shared ``cutoffs`` resource
(:class:`assets.resources.CutoffsResource`), the one the labels, enrichment and training-data
layers use, and is recorded in the version's ``config``.

Blocking checks stop a bad table before anything downstream (sequence shards, generative models)
reads it; a table that fails them is not written, so the previous IDs stay in place.
"""

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assets.resources import CutoffsResource, WarehouseResource, shared_fields
from transforms.semantic_ids import (
    Codebook,
    Disambiguation,
    InsufficientTrainingItemsError,
    QuantizerKind,
    SemanticIdConfig,
    append_codebook,
    assign_semantic_ids,
    available_before,
    codes_matrix,
    contract_for_codebook,
    id_lookup,
    id_mapping,
    latest_version,
    load_codebook,
    quantize,
    semantic_id_report,
    train_codebook,
)
from transforms.semantic_ids.assign import SemanticIdAssignment
from warehouse.contracts import (
    ENRICHMENT_ITEM_EMBEDDINGS,
    RAW_ITEMS,
    SEMANTIC_IDS_CODEBOOKS,
    SEMANTIC_IDS_ID_LOOKUP,
    SEMANTIC_IDS_ID_MAPPING,
    SEMANTIC_IDS_ITEM_SEMANTIC_IDS,
)
from warehouse.store import Warehouse

CODEBOOKS_KEY = dg.AssetKey(["semantic_ids", "codebooks"])
ITEM_SEMANTIC_IDS_KEY = dg.AssetKey(["semantic_ids", "item_semantic_ids"])
ITEM_EMBEDDINGS_KEY = dg.AssetKey(["enrichment", "item_embeddings"])
RAW_ITEMS_KEY = dg.AssetKey(["raw", "items"])
RAW_EVENTS_KEY = dg.AssetKey(["raw", "events"])
MIN_UTILIZATION = 0.9  # below this share of live codes at any level, the codebook has collapsed
EXAMPLES = 10


class CodebookConfig(dg.Config):
    """Run configuration of ``semantic_ids/codebooks``.

    ``rebuild`` is the one explicit way to retrain: it writes a new version, and the next
    ``item_semantic_ids`` run re-encodes every item and records the old -> new mapping. The other
    fields are used when a version is trained (the first run or a rebuild) and ignored otherwise.
    The training cut-off is not here: it is ``train_end`` of the shared ``cutoffs`` resource.
    """

    builds: ClassVar[tuple[type, ...]] = (SemanticIdConfig,)
    own_fields: ClassVar[tuple[str, ...]] = ("rebuild",)  # what the run does, not how a version trains
    rebuild: bool = False
    levels: int = SemanticIdConfig.levels
    codes_per_level: int = SemanticIdConfig.codes_per_level
    quantizer: QuantizerKind = SemanticIdConfig.quantizer
    balanced: bool = SemanticIdConfig.balanced
    disambiguation: Disambiguation = SemanticIdConfig.disambiguation
    seed: int = SemanticIdConfig.seed
    train_sample_size: int = SemanticIdConfig.train_sample_size

    def semantic_id_config(self, train_end: str | None = None) -> SemanticIdConfig:
        """The transform config; ``train_end`` is the resolved cut-off (None: no cut-off)."""
        return SemanticIdConfig(**shared_fields(self, SemanticIdConfig), train_end=train_end)


def _item_embeddings(store: Warehouse) -> tuple[pa.Array, np.ndarray, pa.Array, str | None]:
    """Item ids, the ``(n, dim)`` float32 matrix, text hashes and the embedding model."""
    # Read without the contract's fixed dim: a configured model may embed in another dimension.
    table = store.read_as_stored(ENRICHMENT_ITEM_EMBEDDINGS)
    if table is None:
        raise dg.Failure("enrichment_item_embeddings is empty: materialize enrichment/item_embeddings first")
    dim = table.schema.field("embedding").type.list_size
    vectors = table["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    models = pc.unique(table["model"]).to_pylist()
    if len(models) > 1:
        raise dg.Failure(f"item embeddings mix models {models}: one codebook cannot encode several spaces")
    return table["item_id"], vectors, table["text_hash"], models[0] if models else None


@dataclass(frozen=True)
class _TrainingRows:
    """Which embedded items a codebook may train on (rows in item-id order)."""

    train_end: str
    known: np.ndarray  # bool: the catalogue lists the item
    available_from: pa.Array  # per known row; null = available from the start
    unknown_items: int  # embedded items absent from raw_items (not trained on)
    eligible: int  # items available before the cut-off: what the codebook may train on


def _training_rows(store: Warehouse, cutoffs: CutoffsResource, item_ids: pa.Array) -> _TrainingRows:
    """Resolve the cut-off and each item's availability from ``raw_items``."""
    try:
        cutoff = cutoffs.resolve(store).train_end
    except ValueError as err:
        raise dg.Failure(f"semantic_ids/codebooks needs a training cut-off: {err}") from err
    if not store.exists(RAW_ITEMS):
        raise dg.Failure(
            "raw_items is not staged: the codebook trains only on items available before the cut-off, "
            "which needs their available_from; materialize raw/items first"
        )
    items = store.read(RAW_ITEMS).select(["item_id", "available_from"]).combine_chunks()
    if isinstance(item_ids, pa.ChunkedArray):
        item_ids = item_ids.combine_chunks()
    position = pc.index_in(item_ids, value_set=items["item_id"])
    known = pc.is_valid(position).to_numpy(zero_copy_only=False)
    available = items["available_from"].take(position.filter(pc.is_valid(position)))
    return _TrainingRows(
        train_end=cutoff.isoformat(),
        known=known,
        available_from=available,
        unknown_items=int((~known).sum()),
        eligible=int(available_before(available, cutoff).sum()),
    )


def _categories(store: Warehouse, item_ids: list[str]) -> list[str | None] | None:
    """Each item's top category (first of ``categories``) for purity metadata, when the catalog is staged."""
    if not store.exists(RAW_ITEMS):
        return None
    items = store.read(RAW_ITEMS).select(["item_id", "categories"]).to_pylist()
    top = {r["item_id"]: (r["categories"] or [None])[0] for r in items}
    return [top.get(i) for i in item_ids]


@dg.asset(
    key=CODEBOOKS_KEY,
    deps=[ITEM_EMBEDDINGS_KEY, RAW_ITEMS_KEY, RAW_EVENTS_KEY],
    group_name="semantic_ids",
    description=SEMANTIC_IDS_CODEBOOKS.description,
    kinds={"numpy", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec("versions_immutable", asset=CODEBOOKS_KEY, blocking=True, description="Every stored version is byte-for-byte what it was."),
        dg.AssetCheckSpec("codes_alive", asset=CODEBOOKS_KEY, description=f"At every level at least {MIN_UTILIZATION:.0%} of the codes encode some item."),
    ],
)
def codebooks(
    context: dg.AssetExecutionContext, config: CodebookConfig, warehouse: WarehouseResource, cutoffs: CutoffsResource
) -> dg.MaterializeResult:
    """Train a codebook version on the first run or on an explicit rebuild; otherwise keep the stored one.

    Training uses only the items available before the cut-off; all items are encoded later.
    """
    store = warehouse.store()
    stored = store.read(SEMANTIC_IDS_CODEBOOKS)
    current = latest_version(stored)
    if current is not None and not config.rebuild:
        codebook = load_codebook(stored)
        # The default cut-off moves with the data; only an explicitly configured one is compared.
        wanted = config.semantic_id_config(cutoffs.resolve(store).train_end.isoformat() if cutoffs.explicit else None)
        stored_config = codebook.config if cutoffs.explicit else dataclasses.replace(codebook.config, train_end=None)
        if stored_config != wanted:
            context.log.warning(
                f"run config differs from stored codebook v{current}'s; it is kept (set rebuild: true to retrain)"
            )
        return dg.MaterializeResult(
            metadata={"action": "kept", "version": current, "versions": stored.num_rows},
            check_results=[
                dg.AssetCheckResult(check_name="versions_immutable", passed=True, metadata={"rewritten": False}),
                dg.AssetCheckResult(check_name="codes_alive", passed=True, metadata={"trained": False}),
            ],
        )
    item_ids, vectors, _, model = _item_embeddings(store)
    order = pc.sort_indices(item_ids).to_numpy()  # train in item-id order: independent of storage order
    rows = _training_rows(store, cutoffs, item_ids.take(pa.array(order)))
    sid_config = config.semantic_id_config(rows.train_end)
    try:
        codebook = train_codebook(
            vectors[order][rows.known], sid_config, version=(current or 0) + 1, parent_version=current,
            embedding_model=model, available_from=rows.available_from,
        )
    except InsufficientTrainingItemsError as err:
        raise dg.Failure(str(err)) from err
    store.write(SEMANTIC_IDS_CODEBOOKS, append_codebook(stored, codebook))
    warehouse.refresh_catalog()
    # Read back: the earlier versions must have survived the rewrite exactly, and the new one must load.
    reread = store.read(SEMANTIC_IDS_CODEBOOKS)
    unchanged = reread.slice(0, stored.num_rows).equals(stored) and load_codebook(reread).version == codebook.version
    quantized = quantize(codebook, vectors)
    report = semantic_id_report(
        quantized.codes, codebook.levels, codebook.codes_per_level,
        sq_error=quantized.sq_error, sq_norm=np.einsum("ij,ij->i", vectors, vectors),
    )
    return dg.MaterializeResult(
        metadata={
            "action": "rebuilt" if current is not None else "trained",
            "version": codebook.version,
            "parent_version": current,
            "quantizer": str(sid_config.quantizer),
            "embedding_model": model,
            "train_end": sid_config.train_end,
            "training_items": rows.eligible,  # available before the cut-off
            "trained_items": codebook.trained_items,  # of those, the training sample
            "items_after_cutoff": len(vectors) - rows.unknown_items - rows.eligible,
            "items_not_in_catalogue": rows.unknown_items,
            "items": len(vectors),
            **report.to_metadata(),
        },
        check_results=[
            dg.AssetCheckResult(check_name="versions_immutable", passed=unchanged, metadata={"earlier_versions": stored.num_rows}),
            dg.AssetCheckResult(
                check_name="codes_alive",
                passed=min(report.utilization) >= MIN_UTILIZATION,
                metadata={"utilization": list(report.utilization)},
            ),
        ],
    )


def _stored_ids(store: Warehouse) -> pa.Table | None:
    """The stored item_semantic_ids table in its own layout (its ID length may differ from the default)."""
    files = store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)
    return pq.read_table(files[0]) if files else None


def _changed_ids(before: pa.Table, after: pa.Table) -> tuple[int, list[str]]:
    """Existing items whose ID is missing from or different in ``after``."""
    now = dict(zip(after["item_id"].to_pylist(), after["semantic_id"].to_pylist(), strict=True))
    changed = [i for i, s in zip(before["item_id"].to_pylist(), before["semantic_id"].to_pylist(), strict=True) if now.get(i) != s]
    return len(changed), changed[:EXAMPLES]


def _duplicate_ids(table: pa.Table) -> tuple[int, list[str]]:
    counts = pc.value_counts(table["semantic_id"])
    repeated = [c["values"] for c in counts.to_pylist() if c["counts"] > 1]
    return table.num_rows - len(counts), repeated[:EXAMPLES]


@dataclass(frozen=True)
class _Outcome:
    assignment: SemanticIdAssignment
    action: str  # full_build | incremental | rebuild
    mapping: pa.Table | None
    stale_ids: int  # items that kept an ID although their embedded text changed since


def _assign(store: Warehouse, codebook: Codebook, previous: pa.Table | None) -> _Outcome:
    item_ids, vectors, hashes, model = _item_embeddings(store)
    if codebook.embedding_model and model and model != codebook.embedding_model:
        raise dg.Failure(
            f"item embeddings now come from {model!r} but codebook v{codebook.version} encodes {codebook.embedding_model!r}: "
            "materialize semantic_ids/codebooks with rebuild: true"
        )
    previous_version = None if previous is None or previous.num_rows == 0 else int(pc.max(previous["codebook_version"]).as_py())
    if previous_version is not None and previous_version > codebook.version:
        raise dg.Failure(f"stored IDs are from codebook v{previous_version}, newer than the latest stored codebook v{codebook.version}")
    if previous is not None and previous_version == codebook.version:
        existing = previous.cast(contract_for_codebook(codebook).schema)
        assignment = assign_semantic_ids(codebook, item_ids, vectors, existing=existing, text_hashes=hashes)
        now = dict(zip(item_ids.to_pylist(), hashes.to_pylist(), strict=True))
        stale = sum(
            1 for i, h in zip(existing["item_id"].to_pylist(), existing["text_hash"].to_pylist(), strict=True)
            if h is not None and now.get(i, h) != h
        )
        return _Outcome(assignment, "incremental", None, stale)
    assignment = assign_semantic_ids(codebook, item_ids, vectors, text_hashes=hashes)
    if previous is None or previous_version is None:
        return _Outcome(assignment, "full_build", None, 0)
    return _Outcome(assignment, "rebuild", id_mapping(previous, assignment.table, previous_version, codebook.version), 0)


@dg.asset(
    key=ITEM_SEMANTIC_IDS_KEY,
    deps=[CODEBOOKS_KEY, ITEM_EMBEDDINGS_KEY, RAW_ITEMS_KEY],
    group_name="semantic_ids",
    description=SEMANTIC_IDS_ITEM_SEMANTIC_IDS.description,
    kinds={"numpy", "parquet", "duckdb"},
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec("full_ids_unique", asset=ITEM_SEMANTIC_IDS_KEY, blocking=True, description="No two items share a full semantic ID."),
        dg.AssetCheckSpec(
            "existing_ids_unchanged", asset=ITEM_SEMANTIC_IDS_KEY, blocking=True,
            description="Within a codebook version, every item that had an ID keeps exactly that ID.",
        ),
    ],
)
def item_semantic_ids(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Give new items IDs with the latest codebook; keep existing IDs; remap everything after a rebuild."""
    store = warehouse.store()
    codebook = load_codebook(store.read(SEMANTIC_IDS_CODEBOOKS))
    previous = _stored_ids(store)
    outcome = _assign(store, codebook, previous)
    assignment, action, mapping = outcome.assignment, outcome.action, outcome.mapping
    table = assignment.table
    duplicates, duplicate_examples = _duplicate_ids(table)
    if action == "incremental" and previous is not None:
        changed, changed_examples = _changed_ids(previous, table)
    else:
        changed, changed_examples = 0, []
    passed = duplicates == 0 and changed == 0
    if passed:
        store.write(contract_for_codebook(codebook), table)
        store.write(SEMANTIC_IDS_ID_LOOKUP, id_lookup(table))
        if mapping is not None:
            stored_mapping = store.read(SEMANTIC_IDS_ID_MAPPING)
            store.write(SEMANTIC_IDS_ID_MAPPING, pa.concat_tables([stored_mapping, mapping]))
        warehouse.refresh_catalog()
    else:
        context.log.error("semantic IDs failed a blocking check; the stored IDs were left as they were")
    codes = codes_matrix(table["codes"], codebook.id_length)
    report = semantic_id_report(
        codes, codebook.levels, codebook.codes_per_level, categories=_categories(store, table["item_id"].to_pylist())
    )
    new_error = assignment.quantized.sq_error
    return dg.MaterializeResult(
        metadata={
            "action": action,
            "written": passed,
            "codebook_version": codebook.version,
            "new_items": assignment.new_items,
            "kept_items": assignment.kept_items,
            "collided_new_items": assignment.collided,
            "reassigned_new_items": assignment.reassigned,
            "disambiguated_share": round(assignment.disambiguated_share, 6),
            "mapping_rows": mapping.num_rows if mapping is not None else 0,
            "stale_ids": outcome.stale_ids,
            "new_items_reconstruction_mse": round(float(new_error.mean()), 6) if len(new_error) else 0.0,
            "dagster/row_count": table.num_rows,
            **report.to_metadata(),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="full_ids_unique", passed=duplicates == 0,
                metadata={"duplicate_ids": duplicates, "examples": duplicate_examples},
            ),
            dg.AssetCheckResult(
                check_name="existing_ids_unchanged", passed=changed == 0,
                metadata={"action": action, "changed_ids": changed, "examples": changed_examples},
            ),
        ],
    )


semantic_ids_job = dg.define_asset_job("semantic_ids_job", selection=dg.AssetSelection.groups("semantic_ids"))

JOBS = [semantic_ids_job]
