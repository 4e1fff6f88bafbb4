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
import datetime as dt
from typing import ClassVar

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from assets.core import ID_MAPS_KEY
from assets.resources import CutoffsResource, WarehouseResource, shared_fields
from transforms.semantic_ids import (
    Disambiguation,
    InsufficientTrainingItemsError,
    QuantizerKind,
    SemanticIdConfig,
    append_codebook,
    codes_for_catalog,
    contract_for_codebook,
    id_lookup,
    latest_version,
    load_codebook,
)
from transforms.semantic_ids.inputs import (
    EmbeddingSource,
    ItemEmbeddings,
    SemanticIdInputsError,
    item_embeddings,
    top_categories,
    with_items_without_text,
    with_logged_items,
)
from transforms.semantic_ids.nightly import (
    config_differs,
    cutoff_conflict,
    train_next_version,
    update_semantic_ids,
)
from warehouse.contracts import (
    CORE_ID_MAPS,
    ENRICHMENT_ITEM_EMBEDDINGS,
    RAW_EVENTS,
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
    own_fields: ClassVar[tuple[str, ...]] = ("rebuild", "fit_to_catalog")  # not fields of SemanticIdConfig
    rebuild: bool = False
    # A catalog with fewer training items than codes_per_level (80 in the Open Bandit sample) trains with
    # fewer codes per level (codes_for_catalog) and says so, instead of failing; False: fail.
    fit_to_catalog: bool = True
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


def _read_item_embeddings(store: Warehouse, cutoff: dt.datetime, context: dg.AssetExecutionContext) -> ItemEmbeddings:
    """Text embeddings of the catalog, plus every item of the event logs without one (co-occurrence in
    the training window before ``cutoff``, else an id-seeded vector), each marked by its source."""
    # Read without the contract's fixed dim: a configured model may embed in another dimension.
    table = store.read_as_stored(ENRICHMENT_ITEM_EMBEDDINGS)
    events = store.read_as_stored(RAW_EVENTS, columns=["user_id", "item_id", "ts"])
    if table is None and events is None:
        raise dg.Failure("enrichment_item_embeddings and raw_events are empty: materialize enrichment/item_embeddings first")
    try:
        embeddings = with_items_without_text(item_embeddings(table) if table is not None else None, events, cutoff)
    except SemanticIdInputsError as err:
        raise dg.Failure(str(err)) from err
    if embeddings.without_content_share > 0:
        context.log.warning(
            f"{embeddings.without_content_share:.1%} of items have no catalog text; their semantic IDs come from "
            f"other sources {embeddings.source_counts()}"
        )
    return embeddings


def _kept(context: dg.AssetExecutionContext, config: CodebookConfig, cutoffs: CutoffsResource, store: Warehouse, stored: pa.Table) -> dg.MaterializeResult:
    """The stored version stays: a run config that differs from it is only reported; a later cut-off is refused."""
    codebook = load_codebook(stored)
    conflict = cutoff_conflict(codebook, cutoffs.resolve(store).train_end)
    if conflict:
        raise dg.Failure(conflict)
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
    deps=[ITEM_EMBEDDINGS_KEY, RAW_ITEMS_KEY, RAW_EVENTS_KEY, ID_MAPS_KEY],
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
    try:
        cutoff = cutoffs.resolve(store).train_end
    except ValueError as err:
        raise dg.Failure(f"semantic_ids/codebooks needs a training cut-off: {err}") from err
    embeddings = _read_item_embeddings(store, cutoff, context)
    items = _availability(store, embeddings)
    if embeddings.source_counts().get(EmbeddingSource.TEXT.value, 0) and items.num_rows == 0:
        raise dg.Failure(
            "no item's arrival is known: the codebook trains only on items available before the cut-off, which needs "
            "raw_items' available_from or the items' first review or event; materialize raw/items, raw/reviews or raw/events first"
        )
    # Without any text (an events-only dataset) the co-occurrence items train instead.
    settings = config.semantic_id_config(cutoff.isoformat())
    fitted_from: dict[str, int] = {}
    try:
        trained = train_next_version(embeddings, items, settings, cutoff, current)
    except InsufficientTrainingItemsError as err:
        if not config.fit_to_catalog or err.eligible < 2:
            raise dg.Failure(str(err)) from err
        fitted = dataclasses.replace(settings, codes_per_level=codes_for_catalog(err.eligible, settings.codes_per_level))
        context.log.warning(
            f"only {err.eligible} items before the cut-off: training {fitted.codes_per_level} codes per level instead of "
            f"{settings.codes_per_level} (fit_to_catalog; set it to false to fail instead)"
        )
        trained = train_next_version(embeddings, items, fitted, cutoff, current)
        fitted_from = {"codes_per_level": fitted.codes_per_level, "codes_per_level_requested": settings.codes_per_level}
    store.write(SEMANTIC_IDS_CODEBOOKS, append_codebook(stored, trained.codebook))
    warehouse.refresh_catalog()
    # Read back: the earlier versions must have survived the rewrite exactly, and the new one must load.
    reread = store.read(SEMANTIC_IDS_CODEBOOKS)
    unchanged = reread.slice(0, stored.num_rows).equals(stored) and load_codebook(reread).version == trained.codebook.version
    utilization = list(trained.report.utilization)
    return dg.MaterializeResult(
        metadata={**trained.to_metadata(), **_source_metadata(embeddings), **fitted_from},
        check_results=[
            dg.AssetCheckResult(check_name="versions_immutable", passed=unchanged, metadata={"earlier_versions": stored.num_rows}),
            dg.AssetCheckResult(check_name="codes_alive", passed=min(utilization) >= MIN_UTILIZATION, metadata={"utilization": utilization}),
        ],
    )


def _availability(store: Warehouse, embeddings: ItemEmbeddings) -> pa.Table:
    """Each item's ``available_from``: the catalogue's, else (an item described from its reviews alone) its
    ``first_seen`` in the id map."""
    items = store.read(RAW_ITEMS) if store.exists(RAW_ITEMS) else None
    return with_logged_items(items, store.read_as_stored(CORE_ID_MAPS), embeddings.text_item_ids)


def _source_metadata(embeddings: ItemEmbeddings) -> dict[str, object]:
    return {
        "items_without_content_share": round(embeddings.without_content_share, 6),
        "items_by_embedding_source": embeddings.source_counts(),
    }


def _stored_ids(store: Warehouse) -> pa.Table | None:
    """The stored item_semantic_ids table in its own layout (its ID length may differ from the default)."""
    files = store.files(SEMANTIC_IDS_ITEM_SEMANTIC_IDS)
    return pq.read_table(files[0]) if files else None


@dg.asset(
    key=ITEM_SEMANTIC_IDS_KEY,
    deps=[CODEBOOKS_KEY, ITEM_EMBEDDINGS_KEY, RAW_ITEMS_KEY, RAW_EVENTS_KEY],
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
def item_semantic_ids(context: dg.AssetExecutionContext, warehouse: WarehouseResource, cutoffs: CutoffsResource) -> dg.MaterializeResult:
    """Give new items IDs with the latest codebook; keep existing IDs; remap everything after a rebuild.

    Items without catalog text take their co-occurrence embedding as of the codebook's own cut-off
    (the space it was trained in), so nightly runs encode them in the same basis.
    """
    store = warehouse.store()
    codebook = load_codebook(store.read(SEMANTIC_IDS_CODEBOOKS))
    previous = _stored_ids(store)
    embeddings = _read_item_embeddings(store, codebook.config.train_end_time or cutoffs.resolve(store).train_end, context)
    try:
        update = update_semantic_ids(codebook, embeddings, previous)
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
        metadata={**update.to_metadata(report), **_source_metadata(embeddings)},
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
