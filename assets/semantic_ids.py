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

from typing import ClassVar

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from assets.resources import CutoffsResource, WarehouseResource, shared_fields
from transforms.semantic_ids import (
    Disambiguation,
    InsufficientTrainingItemsError,
    QuantizerKind,
    SemanticIdConfig,
    append_codebook,
    contract_for_codebook,
    id_lookup,
    latest_version,
    load_codebook,
)
from transforms.semantic_ids.inputs import (
    ItemEmbeddings,
    SemanticIdInputsError,
    item_embeddings,
    top_categories,
)
from transforms.semantic_ids.nightly import config_differs, train_next_version, update_semantic_ids
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


def _read_item_embeddings(store: Warehouse) -> ItemEmbeddings:
    # Read without the contract's fixed dim: a configured model may embed in another dimension.
    table = store.read_as_stored(ENRICHMENT_ITEM_EMBEDDINGS)
    if table is None:
        raise dg.Failure("enrichment_item_embeddings is empty: materialize enrichment/item_embeddings first")
    try:
        return item_embeddings(table)
    except SemanticIdInputsError as err:
        raise dg.Failure(str(err)) from err


def _kept(context: dg.AssetExecutionContext, config: CodebookConfig, cutoffs: CutoffsResource, store: Warehouse, stored: pa.Table) -> dg.MaterializeResult:
    """The stored version stays: a run config that differs from it is only reported."""
    codebook = load_codebook(stored)
    # The default cut-off moves with the data; only an explicitly configured one is compared.
    wanted = config.semantic_id_config(cutoffs.resolve(store).train_end.isoformat() if cutoffs.explicit else None)
    if config_differs(codebook, wanted):
        context.log.warning(
            f"run config differs from stored codebook v{codebook.version}'s; it is kept (set rebuild: true to retrain)"
        )
    return dg.MaterializeResult(
        metadata={"action": "kept", "version": codebook.version, "versions": stored.num_rows},
        check_results=[
            dg.AssetCheckResult(check_name="versions_immutable", passed=True, metadata={"rewritten": False}),
            dg.AssetCheckResult(check_name="codes_alive", passed=True, metadata={"trained": False}),
        ],
    )


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
        return _kept(context, config, cutoffs, store, stored)
    embeddings = _read_item_embeddings(store)
    try:
        cutoff = cutoffs.resolve(store).train_end
    except ValueError as err:
        raise dg.Failure(f"semantic_ids/codebooks needs a training cut-off: {err}") from err
    if not store.exists(RAW_ITEMS):
        raise dg.Failure(
            "raw_items is not staged: the codebook trains only on items available before the cut-off, "
            "which needs their available_from; materialize raw/items first"
        )
    try:
        trained = train_next_version(embeddings, store.read(RAW_ITEMS), config.semantic_id_config(cutoff.isoformat()), cutoff, current)
    except InsufficientTrainingItemsError as err:
        raise dg.Failure(str(err)) from err
    store.write(SEMANTIC_IDS_CODEBOOKS, append_codebook(stored, trained.codebook))
    warehouse.refresh_catalog()
    # Read back: the earlier versions must have survived the rewrite exactly, and the new one must load.
    reread = store.read(SEMANTIC_IDS_CODEBOOKS)
    unchanged = reread.slice(0, stored.num_rows).equals(stored) and load_codebook(reread).version == trained.codebook.version
    utilization = list(trained.report.utilization)
    return dg.MaterializeResult(
        metadata=trained.to_metadata(),
        check_results=[
            dg.AssetCheckResult(check_name="versions_immutable", passed=unchanged, metadata={"earlier_versions": stored.num_rows}),
            dg.AssetCheckResult(check_name="codes_alive", passed=min(utilization) >= MIN_UTILIZATION, metadata={"utilization": utilization}),
        ],
    )


def _stored_ids(store: Warehouse) -> pa.Table | None:
    """The stored item_semantic_ids table in its own layout (its ID length may differ from the default)."""
    files = store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)
    return pq.read_table(files[0]) if files else None


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
    try:
        update = update_semantic_ids(codebook, _read_item_embeddings(store), previous)
    except SemanticIdInputsError as err:
        raise dg.Failure(str(err)) from err
    table, mapping = update.assignment.table, update.mapping
    if update.passed:
        store.write(contract_for_codebook(codebook), table)
        store.write(SEMANTIC_IDS_ID_LOOKUP, id_lookup(table))
        if mapping is not None:
            store.write(SEMANTIC_IDS_ID_MAPPING, pa.concat_tables([store.read(SEMANTIC_IDS_ID_MAPPING), mapping]))
        warehouse.refresh_catalog()
    else:
        context.log.error("semantic IDs failed a blocking check; the stored IDs were left as they were")
    items = store.read(RAW_ITEMS) if store.exists(RAW_ITEMS) else None
    report = update.report(top_categories(items, table["item_id"].to_pylist()))
    return dg.MaterializeResult(
        metadata=update.to_metadata(report),
        check_results=[
            dg.AssetCheckResult(
                check_name="full_ids_unique", passed=update.duplicates == 0,
                metadata={"duplicate_ids": update.duplicates, "examples": update.duplicate_examples},
            ),
            dg.AssetCheckResult(
                check_name="existing_ids_unchanged", passed=update.changed == 0,
                metadata={"action": update.action, "changed_ids": update.changed, "examples": update.changed_examples},
            ),
        ],
    )


semantic_ids_job = dg.define_asset_job("semantic_ids_job", selection=dg.AssetSelection.groups("semantic_ids"))

JOBS = [semantic_ids_job]
