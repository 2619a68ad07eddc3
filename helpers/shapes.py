"""Shape checks for any model: run it with a hook on every layer and explain problems in words.

`check_forward_shapes(model, input_shape, expected_shape)` runs `model` on a random batch and
names the first layer whose output has an unexpected shape, or translates the error PyTorch
raised into advice (for example "Linear 'fc1' expected 4096 input features but got 3136:
..."). Lessons and the visible tests of assignments use it; `trace_layers` is the tracer
behind it, useful on its own to print what each layer did.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from helpers.check import CheckFailed, in_student

__all__ = ["LayerCall", "trace_layers", "shape_report", "check_forward_shapes"]


@dataclass
class LayerCall:
    """One call of a leaf layer during a forward pass: its name, the module, input and output shapes."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None = None   # None: the call raised (or returned no tensor)

    def describe(self) -> str:
        arrow = f"{self.output_shape}" if self.output_shape is not None else "raised an error"
        return f"{self.name} ({type(self.module).__name__}): {self.input_shape} -> {arrow}"


def trace_layers(model: nn.Module, x: torch.Tensor) -> tuple[list[LayerCall], Any, BaseException | None]:
    """Run `model(x)` without gradients, recording every leaf layer's input and output shape.

    Returns (calls in execution order, the output or None, the exception raised or None).
    Functional calls such as F.relu or x.view are not layers, so they do not appear.
    """
    names = {id(module): name or type(module).__name__ for name, module in model.named_modules()}
    calls: list[LayerCall] = []
    open_calls: dict[int, list[LayerCall]] = {}

    def before(module: nn.Module, args: tuple) -> None:
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        call = LayerCall(names.get(id(module), type(module).__name__), module,
                         tuple(first.shape) if first is not None else None)
        calls.append(call)
        open_calls.setdefault(id(module), []).append(call)

    def after(module: nn.Module, args: tuple, output: Any) -> None:
        stack = open_calls.get(id(module))
        if stack:
            call = stack.pop()
            if isinstance(output, torch.Tensor):
                call.output_shape = tuple(output.shape)

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = []
    for module in leaves:
        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    output, error = None, None
    try:
        with torch.no_grad():
            output = model(x)
    except Exception as exc:  # noqa: BLE001 (any error is explained to the student)
        error = exc
    finally:
        for handle in handles:
            handle.remove()
    return calls, output, error


def shape_report(calls: list[LayerCall]) -> str:
    """The first layers' input and output shapes, one line each, for the end of a message."""
    if not calls:
        return ""
    lines = [call.describe() for call in calls[:12]]
    if len(calls) > 12:
        lines.append(f"... ({len(calls) - 12} more layers)")
    return "\n  Shapes layer by layer:\n    " + "\n    ".join(lines)


def _factor(features: int, calls: list[LayerCall]) -> str:
    """' = 64×7×7' when `features` is C*H*W for the channel count C of the last conv layer."""
    convs = [c.module for c in calls if isinstance(c.module, nn.Conv2d)]
    if not convs:
        return ""
    channels = convs[-1].out_channels
    if features % channels:
        return ""
    side = math.isqrt(features // channels)
    if side * side != features // channels:
        return ""
    return f" = {channels}×{side}×{side}"


def _generic_problem(call: LayerCall, batch: int, flatten_rule: bool) -> str | None:
    """A shape problem that does not need the architecture's specification, or None."""
    if call.input_shape is None:
        return None
    if isinstance(call.module, nn.Linear):
        if flatten_rule and len(call.input_shape) > 2:
            return (f"Linear '{call.name}' received a {len(call.input_shape)}-D tensor of shape {call.input_shape}: "
                    "a Linear layer after convolutions needs (N, features), so flatten first: "
                    "x.flatten(1) in forward, or nn.Flatten() in a Sequential")
        if call.input_shape[0] != batch:
            return (f"Linear '{call.name}' received shape {call.input_shape}, but the batch has {batch} samples: "
                    "the batch dimension was changed before it, typically by x.view(-1, F) with a wrong F "
                    "(it silently merges or splits samples). Flatten with x.flatten(1), which keeps dimension 0")
    if call.output_shape is not None and call.output_shape and call.output_shape[0] != batch \
            and call.input_shape and call.input_shape[0] == batch:
        return (f"layer '{call.name}' ({type(call.module).__name__}) changed the batch dimension: "
                f"{call.input_shape} -> {call.output_shape}")
    return None


def _explain_error(error: BaseException, calls: list[LayerCall], batch: int, flatten_rule: bool) -> str:
    """The exception PyTorch raised, translated into what is wrong and how to fix it."""
    text = str(error)
    failing = next((c for c in reversed(calls) if c.output_shape is None and c.input_shape is not None), None)
    if failing is not None and (problem := _generic_problem(failing, batch, flatten_rule)):
        return problem
    match = re.search(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)", text)
    if match:
        got, expected = int(match[2]), int(match[3])
        linear = failing if failing is not None and isinstance(failing.module, nn.Linear) else None
        layer = f"Linear '{linear.name}'" if linear else "a Linear layer"
        if linear and linear.input_shape is not None and len(linear.input_shape) > 2:
            return (f"{layer} expected {expected} input features but got a tensor of shape {linear.input_shape}: "
                    f"a Linear layer works on the last dimension only (here {got}), so flatten each sample first: "
                    "nn.Flatten() in a Sequential, or x.flatten(1) in forward")
        if any(isinstance(c.module, nn.Conv2d) for c in calls):
            return (f"{layer} expected {expected} input features but got {got}: the flatten size is C*H*W of the "
                    f"last conv output{_factor(got, calls)}, so this layer must be nn.Linear({got}, ...) "
                    "(if the conv layers themselves are right)")
        return (f"{layer} expected {expected} input features but got {got}: its in_features must equal the "
                "number of features the layer before it produces")
    match = re.search(r"shape '\[(-?\d+), (\d+)\]' is invalid for input of size (\d+)", text)
    if match:
        features, size = int(match[2]), int(match[3])
        per_sample = size // batch if size % batch == 0 else None
        detail = (f" = {batch} samples × {per_sample} numbers each (C*H*W of the last conv output"
                  f"{_factor(per_sample, calls)})" if per_sample else "")
        return (f"x.view(-1, {features}) failed: the tensor holds {size} numbers{detail}, and {size} is not a "
                f"multiple of {features}. Flatten with x.flatten(1), which keeps the batch dimension, and give "
                f"the first Linear layer in_features={per_sample or 'C*H*W'}")
    match = re.search(r"weight of size \[(\d+), (\d+),.*?expected input\[([\d, ]+)\] to have (\d+) channels, "
                      r"but got (\d+) channels", text)
    if match:
        layer = f"Conv2d '{failing.name}'" if failing is not None else "a Conv2d layer"
        return (f"{layer} has in_channels={match[4]} but receives {match[5]} channels (input [{match[3]}]): "
                "in_channels must equal the out_channels of the layer before it")
    match = re.search(r"padded input size per channel: \((\d+) x (\d+)\)\. Kernel size: \((\d+) x (\d+)\)", text)
    if match:
        layer = f"Conv2d '{failing.name}'" if failing is not None else "a Conv2d layer"
        return (f"{layer} has a {match[3]}×{match[4]} kernel but its input (with padding) is only "
                f"{match[1]}×{match[2]}: a kernel cannot be larger than the image. Use small kernels "
                "(kernel_size=3 with padding=1 keeps the size)")
    if isinstance(error, AttributeError) and "has no attribute 'nn'" in text:
        return "`nn.nn.<Layer>` does not exist: with `from torch import nn`, write `nn.Conv2d`, `nn.Linear`, ..."
    if isinstance(error, NotImplementedError) and "forward" in text:
        return "the model has no forward method: define `def forward(self, x):` and return the output"
    return f"running it raised {type(error).__name__}: {text}"


def check_forward_shapes(model: nn.Module, input_shape: tuple[int, ...], expected_shape: tuple[int, ...], *,
                         name: str = "model", flatten_rule: bool = True,
                         spec: Callable[[LayerCall], str | None] | None = None, quiet: bool = True,
                         generator_seed: int = 0) -> torch.Tensor:
    """Run `model` on a random batch of `input_shape`; explain the first shape problem, layer by layer.

    Problems are reported in the order the layers ran: the first layer whose output shape
    breaks a rule (`spec(call)` returns a message, or a generic rule such as "a Linear layer
    got a 4-D tensor") wins over a later exception. Returns the output when it has
    `expected_shape`.
    """
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(generator_seed))
    parameter = next(model.parameters(), None)
    if parameter is not None:
        x = x.to(parameter.device)
    batch = input_shape[0]
    # When grading, the model lives in the student's kernel: trace it there (helpers.check.in_student).
    calls, output, error = in_student(trace_layers)(model, x)
    for call in calls:
        if call.output_shape is None:
            break
        problem = (spec(call) if spec else None) or _generic_problem(call, batch, flatten_rule)
        if problem:
            raise CheckFailed(f"{name}: {problem}{shape_report(calls)}")
    if error is not None:
        raise CheckFailed(f"{name}: on a {tuple(input_shape)} batch, "
                          f"{_explain_error(error, calls, batch, flatten_rule)}{shape_report(calls)}") from None
    if not isinstance(output, torch.Tensor):
        raise CheckFailed(f"{name}: forward returned {type(output).__name__}, expected a tensor"
                          + (" (did forward forget to `return`?)" if output is None else ""))
    if tuple(output.shape) != tuple(expected_shape):
        raise CheckFailed(f"{name}: on a {tuple(input_shape)} batch the output has shape {tuple(output.shape)}, "
                          f"expected {tuple(expected_shape)}{shape_report(calls)}")
    if not quiet:
        print(f"✔ {name}: {tuple(input_shape)} -> {tuple(output.shape)}")
    return output
