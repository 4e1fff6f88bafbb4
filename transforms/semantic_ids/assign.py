"""Semantic IDs for items: collision-free, invertible and stable within a codebook version.

Stability contract::

    build (version v)      train codebook v on all items, encode every item, disambiguate
    incremental (same v)   existing rows are returned unchanged; only items without an ID are encoded
                           with codebook v (no retraining); a new item whose codes collide with an
                           existing item's gets the next free disambiguating code
    rebuild (v -> v+1)     an explicit action: train v+1, encode every item afresh, and emit the
                           mapping old ID -> new ID (id_mapping)

Disambiguation, for items whose L quantized codes are equal::

    EXTRA_LEVEL    (12, 7, 201) x3  ->  (12, 7, 201, 0) (12, 7, 201, 1) (12, 7, 201, 2)
                   the extra code is the item's rank in its group, in item-id order, after the
                   codes existing items already hold (max existing + 1, ...)
    REASSIGN_LAST  (12, 7, 201) x3  ->  (12, 7, 201) (12, 7, 88) (12, 7, 140)
                   an existing holder keeps its code, else the new item closest to the centroid;
                   the others move to free last-level codes of their (12, 7) prefix, chosen by a
                   Sinkhorn plan over the distances and rounded greedily (never two on one code)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.semantic_ids.codebook import (
    AvailableFrom,
    Codebook,
    Quantized,
    as_embedding_matrix,
    quantize,
    train_codebook,
)
from transforms.semantic_ids.config import Disambiguation, SemanticIdConfig
from transforms.semantic_ids.disambiguate import (
    extra_level,
    reassign_last,
)
from transforms.semantic_ids.tokens import codes_list_array, codes_matrix, semantic_id_strings
from warehouse.contracts import (
    SEMANTIC_IDS_ID_LOOKUP,
    SEMANTIC_IDS_ID_MAPPING,
    TableContract,
    item_semantic_ids_contract,
    semantic_id_code_columns,
)


class StaleSemanticIdsError(ValueError):
    """Existing IDs belong to another codebook version than the one asked to extend them."""


@dataclass(frozen=True)
class SemanticIdAssignment:
    """The outcome of assigning IDs.

    Attributes:
        table: Every item's ID (existing rows unchanged, then new ones), sorted by ``item_id``, in the
            layout of :func:`warehouse.contracts.item_semantic_ids_contract`.
        new_items: Items encoded in this run.
        kept_items: Items whose existing ID was kept.
        collided: New items whose quantized codes equal another item's (they needed disambiguation).
        reassigned: New items moved to another last-level code (``REASSIGN_LAST`` only).
        quantized: Codes and reconstruction errors of the new items (in ``item_id`` order).
    """

    table: pa.Table
    new_items: int
    kept_items: int
    collided: int
    reassigned: int
    quantized: Quantized

    @property
    def disambiguated_share(self) -> float:
        """Share of this run's new items that needed disambiguation."""
        return self.collided / self.new_items if self.new_items else 0.0


def contract_for_codebook(codebook: Codebook) -> TableContract:
    """The item_semantic_ids layout for this codebook's ID length."""
    return item_semantic_ids_contract(codebook.id_length)


def build_semantic_ids(
    item_ids: Sequence[str] | pa.Array | pa.ChunkedArray,
    embeddings: np.ndarray,
    config: SemanticIdConfig,
    *,
    version: int = 1,
    parent_version: int | None = None,
    embedding_model: str | None = None,
    text_hashes: Sequence[str | None] | pa.Array | pa.ChunkedArray | None = None,
    available_from: AvailableFrom | None = None,
) -> tuple[Codebook, SemanticIdAssignment]:
    """Train codebook ``version`` and give every item an ID.

    The codebook trains on the items available before ``config.train_end`` (all items when it is
    None; ``available_from`` row-aligned with ``item_ids``, null meaning "from the start"); every
    item, later ones included, is encoded with it. Rows are put in ``item_id`` order before
    training, so the result does not depend on input order.
    """
    ids, x, hashes = _sorted_inputs(item_ids, embeddings, text_hashes)
    available = None
    if available_from is not None:
        available = _aligned_available_from(item_ids, available_from, len(ids))
    codebook = train_codebook(
        x, config, version=version, parent_version=parent_version, embedding_model=embedding_model,
        available_from=available,
    )
    return codebook, assign_semantic_ids(codebook, ids, x, text_hashes=hashes)


def assign_semantic_ids(
    codebook: Codebook,
    item_ids: Sequence[str] | pa.Array | pa.ChunkedArray,
    embeddings: np.ndarray,
    *,
    existing: pa.Table | None = None,
    text_hashes: Sequence[str | None] | pa.Array | pa.ChunkedArray | None = None,
) -> SemanticIdAssignment:
    """Give IDs to the items that have none, with an existing codebook (no retraining).

    Args:
        codebook: The codebook version to encode with.
        item_ids: Items to cover (unique).
        embeddings: Their ``(n, dim)`` embeddings, row-aligned with ``item_ids``.
        existing: IDs assigned earlier with this same codebook version (or None); they are kept as
            they are, including items absent from ``item_ids`` (an ID is never handed to another item).
        text_hashes: Optional hash of each item's embedded text, stored beside its new ID.

    Raises:
        StaleSemanticIdsError: ``existing`` holds IDs of another codebook version.
        SemanticIdCapacityError: ``REASSIGN_LAST`` found a prefix without enough free codes.
    """
    contract = contract_for_codebook(codebook)
    existing = contract.schema.empty_table() if existing is None else with_source_column(existing)
    _check_existing(existing, codebook)
    ids, x, hashes = _sorted_inputs(item_ids, embeddings, text_hashes, codebook.embedding_dim)
    fresh = pc.invert(pc.is_in(ids, value_set=existing["item_id"].combine_chunks()))
    fresh_idx = np.flatnonzero(fresh.to_numpy(zero_copy_only=False))
    everything_new = len(fresh_idx) == len(ids)
    new_ids = ids if everything_new else ids.take(pa.array(fresh_idx, pa.int64()))
    new_x = x if everything_new else x[fresh_idx]  # a full build must not copy the whole matrix
    quantized = quantize(codebook, new_x)
    existing_codes = codes_matrix(existing["codes"], codebook.id_length)
    if codebook.config.disambiguation is Disambiguation.EXTRA_LEVEL:
        full, collided = extra_level(existing_codes, quantized.codes)
        reassigned = 0
    else:
        full, collided, reassigned = reassign_last(codebook, existing_codes, quantized.codes, new_x)
    new_hashes = hashes.take(pa.array(fresh_idx, pa.int64())) if hashes is not None else pa.nulls(len(fresh_idx), pa.string())
    new_rows = ids_table(new_ids, full, codebook.version, new_hashes, contract)
    table = pa.concat_tables([existing.select(contract.schema.names).cast(contract.schema), new_rows])
    table = table.take(pc.sort_indices(table, [("item_id", "ascending")]))
    return SemanticIdAssignment(
        table=table.combine_chunks(),
        new_items=len(fresh_idx),
        kept_items=existing.num_rows,
        collided=collided,
        reassigned=reassigned,
        quantized=quantized,
    )


def rebuild_semantic_ids(
    previous: pa.Table,
    previous_version: int,
    item_ids: Sequence[str] | pa.Array | pa.ChunkedArray,
    embeddings: np.ndarray,
    config: SemanticIdConfig,
    *,
    embedding_model: str | None = None,
    text_hashes: Sequence[str | None] | pa.Array | pa.ChunkedArray | None = None,
    available_from: AvailableFrom | None = None,
) -> tuple[Codebook, SemanticIdAssignment, pa.Table]:
    """The explicit full rebuild: a new codebook version, fresh IDs for every item, and the mapping.

    Returns:
        The new codebook (``previous_version + 1``), the new assignment and the ``id_mapping`` rows.
    """
    codebook, assignment = build_semantic_ids(
        item_ids,
        embeddings,
        config,
        version=previous_version + 1,
        parent_version=previous_version,
        embedding_model=embedding_model,
        text_hashes=text_hashes,
        available_from=available_from,
    )
    return codebook, assignment, id_mapping(previous, assignment.table, previous_version, codebook.version)


def ids_table(
    item_ids: pa.Array, codes: np.ndarray, version: int, text_hashes: pa.Array, contract: TableContract
) -> pa.Table:
    """Rows of the item_semantic_ids table for ``(n, id_length)`` codes."""
    columns: dict[str, pa.Array] = {
        "item_id": item_ids,
        "semantic_id": semantic_id_strings(codes),
        "codes": codes_list_array(codes),
    }
    for level, name in enumerate(semantic_id_code_columns(codes.shape[1])):
        columns[name] = pa.array(np.ascontiguousarray(codes[:, level]), pa.int32())
    columns["codebook_version"] = pa.array(np.full(len(codes), version, np.int32))
    columns["text_hash"] = text_hashes
    columns["embedding_source"] = pa.nulls(len(codes), pa.string())  # set by the caller that knows it
    return pa.table(columns).cast(contract.schema)


def with_source_column(table: pa.Table) -> pa.Table:
    """A stored IDs table written before ``embedding_source`` existed, with the column (null)."""
    if "embedding_source" in table.column_names:
        return table
    return table.append_column("embedding_source", pa.nulls(table.num_rows, pa.string()))


def id_lookup(ids: pa.Table) -> pa.Table:
    """The inverse lookup table (semantic ID -> item), sorted by codes so that a prefix is a range."""
    if ids.num_rows == 0:
        return SEMANTIC_IDS_ID_LOOKUP.schema.empty_table()
    length = len(ids["codes"][0].as_py())
    order = np.lexsort(codes_matrix(ids["codes"], length).T[::-1])
    return ids.select(SEMANTIC_IDS_ID_LOOKUP.schema.names).take(pa.array(order)).cast(SEMANTIC_IDS_ID_LOOKUP.schema)


def id_mapping(old: pa.Table, new: pa.Table, from_version: int, to_version: int) -> pa.Table:
    """Old ID -> new ID for every item in either table (null where an item is on one side only)."""
    # A full outer join by hand: Arrow's hash join does not carry list columns.
    items = pc.unique(pa.concat_arrays([_string_array(old["item_id"]), _string_array(new["item_id"])]))
    items = items.take(pc.sort_indices(items))
    old_at = pc.index_in(items, value_set=_string_array(old["item_id"]))
    new_at = pc.index_in(items, value_set=_string_array(new["item_id"]))
    n = len(items)
    joined = pa.table(
        {
            "from_version": pa.array(np.full(n, from_version, np.int32)),
            "to_version": pa.array(np.full(n, to_version, np.int32)),
            "item_id": items,
            "old_semantic_id": old["semantic_id"].take(old_at),
            "new_semantic_id": new["semantic_id"].take(new_at),
            "old_codes": old["codes"].take(old_at),
            "new_codes": new["codes"].take(new_at),
        }
    )
    return joined.select(SEMANTIC_IDS_ID_MAPPING.schema.names).cast(SEMANTIC_IDS_ID_MAPPING.schema).combine_chunks()


# --- inputs --------------------------------------------------------------------------------------------


def _sorted_inputs(
    item_ids: Sequence[str] | pa.Array | pa.ChunkedArray,
    embeddings: np.ndarray,
    text_hashes: Sequence[str | None] | pa.Array | pa.ChunkedArray | None,
    dim: int | None = None,
) -> tuple[pa.Array, np.ndarray, pa.Array | None]:
    """Validate the inputs and put them in item-id order (so results do not depend on input order)."""
    ids = _string_array(item_ids)
    x = as_embedding_matrix(embeddings, dim)
    if len(ids) != x.shape[0]:
        raise ValueError(f"{len(ids)} item ids but {x.shape[0]} embeddings")
    if ids.null_count:
        raise ValueError("item ids must not be null")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        repeated = [c["values"] for c in counts.to_pylist() if c["counts"] > 1][:5]
        raise ValueError(f"item ids must be unique; repeated: {repeated}")
    hashes = None if text_hashes is None else _string_array(text_hashes)
    if hashes is not None and len(hashes) != len(ids):
        raise ValueError(f"{len(ids)} item ids but {len(hashes)} text hashes")
    order = pc.sort_indices(ids).to_numpy()
    if np.all(order[1:] > order[:-1]):
        return ids, x, hashes
    return ids.take(pa.array(order)), x[order], None if hashes is None else hashes.take(pa.array(order))


def _aligned_available_from(
    item_ids: Sequence[str] | pa.Array | pa.ChunkedArray, available_from: AvailableFrom, n: int
) -> pa.Array:
    """``available_from`` (given in input order) put in the item-id order ``_sorted_inputs`` uses."""
    if isinstance(available_from, pa.ChunkedArray):
        available_from = available_from.combine_chunks()
    arr = available_from if isinstance(available_from, pa.Array) else pa.array(available_from)
    if len(arr) != n:
        raise ValueError(f"{n} item ids but {len(arr)} available_from values")
    return arr.take(pc.sort_indices(_string_array(item_ids)))


def _string_array(values: Sequence[str | None] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    arr = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    return arr.cast(pa.string())


def _check_existing(existing: pa.Table, codebook: Codebook) -> None:
    if existing.num_rows == 0:
        return
    versions = pc.unique(existing["codebook_version"]).to_pylist()
    if versions != [codebook.version]:
        raise StaleSemanticIdsError(
            f"existing semantic IDs are from codebook version(s) {sorted(versions)}, not {codebook.version}; "
            "IDs of another version cannot be extended: run a full rebuild (rebuild_semantic_ids)"
        )
