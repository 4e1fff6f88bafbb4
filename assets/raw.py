"""Raw layer: staged logs (daily partitions) and catalog tables, with quarantine and data-quality checks."""


import datetime as dt
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import dagster as dg

from assets.partitions import daily_event_partitions
from assets.resources import EngineResource, WarehouseResource, shared_fields
from pipelines import ingestion
from transforms.ingest.staging import SPECS, iter_days
from transforms.ingest.validation import RangeRule, ValidationReport, validate_table
from warehouse.staging import StagedWarehouse

RANGES: dict[str, tuple[RangeRule, ...]] = {
    "impressions": (RangeRule("position", 0, None), RangeRule("propensity", 0, 1)),
    "reviews": (RangeRule("rating", 0.5, 5.0), RangeRule("helpful_votes", 0, None)),
    "items": (RangeRule("price", 0, None),),
    "events": (),
    "slates": (),
    "users": (),
}


class RawIngestConfig(dg.Config):
    """Run configuration of the raw assets (:class:`pipelines.ingestion.LandingRules`)."""

    builds: ClassVar[tuple[type, ...]] = (ingestion.LandingRules,)
    max_bad_share: float = ingestion.LandingRules.max_bad_share
    late_tolerance_hours: int = ingestion.LandingRules.late_tolerance_hours

    def rules(self) -> ingestion.LandingRules:
        return ingestion.LandingRules(**shared_fields(self, ingestion.LandingRules))


def _check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("contract_valid", asset=asset_key, description="Columns, non-null keys and value ranges (great-expectations)."),
        dg.AssetCheckSpec("keys_unique", asset=asset_key, description="No two staged rows share the table key."),
    ]


def _check_results(asset_key: dg.AssetKey, report: ValidationReport) -> list[dg.AssetCheckResult]:
    unique = report.by_kind("unique:")
    contract_outcomes = [o for o in report.outcomes if not o.name.startswith("unique:")]
    failing = {o.name: {"unexpected": o.unexpected_count, "examples": o.examples} for o in contract_outcomes if not o.success}
    return [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name="contract_valid",
            passed=not failing,
            metadata={"validated_rows": report.validated_rows, "rows": report.rows, "failures": failing},
        ),
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name="keys_unique",
            passed=all(o.success for o in unique),
            metadata={"repeated_rows": sum(o.unexpected_count for o in unique), "examples": [e for o in unique for e in o.examples]},
        ),
    ]


def _stage_and_report(
    key: dg.AssetKey,
    table: str,
    days: list[dt.date] | list[None],
    config: RawIngestConfig,
    warehouse: WarehouseResource,
    engine: EngineResource,
) -> dg.MaterializeResult:
    """Stage each day (or the one catalog snapshot, ``[None]``), enforce the bad-row limit, validate.

    The raw partitions are staged aside and replace the stored ones only when no day is over the bad-row
    limit: a failed run keeps the last good version (the quarantine is written either way).
    """
    contract = SPECS[table].contract
    store = warehouse.store()
    rules = config.rules().staging_rules()
    try:
        with engine.open() as eng, StagedWarehouse(store) as staging:
            reports = ingestion.ingest_days(staging, eng, table, warehouse.landing, days, rules, quarantine_to=store)
            ingestion.enforce_bad_share(reports, config.max_bad_share)  # raising here discards the staged partitions
    finally:
        warehouse.refresh_catalog()
    partitions = [d for d in days if d is not None] if contract.partitioned else None
    report = validate_table(store.read(contract, partitions), contract, RANGES[table])
    return dg.MaterializeResult(metadata=_metadata(reports), check_results=_check_results(key, report))


def build_log_asset(table: str) -> dg.AssetsDefinition:
    """A daily-partitioned raw log asset. A backfill over many days runs as one run."""
    contract = SPECS[table].contract
    key = dg.AssetKey(["raw", table])
    with warnings.catch_warnings():
        # Dagster marks backfill_policy as beta; a single-run backfill is what these assets need, and the
        # warning would otherwise print on every command that loads the definitions.
        warnings.simplefilter("ignore", dg.BetaWarning)
        decorate = dg.asset(
            key=key,
            partitions_def=daily_event_partitions,
            backfill_policy=dg.BackfillPolicy.single_run(),
            check_specs=_check_specs(key),
            group_name="raw",
            description=contract.description,
            kinds={"parquet", "duckdb"},
        )

    @decorate
    def _log_asset(
        context: dg.AssetExecutionContext,
        config: RawIngestConfig,
        warehouse: WarehouseResource,
        engine: EngineResource,
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        return _stage_and_report(key, table, list(iter_days(window.start.date(), window.end.date())), config, warehouse, engine)

    return _log_asset


def build_catalog_asset(table: str) -> dg.AssetsDefinition:
    """An unpartitioned raw catalog asset (items or users snapshot)."""
    contract = SPECS[table].contract
    key = dg.AssetKey(["raw", table])

    @dg.asset(
        key=key,
        check_specs=_check_specs(key),
        group_name="raw",
        description=contract.description,
        kinds={"parquet", "duckdb"},
    )
    def _catalog_asset(
        config: RawIngestConfig,
        warehouse: WarehouseResource,
        engine: EngineResource,
    ) -> dg.MaterializeResult:
        return _stage_and_report(key, table, [None], config, warehouse, engine)

    return _catalog_asset


def _metadata(reports: Sequence[ingestion.IngestReport]) -> dict[str, Any]:
    summary = ingestion.summarize(list(reports))
    return {
        "rows_read": summary.rows_read,
        "rows_staged": summary.rows_staged,
        "rows_quarantined": summary.rows_quarantined,
        "bad_share": summary.bad_share,
        "partitions_written": summary.partitions - summary.partitions_kept,
        "partitions_kept": summary.partitions_kept,
        "quarantine_reasons": dg.MetadataValue.json(summary.quarantine_reasons),
    }


raw_log_assets = [build_log_asset(t) for t in ingestion.LOG_TABLES]
raw_catalog_assets = [build_catalog_asset(t) for t in ingestion.CATALOG_TABLES]
