"""A streaming torch dataset over sequence shards (``warehouse.shards``).

Work is split in two levels, both from the manifest alone (no file is opened to plan an epoch):

* **DDP rank**: rank ``r`` of ``W`` reads shards ``r, r + W, r + 2W, ...`` of the split. The writer
  makes the shard count a multiple of the world size with row counts that differ by at most one, so
  ranks get the same number of rows up to ``shards_per_rank``; :meth:`ShardedSequenceDataset.rows_for_rank`
  gives the exact count (for ``steps_per_epoch`` in DDP, take the minimum over ranks).
* **DataLoader worker**: the rank's row groups are shuffled per epoch (same order in every worker)
  and worker ``w`` of ``K`` takes every ``K``-th one. Each row group is read by exactly one worker
  of one rank, so an epoch yields every row exactly once.

Shuffling is deterministic per ``(seed, epoch, rank, worker)`` and bounded: a worker keeps at most
``buffer_row_groups`` row groups open, each in its own random row order (seeded by the row group's
position, so it is the same whichever thread decodes it), and draws each batch at random across them
(a multivariate hypergeometric draw, in the iterating thread, of how many rows each open group gives).
Background threads decode the next ``read_ahead`` row groups of the worker's (fixed) reading order
while batches are assembled; the read-ahead changes no batch. Memory is one batch plus
``buffer_row_groups + read_ahead`` decoded row groups, whatever the size of the shard set.

Batches are assembled without per-row Python work. When a row group is decoded (on a background thread),
a compiled kernel (numba, ``nogil``) stores its rows in their random order with only their kept (most recent
``max_len``) events, in the output dtypes with ids shifted; the rows a batch takes from a group are then one
contiguous block. A jagged batch copies those blocks; a padded one copies each row into its tensor row
behind zeros, with one more kernel call per row group and batch.

Batch layout (``BatchLayout.PADDED``; item ids shifted by +1 so that 0 is padding; histories keep the
most recent ``max_len`` events and are left-padded so the newest event is always in the last column)::

    user_idx        [B]         int64
    item_ids        [B, L]      int32   row b:  0 0 0 | i1 i2 i3 ... in     (ids + 1, oldest -> newest)
    event_types     [B, L]      int32           0 0 0 | e1 e2 e3 ... en     (EVENT_TYPE_CODES, 0 = pad)
    timestamps      [B, L]      int64           0 0 0 | t1 t2 t3 ... tn     (epoch ms)
    weights         [B, L]      float32         0 0 0 | w1 w2 w3 ... wn     (debiased label weights)
    mask            [B, L]      bool            F F F | T  T  T  ... T
    lengths         [B]         int64   n (after truncation to L)
    semantic_ids    [B, L, C]   int32   codes + 1 per event and level (only when the shards carry them)
    targets         [B, T]      int64   first T target ids + 1, right-padded with 0 (valid / test rows)
    target_lengths  [B]         int64

Per-event index tensors (``item_ids``, ``event_types``, ``semantic_ids``) are int32: ``nn.Embedding``
takes them as they are, and they are half the bytes of int64 (item ids must be below 2**31 - 1).
``targets`` stay int64, the dtype ``F.cross_entropy`` wants; use ``item_ids.long()`` where the history
itself is the target (next-item prediction).

``BatchLayout.JAGGED`` packs the sequences without padding (HSTU-style jagged tensors)::

    item_ids        [N]         int32   i1 i2 i3 | j1 j2 | k1 k2 k3 k4    (N = sum of lengths)
    offsets         [B + 1]     int64   0        3       5             9
    event_types, timestamps, weights: [N], aligned with item_ids; semantic_ids [N, C]
    (dtypes as above); user_idx, lengths, targets, target_lengths: as above
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from warehouse.shards import current_version_dir, read_manifest

SEQUENCE_COLUMNS = ("item_ids", "event_types", "timestamps", "weights")
ITEM_SHIFT = 1  # item id i is i + 1 in tensors; 0 is padding
# Dtypes of the per-event tensors; per-row tensors (user_idx, lengths, targets, offsets) are int64.
DEFAULT_DECODE_THREADS = 2  # decoding two row groups at once keeps one core's batch assembly fed
OUTPUT_DTYPES = {"item_ids": np.int32, "event_types": np.int32, "timestamps": np.int64, "weights": np.float32, "semantic_ids": np.int32}


class BatchLayout(StrEnum):
    PADDED = "padded"
    JAGGED = "jagged"


@dataclass(frozen=True)
class LoaderConfig:
    """How batches are formed.

    Attributes:
        batch_size: Rows per batch (the last batch of a worker may be smaller unless ``drop_last``).
        max_len: History length ``L``: the most recent ``max_len`` events are kept.
        max_targets: Target columns ``T`` of the padded ``targets`` tensor.
        layout: Padded ``[B, L]`` tensors or jagged ``[N]`` values with offsets.
        shuffle: Shuffle row groups and rows (off for evaluation: shard order, row order).
        buffer_row_groups: Row groups a worker keeps open to shuffle across (the memory bound).
        seed: Base seed; the epoch, rank and worker are mixed in.
        drop_last: Drop each worker's last, smaller batch.
        semantic_ids: Emit ``semantic_ids`` when the shards have them.
        read_ahead: Row groups decoded ahead of the batches on background threads (0: decode inline).
            Parquet decoding releases the GIL, so it overlaps batch assembly; the batches are the same.
        decode_threads: Threads decoding the read-ahead row groups. Default: ``DEFAULT_DECODE_THREADS``
            in the main process, 1 inside a DataLoader worker (there the workers are the parallelism).
    """

    batch_size: int = 256
    max_len: int = 200
    max_targets: int = 1
    layout: BatchLayout = BatchLayout.PADDED
    shuffle: bool = True
    buffer_row_groups: int = 8
    seed: int = 0
    drop_last: bool = False
    semantic_ids: bool = True
    read_ahead: int = 8
    decode_threads: int | None = None

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_len, self.max_targets, self.buffer_row_groups) < 1:
            raise ValueError("batch_size, max_len, max_targets and buffer_row_groups must be positive")
        if self.read_ahead < 0:
            raise ValueError("read_ahead must be >= 0")
        if self.decode_threads is not None and self.decode_threads < 1:
            raise ValueError("decode_threads must be positive (or None for the default)")


@dataclass(frozen=True)
class _Unit:
    """One row group of one shard: the unit of work and of reading."""

    path: str
    row_group: int
    rows: int
    key: int  # position among the rank's row groups (before shuffling): seeds this row group's row order


class ShardedSequenceDataset(IterableDataset):
    """Yields ready batches (dicts of tensors) from one split of a shard set; use ``batch_size=None``
    in the DataLoader (:func:`make_dataloader` does).

    Args:
        shards: A shard root (its ``current`` version is resolved once, here) or a version directory.
        split: ``train``, ``valid`` or ``test``.
        config: Batch settings.
        rank: DDP rank (default: ``torch.distributed``'s when initialized, else 0).
        world_size: DDP world size (default: ``torch.distributed``'s when initialized, else 1).
    """

    def __init__(
        self,
        shards: Path,
        split: str,
        config: LoaderConfig = LoaderConfig(),
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        shards = Path(shards)
        self.version_dir = shards if (shards / "manifest.json").exists() else current_version_dir(shards)
        self.manifest = read_manifest(self.version_dir)
        if split not in self.manifest["splits"]:
            raise KeyError(f"split {split!r} not in the shard set; it has {sorted(self.manifest['splits'])}")
        self.split = split
        self.config = config
        dist_rank, dist_world = _distributed()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world size {self.world_size}")
        names = {f["name"] for f in self.manifest["schema"]}
        self._has_sid = config.semantic_ids and "semantic_ids" in names and bool(self.manifest.get("vocab", {}).get("semantic_id_levels"))
        self._columns = ["user_idx", *SEQUENCE_COLUMNS, "target_item_ids"] + (["semantic_ids"] if self._has_sid else [])
        self.epoch = 0
        self.peak_buffered_rows = 0  # largest number of rows held at once in the last iteration (this process)
        # Row n is the mask of a length-n history: L - n False then n True (``[L + 1, L]``).
        width = config.max_len
        self._mask_rows = np.arange(width) >= width - np.arange(width + 1)[:, None]

    # --- planning ----------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle the next iteration uses (call before each epoch, like DistributedSampler)."""
        self.epoch = epoch

    def shards_for_rank(self, rank: int | None = None) -> list[dict[str, Any]]:
        rank = self.rank if rank is None else rank
        return list(self.manifest["splits"][self.split]["shards"][rank :: self.world_size])

    def rows_for_rank(self, rank: int | None = None) -> int:
        return sum(int(s["rows"]) for s in self.shards_for_rank(rank))

    def units_for_worker(self, worker: int, num_workers: int) -> list[_Unit]:
        """The row groups worker ``worker`` of ``num_workers`` reads this epoch, in reading order."""
        units: list[_Unit] = []
        for shard in self.shards_for_rank():
            rows_left = int(shard["rows"])
            rg_rows = int(self.manifest["shards"]["row_group_rows"])
            for rg in range(int(shard["row_groups"])):
                units.append(_Unit(shard["path"], rg, min(rg_rows, rows_left), len(units)))
                rows_left -= rg_rows
        if self.config.shuffle:
            order = np.random.default_rng([self.config.seed, self.epoch, self.rank]).permutation(len(units))
            units = [units[i] for i in order]
        return units[worker::num_workers]

    # --- iteration ---------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        return self.iter_worker(worker, num_workers)

    def iter_worker(self, worker: int, num_workers: int) -> Iterator[dict[str, torch.Tensor]]:
        """The batches worker ``worker`` of ``num_workers`` yields this epoch (what ``__iter__`` runs in a worker)."""
        units = self.units_for_worker(worker, num_workers)
        rng = np.random.default_rng([self.config.seed, self.epoch, self.rank, worker, 1])
        self.peak_buffered_rows = 0
        return self._batches(units, rng)

    def _batches(self, units: list[_Unit], rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        cfg = self.config
        threads = cfg.decode_threads or (1 if get_worker_info() is not None else DEFAULT_DECODE_THREADS)
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recforge-read-ahead") if cfg.read_ahead else None
        try:
            draws = self._draws(self._decoded(units, pool), rng)
            for picks, take in draws:
                yield self._collate(picks, take)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _decoded(self, units: list[_Unit], pool: ThreadPoolExecutor | None) -> Iterator[_Group]:
        """The units' row groups, decoded in order: inline, or up to ``read_ahead`` ahead on the pool."""
        cfg = self.config
        seed = [cfg.seed, self.epoch, self.rank, 2]  # the row-order stream (2), apart from the batch draws' (1)
        sid_levels = self._sid_levels() if self._has_sid else 0
        local = threading.local()

        def decode(unit: _Unit) -> _Group:
            # Parquet decoding and the conversion to arrays (both release the GIL for their bulk work).
            files: dict[str, pq.ParquetFile] = local.__dict__.setdefault("files", {})  # handles are per thread
            handle = files.get(unit.path)
            if handle is None:
                handle = files[unit.path] = pq.ParquetFile(self.version_dir / unit.path)
                # Only the few files of this worker's current units stay open.
                if len(files) > cfg.buffer_row_groups + cfg.read_ahead:
                    files.pop(next(iter(files)))
            # Each row group is decoded single-threaded: the pool's threads (and DataLoader workers)
            # are the parallelism.
            table = handle.read_row_group(unit.row_group, columns=self._columns, use_threads=False)
            # The row group's own random row order, from its own seed: the same whichever thread decodes it.
            order = np.random.default_rng([*seed, unit.key]).permutation(table.num_rows) if cfg.shuffle else None
            return _Group(table, cfg, sid_levels, order)

        if pool is None:
            yield from map(decode, units)
            return
        ahead: deque[Future[_Group]] = deque()
        pending = iter(units)
        while True:
            while len(ahead) <= cfg.read_ahead and (unit := next(pending, None)) is not None:
                ahead.append(pool.submit(decode, unit))
            if not ahead:
                return
            yield ahead.popleft().result()

    def _draws(self, groups_in: Iterator[_Group], rng: np.random.Generator) -> Iterator[tuple[list[_Pick], int]]:
        """Which rows of which open row groups make each batch. The random draws happen here, in the
        iterating thread, or from each row group's own seed, so the batches do not depend on the pool's timing."""
        cfg = self.config
        groups: list[_Group] = []
        exhausted = False
        while True:
            # Keep the buffer full: enough open groups to shuffle across and to fill a batch.
            while not exhausted and (len(groups) < cfg.buffer_row_groups or sum(g.left for g in groups) < cfg.batch_size):
                group = next(groups_in, None)
                if group is None:
                    exhausted = True
                    break
                groups.append(group)
            left = np.array([g.left for g in groups], dtype=np.int64)
            total = int(left.sum())
            self.peak_buffered_rows = max(self.peak_buffered_rows, total)
            if total == 0:
                return
            take = min(cfg.batch_size, total)
            if take < cfg.batch_size and cfg.drop_last:
                return
            if cfg.shuffle:
                # How many of the batch's rows each open group gives: a draw without replacement
                # from all buffered rows; each group gives its next rows in its own random order.
                counts = rng.multivariate_hypergeometric(left, take) if len(groups) > 1 else np.array([take])
            else:
                counts = np.minimum(left, np.maximum(take - np.concatenate(([0], np.cumsum(left)[:-1])), 0))
            picks = [(group, group.take(int(count)), int(count)) for group, count in zip(groups, counts, strict=True) if count]
            groups = [g for g in groups if g.left]
            yield picks, take

    def _collate(self, picks: list[_Pick], batch: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        lengths = np.concatenate([g.lengths[first : first + count] for g, first, count in picks])
        levels = picks[0][0].levels
        result: dict[str, np.ndarray] = {}
        events: list[np.ndarray]
        codes: np.ndarray
        if cfg.layout is BatchLayout.PADDED:
            events = [np.empty((batch, cfg.max_len), OUTPUT_DTYPES[name]) for name in SEQUENCE_COLUMNS]
            codes = np.empty((batch, cfg.max_len * levels), OUTPUT_DTYPES["semantic_ids"])  # [B, L * C], viewed as [B, L, C]
            start = 0
            for g, first, count in picks:
                _pad_events(g.bounds, first, count, start, *g.events, *events)
                if levels:
                    _pad_rows(g.codes, g.code_bounds, first, count, codes, start)
                start += count
            result["mask"] = self._mask_rows[lengths]
            if levels:
                result["semantic_ids"] = codes.reshape(batch, cfg.max_len, levels)
        else:
            # A pick's events are one contiguous block of its row group's arrays (rows are stored in reading order).
            offsets = np.zeros(batch + 1, np.int64)
            np.cumsum(lengths, out=offsets[1:])
            events = [np.empty(int(offsets[-1]), OUTPUT_DTYPES[name]) for name in SEQUENCE_COLUMNS]
            codes = np.empty(int(offsets[-1]) * levels, OUTPUT_DTYPES["semantic_ids"])  # [N * C], viewed as [N, C]
            at = 0
            for g, first, count in picks:
                lo, hi = int(g.bounds[first]), int(g.bounds[first + count])
                for out, values in zip(events, g.events, strict=True):
                    out[at : at + hi - lo] = values[lo:hi]
                codes[at * levels : (at + hi - lo) * levels] = g.codes[lo * levels : hi * levels]
                at += hi - lo
            result["offsets"] = offsets
            if levels:
                result["semantic_ids"] = codes.reshape(-1, levels)
        result.update(zip(SEQUENCE_COLUMNS, events, strict=True))
        result["user_idx"] = np.concatenate([g.user_idx[first : first + count] for g, first, count in picks])
        result["lengths"] = lengths
        result["targets"] = np.concatenate([g.targets[first : first + count] for g, first, count in picks])
        result["target_lengths"] = np.concatenate([g.target_lengths[first : first + count] for g, first, count in picks])
        return {name: torch.from_numpy(array) for name, array in result.items()}

    def _sid_levels(self) -> int:
        return int(self.manifest["vocab"]["semantic_id_levels"])


class _Group:
    """One decoded row group, its rows stored in reading order (the row group's random order when
    shuffling) with only their kept events, already in the output dtypes and shifted.

    Row ``r`` (in reading order) has its kept events (its most recent ``lengths[r]``, at most ``max_len``) at
    ``[bounds[r] : bounds[r + 1]]`` of each of ``events`` (the ``SEQUENCE_COLUMNS``), so the next rows a
    batch takes from the group are one contiguous block. ``codes`` holds the semantic IDs flattened
    (``levels`` codes per event; ``levels`` is 0 without them) and ``code_bounds`` is ``bounds`` in codes.
    """

    def __init__(self, table: pa.Table, config: LoaderConfig, sid_levels: int, order: np.ndarray | None) -> None:
        rows = table.num_rows
        order = np.arange(rows) if order is None else order
        self.cursor = 0
        items = _list_column(table["item_ids"])
        offsets = np.asarray(items.offsets, dtype=np.int64)
        first, last = int(offsets[0]), int(offsets[-1])
        kept = np.minimum(np.diff(offsets), config.max_len)
        starts = offsets[1:] - first - kept  # of each row's kept events, in the decoded values
        self.lengths = kept[order]
        self.bounds = np.zeros(rows + 1, np.int64)
        np.cumsum(self.lengths, out=self.bounds[1:])
        total = int(self.bounds[-1])
        events = []
        for name in SEQUENCE_COLUMNS:
            column = items if name == "item_ids" else _list_column(table[name])
            if name != "item_ids" and not np.array_equal(np.asarray(column.offsets, dtype=np.int64), offsets):
                raise ValueError(f"{name} is not aligned with item_ids in the shard rows")
            values = column.values.to_numpy(zero_copy_only=False)[first:last]
            if name == "item_ids" and values.size and int(values.max()) >= np.iinfo(np.int32).max:
                raise ValueError("item ids must be below 2**31 - 1 (item_ids tensors are int32)")
            events.append(_pack_rows(values, starts, kept, order, ITEM_SHIFT if name == "item_ids" else 0, OUTPUT_DTYPES[name], total))
        self.events = tuple(events)
        self.levels = sid_levels
        self.codes = np.zeros(0, OUTPUT_DTYPES["semantic_ids"])
        self.code_bounds = self.bounds * sid_levels
        if sid_levels:
            sid = _list_column(table["semantic_ids"])
            codes = sid.values.values.to_numpy(zero_copy_only=False)
            if codes.size != last * sid_levels:
                raise ValueError(f"semantic IDs are not {sid_levels} codes per event in the shard rows")
            self.codes = _pack_rows(codes[first * sid_levels : last * sid_levels], starts * sid_levels, kept * sid_levels,
                                    order, 1, OUTPUT_DTYPES["semantic_ids"], total * sid_levels)
        self.user_idx = table["user_idx"].to_numpy().astype(np.int64, copy=False)[order]
        targets = _list_column(table["target_item_ids"])
        t_offsets = np.asarray(targets.offsets, dtype=np.int64)
        t_keep = np.minimum(np.diff(t_offsets), config.max_targets)
        t_within = _ragged_arange(t_keep)
        t_values = targets.values.to_numpy(zero_copy_only=False)
        padded_targets = np.zeros(rows * config.max_targets, np.int64)
        padded_targets[np.repeat(np.arange(rows, dtype=np.int64) * config.max_targets, t_keep) + t_within] = (
            t_values[np.repeat(t_offsets[:-1], t_keep) + t_within] + ITEM_SHIFT
        )
        self.targets = padded_targets.reshape(rows, config.max_targets)[order]
        self.target_lengths = t_keep[order]

    @property
    def left(self) -> int:
        return len(self.lengths) - self.cursor

    def take(self, count: int) -> int:
        """Give the next ``count`` rows (in reading order): returns the first one's index."""
        first = self.cursor
        self.cursor += count
        return first


_Pick = tuple[_Group, int, int]  # rows [first, first + count) of a row group, for one batch


def make_dataloader(
    shards: Path,
    split: str,
    config: LoaderConfig = LoaderConfig(),
    *,
    num_workers: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    epoch: int = 0,
) -> DataLoader:
    """A DataLoader over :class:`ShardedSequenceDataset` (batches are formed in the workers)."""
    dataset = ShardedSequenceDataset(shards, split, config, rank=rank, world_size=world_size)
    dataset.set_epoch(epoch)
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, persistent_workers=False)


def _list_column(column: pa.ChunkedArray | pa.Array) -> pa.ListArray:
    if isinstance(column, pa.ChunkedArray):
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    else:
        array = column
    if array.null_count:
        raise ValueError(f"null lists in a shard column ({array.type})")
    return array


@numba.njit(nogil=True, cache=True)
def _pad_rows(values: np.ndarray, bounds: np.ndarray, first: int, count: int, out: np.ndarray, at: int) -> None:
    """``out[at + i]`` = row ``first + i``'s values (``values[bounds[r] : bounds[r + 1]]``), left-padded with
    zeros (``out`` is ``[B, width]``)."""
    width = out.shape[1]
    for i in range(count):
        lo, hi = bounds[first + i], bounds[first + i + 1]
        pad = width - (hi - lo)
        line = out[at + i]
        for j in range(pad):  # explicit loops compile to tighter code than numba's slice assignment
            line[j] = 0
        for j in range(hi - lo):
            line[pad + j] = values[lo + j]


@numba.njit(nogil=True, cache=True)
def _pad_events(
    bounds: np.ndarray, first: int, count: int, at: int,
    items: np.ndarray, event_types: np.ndarray, timestamps: np.ndarray, weights: np.ndarray,
    out_items: np.ndarray, out_event_types: np.ndarray, out_timestamps: np.ndarray, out_weights: np.ndarray,
) -> None:
    """The ``SEQUENCE_COLUMNS`` of one row group's rows ``first, ..., first + count - 1`` into padded batch
    rows ``at, at + 1, ...`` (one compiled call per group and batch instead of one per column)."""
    _pad_rows(items, bounds, first, count, out_items, at)
    _pad_rows(event_types, bounds, first, count, out_event_types, at)
    _pad_rows(timestamps, bounds, first, count, out_timestamps, at)
    _pad_rows(weights, bounds, first, count, out_weights, at)


def _pack_rows(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, rows: np.ndarray, shift: int, dtype: type, total: int) -> np.ndarray:
    """Rows ``rows``'s values (``values[starts[r] : starts[r] + counts[r]]``) back to back, plus ``shift``, as ``dtype``."""
    out: np.ndarray = np.empty(total, dtype)
    _pack_rows_into(values, starts, counts, rows, shift, out)
    return out


@numba.njit(nogil=True, cache=True)
def _pack_rows_into(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, rows: np.ndarray, shift: int, out: np.ndarray) -> None:
    at = 0
    for i in range(rows.shape[0]):
        row = rows[i]
        start = starts[row]
        for j in range(counts[row]):
            out[at + j] = values[start + j] + shift
        at += counts[row]


def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """``[0..l0-1, 0..l1-1, ...]`` for the given lengths, vectorized."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    return np.arange(total, dtype=np.int64) - np.repeat(ends - lengths, lengths)


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
