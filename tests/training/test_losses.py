"""Loss functions: the published weightings, log-Q and accidental hits."""

from __future__ import annotations

import math

import torch

from training import losses


def test_relmf_weights_match_saito() -> None:
    # A positive with theta 0.25 weighs 4 as a positive and 1 - 4 = -3 as a negative; theta below 0.1 is clipped.
    labels = torch.tensor([1.0, 0.0, 1.0])
    theta = torch.tensor([0.25, 0.25, 0.01])
    w_pos, w_neg = losses.relmf_weights(labels, theta, 0.1)
    assert w_pos.tolist() == [4.0, 0.0, 10.0]
    assert w_neg.tolist() == [-3.0, 1.0, -9.0]


def test_mfdu_weights_self_normalise() -> None:
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0])
    w_pos, w_neg = losses.mfdu_weights(labels, torch.tensor([0.5, 1.0, 0.5, 0.5]), torch.tensor([1.0, 1.0, 0.5, 1.0]), 0.1)
    assert torch.allclose(w_pos.sum(), torch.tensor(1.0), atol=1e-5) and torch.allclose(w_neg.sum(), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(w_pos[:2], torch.tensor([2 / 3, 1 / 3]), atol=1e-5)


def test_pointwise_mse_is_mean_squared_error_on_sigmoid() -> None:
    logits = torch.tensor([0.0, 0.0])
    assert math.isclose(losses.pointwise_mse(logits, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item(), 0.25)


def test_logq_lowers_popular_items_logits() -> None:
    # Two identical users and items; item 0 is sampled 9x as often, so its in-batch logit is corrected down.
    u = torch.nn.functional.normalize(torch.ones(2, 4), dim=-1)
    v = u.clone()
    ids = torch.tensor([0, 1])
    plain = losses.sampled_softmax(u, v, ids, 1.0, remove_accidental_hits=False)
    assert math.isclose(plain.item(), math.log(2), rel_tol=1e-5)
    log_q = torch.log(torch.tensor([0.9, 0.1]))
    corrected = torch.nn.functional.cross_entropy(torch.tensor([[0.0, 0.0]]) - log_q, torch.tensor([0]))
    got = losses.sampled_softmax(u[:1].expand(2, -1), v, ids, 1.0, log_q=log_q, remove_accidental_hits=False, weights=torch.tensor([1.0, 0.0]))
    assert math.isclose(got.item(), corrected.item(), rel_tol=1e-5)


def test_accidental_hits_are_removed() -> None:
    # Rows 0 and 1 share positive item 7: each must not count the other's copy as a negative.
    u = torch.eye(3)
    v = torch.eye(3)
    ids = torch.tensor([7, 7, 3])
    with_hits = losses.sampled_softmax(u, v, ids, 1.0, remove_accidental_hits=False)
    without = losses.sampled_softmax(u, v, ids, 1.0, remove_accidental_hits=True)
    assert without < with_hits
    # With an extra negative that is item 7: rows 0 and 1 keep only [own, item 3]; row 2 ranks its own against 7, 7 and the extra 7.
    extra = losses.sampled_softmax(u, v, ids, 1.0, extra_items=torch.eye(3)[:1], extra_ids=torch.tensor([7]), extra_log_q=0.0)
    ce = torch.nn.functional.cross_entropy
    want = (2 * ce(torch.tensor([[1.0, 0.0]]), torch.tensor([0])) + ce(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([0]))) / 3
    assert torch.allclose(extra, want, atol=1e-5)
