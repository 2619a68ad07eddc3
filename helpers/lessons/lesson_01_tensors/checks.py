"""Exercise checks for lesson 01 (tensors)."""

from __future__ import annotations

import torch

from helpers.check import check_shape, check_tensor


def check_grid(grid: torch.Tensor) -> None:
    """Exercise 1: a (3, 4) float32 tensor holding 0, 1, ..., 11 row by row."""
    expected = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return check_tensor(grid, expected, name="grid", quiet=False,
                        hint="torch.arange(...) gives 0..n-1; .reshape(rows, cols) arranges them row by row")


def check_big_scores(scores: torch.Tensor, big_scores: torch.Tensor) -> None:
    """Exercise 2: the entries of `scores` greater than 0.5, in their original order (1-D)."""
    expected = scores[scores > 0.5]
    return check_tensor(big_scores, expected, name="big_scores", quiet=False,
                        hint="build a boolean mask with `scores > 0.5`, then index: scores[mask]")


def check_centered(data: torch.Tensor, centered: torch.Tensor) -> None:
    """Exercise 3: every column of `data` minus that column's mean."""
    check_shape(centered, data.shape, name="centered",
                hint="subtracting a (1, C) or (C,) tensor from (N, C) keeps the shape (N, C)")
    expected = data - data.mean(dim=0, keepdim=True)
    return check_tensor(centered, expected, name="centered", atol=1e-5, quiet=False,
                        hint="column means are a reduction over dim=0 (the rows); keepdim=True makes broadcasting obvious")


def check_best_class(logits: torch.Tensor, best_class: torch.Tensor) -> None:
    """Exercise 4: for each row of `logits` (N, C), the index of the largest value."""
    expected = logits.argmax(dim=1)
    return check_tensor(best_class, expected, name="best_class", quiet=False,
                        hint="one answer per row means reducing over the columns: dim=1")


def check_channels_first(images: torch.Tensor, channels_first: torch.Tensor) -> None:
    """Exercise 5: images (N, H, W, C) rearranged to (N, C, H, W) without changing any pixel."""
    expected = images.permute(0, 3, 1, 2)
    return check_tensor(channels_first, expected, name="channels_first", quiet=False,
                        hint="reshape/view keep the memory order and scramble pixels; permute moves whole axes")
