"""Tests for helpers.losses.FocalLoss: cross-entropy as a special case, the focusing effect,
alpha weighting, reductions, stability with extreme logits and clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers.losses import FocalLoss, focal_loss


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(16, 5, generator=generator) * 3, torch.randint(0, 5, (16,), generator=generator)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gamma_zero_is_cross_entropy(batch, reduction):
    logits, targets = batch
    got = FocalLoss(gamma=0.0, reduction=reduction)(logits, targets)
    assert torch.allclose(got, F.cross_entropy(logits, targets, reduction=reduction))


def test_matches_the_formula(batch):
    logits, targets = batch
    p_t = logits.softmax(dim=1)[torch.arange(16), targets]
    expected = -(1 - p_t) ** 2 * torch.log(p_t)
    assert torch.allclose(FocalLoss(reduction="none")(logits, targets), expected, atol=1e-6)
    assert torch.allclose(FocalLoss()(logits, targets), expected.mean(), atol=1e-6)
    assert torch.allclose(FocalLoss(reduction="sum")(logits, targets), expected.sum(), atol=1e-5)


def test_focuses_on_hard_examples():
    targets = torch.tensor([0, 0])
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.0]])  # the first is easy (p_t = 0.98), the second hard
    ce = F.cross_entropy(logits, targets, reduction="none")
    focal = FocalLoss(gamma=2.0, reduction="none")(logits, targets)
    assert (focal <= ce).all()
    # The easy example is down-weighted far more than the hard one.
    assert focal[0] / ce[0] < 0.001 < 0.2 < focal[1] / ce[1]


def test_alpha_number_and_per_class_tensor(batch):
    logits, targets = batch
    plain = FocalLoss(reduction="none")(logits, targets)
    assert torch.allclose(FocalLoss(alpha=0.25, reduction="none")(logits, targets), 0.25 * plain)
    weights = torch.tensor([1.0, 2.0, 0.5, 0.0, 3.0])
    assert torch.allclose(FocalLoss(alpha=weights, reduction="none")(logits, targets), weights[targets] * plain)
    # With gamma=0 the per-class alpha is cross_entropy's `weight` (summed; "mean" divides by N here).
    got = FocalLoss(gamma=0.0, alpha=weights, reduction="sum")(logits, targets)
    assert torch.allclose(got, F.cross_entropy(logits, targets, weight=weights, reduction="sum"))
    assert torch.allclose(FocalLoss(gamma=0.0, alpha=weights)(logits, targets), got / 16)


def test_alpha_moves_with_the_module():
    loss = FocalLoss(alpha=torch.tensor([1.0, 2.0]))
    assert "alpha" in dict(loss.named_buffers())
    assert loss.to(torch.float64).alpha.dtype == torch.float64


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_stable_with_extreme_logits(gamma):
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    targets = torch.tensor([0, 0, 2])  # right with certainty, wrong with certainty, unsure
    loss = FocalLoss(gamma=gamma, reduction="none")(logits, targets)
    assert torch.isfinite(loss).all()
    assert loss[0] == 0  # certain and right: no loss
    assert torch.allclose(loss[1], torch.tensor(2e4))  # certain and wrong: -log p_t = 2e4, (1 - p_t)^gamma = 1
    loss.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_differentiable_and_matches_functional(batch):
    logits, targets = batch
    logits = logits.clone().requires_grad_()
    FocalLoss(gamma=1.5)(logits, targets).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert torch.equal(FocalLoss(gamma=1.5)(logits, targets), focal_loss(logits, targets, gamma=1.5))


def test_clear_errors(batch):
    logits, targets = batch
    loss = FocalLoss()
    with pytest.raises(ValueError, match="int64"):
        loss(logits, targets.float())
    with pytest.raises(ValueError, match=r"0\.\.4"):
        loss(logits, torch.full((16,), 5))
    with pytest.raises(ValueError, match=r"0\.\.4"):
        loss(logits, torch.full((16,), -1))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        loss(logits[0], targets[0])
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        loss(logits, targets[:3])
    with pytest.raises(ValueError, match="alpha"):
        FocalLoss(alpha=torch.ones(3))(logits, targets)
    with pytest.raises(ValueError, match="reduction"):
        FocalLoss(reduction="average")
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1)
