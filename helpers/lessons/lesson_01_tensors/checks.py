"""Exercise checks for lesson 01 (tensors). Each names the mistake it finds."""

from __future__ import annotations

import torch

from helpers.check import NotAttempted, check_shape, check_tensor, failure, require_attempted


def _passed(name: str) -> None:
    print(f"✔ {name}: correct")


def _same(got: torch.Tensor, other: torch.Tensor) -> bool:
    return got.shape == other.shape and bool(torch.allclose(got.double(), other.double(), atol=1e-5))


def check_row_centred(data: torch.Tensor, row_centred: torch.Tensor) -> None:
    """Exercise 1: every row of `data` minus that row's own mean."""
    name = "row_centred"
    require_attempted(row_centred, name)
    check_shape(row_centred, data.shape, name=name, hint="subtracting one mean per row keeps the shape of data")
    if _same(row_centred, data - data.mean(dim=1)):
        raise failure(name, "this is the buggy line's result: data.mean(dim=1) has shape (4,), which broadcasts "
                            "as a *row*, so column j lost the mean of row j",
                      "keep the reduced dimension: data.mean(dim=1, keepdim=True) has shape (4, 1), one mean per row")
    if _same(row_centred, data - data.mean(dim=0, keepdim=True)):
        raise failure(name, "you subtracted each *column's* mean (dim=0 reduces over the rows)",
                      "a sample's mean is over its features, the columns: dim=1, with keepdim=True")
    check_tensor(row_centred, data - data.mean(dim=1, keepdim=True), name=name, atol=1e-5,
                 hint="subtract one mean per row (a (4, 1) tensor), so that each row of the result adds up to 0")
    return _passed(name)


def check_flat(scores: torch.Tensor, flat: torch.Tensor, flat_is_a_copy: bool) -> None:
    """Exercise 2: `scores.t()` read row by row, and whether that needed a copy."""
    require_attempted(flat, "flat")
    require_attempted(flat_is_a_copy, "flat_is_a_copy")
    transposed = scores.t()
    check_shape(flat, (transposed.numel(),), name="flat", hint="a 1-D tensor holding every element: reshape(-1)")
    if torch.equal(flat, scores.reshape(-1)):
        raise failure("flat", "this is `scores` read row by row, not its transpose",
                      "flatten scores_t itself: scores_t.reshape(-1), or scores_t.contiguous().view(-1)")
    check_tensor(flat, transposed.reshape(-1), name="flat", check_dtype=False,
                 hint="read scores_t row by row: scores_t.reshape(-1)")
    if not isinstance(flat_is_a_copy, bool):
        raise failure("flat_is_a_copy", f"must be True or False, got {type(flat_is_a_copy).__name__}")
    if not flat_is_a_copy:
        raise failure("flat_is_a_copy", "flat cannot be a view of scores' memory",
                      "read row by row, scores_t visits memory positions 0, 3, 1, 4, 2, 5: no single stride "
                      "steps through that order, so reshape had to copy (check: flat.data_ptr() != scores.data_ptr())")
    return _passed("flat and flat_is_a_copy")


def check_hottest(temps: torch.Tensor, hottest_day: torch.Tensor, hottest_city: torch.Tensor) -> None:
    """Exercise 3: for each city the index of its hottest day, and for each day the index of its hottest city."""
    days, cities = temps.shape
    for name, got, per, dim, other in (("hottest_day", hottest_day, "city", 0, "day"),
                                       ("hottest_city", hottest_city, "day", 1, "city")):
        require_attempted(got, name)
        if not isinstance(got, torch.Tensor):
            raise failure(name, f"got {type(got).__name__}, expected a tensor")
        size = temps.shape[1 - dim]
        if got.shape == (temps.shape[dim],) and got.shape != (size,):
            raise failure(name, f"shape {tuple(got.shape)}: one answer per {other}, but you want one per {per}",
                          f"the dimension you reduce is the one that disappears: reduce over the {other}s, dim={dim}")
        check_shape(got, (size,), name=name, hint=f"one answer per {per}: shape ({size},)")
        if got.is_floating_point():
            raise failure(name, f"holds floats {got.tolist()}: temperatures, not indices",
                          "argmax returns where the maximum is (or use .max(dim=...).indices)")
        check_tensor(got, temps.argmax(dim=dim), name=name, check_dtype=False,
                     hint=f"the index of the largest value along the {other}s: temps.argmax(dim={dim})")
    return _passed("hottest_day and hottest_city")


#: Exercise 4's readings, [0.2, 1.7, 0.9, 3.4, 1.1], with every value above 1.0 set to 1.0.
_CAPPED = torch.tensor([0.2, 1.0, 0.9, 1.0, 1.0])


def check_capped(readings: torch.Tensor, original: torch.Tensor, limit: float = 1.0) -> None:
    """Exercise 4: the tensor `original` (also named `readings`) changed in place, values above `limit` set to it."""
    if readings is not original:
        raise failure("readings", "now names a new tensor, while the original one (also held by `original`, as a "
                                  "dataset or another function would) still has the errors",
                      "change the tensor itself: readings[readings > 1.0] = 1.0, or readings.clamp_(max=1.0)")
    if bool((readings > limit).any()):
        raise NotAttempted(
            "readings: still holds values above 1.0 (not attempted yet, or the values were written somewhere else).\n"
            "  Hint: if you ran the two commented lines: what does indexing with a boolean mask return, a view or a "
            "copy? (section 3)")
    check_tensor(readings, _CAPPED, name="readings", hint="only the values above 1.0 change, and they become 1.0")
    _passed("readings")
