"""Core layer: stable id maps over everything staged."""


import dagster as dg

from assets.resources import EngineResource, WarehouseResource
from pipelines import ingestion
from transforms.ingest.id_maps import audit_id_map, extend_id_map
from transforms.ingest.validation import validate_table
from warehouse.contracts import CORE_ID_MAPS

RAW_KEYS = [dg.AssetKey(["raw", t]) for t in (*ingestion.LOG_TABLES, *ingestion.CATALOG_TABLES)]
ID_MAPS_KEY = dg.AssetKey(["core", "id_maps"])


@dg.asset(
    key=ID_MAPS_KEY,
    deps=RAW_KEYS,
    group_name="core",
    description=CORE_ID_MAPS.description,
    kinds={"parquet", "duckdb"},
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec("ids_stable", asset=ID_MAPS_KEY, blocking=True, description="No existing id changed its integer."),
        dg.AssetCheckSpec("ids_dense_unique", asset=ID_MAPS_KEY, blocking=True, description="Per entity, ids are unique and dense 0..n-1."),
    ],
)
def id_maps(warehouse: WarehouseResource, engine: EngineResource) -> dg.MaterializeResult:
    """Append new users and items to the id map; never renumber."""
    store = warehouse.store()
    existing = store.read(CORE_ID_MAPS)
    with engine.open() as eng:
        updated = extend_id_map(eng, existing, ingestion.observed_ids(store, eng))
    # Blocking checks are decided before the write, so a renumbered map never replaces a good one.
    audit = audit_id_map(existing, updated)
    report = validate_table(updated, CORE_ID_MAPS)
    if not (audit.ok and report.success):
        raise dg.Failure(
            f"the id map update would break stable ids ({audit.changed_ids} existing ids changed, dense={audit.dense},"
            f" contract checks passed={report.success}); the stored id map is unchanged",
            metadata={"changed_ids": audit.changed_ids, "dense": audit.dense},
        )
    store.write(CORE_ID_MAPS, updated)
    warehouse.refresh_catalog()
    return dg.MaterializeResult(
        metadata={
            "users": audit.counts.get("user", 0),
            "items": audit.counts.get("item", 0),
            "new_ids": updated.num_rows - existing.num_rows,
        },
        check_results=[
            dg.AssetCheckResult(check_name="ids_stable", passed=True, metadata={"changed_ids": audit.changed_ids}),
            dg.AssetCheckResult(check_name="ids_dense_unique", passed=True, metadata={"dense": audit.dense}),
        ],
    )
