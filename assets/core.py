"""Core layer: stable id maps over everything staged."""


import dagster as dg

from pipelines import ingestion
from pipelines.resources import EngineResource, WarehouseResource
from transforms.id_maps import extend_id_map
from transforms.validation import validate_table
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
    store.write(CORE_ID_MAPS, updated)
    warehouse.refresh_catalog()
    kept = updated.slice(0, 0)
    if existing.num_rows:
        kept = updated.join(existing, ["entity", "external_id"], right_suffix="_old", join_type="inner")
    changed = 0 if existing.num_rows == 0 else sum(
        a != b for a, b in zip(kept["idx"].to_pylist(), kept["idx_old"].to_pylist(), strict=True)
    )
    report = validate_table(updated, CORE_ID_MAPS)
    counts = {e: sum(1 for x in updated["entity"].to_pylist() if x == e) for e in ("user", "item")}
    dense = all(
        sorted(i for i, e in zip(updated["idx"].to_pylist(), updated["entity"].to_pylist(), strict=True) if e == ent)
        == list(range(n))
        for ent, n in counts.items()
    )
    return dg.MaterializeResult(
        metadata={"users": counts["user"], "items": counts["item"], "new_ids": updated.num_rows - existing.num_rows},
        check_results=[
            dg.AssetCheckResult(check_name="ids_stable", passed=changed == 0, metadata={"changed_ids": changed}),
            dg.AssetCheckResult(
                check_name="ids_dense_unique", passed=dense and report.success, metadata={"dense": dense}
            ),
        ],
    )
