"""Sequences for the generative recommenders, split leave-one-out, as batches in the loader's layouts.

Per user with ``n >= 3`` interactions in order (DESIGN.md §2, the protocol of SASRec, TIGER and HSTU)::

    items       s1 s2 ... s(n-2) | s(n-1) | s(n)
    train row   s1 .......s(n-2)                     one row per user: a model learns every position of it
    valid query s1 .......s(n-2) -> s(n-1)           model selection only
    test  query s1 ...............s(n-1) -> s(n)     reported

Batch layouts are those of ``training.data`` (item ids shifted by +1, 0 is padding)::

    SequenceBatch (PADDED)   items / event_types / timestamps [B, L], newest in the last column, left-padded
    JaggedBatch   (JAGGED)   items / event_types / timestamps [N] back to back, offsets [B + 1]
    both: users [B], targets [B] (valid/test: the held-out item + 1; train rows: 0), query_ts [B]
          (the time the query is asked: the target's, when known), index [B]

Timestamps are seconds (the loader's are milliseconds; ``from_loader`` converts). ``SequenceData``
holds the three splits in memory (Beauty has 198k interactions) and serves the trainer's
``len`` / ``epoch_order`` / ``batch`` protocol; ``from_shards`` fills it from a leave-one-out shard set
through ``training.data``'s loader, and ``leave_one_out`` from flat event arrays (the benchmark's files).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from training.data import BatchLayout, LoaderConfig, ShardedSequenceDataset

MS_PER_SECOND = 1000


@dataclass(frozen=True)
class SequenceBatch:
    users: torch.Tensor  # [B] int64
    items: torch.Tensor  # [B, L] int64, ids + 1, left-padded
    event_types: torch.Tensor  # [B, L] int64, 0 = pad
    timestamps: torch.Tensor  # [B, L] int64 seconds
    query_ts: torch.Tensor  # [B] int64 seconds
    targets: torch.Tensor  # [B] int64 ids + 1 (0: none)
    index: torch.Tensor  # [B] rows of the split

    def to(self, device: torch.device) -> SequenceBatch:
        return SequenceBatch(*(t.to(device) for t in self._tensors()))

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.users, self.items, self.event_types, self.timestamps, self.query_ts, self.targets, self.index)

    def __len__(self) -> int:
        return len(self.users)

    def rows(self, index: torch.Tensor) -> SequenceBatch:
        return SequenceBatch(*(t[index] for t in self._tensors()))

    @property
    def lengths(self) -> torch.Tensor:
        return (self.items > 0).sum(1)

    def jagged(self) -> JaggedBatch:
        """The same rows packed back to back (the mask drops the left padding, order is kept)."""
        mask = self.items > 0
        offsets = torch.zeros(len(self) + 1, dtype=torch.int64, device=self.items.device)
        offsets[1:] = mask.sum(1).cumsum(0)
        return JaggedBatch(self.users, self.items[mask], self.event_types[mask], self.timestamps[mask], offsets,
                           self.query_ts, self.targets, self.index)


@dataclass(frozen=True)
class JaggedBatch:
    users: torch.Tensor  # [B]
    items: torch.Tensor  # [N]
    event_types: torch.Tensor  # [N]
    timestamps: torch.Tensor  # [N] seconds
    offsets: torch.Tensor  # [B + 1]
    query_ts: torch.Tensor  # [B]
    targets: torch.Tensor  # [B]
    index: torch.Tensor  # [B]

    def to(self, device: torch.device) -> JaggedBatch:
        return JaggedBatch(*(t.to(device) for t in (self.users, self.items, self.event_types, self.timestamps,
                                                    self.offsets, self.query_ts, self.targets, self.index)))

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]


Batch = SequenceBatch | JaggedBatch


def from_loader(batch: dict[str, torch.Tensor]) -> Batch:
    """A batch of ``training.data``'s loader (PADDED or JAGGED dict) in our types: ids stay shifted,
    timestamps become seconds, the first target is the target, the query time is the last event's."""
    users = batch["user_idx"].long()
    targets = batch["targets"][:, 0].long() * (batch["target_lengths"] > 0)
    seconds = batch["timestamps"] // MS_PER_SECOND
    index = torch.arange(len(users))
    if "offsets" in batch:
        offsets = batch["offsets"].long()
        last = (offsets[1:] - 1).clamp(min=0)
        query_ts = torch.where(offsets[1:] > offsets[:-1], seconds[last] if len(seconds) else torch.zeros_like(users), 0)
        return JaggedBatch(users, batch["item_ids"].long(), batch["event_types"].long(), seconds, offsets, query_ts, targets, index)
    return SequenceBatch(users, batch["item_ids"].long(), batch["event_types"].long(), seconds, seconds[:, -1], targets, index)


@dataclass(frozen=True)
class SequenceData:
    """The three leave-one-out splits of one dataset, and the trainer's data protocol over the train rows.

    Attributes:
        num_items: Catalogue size I (every item is ranked).
        num_event_types: Event-type codes (embedding rows; 0 is padding).
        train: One row per user, the training sequence.
        valid: Queries with their held-out targets (``targets``).
        test: Queries with their held-out targets.
        popularity: ``[I]`` training-row item counts (log-Q, the popularity baseline).
        layout: What ``batch`` returns: padded rows, or jagged (HSTU).
        filter_seen: Rank without the query history's items (recorded in ``protocol``).
        length_window: With ``batch_rows``, ``epoch_order`` groups rows of similar length into batches (see there).
        batch_rows: The trainer's batch size (the groups are cut to it); 0: plain shuffle.
    """

    num_items: int
    num_event_types: int
    train: SequenceBatch
    valid: SequenceBatch
    test: SequenceBatch
    popularity: torch.Tensor
    layout: BatchLayout = BatchLayout.PADDED
    filter_seen: bool = True
    versions: dict[str, str] = field(default_factory=dict)
    dataset: str = ""
    split: str = "leave_one_out"  # the shards' split kind; other kinds are judged on their first target
    length_window: int = 0
    batch_rows: int = 0

    def __len__(self) -> int:
        return len(self.train)

    def batch(self, index: torch.Tensor) -> Batch:
        rows = self.train.rows(index)
        return rows.jagged() if self.layout is BatchLayout.JAGGED else rows

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        """A shuffle of the training rows. Grouped by length (``length_window`` and ``batch_rows`` set): the
        shuffled rows are sorted by length within windows of ``length_window`` batches, cut into batches of
        ``batch_rows``, and the full batches are shuffled (a partial one goes last), so a batch's rows have
        similar lengths and padded work (SASRec's width, HSTU's attention) follows the batch's own longest row.
        Per batch, not per row: no per-example Python."""
        return length_grouped_order(self.train.lengths, seed, epoch, self.length_window, self.batch_rows)

    def grouped(self, length_window: int, batch_rows: int) -> SequenceData:
        return replace(self, length_window=length_window, batch_rows=batch_rows)

    def with_layout(self, layout: BatchLayout) -> SequenceData:
        return replace(self, layout=layout)

    @property
    def num_users(self) -> int:
        return len(self.train)

    @property
    def log_q(self) -> torch.Tensor:
        """``[I]`` log of each item's share of the training positions (a floor for unseen items)."""
        share = self.popularity.double() / self.popularity.sum().clamp(min=1)
        floor = float(share[share > 0].min()) if bool((share > 0).any()) else 1.0 / self.num_items
        return share.clamp(min=floor).log().float()

    @property
    def protocol(self) -> str:
        kind = "loo" if self.split == "leave_one_out" else f"{self.split}_next_item"
        return f"{kind}_full" + ("_seen_filtered" if self.filter_seen else "")


def length_grouped_order(lengths: torch.Tensor, seed: int, epoch: int, window: int, batch_rows: int) -> torch.Tensor:
    """A seeded shuffle of ``len(lengths)`` examples; with ``window`` and ``batch_rows`` set, sorted by length within
    windows of ``window`` batches, cut into batches, the full batches shuffled (a partial one last)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator)
    if not (window and batch_rows):
        return order
    batches: list[torch.Tensor] = []
    for start in range(0, len(order), window * batch_rows):
        chunk = order[start : start + window * batch_rows]
        batches.extend(chunk[torch.argsort(lengths[chunk], stable=True)].split(batch_rows))
    full = [b for b in batches if len(b) == batch_rows]
    partial = [b for b in batches if len(b) < batch_rows]
    return torch.cat([full[i] for i in torch.randperm(len(full), generator=generator)] + partial)


def leave_one_out(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None, event_types: np.ndarray | None = None,
                  *, max_len: int = 50, num_items: int | None = None, filter_seen: bool = True, dataset: str = "",
                  versions: dict[str, str] | None = None) -> SequenceData:
    """Leave-one-out splits from flat events (dense item ids ``0..I-1``), each user's events in order.

    Events are ordered by (user, timestamp, position in the input): ties in time keep the input's order.
    Users with fewer than three events are dropped (no training item would remain).
    """
    n_events = len(users)
    ts = np.zeros(n_events, np.int64) if timestamps is None else np.asarray(timestamps, np.int64)
    ev = np.ones(n_events, np.int64) if event_types is None else np.asarray(event_types, np.int64)
    order = np.lexsort((np.arange(n_events), ts, users))
    users, items, ts, ev = np.asarray(users)[order], np.asarray(items, np.int64)[order], ts[order], ev[order]
    _, user_row, counts = np.unique(users, return_inverse=True, return_counts=True)
    keep = counts[user_row] >= 3
    users, items, ts, ev = users[keep], items[keep], ts[keep], ev[keep]
    _, user_row, counts = np.unique(users, return_inverse=True, return_counts=True)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(len(users)) - starts[user_row]
    n = counts[user_row]
    num_items = int(items.max()) + 1 if num_items is None else num_items
    columns = (items + 1, ev, ts)
    n_users = len(counts)

    def split(history_len: np.ndarray, target_pos: np.ndarray | None) -> SequenceBatch:
        inside = pos < history_len[user_row]
        padded = [_pad(user_row[inside], pos[inside], history_len[user_row][inside], c[inside], n_users, max_len) for c in columns]
        at_target = np.zeros(n_users, np.int64) if target_pos is None else starts + target_pos
        targets = np.zeros(n_users, np.int64) if target_pos is None else items[at_target] + 1
        query_ts = ts[starts + history_len - 1] if target_pos is None else ts[at_target]
        return SequenceBatch(torch.arange(n_users), *(torch.from_numpy(p) for p in padded), torch.from_numpy(query_ts),
                             torch.from_numpy(targets), torch.arange(n_users))

    train = split(counts - 2, None)
    popularity = np.bincount(items[pos < n - 2], minlength=num_items)
    return SequenceData(
        num_items=num_items, num_event_types=int(ev.max(initial=0)) + 1, train=train, valid=split(counts - 2, counts - 2),
        test=split(counts - 1, counts - 1), popularity=torch.from_numpy(popularity), filter_seen=filter_seen,
        versions=dict(versions or {}), dataset=dataset,
    )


def items_start(items: torch.Tensor) -> torch.Tensor:
    """``[B]`` the first real column of each left-padded row."""
    return items.shape[1] - (items > 0).sum(1)


def _pad(rows: np.ndarray, pos: np.ndarray, length: np.ndarray, values: np.ndarray, n_rows: int, width: int) -> np.ndarray:
    """``[n_rows, width]``: each row's most recent ``width`` values, left-padded with 0."""
    out = np.zeros((n_rows, width), np.int64)
    col = width - (length - pos)
    kept = col >= 0
    out[rows[kept], col[kept]] = values[kept]
    return out


def from_shards(shards: Path, *, max_len: int = 50, filter_seen: bool = True, dataset: str = "", batch_size: int = 4096) -> SequenceData:
    """A leave-one-out shard set (``training_data/sequence_shards``) read whole through the loader.

    The train rows hold each user's training prefix, valid and test rows a history and their target
    (DESIGN.md §2); the catalogue is the manifest's item id space. The query time of a shard query is its
    last history event's (the shards' target times are not part of the loader's batch). Shards of another
    split kind (temporal, session) are read too: a query is judged on its first target (next-item
    prediction), and the protocol name says so (``temporal_next_item_full``).
    """
    data, _ = shards_with_codes(shards, max_len=max_len, filter_seen=filter_seen, dataset=dataset, batch_size=batch_size)
    return data


def shards_with_codes(shards: Path, *, max_len: int = 50, filter_seen: bool = True, dataset: str = "",
                      batch_size: int = 4096) -> tuple[SequenceData, np.ndarray | None]:
    """``from_shards`` and the semantic IDs the shards carry, ``[I, C]`` codes per item (-1: an item seen
    in no row, or without an ID), or None when the shards have none."""
    splits = {}
    manifest: dict = {}
    codes: np.ndarray | None = None
    for split in ("train", "valid", "test"):
        loader = ShardedSequenceDataset(shards, split, LoaderConfig(batch_size=batch_size, max_len=max_len, shuffle=False, read_ahead=0),
                                        rank=0, world_size=1)
        manifest = loader.manifest
        raw = list(loader)
        levels = int(manifest.get("vocab", {}).get("semantic_id_levels") or 0)
        if levels and raw and "semantic_ids" in raw[0]:
            if codes is None:
                codes = np.full((int(manifest["vocab"]["items"]), levels), -1, np.int64)
            for b in raw:
                present = (b["item_ids"] > 0) & (b["semantic_ids"][..., 0] > 0)
                codes[(b["item_ids"][present] - 1).numpy()] = (b["semantic_ids"][present] - 1).numpy()
        parts = [from_loader(b) for b in raw]
        assert all(isinstance(p, SequenceBatch) for p in parts)
        joined = [torch.cat(ts) for ts in zip(*(p._tensors() for p in parts), strict=True)]  # type: ignore[union-attr]
        joined[-1] = torch.arange(len(joined[0]))
        splits[split] = SequenceBatch(*joined)
    vocab = manifest.get("vocab", {})
    num_items = int(vocab["items"])
    train = splits["train"]
    # The manifest counts every training event; the loaded rows hold only the most recent max_len of each.
    counted = manifest.get("statistics", {}).get("item_frequencies_train")
    popularity = torch.tensor(counted) if counted is not None and len(counted) == num_items else torch.bincount(train.items[train.items > 0] - 1, minlength=num_items)
    event_codes = vocab.get("event_types", {})
    data = SequenceData(
        num_items=num_items, num_event_types=max(event_codes.values(), default=1) + 1, train=train, valid=splits["valid"], test=splits["test"],
        popularity=popularity, filter_seen=filter_seen, dataset=dataset, versions={"training_data/sequence_shards": str(manifest.get("version", ""))},
        split=str(manifest.get("params", {}).get("split", {}).get("kind", "leave_one_out")),
    )
    return data, codes


@dataclass(frozen=True)
class PrefixData:
    """One example per (user, position) of the training rows, for models that cannot share work across
    positions (TIGER, an encoder-decoder): the item at a position is the target, the ``history`` items
    before it the query. ``batch`` gathers the windows from the padded rows (no per-example Python)."""

    data: SequenceData
    history: int
    rows: torch.Tensor  # [E] train row of each example
    columns: torch.Tensor  # [E] the target's column in that row
    length_window: int = 0  # as SequenceData's: batches of similar history lengths (encoder width follows the batch)
    batch_rows: int = 0

    @classmethod
    def of(cls, data: SequenceData, history: int, length_window: int = 0, batch_rows: int = 0) -> PrefixData:
        items = data.train.items
        has_previous = torch.zeros_like(items, dtype=torch.bool)
        has_previous[:, 1:] = (items[:, 1:] > 0) & (items[:, :-1] > 0)
        rows, columns = has_previous.nonzero(as_tuple=True)
        return cls(data, history, rows, columns, length_window, batch_rows)

    @property
    def lengths(self) -> torch.Tensor:
        """``[E]`` history items of each example (at most ``history``)."""
        start = items_start(self.data.train.items)[self.rows]
        return (self.columns - start).clamp(max=self.history)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def versions(self) -> dict[str, str]:
        return self.data.versions

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        return length_grouped_order(self.lengths, seed, epoch, self.length_window, self.batch_rows)

    def batch(self, index: torch.Tensor) -> SequenceBatch:
        rows, columns = self.rows[index], self.columns[index]
        window = columns.unsqueeze(1) - self.history + torch.arange(self.history)
        inside = window >= 0
        window = window.clamp(min=0)
        train = self.data.train

        def take(values: torch.Tensor) -> torch.Tensor:
            return values[rows.unsqueeze(1), window] * inside

        return SequenceBatch(train.users[rows], take(train.items), take(train.event_types), take(train.timestamps),
                             train.timestamps[rows, columns], train.items[rows, columns], index)
