"""The one Dagster entry point: ``dagster dev -m pipelines.definitions``."""

from __future__ import annotations

import dagster as dg

from assets import core, raw
from pipelines.partitions import daily_event_partitions
from pipelines.resources import EngineResource, WarehouseResource

raw_daily_job = dg.define_asset_job(
    "raw_daily_job",
    selection=dg.AssetSelection.groups("raw") - dg.AssetSelection.assets(*(a.key for a in raw.raw_catalog_assets)),
    partitions_def=daily_event_partitions,
)

catalog_job = dg.define_asset_job(
    "catalog_job",
    selection=dg.AssetSelection.assets(*(a.key for a in raw.raw_catalog_assets)),
)

raw_daily_schedule = dg.build_schedule_from_partitioned_job(raw_daily_job, hour_of_day=2, minute_of_hour=0)

defs = dg.Definitions(
    assets=[*raw.raw_log_assets, *raw.raw_catalog_assets, core.id_maps],
    jobs=[raw_daily_job, catalog_job],
    schedules=[raw_daily_schedule],
    sensors=[dg.AutomationConditionSensorDefinition("downstream_automation_sensor", target=dg.AssetSelection.all())],
    resources={"warehouse": WarehouseResource(), "engine": EngineResource()},
)
