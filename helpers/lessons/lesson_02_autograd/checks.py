"""Exercise checks for lesson 02 (autograd)."""

from __future__ import annotations

from typing import Any

import torch

from helpers.check import NotAttempted, check_close, check_tensor, failure as _fail, require_attempted as _not_attempted


def check_grad_x(x: torch.Tensor, grad_x: Any) -> None:
    """Exercise 1: the gradient of f(x) = sum(x**3 - 2*x) at `x`, computed by autograd."""
    _not_attempted(grad_x, "grad_x")
    if grad_x is None:
        raise _fail("grad_x", "is None", "did you call .backward() on f before reading x.grad? "
                    "Only a leaf created with requires_grad=True gets a .grad")
    expected = 3 * x.detach() ** 2 - 2
    if isinstance(grad_x, torch.Tensor) and grad_x.shape == expected.shape:
        if torch.allclose(grad_x.detach(), 2 * expected, atol=1e-5):
            raise _fail("grad_x", "is exactly twice the right gradient",
                        "gradients accumulate: you ran backward twice without x.grad.zero_() in between")
        if torch.allclose(grad_x.detach(), x.detach() ** 3 - 2 * x.detach(), atol=1e-5):
            raise _fail("grad_x", "holds the values of x**3 - 2*x, not the gradient", "read x.grad after f.backward()")
    return check_tensor(grad_x, expected, name="grad_x", atol=1e-5, quiet=False,
                        hint="create x with requires_grad=True, compute f = (x**3 - 2*x).sum(), "
                             "call f.backward(), then read x.grad (d/dx is 3x² - 2)")


def _line_loss_grads(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    a = a.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    loss = ((a * x + b - y) ** 2).mean()
    loss.backward()
    return a.grad, b.grad


def check_line_gradients(line_gradients) -> None:
    """Exercise 2: d/da and d/db of mean((a*x + b - y)**2), derived by hand (no autograd)."""
    name = "line_gradients"
    gen = torch.Generator().manual_seed(22)
    cases = [(torch.tensor(0.5), torch.tensor(-1.0), torch.linspace(-2, 2, 7), torch.randn(7, generator=gen)),
             (torch.tensor(-1.5), torch.tensor(0.3), torch.randn(20, generator=gen), torch.randn(20, generator=gen))]
    for a, b, x, y in cases:
        got = line_gradients(a.clone(), b.clone(), x.clone(), y.clone())
        _not_attempted(got, name)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise _fail(name, f"returned {type(got).__name__}, expected a pair (grad_a, grad_b)",
                        "end the function with `return grad_a, grad_b`")
        expected_a, expected_b = _line_loss_grads(a, b, x, y)
        for label, value, expected in (("grad_a", got[0], expected_a), ("grad_b", got[1], expected_b)):
            _not_attempted(value, label)
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                v = float(value.detach())
                e = float(expected)
                if abs(v + e) < 1e-5 * max(1.0, abs(e)) and abs(e) > 1e-6:
                    raise _fail(label, f"has the wrong sign: got {v:.6g}, expected {e:.6g}",
                                "the residual is prediction - target: (a*x + b - y)")
                if abs(v - e / 2) < 1e-5 * max(1.0, abs(e)) and abs(e) > 1e-6:
                    raise _fail(label, f"is half the right value: got {v:.6g}, expected {e:.6g}",
                                "the derivative of r² is 2r: keep the factor 2")
                if abs(v - e * len(x)) < 1e-4 * max(1.0, abs(e * len(x))) and abs(e) > 1e-6:
                    raise _fail(label, f"is N times too large: got {v:.6g}, expected {e:.6g}",
                                "the loss is a mean, so its gradient is a mean too (divide by N)")
            check_close(value, float(expected), name=f"{label} for a={a.item():g}, b={b.item():g}",
                        atol=1e-5, rtol=1e-4,
                        hint="with r = a*x + b - y: dL/da = mean(2 * r * x), dL/db = mean(2 * r)")
    print(f"✔ {name}: correct (agrees with autograd)")


def check_my_sigmoid(function_class) -> None:
    """Exercise 3: a torch.autograd.Function computing the sigmoid with a hand-written backward."""
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
    if torch.allclose(a.grad, expected + 3 * a.detach() ** 2, atol=1e-6):
        raise _fail(name, "the gradient also flows through a**3", "use a.detach() inside the cube: a.detach() ** 3")
    check_tensor(a.grad, expected, name=f"gradient of {name}(a).sum()", atol=1e-6,
                 hint="only the a**2 term should contribute: d/da = 2a")
    print(f"✔ {name}: correct (value a² + a³, gradient 2a)")
