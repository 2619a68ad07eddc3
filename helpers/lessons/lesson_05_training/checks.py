"""Exercise checks for lesson 05 (training and evaluation)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from helpers.check import NotAttempted, check_close, check_implemented, failure as _fail

__all__ = ["check_epoch_accuracy", "check_train_step", "check_warmup_cosine", "check_grad_norm"]


def _require_function(fn: object, name: str) -> None:
    if fn is Ellipsis:
        raise NotAttempted(f"{name}: not attempted yet: replace the `...` with your code, then run this cell again")
    if not callable(fn):
        raise _fail(name, f"expected a function, got {type(fn).__name__}")


def _call(fn: Callable, name: str, *args: object) -> object:
    result = check_implemented(fn, *args)
    if result is Ellipsis:
        raise NotAttempted(f"{name}: not attempted yet: your function still returns `...`")
    return result


def _as_float(value: object, name: str, hint: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise _fail(name, f"returned a tensor of shape {tuple(value.shape)}, expected a single number", hint)
        if value.requires_grad:
            raise _fail(name, "returned a tensor that still requires grad (it keeps the whole graph alive)",
                        "return a plain number with .item()")
        return float(value.item())
    if value is None:
        raise _fail(name, "returned None", "did you forget `return`?")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(name, f"returned {type(value).__name__} {value!r}, expected a number", hint)
    return float(value)


# ----------------------------------------------------------------------------- exercise 1


def _accuracy_data() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A model with dropout and three batches of sizes 100, 100, 7: the last one is all correct."""
    gen = torch.Generator().manual_seed(50)
    model = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    x = torch.randn(207, 5, generator=gen)
    y = torch.randint(0, 3, (207,), generator=gen)
    model.eval()
    with torch.no_grad():
        y[200:] = model(x[200:]).argmax(dim=1)  # the small last batch is 100% correct
    model.train()
    return model, [(x[i:i + 100], y[i:i + 100]) for i in range(0, 207, 100)]


def check_epoch_accuracy(epoch_accuracy: Callable) -> None:
    """Exercise 1: accuracy over all samples of the loader, in eval mode, without gradients."""
    name = "epoch_accuracy"
    _require_function(epoch_accuracy, name)
    model, loader = _accuracy_data()
    seen: list[tuple[bool, bool]] = []
    hook = model.register_forward_hook(lambda m, i, o: seen.append((m.training, torch.is_grad_enabled())))
    try:
        got = _call(epoch_accuracy, name, model, loader)
    finally:
        hook.remove()
    got = _as_float(got, name, "return correct / total as a Python float, e.g. with .item()")
    if not seen:
        raise _fail(name, "never called the model", "loop over the loader: for xb, yb in loader: ...")
    if any(training for training, _ in seen):
        raise _fail(name, "ran the model in training mode: dropout made the predictions random",
                    "call model.eval() before the loop")
    if any(grad for _, grad in seen):
        raise _fail(name, "ran the model with gradient tracking on (wasted memory and time)",
                    "wrap the loop in `with torch.no_grad():`")
    model.eval()
    with torch.no_grad():
        per_batch = [(model(xb).argmax(dim=1) == yb).float() for xb, yb in loader]
    correct = sum(float(b.sum()) for b in per_batch)
    total = sum(len(b) for b in per_batch)
    expected = correct / total
    batch_mean = sum(float(b.mean()) for b in per_batch) / len(per_batch)
    if abs(got - batch_mean) < 1e-6:
        raise _fail(name, f"got {got:.4f}, the mean of the per-batch accuracies; expected {expected:.4f}. "
                    f"The batches hold 100, 100 and 7 samples, so the small last batch must count less",
                    "count correct predictions and samples over the whole loader, divide once at the end")
    if abs(got - 100 * expected) < 1e-4:
        raise _fail(name, f"got {got:.4f}, a percentage; expected a fraction {expected:.4f} between 0 and 1",
                    "do not multiply by 100")
    return check_close(got, expected, name=name, atol=1e-6, quiet=False,
                       hint="accuracy = (number of correct predictions) / (number of samples), over every batch")


# ----------------------------------------------------------------------------- exercise 2


def _reference_train_step(model, xb, yb, loss_fn, optimizer) -> float:
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()


def check_train_step(train_step: Callable) -> None:
    """Exercise 2: one optimisation step; three calls must match the reference loop exactly."""
    name = "train_step"
    _require_function(train_step, name)
    gen = torch.Generator().manual_seed(51)
    torch.manual_seed(51)
    template = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    batches = [(torch.randn(16, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)) for _ in range(3)]
    runs: dict[str, tuple[nn.Sequential, list[Any], list[list[torch.Tensor]]]] = {}
    for who, fn in (("yours", train_step), ("reference", _reference_train_step)):
        model = copy.deepcopy(template)
        model.eval()  # a correct step switches to training mode itself
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        states = []
        for xb, yb in batches:
            out = _call(fn, name, model, xb, yb, nn.CrossEntropyLoss(), optimizer) if who == "yours" \
                else fn(model, xb, yb, nn.CrossEntropyLoss(), optimizer)
            losses.append(out)
            states.append([p.detach().clone() for p in model.parameters()])
        runs[who] = (model, losses, states)
    model, losses, states = runs["yours"]
    _, ref_losses, ref_states = runs["reference"]
    if not model.training:
        raise _fail(name, "left the model in eval mode", "call model.train() at the start of the step")
    for step, (got, expected) in enumerate(zip(losses, ref_losses), start=1):
        got = _as_float(got, f"{name} (call {step})", "return loss.item()")
        if step == 1 and abs(got - expected) > 1e-6:
            raise _fail(name, f"returned {got:.6g} on the first call, expected the batch loss {expected:.6g}",
                        "return the loss computed before optimizer.step(): loss.item()")
    for step, (got, expected) in enumerate(zip(states, ref_states), start=1):
        if all(torch.equal(g, s) for g, s in zip(got, states[step - 2] if step > 1 else
                                                   [p.detach() for p in template.parameters()])):
            raise _fail(name, f"the weights did not change in call {step}",
                        "optimizer.step() must come after loss.backward(), and zero_grad() before backward()")
        if not all(torch.allclose(g, e, atol=1e-6) for g, e in zip(got, expected)):
            if step == 1:
                raise _fail(name, "the weights after the first step differ from one SGD step",
                            "order: zero_grad(), forward, loss, loss.backward(), optimizer.step()")
            raise _fail(name, f"the first step was right but the weights differ after call {step}: gradients "
                        f"from the earlier calls were added to the new ones",
                        "call optimizer.zero_grad() in every step, before loss.backward()")
    for step, (got, expected) in enumerate(zip(losses, ref_losses), start=1):
        check_close(_as_float(got, name, "return loss.item()"), expected, name=f"{name} loss of call {step}",
                    atol=1e-6, hint="return the loss of this batch, computed before the update")
    print(f"✔ {name}: correct")


# ----------------------------------------------------------------------------- exercise 3


def _reference_warmup_cosine(epoch: int, warmup: int = 3, total: int = 20) -> float:
    if epoch < warmup:
        return (epoch + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / (total - warmup)))


def _name_the_mistake(case: str, got: float, epoch: int, warmup: int, total: int) -> None:
    """Fail with the typical mistake that gives `got`, if it is one of them."""
    def cosine(t: float) -> float:
        return 0.5 * (1 + math.cos(math.pi * t))

    if epoch < warmup:
        if abs(got - epoch / warmup) < 1e-9:
            raise _fail(case, f"returned {got:.6g}: epoch / warmup starts at 0, so the first epoch would not learn",
                        "during warm-up the factor is (epoch + 1) / warmup: 1/warmup at epoch 0, 1 at epoch warmup - 1")
        return
    if abs(got - cosine((epoch - warmup) / total)) < 1e-9:
        raise _fail(case, f"returned {got:.6g}: t = (epoch - warmup) / total never reaches 1, so the decay stops short",
                    "divide by the length of the decay, total - warmup")
    if abs(got - cosine(epoch / total)) < 1e-9:
        raise _fail(case, f"returned {got:.6g}: t = epoch / total is not 0 at the end of the warm-up, so the "
                    "factor jumps down there", "t = (epoch - warmup) / (total - warmup)")
    if abs(got - (epoch + 1) / warmup) < 1e-9:
        raise _fail(case, f"returned {got:.6g}: the warm-up formula is still used after epoch warmup - 1",
                    "switch to the cosine once epoch >= warmup")


def check_warmup_cosine(warmup_cosine: Callable) -> None:
    """Exercise 3: the LambdaLR factor of a linear warm-up followed by a cosine decay."""
    name = "warmup_cosine"
    _require_function(warmup_cosine, name)
    for warmup, total in ((3, 20), (5, 30), (1, 10)):
        for epoch in range(total):
            got = _call(warmup_cosine, name, epoch, warmup, total)
            got = _as_float(got, f"{name}({epoch}, warmup={warmup}, total={total})", "return a float factor")
            expected = _reference_warmup_cosine(epoch, warmup, total)
            case = f"{name}({epoch}, warmup={warmup}, total={total})"
            if abs(got - expected) > 1e-6:
                _name_the_mistake(case, got, epoch, warmup, total)
            if epoch < warmup:
                hint = "during warm-up the factor grows linearly: (epoch + 1) / warmup, reaching 1 at epoch warmup - 1"
            else:
                hint = ("after warm-up: 0.5 * (1 + cos(pi * t)) with t = (epoch - warmup) / (total - warmup), "
                        "so the factor is exactly 1 at epoch == warmup")
            check_close(got, expected, name=f"{name}({epoch}, warmup={warmup}, total={total})", atol=1e-6, hint=hint)
    print(f"✔ {name}: correct")


# ----------------------------------------------------------------------------- exercise 4


def check_grad_norm(grad_norm: Callable) -> None:
    """Exercise 4: the total L2 norm of all gradients (what clip_grad_norm_ measures)."""
    name = "grad_norm"
    _require_function(grad_norm, name)
    torch.manual_seed(52)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2))
    frozen = nn.Linear(3, 3)  # parameters with .grad None must be skipped
    holder = nn.ModuleDict({"net": model, "frozen": frozen})
    x = torch.randn(10, 6)
    model(x).pow(2).sum().backward()
    grads = [p.grad for p in holder.parameters() if p.grad is not None]
    expected = float(torch.stack([g.pow(2).sum() for g in grads]).sum().sqrt())
    before = [g.clone() for g in grads]
    try:
        got = _call(grad_norm, name, holder)
    except AttributeError as error:
        if "NoneType" not in str(error):
            raise
        raise _fail(name, f"crashed on a parameter without a gradient ({error})",
                    "parameters that took no part in the loss have p.grad None: skip them") from None
    got = _as_float(got, name, "return a float, e.g. total.item()")
    if not all(torch.equal(g, b) for g, b in zip(grads, before)):
        raise _fail(name, "changed the gradients", "only measure: do not clip or scale .grad")
    wrong_sum = float(sum(g.norm() for g in grads))
    if abs(got - wrong_sum) < 1e-5 and abs(wrong_sum - expected) > 1e-5:
        raise _fail(name, f"got {got:.6g}, the sum of the per-tensor norms; expected {expected:.6g}",
                    "square the per-tensor norms, sum them, then take one square root")
    if abs(got - expected ** 2) < 1e-4:
        raise _fail(name, f"got {got:.6g}, the squared norm; expected {expected:.6g}", "take the square root at the end")
    return check_close(got, expected, name=name, atol=1e-5, rtol=1e-5, quiet=False,
                       hint="sqrt of the sum of p.grad.pow(2).sum() over the parameters whose .grad is not None")
