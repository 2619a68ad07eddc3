"""Exercise checks for lesson 07 (recurrent networks).

Each check runs your answer on fixed inputs, compares it with a reference computed here and
raises `helpers.check.CheckFailed` with a message that names the problem. Reading this code
before solving an exercise spoils it: try first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from helpers.check import CheckFailed, NotAttempted, check_no_loops, check_not_called, check_tensor, require_function

__all__ = ["check_gru_cell", "check_masked_mean"]


# ----------------------------------------------------------------------------- exercise 1


def _gru_by_formula(x: torch.Tensor, h: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
                    b_hh: torch.Tensor, order: str = "rzn", reset: str = "after",
                    keep_new: bool = False) -> torch.Tensor:
    """One GRU step; the keyword arguments build the usual mistakes, to name them. `reset`: where
    the reset gate acts: "after" the hidden product and bias (PyTorch), "before" it (on h),
    "whole" on the input and hidden parts together, "ignored"."""
    gi = dict(zip(order, (x @ w_ih.T + b_ih).chunk(3, dim=1)))
    gh = dict(zip(order, (h @ w_hh.T + b_hh).chunk(3, dim=1)))
    r = torch.sigmoid(gi["r"] + gh["r"])
    z = torch.sigmoid(gi["z"] + gh["z"])
    if reset == "before":  # the original paper's variant: r scales h before the matrix product
        w_hn = dict(zip(order, w_hh.chunk(3, dim=0)))["n"]
        b_hn = dict(zip(order, b_hh.chunk(3, dim=0)))["n"]
        n = torch.tanh(gi["n"] + (r * h) @ w_hn.T + b_hn)
    elif reset == "whole":
        n = torch.tanh(r * (gi["n"] + gh["n"]))
    elif reset == "ignored":
        n = torch.tanh(gi["n"] + gh["n"])
    else:
        n = torch.tanh(gi["n"] + r * gh["n"])
    return z * n + (1 - z) * h if keep_new else (1 - z) * n + z * h


_GRU_MISTAKES = [
    ("the gate blocks are read in the order z, r, n: PyTorch's order is reset r, update z, new n", {"order": "zrn"}),
    ("the reset gate multiplies h before the matrix product; PyTorch's GRUCell applies it to (W_hn·h + b_hn), "
     "after the product and the bias", {"reset": "before"}),
    ("the reset gate is missing from n (were a and b added before splitting?): n = tanh(a_n + r·b_n), with r "
     "scaling the hidden part only", {"reset": "ignored"}),
    ("the reset gate scales the input part of n too: n = tanh(a_n + r·b_n), with r scaling the hidden part only",
     {"reset": "whole"}),
    ("z and 1 - z are swapped: h' = (1 - z)·n + z·h, so z close to 1 keeps the old state", {"keep_new": True}),
]


def check_gru_cell(fn: Any) -> None:
    """Exercise 1: gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh) equal to nn.GRUCell."""
    require_function(fn, "gru_cell")
    for n, input_size, hidden_size, seed in [(3, 4, 5, 1), (1, 2, 3, 2), (6, 7, 2, 3)]:
        torch.manual_seed(seed)
        cell = nn.GRUCell(input_size, hidden_size)
        gen = torch.Generator().manual_seed(seed)
        x, h = torch.randn(n, input_size, generator=gen), torch.randn(n, hidden_size, generator=gen)
        weights = [p.detach() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
        name = f"gru_cell(N={n}, input_size={input_size}, hidden_size={hidden_size})"
        got = fn(x, h, *weights)
        if got is Ellipsis or got is None:
            raise NotAttempted("gru_cell: not attempted yet: replace the `...` with your code (and return h_new)")
        with torch.no_grad():
            expected = cell(x, h)
        wrong = isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.allclose(got, expected,
                                                                                                    atol=1e-5)
        if wrong:
            for why, mistake in _GRU_MISTAKES:
                if torch.allclose(got, _gru_by_formula(x, h, *weights, **mistake), atol=1e-5):  # type: ignore[arg-type]
                    raise CheckFailed(f"{name}: {why}")
        check_tensor(got, expected, atol=1e-5, name=name,
                     hint="r, z from sigmoids, n = tanh(W_in·x + b_in + r·(W_hn·h + b_hn)), h' = (1 - z)·n + z·h")
    check_not_called(fn, (x, h, *weights), {"gru_cell", "gru"}, name="gru_cell",
                     hint="write the gates yourself: no nn.GRUCell, nn.GRU or torch.gru_cell")
    print("✔ gru_cell: equal to nn.GRUCell for three sizes")


# ----------------------------------------------------------------------------- exercise 2


def check_masked_mean(fn: Any) -> None:
    """Exercise 2: masked_mean(output, lengths), the mean over each sequence's real steps only."""
    require_function(fn, "masked_mean")
    gen = torch.Generator().manual_seed(7)
    output = torch.randn(4, 6, 3, generator=gen)
    lengths = torch.tensor([2, 6, 1, 4])
    mask = torch.arange(6) < lengths[:, None]
    expected = (output * mask[..., None]).sum(dim=1) / lengths[:, None]
    got = fn(output.clone(), lengths.clone())
    if got is Ellipsis or got is None:
        raise NotAttempted("masked_mean: not attempted yet: replace the `...` with your code (and return the mean)")
    name = "masked_mean(output (4, 6, 3), lengths=[2, 6, 1, 4])"
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.allclose(got, expected, atol=1e-5):
        if torch.allclose(got, output.mean(dim=1), atol=1e-5):
            raise CheckFailed(f"{name}: this is the mean over all T steps, padding included: average the real steps "
                              "only")
        if torch.allclose(got, (output * mask[..., None]).sum(dim=1) / 6, atol=1e-5):
            raise CheckFailed(f"{name}: the padding is left out of the sum but the sum is divided by T: divide each "
                              "row by its own length")
    check_tensor(got, expected, atol=1e-5, name=name,
                 hint="mask = torch.arange(T) < lengths[:, None]; sum the masked steps and divide by the lengths")
    check_no_loops(fn, hint="build the (N, T) mask with broadcasting: torch.arange(T) < lengths[:, None]")
    print("✔ masked_mean: padding ignored, each row divided by its own length")
