"""A streaming torch dataset over sequence shards (``transforms.shards``).

Work is split in two levels, both from the manifest alone (no file is opened to plan an epoch):

* **DDP rank**: rank ``r`` of ``W`` reads shards ``r, r + W, r + 2W, ...`` of the split. The writer
  makes the shard count a multiple of the world size with row counts that differ by at most one, so
  ranks get the same number of rows up to ``shards_per_rank``; :meth:`ShardedSequenceDataset.rows_for_rank`
  gives the exact count (for ``steps_per_epoch`` in DDP, take the minimum over ranks).
* **DataLoader worker**: the rank's row groups are shuffled per epoch (same order in every worker)
  and worker ``w`` of ``K`` takes every ``K``-th one. Each row group is read by exactly one worker
  of one rank, so an epoch yields every row exactly once.

Shuffling is deterministic per ``(seed, epoch, rank, worker)`` and bounded: a worker keeps at most
``buffer_row_groups`` row groups open, each in its own random row order, and draws each batch at
random across them (a multivariate hypergeometric draw of how many rows each open group gives).
Memory is one batch plus ``buffer_row_groups`` padded row groups, whatever the size of the shard set.

Batch layout (``BatchLayout.PADDED``; item ids shifted by +1 so that 0 is padding; histories keep the
most recent ``max_len`` events and are left-padded so the newest event is always in the last column)::

    user_idx        [B]         int64
    item_ids        [B, L]      int64   row b:  0 0 0 | i1 i2 i3 ... in     (ids + 1, oldest -> newest)
    event_types     [B, L]      int64           0 0 0 | e1 e2 e3 ... en     (EVENT_TYPE_CODES, 0 = pad)
    timestamps      [B, L]      int64           0 0 0 | t1 t2 t3 ... tn     (epoch ms)
    weights         [B, L]      float32         0 0 0 | w1 w2 w3 ... wn     (debiased label weights)
    mask            [B, L]      bool            F F F | T  T  T  ... T
    lengths         [B]         int64   n (after truncation to L)
    semantic_ids    [B, L, C]   int64   codes + 1 per event and level (only when the shards carry them)
    targets         [B, T]      int64   first T target ids + 1, right-padded with 0 (valid / test rows)
    target_lengths  [B]         int64

``BatchLayout.JAGGED`` packs the sequences without padding (HSTU-style jagged tensors)::

    item_ids        [N]         int64   i1 i2 i3 | j1 j2 | k1 k2 k3 k4    (N = sum of lengths)
    offsets         [B + 1]     int64   0        3       5             9
    event_types, timestamps, weights: [N], aligned with item_ids; semantic_ids [N, C]
    user_idx, lengths, targets, target_lengths: as above
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from transforms.shards import current_version_dir, read_manifest

SEQUENCE_COLUMNS = ("item_ids", "event_types", "timestamps", "weights")
ITEM_SHIFT = 1  # item id i is i + 1 in tensors; 0 is padding
OUTPUT_DTYPES = {"weights": np.float32}  # every other tensor is int64


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

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_len, self.max_targets, self.buffer_row_groups) < 1:
            raise ValueError("batch_size, max_len, max_targets and buffer_row_groups must be positive")


@dataclass(frozen=True)
class _Unit:
    """One row group of one shard: the unit of work and of reading."""

    path: str
    row_group: int
    rows: int


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
        units = []
        for shard in self.shards_for_rank():
            rows_left = int(shard["rows"])
            rg_rows = int(self.manifest["shards"]["row_group_rows"])
            for rg in range(int(shard["row_groups"])):
                units.append(_Unit(shard["path"], rg, min(rg_rows, rows_left)))
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
        pending = iter(units)
        exhausted = False
        groups: list[_Group] = []
        files: dict[str, pq.ParquetFile] = {}
        while True:
            # Keep the buffer full: enough open groups to shuffle across and to fill a batch.
            while not exhausted and (len(groups) < cfg.buffer_row_groups or sum(g.left for g in groups) < cfg.batch_size):
                unit = next(pending, None)
                if unit is None:
                    exhausted = True
                    break
                handle = files.get(unit.path)
                if handle is None:
                    handle = files[unit.path] = pq.ParquetFile(self.version_dir / unit.path)
                # One decode thread: DataLoader workers are the parallelism, and threads fight them for cores.
                table = handle.read_row_group(unit.row_group, columns=self._columns, use_threads=False)
                order = rng.permutation(table.num_rows) if cfg.shuffle else np.arange(table.num_rows)
                groups.append(_Group(table, order, cfg, self._sid_levels() if self._has_sid else 0))
                # Only the few files of this worker's current units stay open.
                if len(files) > cfg.buffer_row_groups:
                    files.pop(next(iter(files)))
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
            picks = [(group, group.next_rows(int(count))) for group, count in zip(groups, counts, strict=True) if count]
            groups = [g for g in groups if g.left]
            yield self._collate(picks, take)

    def _collate(self, picks: list[tuple[_Group, np.ndarray]], batch: int) -> dict[str, torch.Tensor]:
        # Groups hold their rows' kept events as flat arrays; per group, a batch gathers its rows'
        # events (one ragged gather per column) straight into their place in the output.
        cfg = self.config
        lengths = np.concatenate([g.lengths[rows] for g, rows in picks])
        padded = cfg.layout is BatchLayout.PADDED
        width = cfg.max_len
        first = picks[0][0]
        if padded:
            out = {name: np.zeros((batch * width, *v.shape[1:]), OUTPUT_DTYPES.get(name, np.int64)) for name, v in first.values.items()}
        else:
            total = int(lengths.sum())
            out = {name: np.empty((total, *v.shape[1:]), OUTPUT_DTYPES.get(name, np.int64)) for name, v in first.values.items()}
        offsets = np.zeros(batch + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        row0 = 0
        for group, rows in picks:
            part = group.lengths[rows]
            within = _ragged_arange(part)
            src = np.repeat(group.starts[rows], part) + within
            if padded:
                pos = np.repeat(np.arange(row0, row0 + len(rows), dtype=np.int64) * width + width - part, part) + within
                for name, values in group.values.items():
                    out[name][pos] = values[src]
            else:
                span = slice(int(offsets[row0]), int(offsets[row0 + len(rows)]))
                for name, values in group.values.items():
                    out[name][span] = values[src]
            row0 += len(rows)
        result = {name: array.reshape(batch, width, *array.shape[1:]) if padded else array for name, array in out.items()}
        if padded:
            result["mask"] = result["item_ids"] != 0
        else:
            result["offsets"] = offsets
        result["user_idx"] = np.concatenate([g.user_idx[rows] for g, rows in picks])
        result["lengths"] = lengths
        result["targets"] = np.concatenate([g.targets[rows] for g, rows in picks])
        result["target_lengths"] = np.concatenate([g.target_lengths[rows] for g, rows in picks])
        return {name: torch.from_numpy(array) for name, array in result.items()}

    def _sid_levels(self) -> int:
        return int(self.manifest["vocab"]["semantic_id_levels"])


class _Group:
    """One open row group: per column, the kept (most recent ``max_len``) events of every row, flat."""

    def __init__(self, table: pa.Table, order: np.ndarray, config: LoaderConfig, sid_levels: int) -> None:
        self.order = order
        self.cursor = 0
        rows = table.num_rows
        items = _list_column(table["item_ids"])
        offsets = np.asarray(items.offsets, dtype=np.int64)
        keep = np.minimum(np.diff(offsets), config.max_len)
        # Shards are usually written with histories no longer than max_len: then nothing is cut and
        # the decoded values are used in place.
        whole = bool((keep == np.diff(offsets)).all())
        src = None if whole else np.repeat(offsets[1:] - keep, keep) + _ragged_arange(keep)
        self.lengths = keep
        self.starts = np.zeros(rows, np.int64)
        np.cumsum(keep[:-1], out=self.starts[1:])
        self.user_idx = table["user_idx"].to_numpy()
        self.values: dict[str, np.ndarray] = {}
        for name in SEQUENCE_COLUMNS:
            column = items if name == "item_ids" else _list_column(table[name])
            if name != "item_ids" and not np.array_equal(np.asarray(column.offsets, dtype=np.int64), offsets):
                raise ValueError(f"{name} is not aligned with item_ids in the shard rows")
            values = column.values.to_numpy(zero_copy_only=False)
            values = values[offsets[0] : offsets[-1]] if src is None else values[src]
            self.values[name] = values + ITEM_SHIFT if name == "item_ids" else values
        if sid_levels:
            sid = _list_column(table["semantic_ids"])
            codes = sid.values.values.to_numpy(zero_copy_only=False).astype(np.int64) + 1
            if codes.size != offsets[-1] * sid_levels:
                raise ValueError(f"semantic IDs are not {sid_levels} codes per event in the shard rows")
            codes = codes.reshape(-1, sid_levels)
            self.values["semantic_ids"] = codes[offsets[0] : offsets[-1]] if src is None else codes[src]
        targets = _list_column(table["target_item_ids"])
        t_offsets = np.asarray(targets.offsets, dtype=np.int64)
        t_keep = np.minimum(np.diff(t_offsets), config.max_targets)
        t_within = _ragged_arange(t_keep)
        t_values = targets.values.to_numpy(zero_copy_only=False)
        padded_targets = np.zeros(rows * config.max_targets, np.int64)
        padded_targets[np.repeat(np.arange(rows, dtype=np.int64) * config.max_targets, t_keep) + t_within] = (
            t_values[np.repeat(t_offsets[:-1], t_keep) + t_within] + ITEM_SHIFT
        )
        self.targets = padded_targets.reshape(rows, config.max_targets)
        self.target_lengths = t_keep

    @property
    def left(self) -> int:
        return len(self.order) - self.cursor

    def next_rows(self, count: int) -> np.ndarray:
        rows = self.order[self.cursor : self.cursor + count]
        self.cursor += count
        return rows


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
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        raise ValueError(f"null lists in a shard column ({array.type})")
    return array


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
