"""What the enrichment assets report: their check results and metadata, as plain data.

The assets turn a :class:`Report` into Dagster results; everything it says is decided here, where a
test reads it without Dagster. Also the partitions a run reads (late events included).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from transforms.enrichment.checks import (
    covers_every_text,
    off_unit_norm,
    profiles_outside_window,
    provenance_complete,
    stale_flags,
    unexplained_failures,
)
from transforms.enrichment.types import TEXT_FIELD, EntityKind, GenerationTask
from transforms.ingest.staging import StagingRules

PREVIEW_ROWS = 3
EXAMPLES = 10


def partitions_to_read(
    dates: Iterable[dt.date], cutoff: dt.datetime, late_tolerance: dt.timedelta = StagingRules.late_tolerance
) -> list[dt.date]:
    """Daily partitions that may hold rows before ``cutoff``.

    Ingestion accepts a timestamp up to ``late_tolerance`` outside its log day, so an event before a
    cut-off at noon may sit in the next day's partition: read to the cut-off's date plus the
    tolerance, then filter by timestamp (:func:`transforms.enrichment.inputs.cutoff_filter`).
    """
    last = (cutoff + late_tolerance).date()
    return sorted(d for d in dates if d <= last)


def preview(table: pa.Table, columns: Sequence[str]) -> str:
    """The first rows of ``columns`` as a Markdown table."""
    rows = table.select(list(columns)).slice(0, PREVIEW_ROWS).to_pylist()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c])[:160].replace("|", "/") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Report:
    """One table's metadata and check results (``name -> (passed, metadata)``); ``markdown`` names
    the metadata entries that are Markdown text."""

    metadata: dict[str, Any]
    checks: dict[str, tuple[bool, dict[str, Any]]] = field(default_factory=dict)
    markdown: tuple[str, ...] = ()


def generation_reports(
    entity: EntityKind,
    outputs: pa.Table,
    failures: pa.Table,
    tasks: Sequence[GenerationTask],
    run: Mapping[str, Any],
    max_failure_share: float,
    cutoff: dt.datetime,
) -> tuple[Report, Report]:
    """Reports of a generation run's output table and failures table.

    Args:
        run: The run's metadata (stats, cut-offs, generator kind and model).
    """
    id_col = f"{entity.value}_id"
    share = float(run["failure_share"])
    checks: dict[str, tuple[bool, dict[str, Any]]] = {
        "provenance_complete": (provenance_complete(outputs), {"rows": outputs.num_rows}),
        "failure_share_within_limit": (share <= max_failure_share, {"failure_share": share, "limit": max_failure_share}),
    }
    if entity is EntityKind.USER:
        mismatch, later = profiles_outside_window(outputs, tasks, cutoff)
        checks["profiles_use_training_window"] = (
            not mismatch and not later,
            {"cutoff": cutoff.isoformat(), "input_mismatch": mismatch[:EXAMPLES], "later_cutoff": later[:EXAMPLES]},
        )
    stale = [e for e, s in zip(outputs[id_col].to_pylist(), stale_flags(outputs), strict=True) if s]
    meta = {
        **run,
        "stale": len(stale),
        "stale_examples": stale[:EXAMPLES],
        "preview": preview(outputs, [id_col, TEXT_FIELD[entity], "model", "generated_at"]),
        "dagster/row_count": outputs.num_rows,
    }
    overlap, unexplained = unexplained_failures(entity, failures, outputs)
    kinds = Counter(failures["failure_kind"].to_pylist())
    failure_report = Report(
        metadata={
            "dagster/row_count": failures.num_rows,
            "by_kind": {k: kinds[k] for k in sorted(kinds)},
            "examples": preview(failures, [id_col, "failure_kind", "error"]),
        },
        checks={"failures_explained": (not overlap and unexplained == 0, {"also_in_outputs": overlap[:EXAMPLES], "without_error": unexplained})},
        markdown=("examples",),
    )
    return Report(meta, checks, ("preview",)), failure_report


def embedding_report(entity: EntityKind, table: pa.Table, wanted: pa.Table, run: Mapping[str, Any]) -> Report:
    """Report of an embedding table: unit norms and one vector per generated text."""
    bad_norm = off_unit_norm(table)
    return Report(
        metadata={**run, "dim": table.schema.field("embedding").type.list_size, "dagster/row_count": table.num_rows},
        checks={
            "vectors_normalized": (bad_norm == 0, {"off_unit_norm": bad_norm}),
            "covers_every_text": (covers_every_text(entity, table, wanted), {"rows": table.num_rows, "texts": wanted.num_rows}),
        },
    )
