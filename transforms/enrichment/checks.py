"""What the enrichment tables' checks look at, as plain functions over the written tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from transforms.enrichment.types import EntityKind, GenerationTask

PROVENANCE_COLUMNS = ("generator_kind", "model", "prompt_version", "input_hash", "cache_key")
NORM_TOLERANCE = 1e-3


def stale_flags(outputs: pa.Table) -> list[bool]:
    """Per row: kept from before because its regeneration failed (a missing or null ``stale`` is False)."""
    if "stale" not in outputs.column_names:
        return [False] * outputs.num_rows
    return [bool(s) for s in outputs["stale"].to_pylist()]


def provenance_complete(outputs: pa.Table) -> bool:
    """Every row names its generator, model, prompt version, input hash and cache key."""
    return all(all(v for v in outputs[c].to_pylist()) for c in PROVENANCE_COLUMNS)


def profiles_outside_window(
    outputs: pa.Table, tasks: Sequence[GenerationTask], cutoff: dt.datetime
) -> tuple[list[str], list[str]]:
    """Users whose profile was not built from exactly their history before ``cutoff``.

    A kept row may come from an earlier cut-off, but only if the user's history before this cut-off is
    exactly what it was built from (same input hash) and that cut-off is not later. Rows marked
    ``stale`` (their regeneration failed; the previous profile is kept and says so) are exempt from
    the input match, never from the cut-off.

    Returns:
        ``(input_mismatch, later_cutoff)``: user ids.
    """
    expected = {t.entity_id: t.input_hash for t in tasks}
    rows = outputs.select(["user_id", "input_hash", "cutoff"]).to_pylist()
    flags = stale_flags(outputs)
    stale = [r["user_id"] for r, kept in zip(rows, flags, strict=True) if not kept and expected.get(r["user_id"]) != r["input_hash"]]
    later = [r["user_id"] for r in rows if r["cutoff"] > cutoff]
    return stale, later


def unexplained_failures(entity: EntityKind, failures: pa.Table, outputs: pa.Table) -> tuple[list[str], int]:
    """Failed entities that also have a fresh output row (sorted), and failures without an error message.

    A ``stale`` row (the previous output, kept because regeneration failed) is expected beside its failure.
    """
    id_col = f"{entity.value}_id"
    fresh = {e for e, s in zip(outputs[id_col].to_pylist(), stale_flags(outputs), strict=True) if not s}
    overlap = sorted(set(failures[id_col].to_pylist()) & fresh)
    return overlap, sum(1 for e in failures["error"].to_pylist() if not e)


def off_unit_norm(embeddings: pa.Table) -> int:
    """Vectors whose L2 norm is off 1 by more than ``NORM_TOLERANCE``."""
    dim = embeddings.schema.field("embedding").type.list_size
    flat = embeddings["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    vectors = np.asarray(flat).reshape(-1, dim) if embeddings.num_rows else np.zeros((0, dim))
    return int(np.sum(np.abs(np.linalg.norm(vectors, axis=1) - 1.0) > NORM_TOLERANCE))


def covers_every_text(entity: EntityKind, embeddings: pa.Table, wanted: pa.Table) -> bool:
    """One vector per wanted row, in its order, with that row's text hash."""
    col = f"{entity.value}_id"
    return embeddings[col].to_pylist() == wanted[col].to_pylist() and embeddings["text_hash"].to_pylist() == wanted["text_hash"].to_pylist()
