"""Instant feedback for exercises: each check says *what* is wrong, in one short message.

Every check either returns None quietly (printing a short "ok" line when `quiet=False`) or
raises `CheckFailed`, an AssertionError whose message names the problem: expected vs got
shape, dtype, device or value, the first mismatching index, and a hint. Lessons and the
visible tests of assignments call these functions; nbgrader counts a raised CheckFailed
as a failed test cell.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckFailed",
    "NotAttempted",
    "failure",
    "require_attempted",
    "check_tensor",
    "check_shape",
    "check_close",
    "check_function",
    "check_choice",
    "check_no_loops",
    "check_gradient",
    "numeric_gradient",
    "check_implemented",
    "in_student",
    "source_of",
    "called_functions",
    "check_not_called",
]


class CheckFailed(AssertionError):
    """A check found a difference; the message says what and how to fix it."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this to render the error: show the message alone, not the
        # stack of helper functions the student never wrote.
        return [f"\x1b[1;31mCheckFailed\x1b[0m: {self}"]


class NotAttempted(CheckFailed):
    """The exercise still holds its `...` placeholder (lesson cells are tagged so Run All goes on)."""


def require_attempted(value: Any, name: str) -> None:
    """Raise NotAttempted if `value` is still the exercise's `...` placeholder."""
    if value is Ellipsis:
        raise NotAttempted(f"{name}: not attempted yet: replace the `...` with your code, then run this cell again")


def failure(name: str, problem: str, hint: str | None = None) -> CheckFailed:
    """The CheckFailed for `name`: "name: problem" plus an optional hint line (raise it)."""
    message = f"{name}: {problem}"
    if hint:
        message += f"\n  Hint: {hint}"
    return CheckFailed(message)


def _passed(name: str, quiet: bool) -> None:
    # Checks return None, not True: a notebook cell ending with a check then shows no stray
    # `True`, and nbgrader never mistakes a test cell's last value for a partial-credit score.
    if not quiet:
        print(f"✔ {name}: correct")


def _as_tensor(value: Any, name: str, hint: str | None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    require_attempted(value, name)
    if isinstance(value, np.ndarray):
        raise failure(name, "got a NumPy array, expected a torch.Tensor", hint or "convert with torch.from_numpy(...)")
    if value is None:
        raise failure(name, "got None, expected a torch.Tensor", hint or "did your function forget to `return` its result?")
    raise failure(name, f"got {type(value).__name__}, expected a torch.Tensor", hint)


def _fmt(x: float | int | bool) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def check_shape(got: Any, expected_shape: Sequence[int], *, name: str = "result", hint: str | None = None,
                quiet: bool = True) -> None:
    """Check that `got` is a tensor of shape `expected_shape`."""
    got = _as_tensor(got, name, hint)
    if tuple(got.shape) != tuple(expected_shape):
        raise failure(name, f"shape is {tuple(got.shape)}, expected {tuple(expected_shape)}", hint)
    return _passed(name, quiet)


def check_tensor(got: Any, expected: torch.Tensor, *, name: str = "result", atol: float = 1e-6,
                 rtol: float = 1e-5, check_dtype: bool = True, check_device: bool = False,
                 hint: str | None = None, quiet: bool = True) -> None:
    """Compare a tensor with the expected one: type, shape, dtype, (device), then values.

    Values must agree within `atol + rtol * |expected|`; NaNs are equal only where both are NaN.
    """
    got = _as_tensor(got, name, hint)
    check_shape(got, expected.shape, name=name, hint=hint)
    if check_dtype and got.dtype != expected.dtype:
        raise failure(name, f"dtype is {got.dtype}, expected {expected.dtype}",
                    hint or f"convert with .to({expected.dtype}) or create it with dtype={expected.dtype}")
    if check_device and got.device != expected.device:
        raise failure(name, f"is on device {got.device}, expected {expected.device}", hint or "use .to(device)")
    got_cmp = got.detach().to("cpu", torch.float64) if got.is_floating_point() or expected.is_floating_point() \
        else got.detach().cpu()
    exp_cmp = expected.detach().to("cpu", got_cmp.dtype)
    if got_cmp.is_floating_point():
        close = torch.isclose(got_cmp, exp_cmp, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = got_cmp == exp_cmp
    if not bool(close.all()):
        wrong = (~close).nonzero()
        first = tuple(int(i) for i in wrong[0]) if got_cmp.dim() else ()
        where = f"at index {first}" if first else "for the scalar"
        g, e = got_cmp[first].item(), exp_cmp[first].item()
        summary = f"{len(wrong)} of {close.numel()} elements differ"
        if got_cmp.is_floating_point():
            diff = (got_cmp - exp_cmp).abs().nan_to_num(nan=float("inf")).max().item()
            summary += f", largest difference {diff:.3g}"
        raise failure(name, f"values differ {where}: got {_fmt(g)}, expected {_fmt(e)} ({summary})", hint)
    return _passed(name, quiet)


def check_close(got: Any, expected: float, *, name: str = "result", atol: float = 1e-6, rtol: float = 1e-5,
                hint: str | None = None, quiet: bool = True) -> None:
    """Check a Python number (or one-element tensor) against `expected`."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise failure(name, f"expected a single number, got a tensor of shape {tuple(got.shape)}", hint)
        got = got.item()
    require_attempted(got, name)
    if not isinstance(got, (int, float, np.number)) or isinstance(got, bool):
        raise failure(name, f"expected a number, got {type(got).__name__} {got!r}", hint)
    if not abs(float(got) - expected) <= atol + rtol * abs(expected):
        raise failure(name, f"got {_fmt(float(got))}, expected {_fmt(float(expected))}", hint)
    return _passed(name, quiet)


def check_implemented(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn(*args, **kwargs)`; a NotImplementedError becomes a friendly CheckFailed."""
    name = getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise failure(name, "not written yet (it still raises NotImplementedError)",
                    "replace the `raise NotImplementedError` line with your code") from None


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() <= 8:
            return f"tensor({value.tolist()})"
        return f"tensor of shape {tuple(value.shape)} ({value.dtype})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_function(fn: Callable[..., Any], reference: Callable[..., Any], cases: Iterable[tuple], *,
                   atol: float = 1e-6, rtol: float = 1e-5, check_dtype: bool = True,
                   hint: str | None = None, quiet: bool = True) -> None:
    """Call `fn` and `reference` on each tuple of arguments in `cases`; report the first disagreement."""
    name = getattr(fn, "__name__", "function")
    for args in cases:
        # Clone tensor inputs so an in-place student function cannot change the reference's input.
        student_args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        got = check_implemented(fn, *student_args)
        require_attempted(got, name)
        expected = reference(*args)
        call = f"{name}({', '.join(_describe(a) for a in args)})"
        if isinstance(expected, torch.Tensor):
            check_tensor(got, expected, name=call, atol=atol, rtol=rtol, check_dtype=check_dtype, hint=hint)
        elif isinstance(expected, float):
            check_close(got, expected, name=call, atol=atol, rtol=rtol, hint=hint)
        elif got != expected:
            raise failure(call, f"returned {_describe(got)}, expected {_describe(expected)}", hint)
    return _passed(name, quiet)


def check_choice(answer: Any, options: Sequence[str], *, name: str = "answer", quiet: bool = False) -> None:
    """Check that a quiz answer is one of `options` (it does not say whether it is right)."""
    require_attempted(answer, name)
    if not isinstance(answer, str):
        raise failure(name, f"must be a string such as {options[0]!r}, got {type(answer).__name__} {answer!r}",
                    "write the letter in quotes, for example: q1_answer = \"b\"")
    if answer.strip().lower() not in [o.lower() for o in options]:
        raise failure(name, f"{answer!r} is not one of the options {', '.join(map(repr, options))}", None)
    if not quiet:
        print(f"✔ {name}: {answer.strip().lower()!r} is a valid option (graded later)")


#: Set by the grader's tests kernel (grader.tests_side); None in a notebook.
_student_runner: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None


def in_student(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run `fn` where the student's code lives. In a notebook that is right here, so this returns
    `fn` itself. When an assignment is graded, test cells run in a kernel of their own and this
    sends `fn` to the student's kernel (grader.tests_side): use it in a test for work that must
    happen next to the student's objects, such as autograd through the student's code."""
    return fn if _student_runner is None else _student_runner(fn)


def called_functions(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    """Call `fn(*args, **kwargs)`; return its result and the names of the torch functions it called."""
    from torch.overrides import TorchFunctionMode, resolve_name

    names: list[str] = []

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            names.append(resolve_name(func) or getattr(func, "__name__", repr(func)))
            return func(*args, **(kwargs or {}))

    with Recorder():
        result = fn(*args, **kwargs)
    return result, names


def check_not_called(fn: Callable[..., Any], args: tuple, forbidden: Iterable[str], *, name: str,
                     hint: str | None = None) -> None:
    """Run `fn(*args)` and fail if it calls a torch function named in `forbidden` (last part of the
    name: "cdist", "matmul", "__matmul__", "backward", ...), in its own code or in any helper it
    calls. Best-effort feedback: when grading, it runs in the student's kernel."""
    _, names = in_student(called_functions)(fn, *args)
    banned = set(forbidden)
    used = sorted({n for n in names if str(n).rsplit(".", 1)[-1] in banned})
    if used:
        raise failure(name, f"calls {', '.join(used)}", hint)


def source_of(fn: Callable[..., Any]) -> str:
    """The source code of `fn` (when grading, as the student's kernel reports it)."""
    remote = getattr(type(fn), "course_source", None)
    if remote is not None:
        return remote(fn)
    return textwrap.dedent(inspect.getsource(fn))


def check_no_loops(fn: Callable[..., Any], *, hint: str | None = None) -> None:
    """Check that `fn`'s source has no `for`/`while` loops or comprehensions (vectorise instead).

    Feedback, not proof: when grading, the source comes from the student's own kernel."""
    name = getattr(fn, "__name__", "function")
    try:
        source = source_of(fn)
    except (OSError, TypeError):
        raise failure(name, "its source code cannot be read, so the no-loops rule cannot be checked",
                    "define it with `def` in a notebook cell") from None
    loop_types = (ast.For, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.AsyncFor)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, loop_types):
            kind = type(node).__name__.replace("Comp", " comprehension").replace("GeneratorExp", "generator")
            raise failure(name, f"uses a Python loop ({kind.lower()} on line {node.lineno} of the function)",
                        hint or "use broadcasting and tensor operations instead of looping over elements")


def numeric_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central-difference gradient of the scalar function `f` at `x` (CS231n's gradient check)."""
    x = x.detach().to(torch.float64).clone()
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)
    for i in range(flat_x.numel()):
        original = flat_x[i].item()
        flat_x[i] = original + eps
        plus = float(f(x))
        flat_x[i] = original - eps
        minus = float(f(x))
        flat_x[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradient(got: Any, f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                   name: str = "gradient", atol: float = 1e-5, rtol: float = 1e-4,
                   hint: str | None = None, quiet: bool = True) -> None:
    """Compare a gradient (from your formula or your backward) with the numeric gradient of `f` at `x`."""
    expected = numeric_gradient(f, x)
    got = _as_tensor(got, name, hint)
    return check_tensor(got.to(torch.float64), expected, name=name, atol=atol, rtol=rtol, hint=hint, quiet=quiet)
