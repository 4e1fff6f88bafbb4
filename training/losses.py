"""Loss functions: pure functions of tensors (no modules, no state).

Pointwise MF losses follow the code accompanying Lee et al. (SIGIR 2021), which re-implements Rel-MF:
the prediction is ``sigmoid(logit)`` and the loss a squared error, summed and divided by the batch size::

    loss = sum_b [ w_pos_b * (1 - sigmoid(s_b))^2 + w_neg_b * sigmoid(s_b)^2 ] / B

    naive:  w_pos = Y,                      w_neg = 1 - Y
    Rel-MF: w_pos = Y / theta,              w_neg = 1 - Y / theta        (theta clipped to [M, 1])
    MF-DU:  w_pos = Y / theta / S_pos,      w_neg = (1 - Y) / theta' / S_neg
            S_pos = sum_b Y / theta, S_neg = sum_b (1 - Y) / theta' (per batch: SNIPS), theta' = (1 - n_i / max n)^0.5
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SNIPS_EPS = 1e-6  # keeps a batch without positives (or negatives) finite


def pointwise_mse(logits: torch.Tensor, weight_pos: torch.Tensor, weight_neg: torch.Tensor) -> torch.Tensor:
    """``sum(w_pos (1 - p)^2 + w_neg p^2) / B`` with ``p = sigmoid(logits)``."""
    p = torch.sigmoid(logits)
    return (weight_pos * (1 - p).square() + weight_neg * p.square()).sum() / logits.numel()


def naive_weights(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return labels, 1 - labels


def relmf_weights(labels: torch.Tensor, propensity: torch.Tensor, clip_min: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Saito et al.'s unbiased pointwise weights; ``w_neg`` is negative for positives with theta < 1."""
    ratio = labels / propensity.clamp(clip_min, 1.0)
    return ratio, 1 - ratio


def mfdu_weights(labels: torch.Tensor, propensity: torch.Tensor, inverse_propensity: torch.Tensor, clip_min: float) -> tuple[torch.Tensor, torch.Tensor]:
    """MF-DU's dual weights, each side self-normalised over the batch (SNIPS)."""
    pos = labels / propensity.clamp(clip_min, 1.0)
    neg = (1 - labels) / inverse_propensity.clamp(clip_min, 1.0)
    return pos / (pos.sum() + SNIPS_EPS), neg / (neg.sum() + SNIPS_EPS)


def l2_penalty(*tensors: torch.Tensor) -> torch.Tensor:
    """TensorFlow's ``l2_loss`` summed: ``sum ||t||^2 / 2``."""
    return sum((t.square().sum() / 2 for t in tensors), torch.zeros(()))


def sampled_softmax(
    users: torch.Tensor,
    items: torch.Tensor,
    item_ids: torch.Tensor,
    temperature: float,
    log_q: torch.Tensor | None = None,
    extra_items: torch.Tensor | None = None,
    extra_ids: torch.Tensor | None = None,
    extra_log_q: float = 0.0,
    remove_accidental_hits: bool = True,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch sampled softmax (Yi et al. RecSys 2019) with optional uniform extra negatives.

    Row ``b`` scores its user against every in-batch positive (its own on the diagonal) and the
    extra negatives::

        logits [B, B + N] = [ U V^T / temperature - log Q(item_j) | U E^T / temperature - log(N / catalogue) ]

    (the corrections are applied after the temperature: they are log-probabilities, not similarities)

    Args:
        users: ``[B, D]`` user vectors.
        items: ``[B, D]`` positive item vectors (row ``b`` is row ``b``'s positive).
        item_ids: ``[B]`` the positives' ids (for accidental hits).
        temperature: Divides every similarity.
        log_q: ``[B]`` log sampling probability of each in-batch item (None: no correction).
        extra_items: ``[N, D]`` uniformly sampled negatives, shared by the batch.
        extra_ids: ``[N]`` their ids.
        extra_log_q: Their log sampling probability ``log(N / catalogue)``.
        remove_accidental_hits: Mask candidates (other than the diagonal) whose id is the row's positive.
        weights: ``[B]`` per-example weights (None: 1); the loss is their weighted mean.
    """
    logits = users @ items.T / temperature
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    candidate_ids = item_ids
    if extra_items is not None and extra_ids is not None:
        logits = torch.cat([logits, users @ extra_items.T / temperature - extra_log_q], dim=1)
        candidate_ids = torch.cat([item_ids, extra_ids])
    target = torch.arange(len(users), device=users.device)
    if remove_accidental_hits:
        hits = item_ids.unsqueeze(1) == candidate_ids.unsqueeze(0)
        hits[target, target] = False
        logits = logits.masked_fill(hits, torch.finfo(logits.dtype).min)
    losses = F.cross_entropy(logits, target, reduction="none")
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp(min=1e-12)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Contrastive loss between two views (row ``b`` of ``a`` matches row ``b`` of ``b``), as in Yao et al.'s SSL."""
    logits = a @ b.T / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


def log_uniform_correction(samples: int, catalogue: int) -> float:
    """``log(samples / catalogue)``: the log probability that a uniform draw of ``samples`` includes an item."""
    return math.log(samples / catalogue)
