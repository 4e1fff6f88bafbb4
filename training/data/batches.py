"""Batch settings and layouts: which columns a batch holds, their dtypes, the item-id shift, and how
batches are formed (``LoaderConfig``). The tensor layouts are drawn in the package docstring."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

SEQUENCE_COLUMNS = ("item_ids", "event_types", "timestamps", "weights")
ITEM_SHIFT = 1  # item id i is i + 1 in tensors; 0 is padding
DEFAULT_DECODE_THREADS = 2  # decoding two row groups at once keeps one core's batch assembly fed
# Dtypes of the per-event tensors; per-row tensors (user_idx, lengths, targets, offsets) are int64.
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

