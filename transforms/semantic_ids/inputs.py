"""The tables a semantic-ID run reads, as the arrays the codebook needs.

``enrichment_item_embeddings`` becomes one ``(n, dim)`` matrix of one embedding model; ``raw_items``
says which of those items a codebook may train on (available before the training cut-off) and each
item's top category (for purity metadata).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.semantic_ids.codebook import available_before


class SemanticIdInputsError(ValueError):
    """The inputs of a run do not fit together (mixed embedding models, a codebook of another model,
    stored IDs newer than the codebook)."""


@dataclass(frozen=True)
class ItemEmbeddings:
    """Item embeddings in storage order.

    Attributes:
        item_ids: One id per row.
        vectors: ``(n, dim)`` float32.
        text_hashes: Hash of the text each row embeds.
        model: The embedding model (None when the table is empty).
    """

    item_ids: pa.Array
    vectors: np.ndarray
    text_hashes: pa.Array
    model: str | None


def item_embeddings(table: pa.Table) -> ItemEmbeddings:
    """Split a stored embeddings table (any ``dim``) into ids, the vector matrix, text hashes and model.

    Raises:
        SemanticIdInputsError: The rows come from more than one model.
    """
    dim = table.schema.field("embedding").type.list_size
    vectors = table["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    models = pc.unique(table["model"]).to_pylist()
    if len(models) > 1:
        raise SemanticIdInputsError(f"item embeddings mix models {models}: one codebook cannot encode several spaces")
    return ItemEmbeddings(table["item_id"], vectors, table["text_hash"], models[0] if models else None)


@dataclass(frozen=True)
class TrainingRows:
    """Which embedded items a codebook may train on (rows in the order of the ids given).

    Attributes:
        train_end: The cut-off, ISO-8601.
        known: bool per row: the catalogue lists the item.
        available_from: Per known row; null = available from the start.
        unknown_items: Embedded items absent from ``raw_items`` (not trained on).
        eligible: Items available before the cut-off: what the codebook may train on.
    """

    train_end: str
    known: np.ndarray
    available_from: pa.Array
    unknown_items: int
    eligible: int


def training_rows(items: pa.Table, item_ids: pa.Array | pa.ChunkedArray, cutoff: dt.datetime) -> TrainingRows:
    """Each item's availability from the catalogue ``items`` (``item_id``, ``available_from``)."""
    items = items.select(["item_id", "available_from"]).combine_chunks()
    if isinstance(item_ids, pa.ChunkedArray):
        item_ids = item_ids.combine_chunks()
    position = pc.index_in(item_ids, value_set=items["item_id"])
    known = pc.is_valid(position).to_numpy(zero_copy_only=False)
    available = items["available_from"].take(position.filter(pc.is_valid(position)))
    return TrainingRows(
        train_end=cutoff.isoformat(),
        known=known,
        available_from=available,
        unknown_items=int((~known).sum()),
        eligible=int(available_before(available, cutoff).sum()),
    )


def top_categories(items: pa.Table | None, item_ids: list[str]) -> list[str | None] | None:
    """Each item's top category (first of ``categories``) for purity metadata; None without a catalogue."""
    if items is None:
        return None
    rows = items.select(["item_id", "categories"]).to_pylist()
    top = {r["item_id"]: (r["categories"] or [None])[0] for r in rows}
    return [top.get(i) for i in item_ids]
