"""One source of truth per knob: a Dagster config's fields and defaults are those of the dataclass it builds.

Every ``dg.Config`` and ``dg.ConfigurableResource`` in ``assets/`` names the frozen dataclasses it builds
in ``builds`` (empty when it builds none). A field that shares its name with a field of one of them must
have the same default; a field with no counterpart there is listed in ``own_fields`` (settings that only
the orchestration has, such as where the data root is).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import ClassVar

import dagster as dg
import pytest

import assets


def _config_classes() -> list[type]:
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(assets.__path__):
        module = importlib.import_module(f"assets.{info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(value, dg.Config | dg.ConfigurableResource)
                and value.__module__.startswith("assets.")
                and "model_fields" in dir(value)
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


def _default(field: dataclasses.Field) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _problems(config: type) -> list[str]:
    builds = getattr(config, "builds", None)
    if builds is None:
        return [f"{config.__name__}: declare `builds: ClassVar[tuple[type, ...]]` (the dataclasses it builds)"]
    own = set(getattr(config, "own_fields", ()))
    targets = {f.name: f for dc in builds for f in dataclasses.fields(dc)}
    problems = []
    for name, info in config.model_fields.items():
        if name in own:
            continue
        if name not in targets:
            problems.append(f"{config.__name__}.{name}: no field of that name in {[b.__name__ for b in builds]}")
            continue
        expected = _default(targets[name])
        got = None if info.is_required() else info.get_default(call_default_factory=True)
        if expected is not dataclasses.MISSING and got != expected:
            problems.append(f"{config.__name__}.{name}: default {got!r} differs from the dataclass's {expected!r}")
    return problems


def test_there_are_configs_to_check() -> None:
    assert len(_config_classes()) >= 5


@pytest.mark.parametrize("config", _config_classes(), ids=lambda c: c.__name__)
def test_config_fields_and_defaults_match_the_dataclass_it_builds(config: type) -> None:
    assert _problems(config) == []


def test_a_drifted_default_is_reported() -> None:
    @dataclasses.dataclass(frozen=True)
    class Knobs:
        depth: int = 3

    class Drifted(dg.Config):
        builds: ClassVar[tuple[type, ...]] = (Knobs,)
        depth: int = 4
        unknown: int = 1

    assert _problems(Drifted) == [
        "Drifted.depth: default 4 differs from the dataclass's 3",
        "Drifted.unknown: no field of that name in ['Knobs']",
    ]
