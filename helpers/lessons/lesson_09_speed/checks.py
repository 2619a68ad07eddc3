"""Exercise checks for lesson 09 (speed, memory and mixed precision).

Each check runs your answer on fixed inputs, compares it with a reference computed here and
raises `helpers.check.CheckFailed` with a message that names the problem. Reading this code
before solving an exercise spoils it: try first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from helpers.check import CheckFailed, NotAttempted, check_tensor, require_function
from helpers.lessons.lesson_09_speed.tools import saved_bytes

__all__ = ["check_position_channel", "check_checkpointed"]


def _call(fn: Callable[..., Any], name: str, *args: Any) -> Any:
    try:
        result = fn(*args)
    except RuntimeError as error:
        text = str(error)
        if "device" in text:
            raise CheckFailed(f"{name}: {text}\n  Hint: a tensor made without device= lives on the CPU; create it on "
                              "the device of the data (device=x.device) or with a *_like function") from None
        raise CheckFailed(f"{name} raised RuntimeError: {text}") from None
    if result is Ellipsis:
        raise NotAttempted(f"{name}: not attempted yet: replace the `...` with your code, then run this cell again")
    return result


# ----------------------------------------------------------------------------- exercise 1


def _positions_reference(x: torch.Tensor) -> torch.Tensor:
    n, length = x.shape
    positions = torch.arange(length, device=x.device, dtype=x.dtype) / length
    return torch.stack([x, positions.expand(n, length)], dim=-1)


def check_position_channel(fn: Any) -> None:
    """Exercise 1: (N, L) -> (N, L, 2) with positions i / L, on x's device and in x's dtype."""
    fn = require_function(fn, "add_position_channel")
    x = torch.tensor([[0.5, -1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    check_tensor(_call(fn, "add_position_channel(x float32 (2, 4))", x), _positions_reference(x),
                 name="add_position_channel(x float32 (2, 4))",
                 hint="stack x with the positions 0/L, 1/L, ..., (L-1)/L along a new last dimension")
    for dtype in (torch.float64, torch.bfloat16):
        xd = x.to(dtype)
        got = _call(fn, f"add_position_channel(x {dtype})", xd)
        check_tensor(got, _positions_reference(xd), name=f"add_position_channel(x {dtype})",
                     hint="the positions must have x's dtype (dtype=x.dtype): under mixed precision a float32 "
                          "tensor silently promotes a bfloat16 batch back to float32")
    meta = torch.randn(3, 5, device="meta")
    got = _call(fn, "add_position_channel(x on the meta device)", meta)
    if not isinstance(got, torch.Tensor) or got.device.type != "meta":
        raise CheckFailed("add_position_channel(x on the meta device): the result is not on x's device\n"
                          "  Hint: create the positions with device=x.device")
    if tuple(got.shape) != (3, 5, 2):
        raise CheckFailed(f"add_position_channel(x (3, 5) on the meta device): shape {tuple(got.shape)}, "
                          "expected (3, 5, 2)")
    print("✔ add_position_channel: correct on float32, float64, bfloat16 and another device")


# ----------------------------------------------------------------------------- exercise 2


def _blocks() -> nn.ModuleList:
    gen = torch.Generator().manual_seed(9)
    blocks = nn.ModuleList([nn.Sequential(nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 32)) for _ in range(4)])
    with torch.no_grad():
        for p in blocks.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return blocks


def check_checkpointed(fn: Any) -> None:
    """Exercise 2: the same outputs and gradients as the plain pass, fewer saved activations."""
    fn = require_function(fn, "forward_checkpointed")
    x = torch.randn(16, 32, generator=torch.Generator().manual_seed(10))
    plain_blocks, blocks = _blocks(), _blocks()

    def plain() -> torch.Tensor:
        h = x
        for block in plain_blocks:
            h = block(h)
        return h

    out_holder: list[torch.Tensor] = []
    def step_plain() -> None:
        plain().pow(2).mean().backward()

    def step_student() -> None:
        out = _call(fn, "forward_checkpointed(blocks, x)", blocks, x)
        if not isinstance(out, torch.Tensor):
            raise CheckFailed(f"forward_checkpointed must return a tensor, got {type(out).__name__}")
        out_holder.append(out.detach())
        if not out.requires_grad:
            raise CheckFailed("forward_checkpointed(blocks, x): the output does not require grad, so no gradient can "
                              "reach the blocks' parameters\n  Hint: with use_reentrant=True and an input that does "
                              "not require grad, checkpoint cuts the graph: pass use_reentrant=False")
        out.pow(2).mean().backward()

    plain_bytes = saved_bytes(step_plain, plain_blocks.parameters())
    student_bytes = saved_bytes(step_student, blocks.parameters())
    with torch.no_grad():
        check_tensor(out_holder[0], plain(), atol=1e-6, name="forward_checkpointed(blocks, x) output",
                     hint="apply every block, in order, each once")
    for (name, p), q in zip(blocks.named_parameters(), plain_blocks.parameters()):
        assert q.grad is not None  # the plain pass reached every parameter
        if p.grad is None:
            raise CheckFailed(f"forward_checkpointed: parameter {name} got no gradient\n  Hint: use "
                              "checkpoint(block, h, use_reentrant=False)")
        check_tensor(p.grad, q.grad, atol=1e-6, name=f"gradient of parameter {name}",
                     hint="checkpointing must not change any gradient: recompute each block exactly once")
    if student_bytes >= plain_bytes:
        raise CheckFailed(f"forward_checkpointed: the step saved {student_bytes:,} bytes for the backward pass, the "
                          f"plain pass {plain_bytes:,}: nothing was checkpointed\n  Hint: call each block through "
                          "torch.utils.checkpoint.checkpoint(block, h, use_reentrant=False)")
    print(f"✔ forward_checkpointed: same output and gradients; saved activations {plain_bytes:,} -> "
          f"{student_bytes:,} bytes")
