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
    residual_before_level,
    train_codebook,
)
from transforms.semantic_ids.config import Disambiguation, SemanticIdConfig
from transforms.semantic_ids.tokens import codes_list_array, codes_matrix, semantic_id_strings
from warehouse.contracts import (
    SEMANTIC_IDS_ID_LOOKUP,
    SEMANTIC_IDS_ID_MAPPING,
    TableContract,
    item_semantic_ids_contract,
    semantic_id_code_columns,
)

REASSIGN_SINKHORN_ITERATIONS = 50
REASSIGN_TEMPERATURE = 0.1  # share of the mean cost spread within a group


class SemanticIdCapacityError(ValueError):
    """A prefix has more items than free last-level codes (``REASSIGN_LAST`` only)."""


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
    existing = contract.schema.empty_table() if existing is None else existing
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
        full, collided = _extra_level(existing_codes, quantized.codes)
        reassigned = 0
    else:
        full, collided, reassigned = _reassign_last(codebook, existing_codes, quantized.codes, new_x)
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
    return pa.table(columns).cast(contract.schema)


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


# --- disambiguation ------------------------------------------------------------------------------------


def _extra_level(existing: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, int]:
    """Append the disambiguating code: next free rank within each group of equal codes."""
    m, levels = new.shape
    if m == 0:
        return np.zeros((0, levels + 1), np.int32), 0
    prefixes = np.concatenate([existing[:, :levels], new])
    is_new = np.concatenate([np.zeros(len(existing), bool), np.ones(m, bool)])
    rank = np.concatenate([np.zeros(len(existing), np.int64), np.arange(m)])
    taken = np.concatenate([existing[:, levels].astype(np.int64), np.full(m, -1)])
    order = np.lexsort((rank, is_new, *prefixes.T[::-1]))
    group, starts = sorted_row_groups(prefixes[order])
    new_sorted = is_new[order]
    group_max = np.maximum.reduceat(taken[order], starts)
    new_before = np.cumsum(new_sorted) - new_sorted  # new rows before this one, overall
    rank_in_group = new_before - new_before[starts][group]
    code = group_max[group] + 1 + rank_in_group
    sizes = np.diff(np.append(starts, len(order)))
    extra = np.empty(m, np.int64)
    shared = np.empty(m, bool)
    extra[rank[order][new_sorted]] = code[new_sorted]
    shared[rank[order][new_sorted]] = sizes[group][new_sorted] > 1
    return np.column_stack([new, extra]).astype(np.int32), int(shared.sum())


def _reassign_last(
    codebook: Codebook, existing: np.ndarray, new: np.ndarray, new_x: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """Resolve collisions by moving items to free codes of the last level (see module docstring)."""
    m, levels = new.shape
    out = new.copy()
    if m == 0:
        return out, 0, 0
    last = levels - 1
    full = np.concatenate([existing, new])
    is_new = np.concatenate([np.zeros(len(existing), bool), np.ones(m, bool)])
    rank = np.concatenate([np.zeros(len(existing), np.int64), np.arange(m)])
    order = np.lexsort((rank, is_new, *full.T[::-1]))
    group, starts = sorted_row_groups(full[order])
    sizes = np.diff(np.append(starts, len(order)))
    shared_sorted = sizes[group] > 1
    new_sorted = is_new[order]
    collided_new = rank[order][new_sorted & shared_sorted]  # indices into ``new``
    if len(collided_new) == 0:
        return out, 0, 0
    # Distance of each collided new item to the code it wanted: the closest keeps a free code.
    residual = residual_before_level(codebook, new_x[collided_new], new[collided_new], last)
    centroids, bias = codebook.centroids[last], codebook.biases[last]
    wanted = centroids[new[collided_new, last]]
    cost = np.full(m, np.inf)
    cost[collided_new] = np.einsum("ij,ij->i", residual - wanted, residual - wanted)
    residual_of = dict(zip(collided_new.tolist(), residual, strict=True))
    cost_all = np.concatenate([np.full(len(existing), -np.inf), cost])  # existing holders always keep
    order = np.lexsort((rank, cost_all, *full.T[::-1]))
    group, starts = sorted_row_groups(full[order])
    first = np.zeros(len(order), bool)
    first[starts] = True
    displaced = np.sort(rank[order][is_new[order] & ~first])
    if len(displaced) == 0:
        return out, len(collided_new), 0
    # Free codes per prefix of the first L-1 levels, over every item that keeps its code.
    keeps = np.ones(len(full), bool)
    keeps[len(existing) + displaced] = False
    prefix_of = full[:, :last]
    k = codebook.codes_per_level
    moving_prefix = new[displaced, :last]
    p_order = np.lexsort((displaced, *moving_prefix.T[::-1]))
    _p_group, p_starts = sorted_row_groups(moving_prefix[p_order])
    holders = np.flatnonzero(keeps)
    h_order = holders[np.lexsort((full[holders, last], *prefix_of[holders].T[::-1]))] if len(holders) else holders
    for g, start in enumerate(p_starts):
        stop = p_starts[g + 1] if g + 1 < len(p_starts) else len(p_order)
        members = displaced[p_order[start:stop]]
        prefix = new[members[0], :last]
        taken = _codes_with_prefix(h_order, prefix_of, full[:, last], prefix)
        free = np.setdiff1d(np.arange(k), taken)
        if len(free) < len(members):
            raise SemanticIdCapacityError(
                f"prefix {tuple(int(c) for c in prefix)} needs {len(members)} more last-level codes but only "
                f"{len(free)} of {k} are free; use disambiguation=extra_level or more codes_per_level"
            )
        rows = np.stack([residual_of[int(i)] for i in members])
        chosen = _sinkhorn_match(rows, centroids[free], bias[free])
        out[members, last] = free[chosen]
    return out, len(collided_new), len(displaced)


def _codes_with_prefix(order: np.ndarray, prefix_of: np.ndarray, last_codes: np.ndarray, prefix: np.ndarray) -> np.ndarray:
    """Last-level codes of the rows ``order`` (sorted by prefix) whose prefix equals ``prefix``."""
    lo, hi = 0, len(order)
    for level, code in enumerate(prefix):
        column = prefix_of[order[lo:hi], level]
        lo, hi = lo + int(np.searchsorted(column, code, "left")), lo + int(np.searchsorted(column, code, "right"))
        if lo == hi:
            break
    return last_codes[order[lo:hi]]


def _sinkhorn_match(rows: np.ndarray, centroids: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Distinct columns for ``rows`` (len(rows) <= len(centroids)): a Sinkhorn plan, rounded greedily.

    The plan has unit row sums and equal column sums, so items that all prefer one code are spread
    over the codes nearest to them; rounding takes the largest plan entries first and never gives a
    code twice.
    """
    r, f = len(rows), len(centroids)
    cost = (rows @ centroids.T) * -2.0 + np.einsum("ij,ij->i", centroids, centroids) - bias
    cost = cost.astype(np.float64) + np.einsum("ij,ij->i", rows, rows)[:, None]
    cost -= cost.min(axis=1, keepdims=True)
    eps = max(float(cost.mean()) * REASSIGN_TEMPERATURE, 1e-12)
    kernel = np.exp(-cost / eps)
    v = np.ones(f)
    for _ in range(REASSIGN_SINKHORN_ITERATIONS):
        u = 1.0 / np.maximum(kernel @ v, 1e-300)
        v = (r / f) / np.maximum(kernel.T @ u, 1e-300)
    plan = u[:, None] * kernel * v[None, :]
    # Largest entries first; ties by (row, column) so the rounding is deterministic.
    flat = np.lexsort((np.arange(r * f), -plan.ravel()))
    chosen = np.full(r, -1, np.int64)
    used = np.zeros(f, bool)
    for pos in flat:
        i, j = divmod(int(pos), f)
        if chosen[i] < 0 and not used[j]:
            chosen[i], used[j] = j, True
            if (chosen >= 0).all():
                break
    return chosen


def sorted_row_groups(sorted_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group number of each row of a lexicographically sorted matrix, and each group's first row."""
    n = len(sorted_rows)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.ones(n, bool)
    if sorted_rows.shape[1]:
        change[1:] = np.any(sorted_rows[1:] != sorted_rows[:-1], axis=1)
    else:
        change[1:] = False
    starts = np.flatnonzero(change)
    return np.cumsum(change) - 1, starts


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
