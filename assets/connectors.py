"""Connectors as Dagster configuration: ``dataset_ingest_job`` stages a dataset into the raw tables.

Launch it from the UI's launchpad (or ``dagster job execute``) with run config::

    ops:
      dataset_ingest:
        config: {format: movielens, path: /data/ml-100k, name: ml-100k}

It writes the same raw, quarantine and id-map tables as ``recforge ingest`` and records one asset
materialization per raw table it wrote, with the range of days (``first_day``, ``last_day``,
``partitions``) as metadata. Not one event per day partition: a 20-year dataset would spend minutes
writing ~7,300 events per table to the Dagster instance before anything downstream runs, so cost would
grow with days instead of rows (docs/connectors.md, "Partitioning"). It is an op job, not an asset: a
dataset is a one-off load chosen at launch, and the asset graph's nightly materialization must not
need a path.
"""


from pathlib import Path
from typing import ClassVar

import dagster as dg
from pydantic import Field as PydanticField

from assets.resources import EngineResource, WarehouseResource, shared_fields
from pipelines.connect import ConnectRules, ingest_dataset
from transforms.connectors import ConnectorFormat, connector_for


class DatasetIngestConfig(dg.Config):
    """Which dataset to stage, and how."""

    # Text, not the enum: Dagster spells enum config by member name (YAHOO_R3), users write yahoo-r3.
    builds: ClassVar[tuple[type, ...]] = (ConnectRules,)
    own_fields: ClassVar[tuple[str, ...]] = ("format", "path", "name", "mapping")  # which connector, on what
    format: str = PydanticField(description="one of: " + ", ".join(f.value for f in ConnectorFormat))
    path: str
    name: str | None = None
    mapping: str | None = None
    chunk_lines: int = ConnectRules.chunk_lines
    max_bad_share: float | None = ConnectRules.max_bad_share


@dg.op(description="Stage a public dataset or your own logs (a connector) into the raw tables and the id map.")
def dataset_ingest(
    context: dg.OpExecutionContext,
    config: DatasetIngestConfig,
    warehouse: WarehouseResource,
    engine: EngineResource,
) -> dg.Output[dict]:
    connector = connector_for(config.format, Path(config.path), config.name, Path(config.mapping) if config.mapping else None)
    rules = ConnectRules(**shared_fields(config, ConnectRules))
    with engine.open() as eng:
        report = ingest_dataset(connector, warehouse.store(), eng, rules, work_dir=warehouse.root)
    warehouse.refresh_catalog()
    for table, counts in report.tables.items():
        key = dg.AssetKey(["raw", table]) if table != "random_exposure_ratings" else dg.AssetKey(["eval", table])
        metadata: dict[str, dg.RawMetadataValue] = {
            "dataset": report.name,
            "format": report.format,
            "rows_read": counts.read,
            "rows_staged": counts.staged,
            "rows_quarantined": counts.quarantined,
            "partitions": len(counts.partitions),
        }
        if counts.partitions:
            metadata |= {"first_day": counts.partitions[0].isoformat(), "last_day": counts.partitions[-1].isoformat()}
        context.log_event(dg.AssetMaterialization(asset_key=key, metadata=metadata))
    summary = report.summary()
    return dg.Output(
        summary,
        metadata={
            "dataset": report.name,
            "format": report.format,
            "rows_read": dg.MetadataValue.int(int(summary["rows_read"])),  # type: ignore[call-overload]
            "rows_staged": dg.MetadataValue.int(int(summary["rows_staged"])),  # type: ignore[call-overload]
            "rows_quarantined": dg.MetadataValue.int(int(summary["rows_quarantined"])),  # type: ignore[call-overload]
            "tables": dg.MetadataValue.json(dict(summary["tables"])),  # type: ignore[call-overload]
        },
    )


@dg.job(description="Stage one dataset (format, path, name in the run config) into the raw tables.")
def dataset_ingest_job() -> None:
    dataset_ingest()


JOBS = [dataset_ingest_job]
