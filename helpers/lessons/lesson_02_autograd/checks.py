"""Exercise checks for lesson 02 (autograd), and the visible diagnosis of assignment 02's exercise 4."""

from __future__ import annotations

from typing import Any

import torch

from helpers.check import NotAttempted, check_close, check_shape, check_tensor, failure as _fail
from helpers.check import require_attempted as _not_attempted


def _accumulating_fit(target: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """What the loop of exercise 1 gives when .grad is never cleared (gradients add up)."""
    w, grad = torch.zeros_like(target), torch.zeros_like(target)
    for _ in range(steps):
        grad = grad + 2 * (w - target)
        w = w - lr * grad
    return w


def check_fit_to_target(fit_to_target, target: torch.Tensor) -> None:
    """Exercise 1: the repaired loop; after `steps` steps w = target * (1 - 0.8**steps)."""
    name = "fit_to_target"
    for steps in (1, 2, 3, 50):
        try:
            w = fit_to_target(steps)
        except TypeError as error:
            if "NoneType" not in str(error):
                raise
            raise _fail(name, f"raised TypeError on the second step ({error})",
                        "w.grad is None there: `w = w - 0.1 * w.grad` made w a new, non-leaf tensor, and "
                        "autograd keeps .grad only for leaves. Update in place under torch.no_grad(): "
                        "`w -= 0.1 * w.grad`") from None
        except RuntimeError as error:
            if "leaf" not in str(error):
                raise
            raise _fail(name, "changes w in place while autograd records it (RuntimeError: a leaf Variable "
                        "that requires grad is being used in an in-place operation)",
                        "put the update inside `with torch.no_grad():`") from None
        _not_attempted(w, name)
        if not isinstance(w, torch.Tensor):
            raise _fail(name, f"returned {type(w).__name__}, expected the tensor w", "end the function with `return w`")
        expected = target * (1 - 0.8 ** steps)
        if steps > 1 and w.shape == target.shape and torch.allclose(w.detach(), _accumulating_fit(target, steps, 0.1),
                                                                     atol=1e-5):
            raise _fail(name, f"after {steps} steps w is {w.detach().tolist()}: the gradients of earlier steps "
                        "were added to the new one", "clear the gradient after each update: `w.grad.zero_()` "
                        "(or `w.grad = None`)")
        check_tensor(w.detach(), expected, name=f"w after {steps} step(s)", atol=1e-5,
                     hint="each step: forward pass, backward(), then under torch.no_grad() `w -= 0.1 * w.grad`, "
                          "then w.grad.zero_()")
    print(f"✔ {name}: correct (w moves 20% of the way to the target on every step)")


def check_which_formula(numeric_a: Any, right: Any, x: torch.Tensor, y: torch.Tensor,
                        a: torch.Tensor, b: torch.Tensor) -> None:
    """Exercise 2: the numeric gradient dL/da at (a, b), and the letter of the correct formula."""
    _not_attempted(numeric_a, "numeric_a")
    a_ = a.detach().clone().requires_grad_(True)
    (grad_a,) = torch.autograd.grad(((a_ * x + b - y) ** 2).mean(), a_)
    true = float(grad_a)
    if isinstance(numeric_a, torch.Tensor) and numeric_a.numel() == 1 and abs(float(numeric_a) - true / 2) < 1e-4:
        raise _fail("numeric_a", "is half the true slope",
                    "numeric_gradient(f, a) already divides by 2·eps: pass it the loss as a function of a alone")
    check_close(numeric_a, true, name="numeric_a", atol=1e-5,
                hint="numeric_gradient(lambda a_: line_loss(a_, b0), a0): the loss as a function of a alone")
    _not_attempted(right, "right")
    if not isinstance(right, str) or right.strip().upper() not in ("A", "B", "C"):
        raise _fail("right", f"must be one of the strings 'A', 'B', 'C', got {right!r}")
    why = {"A": "A has the right size but the opposite sign: its residual is y - prediction, so it points downhill",
           "B": "B is N times too large: it sums over the points, but the loss is a mean"}
    letter = right.strip().upper()
    if letter in why:
        raise _fail("right", why[letter], "compare each candidate's value with numeric_a")
    print(f"✔ numeric_a = {float(numeric_a):.6f} agrees with autograd, and C is the right formula")


def check_my_sigmoid(function_class) -> None:
    """Exercise 3: the repaired torch.autograd.Function for the sigmoid (hand-written backward)."""
    name = "MySigmoid"
    if not (isinstance(function_class, type) and issubclass(function_class, torch.autograd.Function)):
        raise _fail(name, "must be a class that subclasses torch.autograd.Function")
    x = torch.linspace(-4, 4, 9, dtype=torch.float64, requires_grad=True)
    out = function_class.apply(x)
    _not_attempted(out, f"{name}.forward")
    if not isinstance(out, torch.Tensor):
        raise _fail(f"{name}.forward", f"returned {type(out).__name__}, expected a tensor")
    check_tensor(out, torch.sigmoid(x.detach()), name=f"{name}.forward(x)", atol=1e-10,
                 hint="sigmoid(x) = 1 / (1 + exp(-x)), or torch.sigmoid(x)")
    if out.grad_fn is None:
        raise _fail(name, "its output has no grad_fn", "call it as MySigmoid.apply(x), not MySigmoid.forward(...)")
    grad_output = torch.linspace(0.5, 2.0, 9, dtype=torch.float64)
    try:
        (got,) = torch.autograd.grad(out, x, grad_output)
    except (TypeError, RuntimeError) as error:
        if "ellipsis" in str(error).lower():
            raise NotAttempted(f"{name}.backward: not attempted yet: replace the `...` with your code, "
                               "then run this cell again") from None
        raise _fail(f"{name}.backward", f"raised {type(error).__name__}: {str(error).splitlines()[0]}",
                    "backward must return one tensor: grad_output times the derivative, same shape as x. "
                    "Tensors saved with ctx.save_for_backward(...) come back from ctx.saved_tensors") from None
    s = torch.sigmoid(x.detach())
    local = s * (1 - s)
    xd = x.detach()
    if torch.allclose(got, xd * (1 - xd), atol=1e-8):
        raise _fail(f"{name}.backward", "still returns x * (1 - x): both mistakes are there",
                    "the derivative is s * (1 - s) with s = sigmoid(x), not x; and the chain rule "
                    "multiplies it by grad_output")
    if torch.allclose(got, grad_output * xd * (1 - xd), atol=1e-8):
        raise _fail(f"{name}.backward", "uses x where the derivative needs s = sigmoid(x)",
                    "s * (1 - s) with s = sigmoid(x): recompute it from x, or save the output in forward")
    if torch.allclose(got, local, atol=1e-8):
        raise _fail(f"{name}.backward", "ignores grad_output",
                    "the chain rule: return grad_output * (local derivative), not the local derivative alone")
    check_tensor(got, grad_output * local, name=f"{name}.backward", atol=1e-8,
                 hint="d sigmoid/dx = s * (1 - s) with s = sigmoid(x); multiply by grad_output. "
                      "Save what you need in forward with ctx.save_for_backward(...)")
    x = torch.randn(6, dtype=torch.float64, requires_grad=True, generator=torch.Generator().manual_seed(3))
    if not torch.autograd.gradcheck(function_class.apply, (x,), raise_exception=False):
        raise _fail(name, "torch.autograd.gradcheck fails on random float64 input")
    print(f"✔ {name}: correct (forward, backward and gradcheck)")


def check_partly_frozen(partly_frozen) -> None:
    """Exercise 4: value a**2 + a**3, but the gradient flows only through a**2 (derivative 2a)."""
    name = "partly_frozen"
    a = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    out = partly_frozen(a)
    _not_attempted(out, name)
    if not isinstance(out, torch.Tensor):
        raise _fail(name, f"returned {type(out).__name__}, expected a tensor")
    check_tensor(out, (a ** 2 + a ** 3).detach(), name=f"{name}(a) values", atol=1e-6,
                 hint="detaching changes the gradient, never the value: the result is still a**2 + a**3")
    if not out.requires_grad:
        raise _fail(name, "its result does not require grad, so no gradient reaches `a` at all",
                    "detach only the a**3 part (or compute only that part under torch.no_grad())")
    out.sum().backward()
    expected = 2 * a.detach()
    if a.grad is None:
        raise _fail(name, "no gradient reached `a`", "compute the result from `a` itself, detaching only the a**3 part")
    if torch.allclose(a.grad, expected + 3 * a.detach() ** 2, atol=1e-6):
        raise _fail(name, "the gradient also flows through a**3", "use a.detach() inside the cube: a.detach() ** 3")
    check_tensor(a.grad, expected, name=f"gradient of {name}(a).sum()", atol=1e-6,
                 hint="only the a**2 term should contribute: d/da = 2a")
    print(f"✔ {name}: correct (value a² + a³, gradient 2a)")


# --- Assignment 02, exercise 4: the visible test's diagnosis (imported by its test cell) ---------

def _close(got: Any, expected: torch.Tensor, atol: float = 1e-5) -> bool:
    return isinstance(got, torch.Tensor) and got.shape == expected.shape and \
        torch.allclose(got.detach().to(torch.float64), expected.to(torch.float64), atol=atol, rtol=1e-5)


def check_fit_polynomial_steps(fit_polynomial, x: torch.Tensor, y: torch.Tensor) -> None:
    """One and two steps of fit_polynomial(x, y, degree=3, lr=0.2) from w = 0, naming the usual mistakes."""
    name, n = "fit_polynomial", len(x)
    features = torch.stack([x ** k for k in range(4)], dim=1)
    w1, losses1 = fit_polynomial(x, y, degree=3, lr=0.2, steps=1)
    check_shape(w1, (4,), name="w for degree=3", hint="one weight per column x^0, x^1, x^2, x^3")
    if not isinstance(losses1, list) or len(losses1) != 1:
        raise _fail(name, f"steps=1 returned losses {losses1!r}: it must be a list with one float per step")
    if not isinstance(losses1[0], float):
        raise _fail(name, f"losses holds {type(losses1[0]).__name__} values, not Python floats",
                    "append loss.item(): a float, not the tensor (which would also keep its graph alive)")
    mse0 = float((y ** 2).mean())
    if abs(losses1[0] - n * mse0) < 1e-3 * n * mse0:
        raise _fail(name, "the loss is a sum over the points, not their mean",
                    "use ((features @ w - y) ** 2).mean(): a sum makes every step N times too large")
    check_close(losses1[0], mse0, name="loss before the first step (w = 0)", atol=1e-5,
                hint="record each loss before its update: the first one is computed with w = 0")
    grad1 = 2 / n * features.T @ (-y)                     # the gradient at w = 0
    step1 = -0.2 * grad1
    if _close(w1, -step1):
        raise _fail(name, "w moved up the gradient", "update with w -= lr * w.grad (minus: step against the gradient)")
    shifted = torch.stack([x ** k for k in range(1, 5)], dim=1)
    if _close(w1, 0.2 * 2 / n * shifted.T @ y):
        raise _fail(name, "the feature columns are x^1 ... x^(d+1)",
                    "the columns are x^0, x^1, ..., x^d: the first is all ones (the constant term w0)")
    check_tensor(w1.detach(), step1, name="w after one step from zero (lr=0.2)", atol=1e-5,
                 hint="features with columns x^0..x^d, the mean squared error, then w -= lr * w.grad")
    w2, losses2 = fit_polynomial(x, y, degree=3, lr=0.2, steps=2)
    grad2 = 2 / n * features.T @ (features @ step1 - y)
    if _close(w2, step1 - 0.2 * (grad1 + grad2)):
        raise _fail(name, "the second step used the sum of both gradients",
                    "clear the gradient after every update (w.grad.zero_()): backward() adds to .grad")
    check_tensor(w2.detach(), step1 - 0.2 * grad2, name="w after two steps (lr=0.2)", atol=1e-5)
