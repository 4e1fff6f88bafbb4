"""Enrichment layer: item descriptions, user profiles (LLM or extractive) and their text embeddings.

Each asset reads the raw tables, builds grounded inputs (everything strictly before the training
cut-off ``train_end`` of the shared ``cutoffs`` resource, :class:`assets.resources.CutoffsResource`,
the same one the labels, semantic-ID and training-data layers use), and launches the Beam pipeline, which generates or embeds only what the stored table does
not already answer (same input hash, prompt version and model). Failed generations go to
``enrichment/<entity>_failures``; the run fails only when their share passes the configured limit,
after everything that succeeded was written.
"""

import datetime as dt
import json
from typing import Any, ClassVar

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from assets.resources_enrichment import EmbedderResource, ExtractiveGeneratorResource, GeneratorResource
from assets.training_data_config import event_types_of
from pipelines.enrichment import EmbeddingRun, GenerationRun, run_embedding, run_generation
from transforms.cutoffs import Cutoffs
from transforms.enrichment.inputs import (
    ItemScope,
    build_item_tasks,
    build_user_tasks,
    items_in_scope,
    without_held_out,
)
from transforms.enrichment.records import FAILURE_CONTRACTS, OUTPUT_CONTRACTS, texts_to_embed
from transforms.enrichment.reports import Report, embedding_report, generation_reports, partitions_to_read
from transforms.enrichment.types import TEXT_FIELD, EntityKind, GenerationTask
from transforms.sequences import SequenceConfig, SplitKind
from transforms.sequences.window import HeldOutSettings, held_out_steps
from warehouse.atomic import write_json
from warehouse.contracts import (
    CORE_INTERACTIONS,
    RAW_EVENTS,
    RAW_IMPRESSIONS,
    RAW_ITEMS,
    RAW_REVIEWS,
    TableContract,
    embedding_contract,
)
from warehouse.store import Warehouse

ITEM_DESCRIPTIONS_KEY = dg.AssetKey(["enrichment", "item_descriptions"])
ITEM_DESCRIPTION_FAILURES_KEY = dg.AssetKey(["enrichment", "item_description_failures"])
USER_PROFILES_KEY = dg.AssetKey(["enrichment", "user_profiles"])
USER_PROFILE_FAILURES_KEY = dg.AssetKey(["enrichment", "user_profile_failures"])
ITEM_EMBEDDINGS_KEY = dg.AssetKey(["enrichment", "item_embeddings"])
USER_EMBEDDINGS_KEY = dg.AssetKey(["enrichment", "user_embeddings"])
INTERACTIONS_KEY = dg.AssetKey(["core", "interactions"])

WORK_DIR = (".work", "enrichment")  # checkpoints of an unfinished run, hidden from the catalog


def _read_until(store: Warehouse, contract: TableContract, cutoff: dt.datetime) -> pa.Table:
    """The daily partitions that may hold rows before the cut-off, late ones included (filtered later)."""
    return store.read(contract, partitions_to_read(store.partitions(contract), cutoff))


def _now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _results(key: dg.AssetKey, report: Report) -> dg.MaterializeResult:
    metadata = {k: dg.MetadataValue.md(v) if k in report.markdown else v for k, v in report.metadata.items()}
    checks = [dg.AssetCheckResult(asset_key=key, check_name=n, passed=p, metadata=m) for n, (p, m) in report.checks.items()]
    return dg.MaterializeResult(asset_key=key, metadata=metadata, check_results=checks)


def _generate(
    entity: EntityKind,
    tasks: list[GenerationTask],
    warehouse: WarehouseResource,
    generator: GeneratorResource,
    cutoffs: Cutoffs,
    keys: tuple[dg.AssetKey, dg.AssetKey],
    held_out: HeldOutSettings,
) -> list[dg.MaterializeResult]:
    """Run the generation pipeline for ``tasks``, record ``held_out`` beside the text, and report both tables."""
    store = warehouse.store()
    out_contract, fail_contract = OUTPUT_CONTRACTS[entity], FAILURE_CONTRACTS[entity]

    def sink(outputs: pa.Table, failures: pa.Table) -> None:
        written = store.write(out_contract, outputs)
        write_json(store.table_dir(out_contract) / HELD_OUT_FILE, {**held_out.to_json(), "content_hash": written.content_hash})
        store.write(fail_contract, failures)
        warehouse.refresh_catalog()

    config = generator.config()
    run = GenerationRun(entity, config, warehouse.root.joinpath(*WORK_DIR, out_contract.name), _now(),
                        generator.max_failure_share, generator.beam())
    result = run_generation(tasks, lambda: store.read(out_contract), run, sink)  # read once the work folder is locked
    run_meta = {**result.stats.as_metadata(), "cutoff": cutoffs.train_end.isoformat(), **cutoffs.as_metadata(),
                "generator_kind": config.kind.value, "model": config.stored_model, "held_out": held_out.to_json()}
    outputs, failures = generation_reports(
        entity, result.outputs, result.failures, tasks, run_meta, generator.max_failure_share, cutoffs.train_end
    )
    return [_results(keys[0], outputs), _results(keys[1], failures)]


def _spec(key: dg.AssetKey, contract: TableContract, deps: list[dg.AssetKey]) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        deps=deps,
        group_name="enrichment",
        description=contract.description,
        kinds={"beam", "parquet"},
        automation_condition=dg.AutomationCondition.eager(),
    )


def _generation_specs(entity: EntityKind, keys: tuple[dg.AssetKey, dg.AssetKey], deps: list[dg.AssetKey]) -> list[dg.AssetSpec]:
    """The output table and its failures table of one generation multi-asset, both on the same raw tables."""
    key, failures_key = keys
    return [_spec(key, OUTPUT_CONTRACTS[entity], deps), _spec(failures_key, FAILURE_CONTRACTS[entity], deps)]


def _generation_checks(key: dg.AssetKey, failures_key: dg.AssetKey, user: bool) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec("failures_explained", asset=failures_key, description="Every failure carries its error, and no failed entity also has an output row."),
        dg.AssetCheckSpec("provenance_complete", asset=key, blocking=True, description="Every row names its generator, model, prompt version and input hash."),
        dg.AssetCheckSpec("failure_share_within_limit", asset=key, description="Failed / attempted is within the generator's max_failure_share."),
    ]
    if user:
        specs.append(
            dg.AssetCheckSpec("profiles_use_training_window", asset=key, blocking=True, description="Every profile was built from exactly the user's history before this run's cut-off.")
        )
    return specs


class HeldOutConfig(dg.Config):
    """``split_kind``: the split the run builds (``recforge build --split`` sets it, as on the training-data
    assets). Under ``leave_one_out`` each user's validation and test interactions are held out whatever their
    date, so the text leaves them out too (:func:`transforms.enrichment.inputs.without_held_out`).

    ``k_core`` and ``event_types`` are the training data's settings that decide which steps the split holds
    out (:func:`transforms.sequences.window.held_out_steps`); ``recforge build`` copies them here from the
    training-data assets' config, and a run launched elsewhere must set them alike."""

    builds: ClassVar[tuple[type, ...]] = ()
    own_fields: ClassVar[tuple[str, ...]] = ("split_kind", "k_core", "event_types")

    split_kind: SplitKind = SplitKind.TEMPORAL
    k_core: int | None = SequenceConfig.k_core
    event_types: list[str] | None = None

    def sequence_config(self) -> SequenceConfig:
        return SequenceConfig(k_core=self.k_core, event_types=event_types_of(self.event_types))

    def settings(self) -> HeldOutSettings:
        return HeldOutSettings.of(self.split_kind, self.sequence_config())


class ItemDescriptionsConfig(HeldOutConfig):
    """Which catalog items to describe (:class:`transforms.enrichment.inputs.ItemScope`): ``catalog`` (every
    item, the default) or ``logged`` (only items in the events, impressions or reviews)."""

    own_fields: ClassVar[tuple[str, ...]] = ("items", "split_kind", "k_core", "event_types")

    items: ItemScope = ItemScope.CATALOG


HELD_OUT_FILE = "_held_out.json"  # beside a generated text table: the held-out settings its text left out, and its hash


def text_leaks(store: Warehouse, window: HeldOutSettings) -> dict[str, str]:
    """Per generated text table (item descriptions, user profiles) that exists, why its text may keep interactions
    that ``window``'s split holds out: it was generated for other held-out settings, or its version records none
    (written before the settings were recorded, or by something other than its asset). Empty: no leak."""
    leaks: dict[str, str] = {}
    if window.split_kind is not SplitKind.LEAVE_ONE_OUT:  # a global cut-off, which the text checks itself
        return leaks
    for contract in OUTPUT_CONTRACTS.values():
        if not store.exists(contract):
            continue
        path = store.table_dir(contract) / HELD_OUT_FILE
        record = json.loads(path.read_text()) if path.exists() else None
        if record is None or record.get("content_hash") != store.stored_stats(contract)[1]:  # as _window.json is read
            leaks[contract.name] = (f"{contract.name} records no held-out settings for its current version: materialize it again "
                                    f"with this window's settings, {window.to_json()}")
        elif (why := HeldOutSettings.from_json(record).leak_against(window)) is not None:
            leaks[contract.name] = f"{contract.name}: {why}; materialize it again with this window's settings"
    return leaks


def _held_out(store: Warehouse, engine: EngineResource, config: HeldOutConfig) -> pa.Table | None:
    """The steps a leave-one-out split holds out (None under the other splits, whose cut-off is global)."""
    if SplitKind.parse(config.split_kind) is not SplitKind.LEAVE_ONE_OUT:
        return None
    interactions = store.files(CORE_INTERACTIONS)
    if not interactions:
        raise dg.Failure("a leave-one-out split holds out each user's last interactions: materialize core/interactions first")
    with engine.open() as eng:
        return held_out_steps(eng, interactions, config.sequence_config())


def _before(store: Warehouse, contract: TableContract, cutoff: dt.datetime, held_out: pa.Table | None) -> pa.Table:
    """``contract``'s rows before ``cutoff``, less the held-out interactions of a leave-one-out split."""
    table = _read_until(store, contract, cutoff)
    return table if held_out is None else without_held_out(table, held_out)


# A catalog this many times larger than the logged items (and at least this large) draws a warning.
_LARGE_CATALOG_RATIO, _LARGE_CATALOG_ITEMS = 10, 50_000


def _logged_items(store: Warehouse) -> pa.Array:
    """The distinct item ids of the raw logs (events, impressions, reviews), read column-wise."""
    ids = [pq.read_table(f, columns=["item_id"])["item_id"] for c in (RAW_EVENTS, RAW_IMPRESSIONS, RAW_REVIEWS) for f in store.files(c)]
    return pc.unique(pa.chunked_array(ids, pa.string()).combine_chunks()).drop_null() if ids else pa.array([], pa.string())


@dg.multi_asset(
    specs=_generation_specs(
        EntityKind.ITEM, (ITEM_DESCRIPTIONS_KEY, ITEM_DESCRIPTION_FAILURES_KEY),
        [*(dg.AssetKey(["raw", t]) for t in ("items", "reviews")), INTERACTIONS_KEY],
    ),
    check_specs=_generation_checks(ITEM_DESCRIPTIONS_KEY, ITEM_DESCRIPTION_FAILURES_KEY, user=False),
    name="enrichment_item_descriptions",
)
def item_descriptions(
    context: dg.AssetExecutionContext,
    config: ItemDescriptionsConfig,
    warehouse: WarehouseResource,
    engine: EngineResource,
    cutoffs: CutoffsResource,
    enrichment_generator: GeneratorResource,
) -> Any:
    """Describe every catalog item (or, with ``items: logged``, those in the logs) from its catalog fields
    and its reviews before the cut-off, and every item reviewed before the cut-off that the catalog lacks
    from those reviews alone."""
    store = warehouse.store()
    resolved = cutoffs.resolve(store)
    catalog = store.read(RAW_ITEMS)
    logged = _logged_items(store)
    items = items_in_scope(catalog, config.items, logged)
    if config.items is ItemScope.CATALOG and catalog.num_rows >= max(_LARGE_CATALOG_ITEMS, _LARGE_CATALOG_RATIO * len(logged)):
        context.log.warning(
            f"the catalog holds {catalog.num_rows:,} items, the logs {len(logged):,}: describing and embedding them all "
            "takes long on a CPU; set items: logged on enrichment_item_descriptions to describe only the logged ones"
        )
    tasks = build_item_tasks(items, _before(store, RAW_REVIEWS, resolved.train_end, _held_out(store, engine, config)), resolved.train_end)
    context.log.info(
        f"describing {items.num_rows:,} of {catalog.num_rows:,} catalog items (items: {config.items.value}) and "
        f"{len(tasks) - items.num_rows:,} items known only from their reviews"
    )
    yield from _generate(EntityKind.ITEM, tasks, warehouse, enrichment_generator, resolved, (ITEM_DESCRIPTIONS_KEY, ITEM_DESCRIPTION_FAILURES_KEY),
                         config.settings())


@dg.multi_asset(
    specs=_generation_specs(
        EntityKind.USER, (USER_PROFILES_KEY, USER_PROFILE_FAILURES_KEY),
        [*(dg.AssetKey(["raw", t]) for t in ("events", "reviews", "items")), INTERACTIONS_KEY],
    ),
    check_specs=_generation_checks(USER_PROFILES_KEY, USER_PROFILE_FAILURES_KEY, user=True),
    name="enrichment_user_profiles",
)
def user_profiles(
    context: dg.AssetExecutionContext,
    config: HeldOutConfig,
    warehouse: WarehouseResource,
    engine: EngineResource,
    cutoffs: CutoffsResource,
    enrichment_generator: GeneratorResource,
) -> Any:
    """Profile every user from their interactions and reviews strictly before the cut-off (and, under
    leave-one-out, before their held-out ones)."""
    store = warehouse.store()
    resolved = cutoffs.resolve(store)
    cutoff = resolved.train_end
    held_out = _held_out(store, engine, config)
    tasks = build_user_tasks(
        _before(store, RAW_EVENTS, cutoff, held_out), _before(store, RAW_REVIEWS, cutoff, held_out), store.read(RAW_ITEMS), cutoff
    )
    yield from _generate(EntityKind.USER, tasks, warehouse, enrichment_generator, resolved, (USER_PROFILES_KEY, USER_PROFILE_FAILURES_KEY),
                         config.settings())


def _embedding_asset(entity: EntityKind, key: dg.AssetKey, source_key: dg.AssetKey) -> dg.AssetsDefinition:
    source = OUTPUT_CONTRACTS[entity]

    @dg.asset(
        key=key,
        deps=[source_key],
        group_name="enrichment",
        description=embedding_contract(entity.value).description,
        kinds={"beam", "parquet"},
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=[
            dg.AssetCheckSpec("vectors_normalized", asset=key, blocking=True, description="Every vector has unit L2 norm."),
            dg.AssetCheckSpec("covers_every_text", asset=key, blocking=True, description="One vector per generated row, with that row's text hash."),
        ],
    )
    def _embeddings(context: dg.AssetExecutionContext, warehouse: WarehouseResource, enrichment_embedder: EmbedderResource) -> dg.MaterializeResult:
        store = warehouse.store()
        wanted = texts_to_embed(entity, store.read(source), TEXT_FIELD[entity])
        contract = embedding_contract(entity.value)
        embedder = enrichment_embedder.config()

        def stored() -> pa.Table:  # the stored dim may differ from a newly configured model's: read as stored
            table = store.read_as_stored(contract)
            return contract.schema.empty_table() if table is None else table

        def sink(table: pa.Table) -> None:
            store.write(embedding_contract(entity.value, table.schema.field("embedding").type.list_size), table)
            warehouse.refresh_catalog()

        run = EmbeddingRun(entity, embedder, warehouse.root.joinpath(*WORK_DIR, contract.name), enrichment_embedder.beam())
        result = run_embedding(wanted, stored, run, sink)
        report = embedding_report(entity, result.embeddings, wanted, {**result.stats.as_metadata(), "model": embedder.name})
        return _results(key, report)

    return _embeddings


item_embeddings = _embedding_asset(EntityKind.ITEM, ITEM_EMBEDDINGS_KEY, ITEM_DESCRIPTIONS_KEY)
user_embeddings = _embedding_asset(EntityKind.USER, USER_EMBEDDINGS_KEY, USER_PROFILES_KEY)

enrichment_job = dg.define_asset_job("enrichment_job", selection=dg.AssetSelection.groups("enrichment"))

JOBS = [enrichment_job]
RESOURCES = {"enrichment_generator": ExtractiveGeneratorResource(), "enrichment_embedder": EmbedderResource()}
