"""Typed data for pointwise models: every (user, item) training pair with its label and propensities,
and the ranking splits that evaluate them.

    PairData.users / items / labels / propensity / inverse_propensity   [N]   one row per training pair
    RankingSplit.relevant / candidates                                  [U, I] bool
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class PairBatch:
    """A batch of training pairs (rows of :class:`PairData`)."""

    users: torch.Tensor  # [B] int64
    items: torch.Tensor  # [B] int64
    labels: torch.Tensor  # [B] float32, Y in {0, 1}
    propensity: torch.Tensor  # [B] float32, theta (unclipped)
    inverse_propensity: torch.Tensor  # [B] float32, theta' (MF-DU's negative-side propensity)
    index: torch.Tensor  # [B] int64, row numbers in PairData (to check who saw what)

    def to(self, device: torch.device) -> PairBatch:
        return PairBatch(*(t.to(device) for t in (self.users, self.items, self.labels, self.propensity, self.inverse_propensity, self.index)))


@dataclass(frozen=True)
class RankingSplit:
    """What one evaluation ranks: per user, the candidate items and the relevant ones among them.

    Attributes:
        relevant: ``[U, I]`` held-out positives.
        candidates: ``[U, I]`` items ranked per user (None: the full catalogue).
        skip_empty: Users without a relevant candidate are skipped (else they score 0).
        map_by_all_relevant: AP divides by all relevant items (the Lee et al. code) rather than min(n, K).
        protocol: Names the protocol in the metrics table (e.g. ``coat_lee2021``, ``full_seen_filtered``).
    """

    relevant: torch.Tensor
    candidates: torch.Tensor | None
    skip_empty: bool = True
    map_by_all_relevant: bool = False
    protocol: str = "full"


@dataclass(frozen=True)
class PairData:
    num_users: int
    num_items: int
    users: torch.Tensor
    items: torch.Tensor
    labels: torch.Tensor
    propensity: torch.Tensor
    inverse_propensity: torch.Tensor
    valid: RankingSplit
    test: RankingSplit
    versions: dict[str, str] = field(default_factory=dict)  # input name -> content hash (goes in the checkpoint)
    dataset: str = ""

    def __len__(self) -> int:
        return len(self.users)

    def batch(self, index: torch.Tensor) -> PairBatch:
        return PairBatch(self.users[index], self.items[index], self.labels[index], self.propensity[index], self.inverse_propensity[index], index)

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        """This epoch's permutation of the rows: the same on every rank (each then takes its slice)."""
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        return torch.randperm(len(self), generator=generator)
