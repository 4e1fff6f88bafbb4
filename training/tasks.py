"""Tasks: a model and its loss. ``forward(batch)`` returns the training loss (what DDP wraps);
``scores`` serves evaluation. The retrieval wrapper serves top-K from cached item vectors.
"""

from __future__ import annotations

import torch
from torch import nn

from training import losses
from training.config import MFConfig, MFLoss, TwoTowerConfig
from training.data.pairs import PairBatch
from training.data.two_tower import TwoTowerBatch
from training.models import MatrixFactorization, TwoTower


class MFTask(nn.Module):
    """Pointwise MF with the naive, Rel-MF or MF-DU loss plus the L2 penalty on all factors."""

    def __init__(self, model: MatrixFactorization, config: MFConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config

    def forward(self, batch: PairBatch) -> torch.Tensor:
        cfg = self.config
        logits = self.model(batch.users, batch.items)
        if cfg.loss is MFLoss.NAIVE:
            w_pos, w_neg = losses.naive_weights(batch.labels)
        elif cfg.loss is MFLoss.RELMF:
            w_pos, w_neg = losses.relmf_weights(batch.labels, batch.propensity, cfg.clip_min)
        else:
            w_pos, w_neg = losses.mfdu_weights(batch.labels, batch.propensity, batch.inverse_propensity, cfg.clip_min)
        return losses.pointwise_mse(logits, w_pos, w_neg) + cfg.l2 * losses.l2_penalty(self.model.users, self.model.items)

    @torch.no_grad()
    def scores(self, users: torch.Tensor) -> torch.Tensor:
        return self.model.scores(users.to(self.model.users.device))


class TwoTowerTask(nn.Module):
    """In-batch sampled softmax with log-Q, optional uniform negatives, accidental-hit removal,
    example weights, and the optional SSL loss (two complementary masked views of the item tower).

    Args:
        model: The two towers.
        config: Loss settings.
        log_q: ``[I]`` log of each item's share of the training positives (``item_frequencies``).
    """

    def __init__(self, model: TwoTower, config: TwoTowerConfig, log_q: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.register_buffer("log_q", log_q.float())

    def forward(self, batch: TwoTowerBatch) -> torch.Tensor:
        cfg = self.config
        users, items = self.model(batch.history, batch.items, batch.users)
        extra = extra_ids = None
        extra_log_q = 0.0
        num_items = self.model.item_tower.num_items
        if cfg.uniform_negatives:
            extra_ids = torch.randint(num_items, (cfg.uniform_negatives,), device=batch.items.device)
            extra = self.model.item_tower(extra_ids)
            extra_log_q = losses.log_uniform_correction(cfg.uniform_negatives, num_items)
        loss = losses.sampled_softmax(
            users, items, batch.items, cfg.temperature,
            log_q=self.log_q[batch.items.clamp(max=num_items - 1)] if cfg.logq else None,
            extra_items=extra, extra_ids=extra_ids, extra_log_q=extra_log_q,
            remove_accidental_hits=cfg.remove_accidental_hits,
            weights=batch.weights if cfg.use_weights else None,
        )
        if cfg.ssl_weight > 0:
            loss = loss + cfg.ssl_weight * self.ssl_loss(batch.items)
        return loss

    def ssl_loss(self, items: torch.Tensor) -> torch.Tensor:
        """Yao et al. (CIKM 2021): two views of each item with complementary feature masks, pulled
        together against the batch's other items. With several feature groups (id and content), a view
        masks a random cyclic block of ``ssl_mask_rate`` of them in the tower's group order, where related
        groups sit side by side (codes beside text, the catalog groups together): a stand-in for the
        paper's correlated feature masking. With the id group alone, the block is one of the feature width."""
        unique = items.unique()
        tower = self.model.item_tower
        groups = tower.num_groups
        if groups > 1:
            span = min(groups - 1, max(1, round(self.config.ssl_mask_rate * groups)))
            start = torch.randint(0, groups, (len(unique), 1), device=items.device)
            position = (torch.arange(groups, device=items.device).unsqueeze(0) - start) % groups
            mask = (position < span).float().unsqueeze(-1)  # [U, G, 1]
        else:
            width = tower.embed.embedding_dim
            span = max(1, int(self.config.ssl_mask_rate * width))
            start = torch.randint(0, width - span + 1, (len(unique), 1), device=items.device)
            cols = torch.arange(width, device=items.device).unsqueeze(0)
            mask = ((cols >= start) & (cols < start + span)).float().unsqueeze(1)  # [U, 1, width]
        return losses.info_nce(tower(unique, keep=mask), tower(unique, keep=1 - mask), self.config.ssl_temperature)


class TwoTowerRetrieval:
    """Serves a trained two-tower model: item vectors computed once, users scored against all of them."""

    def __init__(self, model: TwoTower, num_items: int) -> None:
        self.model = model
        with torch.no_grad():
            device = next(model.parameters()).device
            self.items = model.item_tower(torch.arange(num_items, device=device))

    @torch.no_grad()
    def users(self, history: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """``[U, dim]`` query vectors (what an ANN index is searched with)."""
        return self.model.user_tower(history, users)

    @torch.no_grad()
    def scores(self, history: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return self.users(history, users) @ self.items.T

    @torch.no_grad()
    def topk(self, history: torch.Tensor, k: int, users: torch.Tensor | None = None) -> torch.Tensor:
        return self.scores(history, users).topk(k, dim=1).indices
