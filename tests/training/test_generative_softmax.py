"""The chunked full-softmax cross-entropy equals the plain one, in value and in both gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.generative.full_softmax import full_softmax_cross_entropy


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])  # smaller than, not dividing, and larger than the 10 positions
def test_loss_and_gradients_match_cross_entropy(chunk: int) -> None:
    torch.manual_seed(0)
    states = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)
    vectors = torch.randn(25, 6, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 3, 3, 24, 7, 1, 0, 12, 24, 5])  # repeated targets: the one-hot rows add up in dV
    reference = F.cross_entropy(states @ vectors.T, targets)
    expected = torch.autograd.grad(reference * 3.0, (states, vectors))
    loss = full_softmax_cross_entropy(states, vectors, targets, chunk)
    got = torch.autograd.grad(loss * 3.0, (states, vectors))  # a scaled loss: the upstream gradient is applied
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_large_logits_do_not_overflow() -> None:
    states = torch.tensor([[100.0, 0.0]], requires_grad=True)
    vectors = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    loss = full_softmax_cross_entropy(states, vectors.requires_grad_(), torch.tensor([1]))
    assert loss.item() == pytest.approx(1000.0, rel=1e-6)  # logsumexp(1000, 0) - 0
    loss.backward()
    assert torch.isfinite(states.grad).all()


def test_without_gradients_it_is_the_plain_loss() -> None:
    states, vectors, targets = torch.randn(4, 3), torch.randn(9, 3), torch.tensor([0, 8, 2, 2])
    with torch.no_grad():
        assert full_softmax_cross_entropy(states, vectors, targets).item() == pytest.approx(F.cross_entropy(states @ vectors.T, targets).item())
