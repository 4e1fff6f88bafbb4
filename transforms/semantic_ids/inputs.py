"""The tables a semantic-ID run reads, as the arrays the codebook needs.

``enrichment_item_embeddings`` becomes one ``(n, dim)`` matrix of one embedding model; ``raw_items``
says which of those items a codebook may train on (available before the training cut-off) and each
item's top category (for purity metadata).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.semantic_ids.codebook import available_before
from transforms.semantic_ids.cooccurrence import CooccurrenceConfig, cooccurrence_embeddings, id_hash_vectors


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
        sources: Per row, where its vector comes from (:class:`EmbeddingSource`); None: all text.
    """

    item_ids: pa.Array
    vectors: np.ndarray
    text_hashes: pa.Array
    model: str | None
    sources: pa.Array | None = None

    def source_counts(self) -> dict[str, int]:
        """Rows per embedding source."""
        if self.sources is None:
            return {EmbeddingSource.TEXT.value: len(self.item_ids)}
        return {r["values"]: r["counts"] for r in pc.value_counts(self.sources).to_pylist()}

    @property
    def text_item_ids(self) -> pa.Array:
        """The items whose vector embeds their text."""
        if self.sources is None:
            return self.item_ids
        return self.item_ids.filter(pc.equal(self.sources, EmbeddingSource.TEXT.value))

    @property
    def without_content_share(self) -> float:
        """Share of items whose vector does not come from catalog text."""
        n = len(self.item_ids)
        return (n - self.source_counts().get(EmbeddingSource.TEXT.value, 0)) / n if n else 0.0


class EmbeddingSource(StrEnum):
    """Where an item's vector (and so its semantic ID) comes from: the ``embedding_source`` column."""

    TEXT = "text"  # the embedding of its generated description
    COOCCURRENCE = "cooccurrence"  # co-occurrence in the training window (mapped into the text space when there is one)
    ID_HASH = "id_hash"  # neither: a unit vector seeded by its id (unique, but carries no meaning)


RIDGE = 1e-2  # regularisation of the map from co-occurrence space to text space


def with_items_without_text(
    text: ItemEmbeddings | None, events: pa.Table | None, cutoff: dt.datetime, config: CooccurrenceConfig = CooccurrenceConfig()
) -> ItemEmbeddings:
    """Every item of the catalog embeddings and the event logs, each with a vector and its source.

    Items with text keep their text embedding. The others get their co-occurrence embedding from
    the events before ``cutoff`` (:func:`cooccurrence_embeddings`): mapped into the text space by a
    ridge regression fitted on the items that have both, or, when no item has text (an events-only
    dataset), used as they are, in a space named by ``config.model``. Items with neither (seen only
    after the cut-off, or alone in every history) get :func:`id_hash_vectors`.

    Raises:
        SemanticIdInputsError: There is no item at all, or no text and no co-occurrence to learn from.
    """
    has_text = text is not None and len(text.item_ids) > 0
    text_ids = text.item_ids.to_pylist() if has_text else []  # type: ignore[union-attr]
    logged = [] if events is None or events.num_rows == 0 else pc.unique(events["item_id"].drop_null()).to_pylist()
    known = set(text_ids)
    missing = sorted(set(logged) - known)
    if has_text and not missing:
        return text  # type: ignore[return-value]
    co_ids, co_vectors = cooccurrence_embeddings(events, cutoff, config) if events is not None else ([], np.zeros((0, 0)))
    co_at = {item: i for i, item in enumerate(co_ids)}
    if has_text:
        assert text is not None
        dim, model = text.vectors.shape[1], text.model
        both = [i for i, item in enumerate(text_ids) if item in co_at]
        mapped = [item for item in missing if item in co_at] if len(both) >= 2 else []
        vectors = np.zeros((len(mapped), dim), np.float32)
        if mapped:
            a = co_vectors[[co_at[text_ids[i]] for i in both]].astype(np.float64)
            w = np.linalg.solve(a.T @ a + RIDGE * np.eye(a.shape[1]), a.T @ text.vectors[both].astype(np.float64))
            projected = co_vectors[[co_at[item] for item in mapped]] @ w
            norms = np.linalg.norm(projected, axis=1, keepdims=True)
            vectors = (projected / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    else:
        if not co_ids:
            raise SemanticIdInputsError(
                "no item has catalog text and no two items co-occur in a user history before the cut-off: "
                "there is nothing to learn item semantic IDs from"
            )
        dim, model, mapped = co_vectors.shape[1], config.model, [i for i in missing if i in co_at]
        vectors = co_vectors[[co_at[item] for item in mapped]]
    hashed = [item for item in missing if item not in set(mapped)]
    ids = [*text_ids, *mapped, *hashed]
    sources = [EmbeddingSource.TEXT] * len(text_ids) + [EmbeddingSource.COOCCURRENCE] * len(mapped) + [EmbeddingSource.ID_HASH] * len(hashed)
    parts = [text.vectors] if has_text else []  # type: ignore[union-attr]
    matrix = np.concatenate([*parts, vectors, id_hash_vectors(hashed, dim, model or "")]) if ids else np.zeros((0, dim), np.float32)
    hashes = text.text_hashes.to_pylist() if has_text else []  # type: ignore[union-attr]
    return ItemEmbeddings(
        item_ids=pa.array(ids, pa.string()),
        vectors=np.ascontiguousarray(matrix, np.float32),
        text_hashes=pa.array(hashes + [None] * (len(ids) - len(hashes)), pa.string()),
        model=model,
        sources=pa.array([s.value for s in sources], pa.string()),
    )


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


def with_logged_items(items: pa.Table | None, id_map: pa.Table | None, described: pa.Array) -> pa.Table:
    """The catalogue ``items`` (``item_id``, ``available_from``) plus each ``described`` item (one with a text
    embedding) that it does not list, available from its ``first_seen`` in the id map (``core/id_maps``:
    ``entity``, ``external_id``, ``first_seen``, the first time ingestion saw it in any log).

    A dataset of reviews without metadata (Amazon 2014's 5-core files) describes its items from their reviews
    and has no catalogue: its items are then available from their first review or event, so that the codebook
    trains only on items seen before the cut-off, as it does with a catalogue's ``available_from``.
    """
    listed = (items.select(["item_id", "available_from"]) if items is not None
              else pa.table({"item_id": pa.array([], pa.string()), "available_from": pa.array([], pa.timestamp("us", "UTC"))}))
    if id_map is None or id_map.num_rows == 0:
        return listed
    unlisted = id_map.filter(pc.and_(pc.equal(id_map["entity"], "item"), pc.and_(
        pc.is_in(id_map["external_id"], value_set=described.cast(pa.string())),
        pc.invert(pc.is_in(id_map["external_id"], value_set=listed["item_id"])))))
    extra = pa.table({"item_id": unlisted["external_id"], "available_from": unlisted["first_seen"]})
    return pa.concat_tables([listed, extra.cast(listed.schema)]) if extra.num_rows else listed


def training_rows(
    items: pa.Table, item_ids: pa.Array | pa.ChunkedArray, cutoff: dt.datetime, seen_before: np.ndarray | None = None
) -> TrainingRows:
    """Each item's availability from the catalogue ``items`` (``item_id``, ``available_from``).

    ``seen_before`` (row-aligned, optional) marks items the catalogue does not list that may still be
    trained on, available from the start: items whose co-occurrence embedding was learned from the
    training window alone (an events-only dataset's codebook trains on them).
    """
    items = items.select(["item_id", "available_from"]).combine_chunks()
    if isinstance(item_ids, pa.ChunkedArray):
        item_ids = item_ids.combine_chunks()
    position = pc.index_in(item_ids, value_set=items["item_id"])
    in_catalogue = pc.is_valid(position).to_numpy(zero_copy_only=False)
    known = in_catalogue | (seen_before if seen_before is not None else False)
    every = items["available_from"].take(position)  # null where the catalogue does not list the item
    available = every.filter(pa.array(known))
    unknown = int((~in_catalogue).sum())
    return TrainingRows(
        train_end=cutoff.isoformat(),
        known=known,
        available_from=available,
        unknown_items=unknown,
        eligible=int(available_before(available, cutoff).sum()),
    )


def top_categories(items: pa.Table | None, item_ids: list[str]) -> list[str | None] | None:
    """Each item's top category (first of ``categories``) for purity metadata; None without a catalogue."""
    if items is None:
        return None
    rows = items.select(["item_id", "categories"]).to_pylist()
    top = {r["item_id"]: (r["categories"] or [None])[0] for r in rows}
    return [top.get(i) for i in item_ids]
