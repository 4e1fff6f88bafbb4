"""Two-tower examples (``training_data/two_tower_examples``) as tensors, with a global temporal split.

    TwoTowerData.history  [N, H] int64   item ids + 1, newest last, left-padded with 0
    TwoTowerData.items    [N]    int64   the positive
    TwoTowerData.weights  [N]    float32 the debiased label weight

Examples are split by time: the earliest ``1 - valid_share - test_share`` of timestamps train, then
valid, then test. A valid or test user is queried once, with the history of their first example in
the split (everything before it); their relevant items are all their positives in the split, and the
items of that history are "seen" (filtered from the ranking when ``filter_seen``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch

from training.data.pairs import PairData, RankingSplit
from training.data.two_tower_content import ItemContent

SHORT_HISTORY = 5  # users with at most this many prior events are "short-history" in the metrics
TAIL_SHARE = 0.8  # the 80 % least popular items (by training positives) are the tail
COLD_INTERACTIONS = 5  # items with fewer training positives are "cold"; "new" items have none


@dataclass(frozen=True)
class TwoTowerBatch:
    users: torch.Tensor  # [B] int64
    history: torch.Tensor  # [B, H] int64, ids + 1
    items: torch.Tensor  # [B] int64
    weights: torch.Tensor  # [B] float32
    index: torch.Tensor  # [B] rows of TwoTowerData

    def to(self, device: torch.device) -> TwoTowerBatch:
        return TwoTowerBatch(*(t.to(device) for t in (self.users, self.history, self.items, self.weights, self.index)))


@dataclass(frozen=True)
class QuerySplit:
    """One query per user of a split: the history it is asked with and the ranking it is judged on."""

    history: torch.Tensor  # [U, H]
    ranking: RankingSplit
    short: torch.Tensor  # [U] bool: at most SHORT_HISTORY prior events


@dataclass(frozen=True)
class TwoTowerData:
    num_users: int
    num_items: int
    users: torch.Tensor
    history: torch.Tensor
    items: torch.Tensor
    weights: torch.Tensor
    log_q: torch.Tensor  # [I]
    popularity: torch.Tensor  # [I] training positives
    valid: QuerySplit
    test: QuerySplit
    versions: dict[str, str] = field(default_factory=dict)
    dataset: str = ""
    content: ItemContent | None = None  # the items' text, semantic-ID codes and catalog features

    def __len__(self) -> int:
        return len(self.items)

    def batch(self, index: torch.Tensor) -> TwoTowerBatch:
        return TwoTowerBatch(self.users[index], self.history[index], self.items[index], self.weights[index], index)

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        return torch.randperm(len(self), generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))

    @property
    def tail_items(self) -> torch.Tensor:
        """``[I]`` bool: the TAIL_SHARE least popular items."""
        order = torch.argsort(self.popularity, stable=True)
        tail = torch.zeros(self.num_items, dtype=torch.bool)
        tail[order[: int(TAIL_SHARE * self.num_items)]] = True
        return tail

    @property
    def cold_items(self) -> torch.Tensor:
        """``[I]`` bool: fewer than COLD_INTERACTIONS training positives (new items included)."""
        return self.popularity < COLD_INTERACTIONS

    @property
    def new_items(self) -> torch.Tensor:
        """``[I]`` bool: no training positive (an item first seen in the validation or test period)."""
        return self.popularity == 0


def two_tower_data(examples: pa.Table, frequencies: pa.Table | None, max_history: int, *, valid_share: float = 0.1,
                   test_share: float = 0.1, filter_seen: bool = True, versions: dict[str, str] | None = None, dataset: str = "") -> TwoTowerData:
    """Tensors from the examples table (and the item frequencies, for log-Q; else counted here)."""
    ts = examples["ts"].cast(pa.int64()).to_numpy()
    users = examples["user_idx"].to_numpy().astype(np.int64)
    items = examples["item_idx"].to_numpy().astype(np.int64)
    weights = examples["weight"].to_numpy().astype(np.float32)
    histories = examples["history_item_ids"].to_pylist()
    num_items = int(max(items.max(initial=-1), max((max(h) for h in histories if h), default=-1))) + 1
    num_users = int(users.max(initial=-1)) + 1
    valid_from, test_from = np.quantile(ts, [1 - valid_share - test_share, 1 - test_share]) if len(ts) else (0, 0)
    split = np.where(ts >= test_from, 2, np.where(ts >= valid_from, 1, 0))
    padded = _pad(histories, max_history)
    train = split == 0
    popularity = np.bincount(items[train], minlength=num_items).astype(np.float64)
    if frequencies is not None and frequencies.num_rows:
        probability = np.full(num_items, np.nan)
        idx = frequencies["item_idx"].to_numpy()
        keep = idx < num_items
        probability[idx[keep]] = frequencies["probability"].to_numpy()[keep]
    else:
        probability = popularity / max(popularity.sum(), 1.0)
    floor = np.nanmin(probability[probability > 0]) if np.any(probability > 0) else 1.0 / max(num_items, 1)
    probability = np.where(np.isnan(probability) | (probability <= 0), floor, probability)
    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values))

    return TwoTowerData(
        num_users=num_users,
        num_items=num_items,
        users=tensor(users[train]), history=tensor(padded[train]), items=tensor(items[train]), weights=tensor(weights[train]),
        log_q=torch.from_numpy(np.log(probability)).float(),
        popularity=torch.from_numpy(popularity),
        valid=_queries(split == 1, users, items, ts, padded, num_users, num_items, filter_seen, "valid"),
        test=_queries(split == 2, users, items, ts, padded, num_users, num_items, filter_seen, "test"),
        versions=dict(versions or {}),
        dataset=dataset,
    )


def with_content(data: TwoTowerData, content: ItemContent | None) -> TwoTowerData:
    """``data`` with its items' content (None: without), the content tables' versions added to its own."""
    if content is not None and content.num_items != data.num_items:
        raise ValueError(f"content of {content.num_items} items for a catalogue of {data.num_items}")
    versions = {k: v for k, v in data.versions.items() if data.content is None or k not in data.content.versions}
    return dataclasses.replace(data, content=content, versions=versions | (content.versions if content is not None else {}))


def _pad(histories: list[list[int]], width: int) -> np.ndarray:
    out = np.zeros((len(histories), width), np.int64)
    for row, history in enumerate(histories):
        kept = history[-width:]
        if kept:
            out[row, width - len(kept):] = np.asarray(kept, np.int64) + 1
    return out


def _queries(rows: np.ndarray, users: np.ndarray, items: np.ndarray, ts: np.ndarray, padded: np.ndarray,
             num_users: int, num_items: int, filter_seen: bool, name: str) -> QuerySplit:
    relevant = torch.zeros(num_users, num_items, dtype=torch.bool)
    history = torch.zeros(num_users, padded.shape[1], dtype=torch.int64)
    seen = torch.zeros(num_users, num_items, dtype=torch.bool)
    picked = np.flatnonzero(rows)
    relevant[users[picked], items[picked]] = True
    # Each user's first example in the split gives the query history (a stable sort keeps ties in table order).
    first = picked[np.argsort(ts[picked], kind="stable")]
    _, at = np.unique(users[first], return_index=True)
    for row in first[at]:
        history[users[row]] = torch.from_numpy(padded[row])
    for u in np.unique(users[picked]):
        known = history[u][history[u] > 0] - 1
        seen[u, known] = True
    short = (history > 0).sum(1) <= SHORT_HISTORY
    candidates = ~seen if filter_seen else None
    protocol = f"temporal_{name}_full" + ("_seen_filtered" if filter_seen else "")
    return QuerySplit(history, RankingSplit(relevant, candidates, skip_empty=True, protocol=protocol), short)


def pairs_from_examples(data: TwoTowerData, propensity_power: float = 0.5) -> PairData:
    """Every (user, item) pair of the two-tower data for pointwise MF: label 1 for a training positive,
    popularity propensities ``(n_i / max n)^power``; validated and tested on the same temporal queries
    (full catalogue, seen items filtered) as the two-tower model, so the two are comparable."""
    positive = torch.zeros(data.num_users, data.num_items, dtype=torch.bool)
    positive[data.users, data.items] = True
    counts = positive.sum(0).double()
    share = counts / counts.max().clamp(min=1)
    grid_u, grid_i = torch.meshgrid(torch.arange(data.num_users), torch.arange(data.num_items), indexing="ij")
    theta = (share**propensity_power).float().expand(data.num_users, -1)
    return PairData(
        num_users=data.num_users, num_items=data.num_items, users=grid_u.reshape(-1), items=grid_i.reshape(-1),
        labels=positive.reshape(-1).float(), propensity=theta.reshape(-1), inverse_propensity=((1 - share) ** propensity_power).float().expand(data.num_users, -1).reshape(-1),
        valid=data.valid.ranking, test=data.test.ranking, versions=dict(data.versions), dataset=data.dataset,
    )
