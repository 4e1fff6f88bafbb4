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


defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(assets),
    jobs=_collected("JOBS"),
    schedules=_collected("SCHEDULES"),
    sensors=_collected("SENSORS"),
    resources=_resources(),
)
