"""What one run of the semantic-ID layer decides, as plain functions over tables already read.

::

    codebooks:          no version, or rebuild -> train_next_version (items available before the cut-off)
                        else                   -> keep the stored version (config_differs: warn only)
    item_semantic_ids:  update_semantic_ids(codebook, embeddings, stored IDs)
                          no stored IDs          -> full_build
                          same codebook version  -> incremental (existing IDs kept, new items encoded)
                          older version          -> rebuild (everything re-encoded, old -> new mapping)

The Dagster assets (``assets/semantic_ids.py``) read the tables, call these, write and report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.semantic_ids.assign import (
    SemanticIdAssignment,
    assign_semantic_ids,
    contract_for_codebook,
    id_mapping,
    with_source_column,
)
from transforms.semantic_ids.codebook import Codebook, quantize, train_codebook
from transforms.semantic_ids.config import SemanticIdConfig
from transforms.semantic_ids.inputs import (
    EmbeddingSource,
    ItemEmbeddings,
    SemanticIdInputsError,
    TrainingRows,
    training_rows,
)
from transforms.semantic_ids.metrics import SemanticIdReport, semantic_id_report
from transforms.semantic_ids.tokens import codes_matrix

EXAMPLES = 10  # offending ids listed in metadata


def config_differs(stored: Codebook, wanted: SemanticIdConfig) -> bool:
    """Whether a run asks for another config than the stored version was trained with.

    A ``wanted`` without ``train_end`` compares without it: the default cut-off moves with the data, so
    only an explicitly configured one is compared.
    """
    stored_config = stored.config if wanted.train_end is not None else dataclasses.replace(stored.config, train_end=None)
    return stored_config != wanted


def cutoff_conflict(stored: Codebook, run_cutoff: dt.datetime) -> str | None:
    """Why ``stored`` must not serve a run whose training cut-off is ``run_cutoff`` (None: it may).

    A codebook trained with a later cut-off (or without one) has item embeddings of the run's future
    in its geometry: reusing it for an earlier cut-off (a backtest) leaks them. This is compared
    whether the cut-off was configured or is the default rule's.
    """
    trained = stored.config.train_end_time
    if trained is not None and trained <= run_cutoff:
        return None
    when = "without a cut-off (on every item)" if trained is None else f"with the cut-off {trained.isoformat()}"
    return (
        f"codebook v{stored.version} was trained {when}, later than this run's cut-off {run_cutoff.isoformat()}: "
        "its codes were shaped by items of this run's future; materialize semantic_ids/codebooks with rebuild: true "
        "to train a version on this cut-off"
    )


@dataclass(frozen=True)
class TrainedVersion:
    """A newly trained codebook version, what it trained on, and how well it encodes every item."""

    codebook: Codebook
    rows: TrainingRows
    report: SemanticIdReport
    items: int

    def to_metadata(self) -> dict[str, Any]:
        codebook, rows = self.codebook, self.rows
        return {
            "action": "rebuilt" if codebook.parent_version is not None else "trained",
            "version": codebook.version,
            "parent_version": codebook.parent_version,
            "quantizer": str(codebook.config.quantizer),
            "embedding_model": codebook.embedding_model,
            "train_end": codebook.config.train_end,
            "training_items": rows.eligible,  # available before the cut-off
            "trained_items": codebook.trained_items,  # of those, the training sample
            "items_after_cutoff": int(rows.known.sum()) - rows.eligible,
            "items_not_in_catalogue": rows.unknown_items,
            "items": self.items,
            **self.report.to_metadata(),
        }


def train_next_version(
    embeddings: ItemEmbeddings, items: pa.Table, config: SemanticIdConfig, cutoff: dt.datetime, current: int | None
) -> TrainedVersion:
    """Train the version after ``current`` on the items available before ``cutoff``; encode every item.

    Rows train in item-id order, so the codebook does not depend on storage order.

    Args:
        embeddings: Every embedded item.
        items: The catalogue (``item_id``, ``available_from``): items it does not list are not trained on.
        config: The version's config (its ``train_end`` is ``cutoff``).
        cutoff: The training cut-off.
        current: The latest stored version (None on a first run).

    Raises:
        InsufficientTrainingItemsError: Fewer items are available before the cut-off than a level has codes.
    """
    vectors = embeddings.vectors
    order = pc.sort_indices(embeddings.item_ids).to_numpy()
    seen_before = None
    if embeddings.sources is not None and embeddings.source_counts().get(EmbeddingSource.TEXT.value, 0) == 0:
        # No text anywhere: the codebook's space is co-occurrence, learned from the training window only.
        seen_before = pc.equal(embeddings.sources, EmbeddingSource.COOCCURRENCE.value).to_numpy(zero_copy_only=False)[order]
    rows = training_rows(items, embeddings.item_ids.take(pa.array(order)), cutoff, seen_before)
    codebook = train_codebook(
        vectors[order][rows.known], config, version=(current or 0) + 1, parent_version=current,
        embedding_model=embeddings.model, available_from=rows.available_from,
    )
    quantized = quantize(codebook, vectors)
    report = semantic_id_report(
        quantized.codes, codebook.levels, codebook.codes_per_level,
        sq_error=quantized.sq_error, sq_norm=np.einsum("ij,ij->i", vectors, vectors),
    )
    return TrainedVersion(codebook, rows, report, len(vectors))


@dataclass(frozen=True)
class IdUpdate:
    """Every item's ID after a run, and what the blocking checks found.

    Attributes:
        codebook: The version the IDs belong to.
        assignment: The IDs and what was encoded.
        action: ``full_build``, ``incremental`` or ``rebuild``.
        mapping: Old -> new IDs after a rebuild, else None.
        stale_ids: Items that kept an ID although their embedded text changed since.
        duplicates: Rows sharing a full ID with another row (must be 0), and examples.
        changed: Items that had an ID in this version and lost or changed it (must be 0), and examples.
    """

    codebook: Codebook
    assignment: SemanticIdAssignment
    action: str
    mapping: pa.Table | None
    stale_ids: int
    duplicates: int
    duplicate_examples: list[str]
    changed: int
    changed_examples: list[str]

    @property
    def passed(self) -> bool:
        """Whether the IDs may be written."""
        return self.duplicates == 0 and self.changed == 0

    def report(self, categories: list[str | None] | None = None) -> SemanticIdReport:
        """Utilization, collisions and (with ``categories``, one per row) purity of the full IDs."""
        table, codebook = self.assignment.table, self.codebook
        codes = codes_matrix(table["codes"], codebook.id_length)
        return semantic_id_report(codes, codebook.levels, codebook.codes_per_level, categories=categories)

    def to_metadata(self, report: SemanticIdReport) -> dict[str, Any]:
        assignment = self.assignment
        new_error = assignment.quantized.sq_error
        return {
            "action": self.action,
            "written": self.passed,
            "codebook_version": self.codebook.version,
            "new_items": assignment.new_items,
            "kept_items": assignment.kept_items,
            "collided_new_items": assignment.collided,
            "reassigned_new_items": assignment.reassigned,
            "disambiguated_share": round(assignment.disambiguated_share, 6),
            "mapping_rows": self.mapping.num_rows if self.mapping is not None else 0,
            "stale_ids": self.stale_ids,
            "new_items_reconstruction_mse": round(float(new_error.mean()), 6) if len(new_error) else 0.0,
            "dagster/row_count": assignment.table.num_rows,
            **report.to_metadata(),
        }


def update_semantic_ids(codebook: Codebook, embeddings: ItemEmbeddings, previous: pa.Table | None) -> IdUpdate:
    """Give new items IDs with ``codebook``; keep existing IDs; remap everything after a rebuild.

    Args:
        codebook: The latest stored version.
        embeddings: Every embedded item.
        previous: The stored IDs in their own layout (None before the first run).

    Raises:
        SemanticIdInputsError: The embeddings come from another model than the codebook encodes, or
            the stored IDs are from a newer version than ``codebook``.
    """
    item_ids, vectors, hashes, model = embeddings.item_ids, embeddings.vectors, embeddings.text_hashes, embeddings.model
    if codebook.embedding_model and model and model != codebook.embedding_model:
        raise SemanticIdInputsError(
            f"item embeddings now come from {model!r} but codebook v{codebook.version} encodes {codebook.embedding_model!r}: "
            "materialize semantic_ids/codebooks with rebuild: true"
        )
    previous_version = None if previous is None or previous.num_rows == 0 else int(pc.max(previous["codebook_version"]).as_py())
    if previous_version is not None and previous_version > codebook.version:
        raise SemanticIdInputsError(
            f"stored IDs are from codebook v{previous_version}, newer than the latest stored codebook v{codebook.version}"
        )
    mapping: pa.Table | None = None
    stale, changed, changed_examples = 0, 0, list[str]()
    if previous is not None and previous_version == codebook.version:
        action = "incremental"
        existing = with_source_column(previous).cast(contract_for_codebook(codebook).schema)
        assignment = assign_semantic_ids(codebook, item_ids, vectors, existing=existing, text_hashes=hashes)
        now = dict(zip(item_ids.to_pylist(), hashes.to_pylist(), strict=True))
        stale = sum(
            1 for i, h in zip(existing["item_id"].to_pylist(), existing["text_hash"].to_pylist(), strict=True)
            if h is not None and now.get(i, h) != h
        )
        changed, changed_examples = _changed_ids(previous, assignment.table)
    else:
        assignment = assign_semantic_ids(codebook, item_ids, vectors, text_hashes=hashes)
        action = "full_build" if previous is None or previous_version is None else "rebuild"
        if previous is not None and previous_version is not None:
            mapping = id_mapping(previous, assignment.table, previous_version, codebook.version)
    assignment = dataclasses.replace(assignment, table=_mark_sources(assignment.table, embeddings))
    duplicates, duplicate_examples = _duplicate_ids(assignment.table)
    return IdUpdate(
        codebook, assignment, action, mapping, stale, duplicates, duplicate_examples, changed, changed_examples
    )


def _mark_sources(table: pa.Table, embeddings: ItemEmbeddings) -> pa.Table:
    """``embedding_source`` of every row: a kept row keeps its stored source; a new row takes its
    vector's source; rows from before the column existed were encoded from text."""
    now = dict(
        zip(embeddings.item_ids.to_pylist(), embeddings.sources.to_pylist(), strict=True)
    ) if embeddings.sources is not None else {}
    stored = table["embedding_source"].to_pylist()
    filled = [s or now.get(i) or EmbeddingSource.TEXT.value for i, s in zip(table["item_id"].to_pylist(), stored, strict=True)]
    at = table.schema.get_field_index("embedding_source")
    return table.set_column(at, table.schema.field(at), pa.array(filled, pa.string()))


def _changed_ids(before: pa.Table, after: pa.Table) -> tuple[int, list[str]]:
    """Existing items whose ID is missing from or different in ``after``."""
    now = dict(zip(after["item_id"].to_pylist(), after["semantic_id"].to_pylist(), strict=True))
    changed = [i for i, s in zip(before["item_id"].to_pylist(), before["semantic_id"].to_pylist(), strict=True) if now.get(i) != s]
    return len(changed), changed[:EXAMPLES]


def _duplicate_ids(table: pa.Table) -> tuple[int, list[str]]:
    counts = pc.value_counts(table["semantic_id"])
    repeated = [c["values"] for c in counts.to_pylist() if c["counts"] > 1]
    return table.num_rows - len(counts), repeated[:EXAMPLES]
