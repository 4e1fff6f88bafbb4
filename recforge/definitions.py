"""The one Dagster entry point: ``dagster dev -m recforge.definitions``.

Assets and asset checks are loaded from every module of the ``assets`` package. A module may also
export ``JOBS``, ``SCHEDULES``, ``SENSORS`` (lists) and ``RESOURCES`` (a dict of resource defaults
it needs), so adding a layer means adding one module, not editing this file.
"""

import importlib
import pkgutil
from types import ModuleType

import dagster as dg

import assets
from assets.resources import CutoffsResource, EngineResource, WarehouseResource


def _asset_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{assets.__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(assets.__path__), key=lambda i: i.name)
    ]


def _collected(name: str) -> list:
    return [item for module in _asset_modules() for item in getattr(module, name, [])]


def _resources() -> dict[str, object]:
    resources: dict[str, object] = {
        "warehouse": WarehouseResource(),
        "engine": EngineResource(),
        "cutoffs": CutoffsResource(),
    }
    for module in _asset_modules():
        resources.update(getattr(module, "RESOURCES", {}))
    return resources


raw_daily_job = dg.define_asset_job(
    "raw_daily_job",
    selection=dg.AssetSelection.groups("raw") - dg.AssetSelection.assets(["raw", "items"], ["raw", "users"]),
)

# One day of raw logs and everything downstream of them, in one run (the UI's "materialize everything").
everything_job = dg.define_asset_job("everything_job", selection=dg.AssetSelection.all())

raw_daily_schedule = dg.build_schedule_from_partitioned_job(raw_daily_job, hour_of_day=2, minute_of_hour=0)

downstream_automation_sensor = dg.AutomationConditionSensorDefinition(
    "downstream_automation_sensor", target=dg.AssetSelection.all()
)

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(assets),
    jobs=[raw_daily_job, everything_job, *_collected("JOBS")],
    schedules=[raw_daily_schedule, *_collected("SCHEDULES")],
    sensors=[downstream_automation_sensor, *_collected("SENSORS")],
    resources=_resources(),
)
