"""Exercise checks for lesson 06 (convolutional networks).

Each check runs your answer on fixed inputs, compares it with a reference computed here and
raises `helpers.check.CheckFailed` with a message that names the problem. Shape problems are
explained layer by layer by `helpers.shapes.check_forward_shapes`. Reading this code before
solving an exercise spoils it: try first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from helpers.check import CheckFailed, NotAttempted, check_tensor
from helpers.shapes import check_forward_shapes

__all__ = ["check_any_size_net", "check_block", "check_saliency", "ANY_SIZE_BUDGET"]

ANY_SIZE_BUDGET = 10_000


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _instantiate(cls: Any, args: tuple, name: str) -> nn.Module:
    """`cls(*args)`, with NotAttempted for the untouched `...` class and readable errors."""
    if cls is Ellipsis:
        raise NotAttempted(f"{name}: not attempted yet: replace the `...` with your class, then run this cell again")
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise CheckFailed(f"{name}: expected a class derived from nn.Module, got {type(cls).__name__}")
    if cls.__init__ is nn.Module.__init__ and cls.forward is nn.Module.forward:
        raise NotAttempted(f"{name}: not attempted yet: replace the `...` with your class, then run this cell again")
    call = f"{cls.__name__}({', '.join(map(repr, args))})"
    try:
        return cls(*args)
    except Exception as error:  # noqa: BLE001 (explained to the student)
        raise CheckFailed(f"{name}: creating {call} raised {type(error).__name__}: {error}") from None


# ----------------------------------------------------------------------------- exercise 1


def check_any_size_net(cls: Any) -> None:
    """Exercise 1: one model, (N, 1, 28, 28) and (N, 1, 32, 32) both -> (N, 10), under the budget."""
    model = _instantiate(cls, (), "AnySizeNet")
    if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        raise CheckFailed("AnySizeNet: it has no Conv2d layer: keep FixedSizeNet's two conv blocks")
    model.eval()
    for size in (28, 32, 20):
        check_forward_shapes(model, (3, 1, size, size), (3, 10), name=f"AnySizeNet() on {size}x{size} images")
    count = _count(model)
    if count >= ANY_SIZE_BUDGET:
        raise CheckFailed(f"AnySizeNet: {count:,} parameters, the budget is under {ANY_SIZE_BUDGET:,}\n"
                          "  Hint: resizing every image, or a Linear layer sized for the largest map, keeps the "
                          "size problem; pool each channel to one number (nn.AdaptiveAvgPool2d(1)) so the "
                          "Linear layer takes 32 features")
    with torch.no_grad():
        x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        if not torch.isfinite(model(x)).all():
            raise CheckFailed("AnySizeNet: the logits contain inf or nan")
    print(f"✔ AnySizeNet: (N, 1, 28, 28), (N, 1, 32, 32) and (N, 1, 20, 20) -> (N, 10), {count:,} parameters")


# ----------------------------------------------------------------------------- exercise 2


def _block_count(c_in: int, c_out: int, stride: int) -> int:
    body = c_out * c_in * 9 + 2 * c_out + c_out * c_out * 9 + 2 * c_out
    projection = c_out * c_in + 2 * c_out if (stride != 1 or c_in != c_out) else 0
    return body + projection


def _reference_blocks(block: nn.Module, c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    """helpers.models.ResidualBlock with the weights of `block`: one per way its convs can take the
    roles conv1, conv2 (found by shape, whatever order they were registered in)."""
    from helpers.models import ResidualBlock

    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    threes = [m for m in convs if m.kernel_size == (3, 3)]
    ones = [m for m in convs if m.kernel_size == (1, 1)]
    references: list[nn.Module] = []
    for first in threes:
        for second in threes:
            if first is second or first.in_channels != c_in or first.stride != (stride, stride) \
                    or second.in_channels != c_out or second.stride != (1, 1):
                continue
            reference = ResidualBlock(c_in, c_out, stride)
            with torch.no_grad():
                reference.conv1.weight.copy_(first.weight)
                reference.conv2.weight.copy_(second.weight)
                if ones and isinstance(reference.shortcut, nn.Sequential):
                    projection = reference.shortcut[0]
                    assert isinstance(projection, nn.Conv2d)
                    projection.weight.copy_(ones[0].weight)
            references.append(reference.train())
    if not references:
        raise CheckFailed(f"Block({c_in}, {c_out}, {stride}): expected a 3×3 conv from {c_in} channels with stride "
                          f"{stride}, then a 3×3 conv from {c_out} channels with stride 1")
    return references


def check_block(cls: Any) -> None:
    """Exercise 2: a residual block with the right shortcut for every (in, out, stride)."""
    for c_in, c_out, stride in [(8, 8, 1), (8, 16, 1), (8, 16, 2), (8, 8, 2)]:
        name = f"Block({c_in}, {c_out}, {stride})"
        block = _instantiate(cls, (c_in, c_out, stride), "Block")
        size = 12 // stride
        try:
            with torch.no_grad():
                block(torch.zeros(2, c_in, 12, 12))
        except RuntimeError as error:
            if "must match the size of tensor" in str(error):
                raise CheckFailed(f"{name}: the main path and the shortcut have different shapes, so they cannot be "
                                  f"added ({error})\n  Hint: when the stride is not 1 or the channel count changes, "
                                  "the shortcut must be a 1×1 conv with the block's stride, then BatchNorm2d") from None
        check_forward_shapes(block, (2, c_in, 12, 12), (2, c_out, size, size), name=name)
        if any(isinstance(m, nn.Conv2d) and m.bias is not None for m in block.modules()):
            raise CheckFailed(f"{name}: a Conv2d has a bias: every conv here has bias=False (BatchNorm follows it)")
        count, expected = _count(block), _block_count(c_in, c_out, stride)
        if count != expected:
            projection = stride != 1 or c_in != c_out
            hint = ("the shape changes here, so the shortcut is a 1×1 conv with the block's stride plus BatchNorm"
                    if projection else
                    "the shape does not change here, so the shortcut is the identity (no extra parameters)")
            raise CheckFailed(f"{name}: {count:,} parameters, expected {expected:,}\n  Hint: {hint}")
        block.train()
        x = torch.randn(4, c_in, 12, 12, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            got = block(x)
            references = _reference_blocks(block, c_in, c_out, stride)
            if not any(torch.allclose(got, reference(x), atol=1e-4) for reference in references):
                check_tensor(got, references[0](x), name=f"{name} output (training mode)", atol=1e-4,
                             hint="relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): the ReLU comes after the "
                                  "addition")
    print("✔ Block: right shapes, shortcuts and outputs for (8, 8, 1), (8, 16, 1), (8, 16, 2) and (8, 8, 2)")


# ----------------------------------------------------------------------------- exercise 3


def _reference_saliency(model: nn.Module, image: torch.Tensor, label: int) -> torch.Tensor:
    model.eval()
    x = image.detach().clone()[None].requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[0, label], x)
    return grad[0].abs().sum(dim=0)


def _saliency_model() -> nn.Sequential:
    torch.manual_seed(6)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                         nn.AdaptiveMaxPool2d(2), nn.Flatten(), nn.Linear(16, 10))


def check_saliency(fn: Any) -> None:
    """Exercise 3: |d logit_label / d image|, (H, W), eval mode, parameters' .grad untouched, image unchanged."""
    if fn is Ellipsis:
        raise NotAttempted("saliency: not attempted yet: replace the `...` with your code, then run this cell again")
    image = torch.rand(1, 10, 10, generator=torch.Generator().manual_seed(7))
    original = image.clone()
    model = _saliency_model()
    with torch.no_grad():   # running statistics that differ from a batch's, so eval mode matters
        norm = model[1]
        assert isinstance(norm, nn.BatchNorm2d) and norm.running_mean is not None and norm.running_var is not None
        norm.running_mean.fill_(0.3)
        norm.running_var.fill_(2.0)
    model.train()
    got = fn(model, image, 3)
    if got is Ellipsis or got is None:
        raise NotAttempted("saliency: not attempted yet: replace the `...` with your code (and return the map)")
    if any(p.grad is not None for p in model.parameters()):
        raise CheckFailed("saliency: the model's parameters now have .grad set\n  Hint: use "
                          "torch.autograd.grad(logit, x), which returns the gradient for x alone")
    if not torch.equal(image, original) or image.requires_grad:
        raise CheckFailed("saliency: the image you were given was changed (values or requires_grad)\n  Hint: work on "
                          "image.detach().clone().requires_grad_(True)")
    if isinstance(got, torch.Tensor) and got.dim() == 3 and got.shape[0] == 1:
        raise CheckFailed(f"saliency: shape is {tuple(got.shape)}, expected (10, 10)\n  Hint: drop the channel "
                          "dimension (here there is one channel)")
    expected = _reference_saliency(model, image, 3)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and bool((got < 0).any()):
        raise CheckFailed("saliency: some values are negative\n  Hint: take the absolute value of the gradient")
    check_tensor(got, expected, name="saliency(model, image, 3)", atol=1e-5, check_dtype=False,
                 hint="the gradient of the logit of class `label` (not of a loss, not of the softmax), "
                      "computed with model.eval() so BatchNorm and Dropout act as at prediction time")
    print("✔ saliency: right values, eval mode, parameters and image untouched")
