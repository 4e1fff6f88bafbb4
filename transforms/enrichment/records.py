"""Rows, cache planning and the final fold of an enrichment run: pure functions over Arrow tables.

A run is planned against the table already stored: a task whose cache key (input hash, prompt
version, model) matches a stored row is not generated again, and that row is kept as it is,
including its original ``generated_at``. Completed work of the run arrives as checkpoint tables (one
per batch); :func:`fold_outputs` merges kept and new rows into the table of record, one row per
current entity, sorted by id, so that a rerun with nothing changed writes identical bytes.

Embeddings work the same way with ``text_hash`` and ``model`` as the cache key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.enrichment.embedding import embeddings_table
from transforms.enrichment.redact import redact_secrets
from transforms.enrichment.types import (
    EntityKind,
    GenerationOutcome,
    GenerationTask,
    GeneratorKind,
    cache_key,
)
from warehouse.contracts import (
    ENRICHMENT_ITEM_DESCRIPTION_FAILURES,
    ENRICHMENT_ITEM_DESCRIPTIONS,
    ENRICHMENT_USER_PROFILE_FAILURES,
    ENRICHMENT_USER_PROFILES,
    TableContract,
    embedding_contract,
)

OUTPUT_CONTRACTS: dict[EntityKind, TableContract] = {
    EntityKind.ITEM: ENRICHMENT_ITEM_DESCRIPTIONS,
    EntityKind.USER: ENRICHMENT_USER_PROFILES,
}
FAILURE_CONTRACTS: dict[EntityKind, TableContract] = {
    EntityKind.ITEM: ENRICHMENT_ITEM_DESCRIPTION_FAILURES,
    EntityKind.USER: ENRICHMENT_USER_PROFILE_FAILURES,
}


def id_column(entity: EntityKind) -> str:
    return f"{entity.value}_id"


@dataclass(frozen=True)
class Provenance:
    """Who wrote a row: stored on every output and failure row."""

    generator_kind: GeneratorKind
    model: str
    prompt_version: str
    settings: str = ""  # the generator config's fingerprint: in the cache key, not a column


def output_row(task: GenerationTask, outcome: GenerationOutcome, prov: Provenance, at: dt.datetime) -> dict[str, object]:
    """One output row (a dict in the entity's output contract) from a successful outcome."""
    if outcome.output is None:
        raise ValueError(f"{task.entity_id}: a failed outcome has no output row")
    row: dict[str, object] = {id_column(task.entity): task.entity_id, **outcome.output}
    if task.entity is EntityKind.USER:
        if task.cutoff is None:
            raise ValueError(f"{task.entity_id}: a user task carries its run's cut-off")
        row["cutoff"] = task.cutoff
    row.update(
        generator_kind=prov.generator_kind.value,
        model=prov.model,
        prompt_version=prov.prompt_version,
        input_hash=task.input_hash,
        cache_key=task_cache_key(task, prov),
        generated_at=at,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        cost_usd=outcome.cost_usd,
        stale=False,
    )
    return row


def failure_row(task: GenerationTask, outcome: GenerationOutcome, prov: Provenance, at: dt.datetime) -> dict[str, object]:
    """One failure row from a failed outcome."""
    return {
        id_column(task.entity): task.entity_id,
        "generator_kind": prov.generator_kind.value,
        "model": prov.model,
        "prompt_version": prov.prompt_version,
        "input_hash": task.input_hash,
        "failure_kind": (outcome.failure_kind.value if outcome.failure_kind else "unknown"),
        "error": redact_secrets(outcome.error) or "unknown error",
        "attempts": outcome.attempts,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "cost_usd": outcome.cost_usd,
        "failed_at": at,
    }


def rows_table(contract: TableContract, rows: Sequence[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=contract.schema)


@dataclass(frozen=True)
class GenerationPlan:
    """What a run must generate and what it keeps."""

    todo: list[GenerationTask]
    kept: pa.Table  # stored rows still valid for current tasks (their cache key matches)

    @property
    def cached(self) -> int:
        return self.kept.num_rows


def task_cache_key(task: GenerationTask, prov: Provenance) -> str:
    return cache_key(task.input_hash, prov.prompt_version, prov.model, prov.settings)


def plan_generation(tasks: Sequence[GenerationTask], stored: Iterable[pa.Table], prov: Provenance) -> GenerationPlan:
    """Split ``tasks`` into those to generate and the stored rows that already answer the rest.

    Args:
        tasks: Current tasks (one per entity).
        stored: Tables in the entity's output contract: the table of record and any checkpoints of
            an interrupted run. A row answers a task when its entity id and cache key both match.
        prov: Generator and prompt of this run.
    """
    if not tasks:
        raise ValueError("nothing to plan: no tasks")
    entity = tasks[0].entity
    contract = OUTPUT_CONTRACTS[entity]
    wanted = {t.entity_id: task_cache_key(t, prov) for t in tasks}
    parts = [t.select(contract.schema.names).cast(contract.schema) for t in stored if t.num_rows]
    kept = contract.schema.empty_table()
    if parts:
        pool = pa.concat_tables(parts)
        ids, keys = pool[id_column(entity)].to_pylist(), pool["cache_key"].to_pylist()
        first: dict[str, int] = {}
        for i, (eid, key) in enumerate(zip(ids, keys, strict=True)):
            if wanted.get(eid) == key and eid not in first:
                first[eid] = i
        kept = pool.take(pa.array(sorted(first.values()), pa.int64()))
    done = set(kept[id_column(entity)].to_pylist())
    return GenerationPlan(todo=[t for t in tasks if t.entity_id not in done], kept=kept)


def fold_outputs(
    entity: EntityKind,
    parts: Iterable[pa.Table],
    current_keys: dict[str, str],
    previous: pa.Table | None = None,
    cutoff: dt.datetime | None = None,
) -> pa.Table:
    """The table of record: one row per current entity whose cache key matches, sorted by id.

    Rows of entities no longer present, or generated for an older input, prompt, model or settings,
    are dropped, except that a current entity with no matching row keeps its row of ``previous`` (the
    stored table), marked ``stale``: a failed regeneration never empties what was there. A stale user
    profile is kept only if it was built with a cut-off no later than ``cutoff`` (it must not carry
    later history into an earlier run).
    """
    contract = OUTPUT_CONTRACTS[entity]
    col = id_column(entity)
    chosen: dict[str, dict[str, object]] = {}
    for part in parts:
        for row in part.select(contract.schema.names).to_pylist():
            eid = row[col]
            if current_keys.get(eid) == row["cache_key"] and eid not in chosen:
                chosen[eid] = {**row, "stale": False}
    if previous is not None and previous.num_rows:
        for row in previous.select(contract.schema.names).to_pylist():
            eid = row[col]
            if eid in current_keys and eid not in chosen:
                if entity is EntityKind.USER and cutoff is not None and row["cutoff"] > cutoff:
                    continue
                chosen[eid] = {**row, "stale": True}
    return rows_table(contract, [chosen[k] for k in sorted(chosen)])


def fresh_ids(entity: EntityKind, outputs: pa.Table) -> set[str]:
    """Entities whose row was generated for their current input (not kept as ``stale``)."""
    stale = outputs["stale"].to_pylist()
    return {e for e, s in zip(outputs[id_column(entity)].to_pylist(), stale, strict=True) if not s}


def fold_failures(entity: EntityKind, parts: Iterable[pa.Table], succeeded: set[str], current: set[str]) -> pa.Table:
    """Failures of current entities that have no output, latest per entity, sorted by id."""
    contract = FAILURE_CONTRACTS[entity]
    col = id_column(entity)
    latest: dict[str, dict[str, object]] = {}
    for part in parts:
        for row in part.select(contract.schema.names).to_pylist():
            eid = row[col]
            if eid in current and eid not in succeeded and (eid not in latest or row["failed_at"] >= latest[eid]["failed_at"]):
                latest[eid] = row
    return rows_table(contract, [latest[k] for k in sorted(latest)])


# --- embeddings -----------------------------------------------------------------------------------------


def texts_to_embed(entity: EntityKind, generated: pa.Table, text_column: str) -> pa.Table:
    """``(<entity>_id, text, text_hash)`` of every generated row, sorted by id."""
    from transforms.enrichment.embedding import text_hash

    col = id_column(entity)
    ids = generated[col].to_pylist()
    texts = generated[text_column].to_pylist()
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    return pa.table(
        {
            col: pa.array([ids[i] for i in order], pa.string()),
            "text": pa.array([texts[i] for i in order], pa.string()),
            "text_hash": pa.array([text_hash(texts[i]) for i in order], pa.string()),
        }
    )


def cached_vectors(stored: Iterable[pa.Table], model: str) -> dict[str, np.ndarray]:
    """text_hash -> vector from stored embedding tables made with ``model``."""
    out: dict[str, np.ndarray] = {}
    for table in stored:
        if table.num_rows == 0:
            continue
        same = table.filter(pc.equal(table["model"], model))
        if same.num_rows == 0:
            continue
        dim = same.schema.field("embedding").type.list_size
        flat = same["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        vectors = flat.reshape(-1, dim).astype(np.float32, copy=False)
        for h, v in zip(same["text_hash"].to_pylist(), vectors, strict=True):
            out.setdefault(h, v)
    return out


def fold_embeddings(entity: EntityKind, wanted: pa.Table, vectors: dict[str, np.ndarray], model: str, dim: int) -> pa.Table:
    """The embeddings table of record for ``wanted`` (from :func:`texts_to_embed`), sorted by id.

    Raises:
        KeyError: a wanted text has no vector (the run lost work: never written silently).
    """
    hashes = wanted["text_hash"].to_pylist()
    missing = [h for h in hashes if h not in vectors]
    if missing:
        raise KeyError(f"{len(missing)} texts have no embedding, e.g. text_hash {missing[0]}")
    matrix = np.stack([vectors[h] for h in hashes]) if hashes else np.zeros((0, dim), np.float32)
    table = embeddings_table(entity, wanted[id_column(entity)].to_pylist(), matrix, hashes, model)
    return table.cast(embedding_contract(entity.value, dim).schema)
