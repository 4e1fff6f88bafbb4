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

from training.data.batches import (
    DEFAULT_DECODE_THREADS,
    ITEM_SHIFT,
    OUTPUT_DTYPES,
    SEQUENCE_COLUMNS,
    BatchLayout,
    LoaderConfig,
)
from training.data.dataset import ShardedSequenceDataset, make_dataloader

__all__ = [
    "DEFAULT_DECODE_THREADS",
    "ITEM_SHIFT",
    "OUTPUT_DTYPES",
    "SEQUENCE_COLUMNS",
    "BatchLayout",
    "LoaderConfig",
    "ShardedSequenceDataset",
    "make_dataloader",
]
