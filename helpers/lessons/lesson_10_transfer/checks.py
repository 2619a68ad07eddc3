"""Exercise checks for lesson 10 (transfer learning).

Each check runs your answer on the course's backbone (freshly built or loaded, never yours), compares
it with a reference computed here and raises `helpers.check.CheckFailed` with a message that names
the problem. Reading this code before solving an exercise spoils it: try first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from helpers.check import CheckFailed, NotAttempted, require_function
from helpers.lessons.lesson_10_transfer.transfer import Backbone, load_backbone, target_task

__all__ = ["check_extract_features", "check_unfreeze_last"]


def _require_function(fn: Any, name: str) -> None:
    require_function(fn, name)
    code = getattr(fn, "__code__", None)
    if code is not None and code.co_code == _empty.__code__.co_code:   # a body of `...` (or `pass`) only
        raise NotAttempted(f"{name}: not attempted yet: replace the `...` with your code, then run this cell again")


def _empty() -> None:
    ...


def _call(fn: Callable, name: str, *args: Any) -> Any:
    try:
        result = fn(*args)
    except NotImplementedError:
        raise NotAttempted(f"{name}: not written yet (it still raises NotImplementedError)") from None
    except Exception as error:  # noqa: BLE001 (explained to the student)
        raise CheckFailed(f"{name} raised {type(error).__name__}: {error}") from None
    if result is Ellipsis:
        raise NotAttempted(f"{name}: not attempted yet: replace the `...` with your code, then run this cell again")
    return result


def _stats(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------- exercise 1


def check_extract_features(extract_features: Callable) -> None:
    """Exercise 1: features in evaluation mode, without autograd, statistics untouched, mode restored."""
    name = "extract_features"
    _require_function(extract_features, name)
    x = target_task()[0][:40]
    for start_mode in (True, False):
        backbone = load_backbone().train(start_mode)
        before = _stats(backbone)
        got = _call(extract_features, name, backbone, x)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (40, 128):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise CheckFailed(f"{name}(backbone, x of shape (40, 1, 8, 8)) returned {shape}, not a (40, 128) tensor")
        changed = [k for k, v in backbone.state_dict().items() if not torch.equal(v, before[k])]
        if changed:
            raise CheckFailed(f"{name}: the backbone's {changed[:3]} changed: BatchNorm ran in training mode and "
                              "updated its running statistics\n  Hint: backbone.eval() before the forward pass")
        if got.requires_grad:
            raise CheckFailed(f"{name}: the features require grad, so a graph was recorded for nothing\n"
                              "  Hint: run the forward pass under torch.no_grad()")
        if backbone.training != start_mode:
            raise CheckFailed(f"{name}: the backbone was in {'training' if start_mode else 'evaluation'} mode "
                              f"before the call and is in {'training' if backbone.training else 'evaluation'} mode "
                              "after it\n  Hint: remember backbone.training first, and call backbone.train(that) "
                              "at the end")
        reference = load_backbone().eval()
        with torch.no_grad():
            expected = reference(x)
        if not torch.allclose(got, expected, atol=1e-5):
            raise CheckFailed(f"{name}: the features differ from the backbone's output in evaluation mode "
                              f"(largest difference {(got - expected).abs().max().item():.3g})")
    print("✔ extract_features: features in evaluation mode, no graph, statistics and mode left as they were")


# ----------------------------------------------------------------------------- exercise 2


def _stages(backbone: nn.Module) -> list[list[str]]:
    """Parameter names of each (Conv2d, BatchNorm2d) stage, first stage first."""
    stages: list[list[str]] = []
    for module_name, module in backbone.named_modules():
        if isinstance(module, nn.Conv2d):
            stages.append([])
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            stages[-1] += [f"{module_name}.{p}" for p, _ in module.named_parameters()]
    return stages


def check_unfreeze_last(unfreeze_last: Callable) -> None:
    """Exercise 2: exactly the last n (Conv2d, BatchNorm2d) stages trainable, everything else frozen."""
    name = "unfreeze_last"
    _require_function(unfreeze_last, name)
    backbone = Backbone()
    stages = _stages(backbone)
    for n in (3, 1, 0, 2):   # from more to fewer: what was unfrozen before must be frozen again
        _call(unfreeze_last, name, backbone, n)
        trainable = {k for k, p in backbone.named_parameters() if p.requires_grad}
        expected = {k for stage in stages[len(stages) - n:] for k in stage} if n else set()
        if trainable != expected:
            extra, missing = sorted(trainable - expected), sorted(expected - trainable)
            hint = ("freeze the whole backbone first (backbone.requires_grad_(False)), then unfreeze the last n stages"
                    if extra else "a stage is a Conv2d and the BatchNorm2d after it: unfreeze both, the last n ones")
            raise CheckFailed(f"{name}(backbone, {n}): wrongly trainable {extra}, wrongly frozen {missing}\n"
                              f"  Hint: {hint}")
    print("✔ unfreeze_last: exactly the last n stages are trainable, for n = 3, 1, 0 and 2 in a row")
