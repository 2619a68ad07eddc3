"""Instant feedback for exercises: each check says *what* is wrong, in one short message.

Every check either returns None quietly (printing a short "ok" line when `quiet=False`) or
raises `CheckFailed`, an AssertionError whose message names the problem: expected vs got
shape, dtype, device or value, the first mismatching index, and a hint. Lessons and the
visible tests of assignments call these functions; nbgrader counts a raised CheckFailed
as a failed test cell.

A check called from the hidden tests of a test cell (between `### BEGIN HIDDEN TESTS` and
`### END HIDDEN TESTS`, see `in_hidden_tests`) withholds values: its message says what
differs (type, shape, dtype, device, which element) and what the student's code returned,
never what the test expected, and ends with HIDDEN_NOTE. Feedback pages keep these messages
(grader/feedback.py); students keep feedback pages.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckFailed",
    "NotAttempted",
    "failure",
    "in_hidden_tests",
    "HIDDEN_NOTE",
    "require_attempted",
    "require_function",
    "check_tensor",
    "check_shape",
    "check_close",
    "check_function",
    "check_choice",
    "check_no_loops",
    "notebook_sources",
    "check_gradient",
    "numeric_gradient",
    "check_implemented",
    "in_student",
    "source_of",
    "called_functions",
    "check_not_called",
]


#: The last line of a failure message from hidden tests (grader/feedback.py looks for it).
HIDDEN_NOTE = "(a hidden test: the right values are not shown)"


def _hidden_line(lines: list[str], lineno: int) -> bool:
    """Whether line `lineno` (1-based) of a cell lies between the hidden-test markers."""
    inside = False
    for line in lines[:max(lineno - 1, 0)]:
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
    return inside


def in_hidden_tests() -> bool:
    """Whether the caller runs, at any depth, from the hidden tests of a notebook cell.

    IPython keeps each cell's source in `linecache` under a name that is no file (no mtime);
    a frame of such a cell whose line lies between `### BEGIN HIDDEN TESTS` and
    `### END HIDDEN TESTS` means hidden tests. Students never run hidden tests (the release
    has none), so for them this is always False. Called when a check fails, and by check_function."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        entry = linecache.cache.get(frame.f_code.co_filename)
        if entry is not None and len(entry) == 4 and entry[1] is None and _hidden_line(entry[2], frame.f_lineno):
            return True
        frame = frame.f_back
    return False


class CheckFailed(AssertionError):
    """A check found a difference; the message says what and how to fix it. Raised from hidden
    tests, its message ends with HIDDEN_NOTE (feedback pages tell students so)."""

    def __init__(self, *args: Any):
        if args and isinstance(args[0], str) and HIDDEN_NOTE not in args[0] and in_hidden_tests():
            args = (f"{args[0]}\n  {HIDDEN_NOTE}", *args[1:])
        super().__init__(*args)

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


def require_function(fn: Any, name: str) -> Callable[..., Any]:
    """`fn`, once it is a function: NotAttempted while it is still `...`, CheckFailed when it is
    not callable (a value where a function belongs)."""
    if fn is Ellipsis:
        raise NotAttempted(f"{name}: not attempted yet: replace the `...` with your function, then run this cell again")
    if not callable(fn):
        raise CheckFailed(f"{name}: expected a function, got {type(fn).__name__}")
    return fn


def failure(name: str, problem: str, hint: str | None = None, *,
            withheld: tuple[str, str | None] | None = None) -> CheckFailed:
    """The CheckFailed for `name`: "name: problem" plus an optional hint line (raise it).

    In hidden tests, `withheld` (problem, hint) replaces them: the same finding without the
    expected values (`problem` and `hint` must then hold none)."""
    if withheld is not None and in_hidden_tests():
        problem, hint = withheld
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
        raise failure(name, "got a NumPy array, expected a torch.Tensor", hint or "convert with torch.from_numpy(...)",
                      withheld=("got a NumPy array, not a torch.Tensor", hint or "convert with torch.from_numpy(...)"))
    if value is None:
        missing = hint or "did your function forget to `return` its result?"
        raise failure(name, "got None, expected a torch.Tensor", missing, withheld=("got None, not a torch.Tensor", missing))
    raise failure(name, f"got {type(value).__name__}, expected a torch.Tensor", hint,
                  withheld=(f"got {type(value).__name__}, not a torch.Tensor", hint))


def _fmt(x: float | int | bool) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def check_shape(got: Any, expected_shape: Sequence[int], *, name: str = "result", hint: str | None = None,
                quiet: bool = True) -> None:
    """Check that `got` is a tensor of shape `expected_shape`."""
    got = _as_tensor(got, name, hint)
    if tuple(got.shape) != tuple(expected_shape):
        raise failure(name, f"shape is {tuple(got.shape)}, expected {tuple(expected_shape)}", hint,
                      withheld=(f"shape {tuple(got.shape)} is wrong", hint))
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
                      hint or f"convert with .to({expected.dtype}) or create it with dtype={expected.dtype}",
                      withheld=(f"dtype {got.dtype} is wrong", hint))
    if check_device and got.device != expected.device:
        raise failure(name, f"is on device {got.device}, expected {expected.device}", hint or "use .to(device)",
                      withheld=(f"is on the wrong device ({got.device})", hint or "use .to(device)"))
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
        count = f"{len(wrong)} of {close.numel()} elements differ"
        summary = count
        if got_cmp.is_floating_point():
            diff = (got_cmp - exp_cmp).abs().nan_to_num(nan=float("inf")).max().item()
            summary += f", largest difference {diff:.3g}"
        raise failure(name, f"values differ {where}: got {_fmt(g)}, expected {_fmt(e)} ({summary})", hint,
                      withheld=(f"values differ {where}: got {_fmt(g)}, which is wrong ({count})", hint))
    return _passed(name, quiet)


def check_close(got: Any, expected: float, *, name: str = "result", atol: float = 1e-6, rtol: float = 1e-5,
                hint: str | None = None, quiet: bool = True) -> None:
    """Check a Python number (or one-element tensor) against `expected`."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise failure(name, f"expected a single number, got a tensor of shape {tuple(got.shape)}", hint,
                          withheld=(f"got a tensor of shape {tuple(got.shape)}, not a single number", hint))
        got = got.item()
    require_attempted(got, name)
    if not isinstance(got, (int, float, np.number)) or isinstance(got, bool):
        raise failure(name, f"expected a number, got {type(got).__name__} {got!r}", hint,
                      withheld=(f"got {type(got).__name__} {_describe(got)}, not a number", hint))
    if not abs(float(got) - expected) <= atol + rtol * abs(expected):
        raise failure(name, f"got {_fmt(float(got))}, expected {_fmt(float(expected))}", hint,
                      withheld=(f"got {_fmt(float(got))}, which is wrong", hint))
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
    hidden = in_hidden_tests()  # the arguments are the hidden test's: name the case by number
    for number, args in enumerate(cases, start=1):
        # Clone tensor inputs so an in-place student function cannot change the reference's input.
        student_args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        got = check_implemented(fn, *student_args)
        require_attempted(got, name)
        expected = reference(*args)
        call = f"{name}, case {number}" if hidden else f"{name}({', '.join(_describe(a) for a in args)})"
        if isinstance(expected, torch.Tensor):
            check_tensor(got, expected, name=call, atol=atol, rtol=rtol, check_dtype=check_dtype, hint=hint)
        elif isinstance(expected, float):
            check_close(got, expected, name=call, atol=atol, rtol=rtol, hint=hint)
        elif got != expected:
            raise failure(call, f"returned {_describe(got)}, expected {_describe(expected)}", hint,
                          withheld=(f"returned {_describe(got)}, which is wrong", hint))
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


def notebook_sources(fn: Callable[..., Any]) -> list[tuple[str, str]]:
    """(name, source) of `fn` and of every function it calls by name that was defined beside it
    (in the same module: the notebook), followed recursively, so a loop moved into a helper
    function is found too. Functions of libraries (torch, math, ...) are not followed."""
    import types

    def calls(code: types.CodeType) -> set[str]:
        names = set(code.co_names)
        for const in code.co_consts:  # nested functions, lambdas and comprehensions
            if isinstance(const, types.CodeType):
                names |= calls(const)
        return names

    module = getattr(fn, "__module__", None)
    found: list[tuple[str, str]] = []
    seen: set[int] = set()
    todo: list[Any] = [fn]
    while todo:
        function = todo.pop()
        function = getattr(function, "__func__", function)  # a bound method
        if not isinstance(function, types.FunctionType) or id(function) in seen:
            continue
        seen.add(id(function))
        try:
            found.append((function.__name__, textwrap.dedent(inspect.getsource(function))))
        except (OSError, TypeError):
            if function is fn:
                raise
            continue
        for name in sorted(calls(function.__code__)):
            value = function.__globals__.get(name)
            if isinstance(value, types.FunctionType) and value.__module__ == module:
                todo.append(value)
    return found


def check_no_loops(fn: Callable[..., Any], *, hint: str | None = None) -> None:
    """Check that `fn`, and every function of the notebook it calls, has no `for`/`while` loop or
    comprehension (vectorise instead).

    Feedback, not proof: when grading, the sources come from the student's own kernel."""
    name = getattr(fn, "__name__", "function")
    try:
        sources = in_student(notebook_sources)(fn)
    except (OSError, TypeError):
        raise failure(name, "its source code cannot be read, so the no-loops rule cannot be checked",
                      "define it with `def` in a notebook cell") from None
    loop_types = (ast.For, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.AsyncFor)
    for function, source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, loop_types):
                kind = type(node).__name__.replace("Comp", " comprehension").replace("GeneratorExp", "generator")
                where = "of the function" if function == name else f"of {function}(), which it calls"
                raise failure(name, f"uses a Python loop ({kind.lower()} on line {node.lineno} {where})",
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
