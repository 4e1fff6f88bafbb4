"""The streaming dataset over sequence shards: planning (ranks, workers, row groups), the read-ahead
of decoded row groups, the batch draws and the collation into tensors; and ``make_dataloader``.
See the package docstring for how work is split and how batches are laid out."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from training.data.batches import (
    DEFAULT_DECODE_THREADS,
    ITEM_SHIFT,
    OUTPUT_DTYPES,
    SEQUENCE_COLUMNS,
    BatchLayout,
    LoaderConfig,
)
from training.data.kernels import pack_rows, pad_events, pad_rows, ragged_arange
from warehouse.shards import current_version_dir, read_manifest


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
        """The shards rank ``rank`` reads from (all of them when the shard count is not a multiple of the
        world size: then ranks share shards and split their row groups)."""
        rank = self.rank if rank is None else rank
        shards = self.manifest["splits"][self.split]["shards"]
        if len(shards) % self.world_size == 0:
            return list(shards[rank :: self.world_size])
        paths = {u.path for u in self._rank_units(rank)}
        return [s for s in shards if s["path"] in paths]

    def rows_for_rank(self, rank: int | None = None) -> int:
        return sum(u.rows for u in self._rank_units(self.rank if rank is None else rank))

    def _rank_units(self, rank: int) -> list[_Unit]:
        """Rank ``rank``'s row groups, before shuffling. Shards are dealt to ranks when their count is a
        multiple of the world size (the world size they were written for, or a divisor of their count);
        otherwise each row group goes to the rank with the fewest rows so far, so ranks differ by at most one row group."""
        shards = self.manifest["splits"][self.split]["shards"]
        rg_rows = int(self.manifest["shards"]["row_group_rows"])
        whole = len(shards) % self.world_size == 0
        units: list[_Unit] = []
        for shard in shards[rank :: self.world_size] if whole else shards:
            rows_left = int(shard["rows"])
            for rg in range(int(shard["row_groups"])):
                units.append(_Unit(shard["path"], rg, min(rg_rows, rows_left), len(units)))
                rows_left -= rg_rows
        if not whole:
            # Each row group goes to the rank with the fewest rows so far (ties: the lowest rank).
            totals = [0] * self.world_size
            mine = []
            for unit in units:
                to = totals.index(min(totals))
                totals[to] += unit.rows
                if to == rank:
                    mine.append(_Unit(unit.path, unit.row_group, unit.rows, len(mine)))
            units = mine
        return units

    def _units(self, rank: int, worker: int, num_workers: int) -> list[_Unit]:
        units = self._rank_units(rank)
        if self.config.shuffle:
            order = np.random.default_rng([self.config.seed, self.epoch, rank]).permutation(len(units))
            units = [units[i] for i in order]
        return units[worker::num_workers]

    def units_for_worker(self, worker: int, num_workers: int) -> list[_Unit]:
        """The row groups worker ``worker`` of ``num_workers`` reads this epoch, in reading order."""
        return self._units(self.rank, worker, num_workers)

    def batches_for_worker(self, worker: int, num_workers: int) -> int:
        """How many batches worker ``worker`` yields this epoch. Every rank yields the same number in
        total (the fewest any rank has rows for), so DDP ranks run the same number of steps and none waits
        forever in a collective: a rank with more takes its extra batches from its busiest workers' ends,
        leaving a few rows unread this epoch (which ones changes with the epoch's shuffle)."""
        return self._worker_caps(self.rank, num_workers)[worker]

    def _worker_caps(self, rank: int, num_workers: int) -> list[int]:
        size = self.config.batch_size

        def own(r: int) -> list[int]:
            rows = [sum(u.rows for u in self._units(r, w, num_workers)) for w in range(num_workers)]
            return [n // size if self.config.drop_last else -(-n // size) for n in rows]

        caps = own(rank)
        excess = sum(caps) - min(sum(own(r)) for r in range(self.world_size))
        while excess > 0:
            caps[caps.index(max(caps))] -= 1
            excess -= 1
        return caps

    def batches_per_epoch(self, num_workers: int = 0) -> int:
        """Batches this rank yields per epoch (the same on every rank): ``steps_per_epoch`` for DDP."""
        return sum(self._worker_caps(self.rank, max(num_workers, 1)))

    # --- iteration ---------------------------------------------------------------------------------

    def __iter__(self) -> Generator[dict[str, torch.Tensor], None, None]:
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        return self.iter_worker(worker, num_workers)

    def iter_worker(self, worker: int, num_workers: int) -> Generator[dict[str, torch.Tensor], None, None]:
        """The batches worker ``worker`` of ``num_workers`` yields this epoch (what ``__iter__`` runs in a worker)."""
        units = self.units_for_worker(worker, num_workers)
        rng = np.random.default_rng([self.config.seed, self.epoch, self.rank, worker, 1])
        self.peak_buffered_rows = 0
        return self._batches(units, rng, self.batches_for_worker(worker, num_workers))

    def _batches(self, units: list[_Unit], rng: np.random.Generator, limit: int) -> Generator[dict[str, torch.Tensor], None, None]:
        cfg = self.config
        threads = cfg.decode_threads or (1 if get_worker_info() is not None else DEFAULT_DECODE_THREADS)
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recforge-read-ahead") if cfg.read_ahead else None
        try:
            draws = self._draws(self._decoded(units, pool), rng)
            for count, (picks, take) in enumerate(draws):
                if count >= limit:  # every rank yields the same number of batches
                    break
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
                pad_events(g.bounds, first, count, start, *g.events, *events)
                if levels:
                    pad_rows(g.codes, g.code_bounds, first, count, codes, start)
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
            events.append(pack_rows(values, starts, kept, order, ITEM_SHIFT if name == "item_ids" else 0, OUTPUT_DTYPES[name], total))
        self.events = tuple(events)
        self.levels = sid_levels
        self.codes = np.zeros(0, OUTPUT_DTYPES["semantic_ids"])
        self.code_bounds = self.bounds * sid_levels
        if sid_levels:
            codes = _dense_codes(_list_column(table["semantic_ids"]).values, sid_levels, last)
            self.codes = pack_rows(codes[first * sid_levels : last * sid_levels], starts * sid_levels, kept * sid_levels,
                                    order, 1, OUTPUT_DTYPES["semantic_ids"], total * sid_levels)
        self.user_idx = table["user_idx"].to_numpy().astype(np.int64, copy=False)[order]
        targets = _list_column(table["target_item_ids"])
        t_offsets = np.asarray(targets.offsets, dtype=np.int64)
        t_keep = np.minimum(np.diff(t_offsets), config.max_targets)
        t_within = ragged_arange(t_keep)
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


def _dense_codes(per_event: pa.ListArray, levels: int, events: int) -> np.ndarray:
    """Each event's ``levels`` codes, flattened (``[events * levels]``); an event of an item without a
    semantic ID (a null or empty list) gets -1s, which the +1 shift makes padding (0)."""
    if per_event.null_count == 0 and len(per_event.values) == len(per_event) * levels and len(per_event) == events:
        return per_event.values.to_numpy(zero_copy_only=False)  # the common case: every event has its codes
    lengths = pc.list_value_length(per_event).fill_null(0).to_numpy(zero_copy_only=False)
    if np.any((lengths != 0) & (lengths != levels)):
        raise ValueError(f"semantic IDs are not {levels} codes per event in the shard rows")
    dense = np.full((len(per_event), levels), -1, np.int64)
    dense[lengths == levels] = pc.list_flatten(per_event).to_numpy(zero_copy_only=False).reshape(-1, levels)
    return dense.ravel()[: events * levels]


def _list_column(column: pa.ChunkedArray | pa.Array) -> pa.ListArray:
    if isinstance(column, pa.ChunkedArray):
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    else:
        array = column
    if array.null_count:
        raise ValueError(f"null lists in a shard column ({array.type})")
    return array


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
