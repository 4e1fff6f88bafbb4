"""Materialize the asset graph in-process on a persistent Dagster instance (what the CLI runs).

Two routes, sized so that cost grows with rows and not with days:

- :func:`materialize_everything` (``recforge materialize``, ``recforge demo``): the daily-partitioned
  raw assets over a range of landing-zone days in one run, then every other asset in one run;
- :func:`build_layers` (``recforge build``): every asset downstream of raw, from the raw tables as
  they are, in one unpartitioned run. It never reads the landing zone, so a dataset staged by
  ``recforge ingest`` (or years of nightly partitions) is built without one Dagster step or event
  per day.

The instance lives in ``<data root>/.dagster`` unless ``DAGSTER_HOME`` says otherwise, so runs made
here show up in ``make dev``'s UI.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from warehouse.lock import holding_writer_lock

DAGSTER_HOME_ENV = "DAGSTER_HOME"
LOG_LEVEL = "INFO"  # Dagster's default console level is DEBUG: one line per event, unreadable in a terminal
RAW_GROUP = "raw"
# Groups a plain ``recforge build`` leaves out: they train models on the data the others build (minutes
# to hours), so they run when selected (``--select models``), not on every rebuild of the data.
TRAINING_GROUPS = ("models",)
SPLIT_FIELD = "split_kind"  # the training-data config field that ``recforge build --split`` sets


class RunConfigError(ValueError):
    """Run config that cannot apply to the selected assets (an unknown enum value, an unknown layer)."""


def dagster_instance(root: Path) -> dg.DagsterInstance:
    """The persistent instance for this data root."""
    home = Path(os.environ.get(DAGSTER_HOME_ENV) or root / ".dagster")
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        # Machines running recforge may have no internet; telemetry would only try and fail.
        settings.write_text("telemetry:\n  enabled: false\n")
    os.environ[DAGSTER_HOME_ENV] = str(home)
    return dg.DagsterInstance.get()


@holding_writer_lock("root")  # one writing run per data root (warehouse.lock)
def materialize_everything(
    defs: dg.Definitions,
    root: Path,
    first_day: dt.date,
    last_day: dt.date,
    groups: Sequence[str] | None = None,
    resources: dict[str, object] | None = None,
    run_config: dict[str, object] | None = None,
    log_level: str = LOG_LEVEL,
) -> list[dg.ExecuteInProcessResult]:
    """Materialize every data asset: partitioned ones over ``[first_day, last_day]`` in one run, then the rest.

    The model-training groups (``TRAINING_GROUPS``) run only when ``groups`` names them, as in ``build``.

    Args:
        defs: The definitions to run.
        root: Data root (its ``.dagster`` folder holds the instance unless ``DAGSTER_HOME`` is set).
        first_day: First partition day.
        last_day: Last partition day, inclusive.
        groups: Only the assets of these groups (when None: all but the model-training groups).
        resources: Resources overriding the definitions' defaults.
        run_config: Run config for the partitioned run (e.g. ops config of the raw assets).
        log_level: Dagster's console log level.

    Raises:
        dg.DagsterExecutionStepExecutionError: A step failed (the message says which and why).
        ValueError: ``last_day`` is before ``first_day``.
    """
    if last_day < first_day:
        raise ValueError(f"the last day {last_day} is before the first day {first_day}: no partition to materialize")
    graph = defs.resolve_asset_graph()
    keys = [
        k
        for k in _topological(graph)
        if (graph.get(k).group_name in groups if groups is not None else graph.get(k).group_name not in TRAINING_GROUPS)
    ]
    every = _assets_for(defs, keys)
    partitioned = _unique([a for a in every if a.partitions_def is not None])
    unpartitioned = _unique([a for a in every if a.partitions_def is None])
    resources = {**(defs.resources or {}), **(resources or {})}
    logging = _logging(log_level)
    instance = dagster_instance(root)
    results = []
    if partitioned:
        tags = {
            "dagster/asset_partition_range_start": first_day.isoformat(),
            "dagster/asset_partition_range_end": last_day.isoformat(),
        }
        results.append(
            dg.materialize(
                partitioned, instance=instance, resources=resources, tags=tags,
                run_config={**logging, **normalize_run_config(partitioned, run_config or {})},
                selection=[k for k in _keys(partitioned) if k in keys],
            )
        )
    if unpartitioned:
        # Unpartitioned assets read partitioned ones as whole tables from the warehouse, not as inputs.
        results.append(
            dg.materialize(
                unpartitioned,
                instance=instance,
                resources=resources,
                selection=[k for k in _keys(unpartitioned) if k in keys],
                run_config=logging,
            )
        )
    return results


def downstream_groups(defs: dg.Definitions) -> list[str]:
    """The asset groups below raw, in dependency order (what ``recforge build`` can select)."""
    graph = defs.resolve_asset_graph()
    ordered: list[str] = []
    for key in _topological(graph):
        group = graph.get(key).group_name
        if group != RAW_GROUP and group not in ordered:
            ordered.append(group)
    return ordered


@holding_writer_lock("root")
def build_layers(
    defs: dg.Definitions,
    root: Path,
    groups: Sequence[str] | None = None,
    resources: dict[str, object] | None = None,
    run_config: Mapping[str, Any] | None = None,
    log_level: str = LOG_LEVEL,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset downstream of raw (or those of ``groups``) from the stored raw tables.

    One unpartitioned run: no step, planned event or query per day, so its planning cost does not grow
    with the span of the data. The raw tables and the landing zone are not touched.

    Args:
        defs: The definitions to run.
        root: Data root (its ``.dagster`` folder holds the instance unless ``DAGSTER_HOME`` is set).
        groups: Only the assets of these groups (when None: every group below raw but the model-training
            ones, :data:`TRAINING_GROUPS`).
        resources: Resources overriding the definitions' defaults.
        run_config: Dagster run config (``ops`` of assets outside the selection are dropped, enum values
            may be spelled as their values, e.g. ``leave_one_out``, or as Dagster's member names).
        log_level: Dagster's console log level.
        raise_on_error: Raise the failing step's error (else return the failed result).

    Raises:
        RunConfigError: ``groups`` names a group that is not below raw, or the config an unknown value.
        dg.DagsterExecutionStepExecutionError: A step failed.
    """
    available = downstream_groups(defs)
    chosen = list(groups) if groups else [g for g in available if g not in TRAINING_GROUPS]
    unknown = [g for g in chosen if g not in available]
    if unknown:
        raise RunConfigError(f"unknown layer(s) {', '.join(unknown)}; the layers below raw are: {', '.join(available)}")
    graph = defs.resolve_asset_graph()
    keys = [k for k in _topological(graph) if graph.get(k).group_name in chosen]
    selected = _unique(_assets_for(defs, keys))
    partitioned = [k.to_user_string() for a in selected if a.partitions_def is not None for k in a.keys if k in keys]
    if partitioned:
        raise RunConfigError(f"build runs unpartitioned assets only; partitioned: {', '.join(partitioned)}")
    config = normalize_run_config(selected, with_training_settings(defs, dict(run_config or {})))
    return dg.materialize(
        selected,
        instance=dagster_instance(root),
        resources={**(defs.resources or {}), **(resources or {})},
        selection=[k for k in _keys(selected) if k in keys],
        run_config={**config, **_logging(log_level)},
        raise_on_error=raise_on_error,
    )


def split_run_config(defs: dg.Definitions, split: str) -> dict[str, Any]:
    """Ops config setting ``split_kind`` on every asset whose config has that field."""
    return {"ops": {name: {"config": {SPLIT_FIELD: split}} for name in _ops_with_field(defs.assets or [], SPLIT_FIELD)}}


HELD_OUT_FIELDS = (SPLIT_FIELD, "k_core", "event_types")
"""The training data's settings that decide which steps a leave-one-out split holds out: the generated text
(``assets.enrichment.HeldOutConfig``) must leave out the same ones."""


def with_training_settings(defs: dg.Definitions, run_config: Mapping[str, Any]) -> dict[str, Any]:
    """``run_config`` with the :data:`HELD_OUT_FIELDS` it sets on the training-data assets copied to every asset
    that has the field and is not given it (as ``recforge build --split`` sets ``split_kind`` on all): a run config
    that sets ``split_kind: leave_one_out`` or a ``k_core`` on one training-data asset still keeps the held-out
    steps out of the generated text, and the other training-data assets agree with it.

    Raises:
        RunConfigError: The training-data assets are given different values of one field.
    """
    ops = run_config.get("ops")
    if not isinstance(ops, Mapping):
        return dict(run_config)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    training = {a.op.name for a in assets if "training_data" in a.group_names_by_key.values()}
    extra: dict[str, Any] = {}
    for field in HELD_OUT_FIELDS:
        given = {name: op["config"][field] for name, op in ops.items()
                 if name in training and isinstance(op, Mapping) and isinstance(op.get("config"), Mapping) and field in op["config"]}
        spellings = {str(v).lower().replace("-", "_") if field == SPLIT_FIELD else repr(v) for v in given.values()}
        if len(spellings) > 1:
            raise RunConfigError(f"the training-data assets are given different {field} values ({given}): give them one")
        if not given:
            continue
        value = next(iter(given.values()))
        for name in _ops_with_field(assets, field):
            op = ops.get(name)
            if not (isinstance(op, Mapping) and field in (op.get("config") or {})):
                extra.setdefault(name, {"config": {}})["config"][field] = value
    return merge_run_config(run_config, {"ops": extra}) if extra else dict(run_config)


def merge_run_config(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested mappings key by key (``extra`` wins)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_run_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def normalize_run_config(assets: Sequence[object], run_config: Mapping[str, Any]) -> dict[str, Any]:
    """Run config fit for the selected assets: ops of other assets dropped, enum values spelled for Dagster.

    Dagster spells enum config by member name (``LEAVE_ONE_OUT``); the docs and YAML files use the
    values (``leave_one_out``, or ``leave-one-out`` on a command line). Both are accepted here.

    Raises:
        RunConfigError: An enum field holds a value that is neither a member name nor a value.
    """
    config = dict(run_config)
    ops = config.get("ops")
    if not isinstance(ops, Mapping):
        return config
    by_op = {a.op.name: a.op for a in assets if isinstance(a, dg.AssetsDefinition)}
    kept: dict[str, Any] = {}
    for name, op_config in ops.items():
        if name not in by_op:
            continue
        fields = _config_fields(by_op[name])
        inner = op_config.get("config") if isinstance(op_config, Mapping) else None
        if isinstance(inner, Mapping):
            op_config = {**op_config, "config": {k: _enum_value(name, k, v, fields.get(k)) for k, v in inner.items()}}
        kept[name] = op_config
    config["ops"] = kept
    return config


def _enum_value(op: str, field: str, value: Any, config_type: Any) -> Any:
    if config_type is None or not isinstance(value, str):
        return value
    members = getattr(config_type, "enum_values", None)
    if members is None:
        return value
    wanted = value.strip().replace("-", "_")
    for member in members:
        python_value = getattr(member.python_value, "value", member.python_value)
        if wanted.upper() == member.config_value.upper() or wanted.lower() == str(python_value).lower():
            return member.config_value
    accepted = ", ".join(m.config_value.lower() for m in members)
    raise RunConfigError(f"{op}.{field}: {value!r} is not supported here (accepted: {accepted})")


def _config_fields(op: dg.OpDefinition) -> dict[str, Any]:
    """Each config field's type, with Noneable unwrapped (None when the op takes no structured config)."""
    schema = op.config_schema
    if schema is None:
        return {}
    fields = getattr(schema.as_field().config_type, "fields", None) or {}
    out = {}
    for name, field in fields.items():
        config_type = field.config_type
        while getattr(config_type, "inner_type", None) is not None and getattr(config_type, "enum_values", None) is None:
            config_type = config_type.inner_type
        out[name] = config_type
    return out


def _ops_with_field(assets: Sequence[object], field: str) -> list[str]:
    return sorted({a.op.name for a in assets if isinstance(a, dg.AssetsDefinition) and field in _config_fields(a.op)})


def _logging(level: str) -> dict[str, Any]:
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def _assets_for(defs: dg.Definitions, keys: Sequence[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    unbound = [a for a in (defs.assets or []) if isinstance(a, dg.AssetsDefinition)]
    return [a for k in keys for a in unbound if k in a.keys]


def _topological(graph: dg.AssetGraph) -> Sequence[dg.AssetKey]:
    return [key for level in graph.toposorted_asset_keys_by_level for key in level]


def _unique(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    seen: list[dg.AssetsDefinition] = []
    for a in assets:
        if a not in seen:
            seen.append(a)
    return seen


def _keys(assets: list[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    return [k for a in assets for k in a.keys]
