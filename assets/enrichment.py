"""Enrichment layer: item descriptions, user profiles (LLM or extractive) and their text embeddings.

Each asset reads the raw tables, builds grounded inputs (everything strictly before the training
cut-off ``train_end`` of the shared ``cutoffs`` resource, :class:`assets.resources.CutoffsResource`,
the same one the labels, semantic-ID and training-data layers use), and launches the Beam pipeline, which generates or embeds only what the stored table does
not already answer (same input hash, prompt version and model). Failed generations go to
``enrichment/<entity>_failures``; the run fails only when their share passes the configured limit,
after everything that succeeded was written.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from assets.resources import CutoffsResource, WarehouseResource
from assets.resources_enrichment import EmbedderResource, ExtractiveGeneratorResource, GeneratorResource
from pipelines.enrichment import (
    EmbeddingRun,
    GenerationResult,
    GenerationRun,
    RunStats,
    run_embedding,
    run_generation,
)
from transforms.cutoffs import Cutoffs
from transforms.enrichment.checks import (
    covers_every_text,
    off_unit_norm,
    profiles_outside_window,
    provenance_complete,
    unexplained_failures,
)
from transforms.enrichment.inputs import build_item_tasks, build_user_tasks
from transforms.enrichment.records import FAILURE_CONTRACTS, OUTPUT_CONTRACTS, texts_to_embed
from transforms.enrichment.types import TEXT_FIELD, EntityKind, GenerationTask
from warehouse.contracts import (
    RAW_EVENTS,
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

WORK_DIR = (".work", "enrichment")  # checkpoints of an unfinished run, hidden from the catalog
PREVIEW_ROWS = 3


def _read_until(store: Warehouse, contract: TableContract, cutoff: dt.datetime) -> pa.Table:
    """Daily partitions up to the cut-off's day (rows at or after the cut-off are dropped later)."""
    return store.read(contract, [d for d in store.partitions(contract) if d <= cutoff.date()])


def _now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _work_dir(root: Path, name: str) -> Path:
    return root.joinpath(*WORK_DIR, name)


def _preview(table: pa.Table, columns: list[str]) -> dg.MetadataValue:
    rows = table.select(columns).slice(0, PREVIEW_ROWS).to_pylist()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c])[:160].replace("|", "/") for c in columns) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _generation_results(
    entity: EntityKind,
    result: GenerationResult,
    tasks: list[GenerationTask],
    keys: tuple[dg.AssetKey, dg.AssetKey],
    cutoffs: Cutoffs,
    generator: GeneratorResource,
) -> list[dg.MaterializeResult]:
    key, failures_key = keys
    cutoff = cutoffs.train_end
    outputs, stats = result.outputs, result.stats
    id_col = f"{entity.value}_id"
    checks = [
        dg.AssetCheckResult(
            asset_key=key,
            check_name="provenance_complete",
            passed=provenance_complete(outputs),
            metadata={"rows": outputs.num_rows},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="failure_share_within_limit",
            passed=stats.failure_share <= generator.max_failure_share,
            metadata={"failure_share": stats.failure_share, "limit": generator.max_failure_share},
        ),
    ]
    if entity is EntityKind.USER:
        stale, later = profiles_outside_window(outputs, tasks, cutoff)
        checks.append(
            dg.AssetCheckResult(
                asset_key=key,
                check_name="profiles_use_training_window",
                passed=not stale and not later,
                metadata={"cutoff": cutoff.isoformat(), "input_mismatch": stale[:10], "later_cutoff": later[:10]},
            )
        )
    meta: dict[str, Any] = {
        **stats.as_metadata(),
        "cutoff": cutoff.isoformat(),
        **cutoffs.as_metadata(),
        "generator_kind": generator.config().kind.value,
        "model": generator.config().stored_model,
        "preview": _preview(outputs, [id_col, TEXT_FIELD[entity], "model", "generated_at"]),
        "dagster/row_count": outputs.num_rows,
    }
    failures = result.failures
    overlap, unexplained = unexplained_failures(entity, failures, outputs)
    failure_check = dg.AssetCheckResult(
        asset_key=failures_key,
        check_name="failures_explained",
        passed=not overlap and unexplained == 0,
        metadata={"also_in_outputs": overlap[:10], "without_error": unexplained},
    )
    return [
        dg.MaterializeResult(asset_key=key, metadata=meta, check_results=checks),
        dg.MaterializeResult(
            asset_key=failures_key,
            metadata={
                "dagster/row_count": failures.num_rows,
                "by_kind": {k: failures["failure_kind"].to_pylist().count(k) for k in sorted(set(failures["failure_kind"].to_pylist()))},
                "examples": _preview(failures, [id_col, "failure_kind", "error"]),
            },
            check_results=[failure_check],
        ),
    ]


def _generate(
    entity: EntityKind,
    tasks: list[GenerationTask],
    warehouse: WarehouseResource,
    generator: GeneratorResource,
    context: dg.AssetExecutionContext,
) -> GenerationResult:
    store = warehouse.store()
    out_contract, fail_contract = OUTPUT_CONTRACTS[entity], FAILURE_CONTRACTS[entity]

    def sink(outputs: pa.Table, failures: pa.Table) -> None:
        store.write(out_contract, outputs)
        store.write(fail_contract, failures)
        warehouse.refresh_catalog()

    run = GenerationRun(
        entity=entity,
        generator=generator.config(),
        work_dir=_work_dir(warehouse.root, out_contract.name),
        generated_at=_now(),
        max_failure_share=generator.max_failure_share,
        beam=generator.beam(),
    )
    result = run_generation(tasks, store.read(out_contract), run, sink)
    context.log.info(f"{out_contract.view_name}: {result.stats.as_metadata()}")
    return result


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


@dg.multi_asset(
    specs=_generation_specs(
        EntityKind.ITEM, (ITEM_DESCRIPTIONS_KEY, ITEM_DESCRIPTION_FAILURES_KEY), [dg.AssetKey(["raw", t]) for t in ("items", "reviews")]
    ),
    check_specs=_generation_checks(ITEM_DESCRIPTIONS_KEY, ITEM_DESCRIPTION_FAILURES_KEY, user=False),
    name="enrichment_item_descriptions",
)
def item_descriptions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, cutoffs: CutoffsResource, enrichment_generator: GeneratorResource
) -> Any:
    """Describe every catalog item from its catalog fields and its reviews before the cut-off."""
    store = warehouse.store()
    resolved = cutoffs.resolve(store)
    cutoff = resolved.train_end
    tasks = build_item_tasks(store.read(RAW_ITEMS), _read_until(store, RAW_REVIEWS, cutoff), cutoff)
    result = _generate(EntityKind.ITEM, tasks, warehouse, enrichment_generator, context)
    keys = (ITEM_DESCRIPTIONS_KEY, ITEM_DESCRIPTION_FAILURES_KEY)
    yield from _generation_results(EntityKind.ITEM, result, tasks, keys, resolved, enrichment_generator)


@dg.multi_asset(
    specs=_generation_specs(
        EntityKind.USER, (USER_PROFILES_KEY, USER_PROFILE_FAILURES_KEY), [dg.AssetKey(["raw", t]) for t in ("events", "reviews", "items")]
    ),
    check_specs=_generation_checks(USER_PROFILES_KEY, USER_PROFILE_FAILURES_KEY, user=True),
    name="enrichment_user_profiles",
)
def user_profiles(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, cutoffs: CutoffsResource, enrichment_generator: GeneratorResource
) -> Any:
    """Profile every user from their interactions and reviews strictly before the cut-off."""
    store = warehouse.store()
    resolved = cutoffs.resolve(store)
    cutoff = resolved.train_end
    tasks = build_user_tasks(
        _read_until(store, RAW_EVENTS, cutoff), _read_until(store, RAW_REVIEWS, cutoff), store.read(RAW_ITEMS), cutoff
    )
    result = _generate(EntityKind.USER, tasks, warehouse, enrichment_generator, context)
    keys = (USER_PROFILES_KEY, USER_PROFILE_FAILURES_KEY)
    yield from _generation_results(EntityKind.USER, result, tasks, keys, resolved, enrichment_generator)


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
        embedder = enrichment_embedder.config()
        # The stored table's dim may differ from a newly configured model's: read it without a fixed dim.
        contract = embedding_contract(entity.value)
        stored = store.read_as_stored(contract)
        if stored is None:
            stored = contract.schema.empty_table()
        def sink(table: pa.Table) -> None:
            store.write(embedding_contract(entity.value, table.schema.field("embedding").type.list_size), table)
            warehouse.refresh_catalog()

        run = EmbeddingRun(entity, embedder, _work_dir(warehouse.root, contract.name), enrichment_embedder.beam())
        result = run_embedding(wanted, stored, run, sink)
        table = result.embeddings
        dim = table.schema.field("embedding").type.list_size
        bad_norm = off_unit_norm(table)
        covered = covers_every_text(entity, table, wanted)
        stats: RunStats = result.stats
        context.log.info(f"{contract.view_name}: {stats.as_metadata()}")
        return dg.MaterializeResult(
            metadata={**stats.as_metadata(), "model": embedder.name, "dim": dim, "dagster/row_count": table.num_rows},
            check_results=[
                dg.AssetCheckResult(check_name="vectors_normalized", passed=bad_norm == 0, metadata={"off_unit_norm": bad_norm}),
                dg.AssetCheckResult(check_name="covers_every_text", passed=covered, metadata={"rows": table.num_rows, "texts": wanted.num_rows}),
            ],
        )

    return _embeddings


item_embeddings = _embedding_asset(EntityKind.ITEM, ITEM_EMBEDDINGS_KEY, ITEM_DESCRIPTIONS_KEY)
user_embeddings = _embedding_asset(EntityKind.USER, USER_EMBEDDINGS_KEY, USER_PROFILES_KEY)

enrichment_job = dg.define_asset_job("enrichment_job", selection=dg.AssetSelection.groups("enrichment"))

JOBS = [enrichment_job]
RESOURCES = {"enrichment_generator": ExtractiveGeneratorResource(), "enrichment_embedder": EmbedderResource()}
