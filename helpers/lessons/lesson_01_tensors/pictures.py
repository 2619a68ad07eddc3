"""Pictures for lesson 01 (tensors): broadcasting as coloured grids, and views of one storage.

Both draw static matplotlib figures (they survive nbconvert) and return the Figure.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["show_broadcast", "show_views"]

_COLOURS = plt.get_cmap("tab20")  # 20 colours: a colour per cell, grey (15) for copies


def _as_2d(t: torch.Tensor) -> torch.Tensor:
    """A 0-, 1- or 2-D tensor as 2-D, the way broadcasting sees it (missing dimensions count as 1)."""
    if t.dim() > 2:
        raise ValueError(f"the pictures draw tensors of at most 2 dimensions, got shape {tuple(t.shape)}")
    return t.reshape((1,) * (2 - t.dim()) + tuple(t.shape))


def _grid(ax: Axes, values: torch.Tensor, colours: list[list[int]], faded: torch.Tensor | None,
          title: str, shape: tuple[int, int]) -> None:
    """Draw `values` (2-D) as a grid of coloured cells inside a frame of `shape` cells."""
    rows, cols = shape
    ax.set_xlim(-0.1, cols + 0.1)
    ax.set_ylim(rows + 0.1, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            light = faded is not None and bool(faded[i, j])
            ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=_COLOURS(colours[i][j] % 20),
                                       alpha=0.35 if light else 1.0, edgecolor="black",
                                       linestyle="--" if light else "-"))
            value = values[i, j].item()
            text = f"{value:g}" if isinstance(value, float) else str(value)
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=9,
                    color="dimgray" if light else "black")


def show_broadcast(a: torch.Tensor, b: torch.Tensor, op: str = "+") -> Figure:
    """Draw `a op b` for 1-D or 2-D tensors: each input, each stretched to the common shape
    (the copied cells light and dashed: no memory is copied, they are drawn to show what the
    operation sees), and the result. Raises the operation's own error when the shapes do not broadcast."""
    ops: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"+": torch.add, "*": torch.mul,
                                                                       "-": torch.sub}
    result = ops[op](a, b)
    a2, b2, out = _as_2d(a), _as_2d(b), _as_2d(result)
    shape = (out.shape[0], out.shape[1])
    fig, axes = plt.subplots(1, 5, figsize=(2.3 * 5, 0.5 * shape[0] + 0.9))
    panels: list[tuple[torch.Tensor, list[list[int]], torch.Tensor | None, str]] = []
    for name, t, t2, base in (("a", a, a2, 0), ("b", b, b2, 10)):
        colours = [[base + i * t2.shape[1] + j for j in range(t2.shape[1])] for i in range(t2.shape[0])]
        panels.append((t2, colours, None, f"{name}: shape {tuple(t.shape)}"))
        stretched = t2.expand(shape)
        rows = torch.arange(shape[0])[:, None] % t2.shape[0]
        cols = torch.arange(shape[1])[None, :] % t2.shape[1]
        copied = (rows != torch.arange(shape[0])[:, None]) | (cols != torch.arange(shape[1])[None, :])
        stretched_colours = [[colours[min(i, t2.shape[0] - 1)][min(j, t2.shape[1] - 1)] for j in range(shape[1])]
                             for i in range(shape[0])]
        panels.append((stretched, stretched_colours, copied, f"{name} stretched to {shape}"))
    panels.append((out, [[19] * shape[1] for _ in range(shape[0])], None, f"a {op} b: shape {tuple(result.shape)}"))
    for ax, (values, colours, faded, title) in zip(axes, panels):
        _grid(ax, values, colours, faded, title, shape)
    fig.tight_layout()
    return fig


def _storage_indices(t: torch.Tensor) -> torch.Tensor:
    """For each element of `t`, its position in the storage it reads from."""
    positions = torch.arange(t.untyped_storage().nbytes() // t.element_size())
    return positions.as_strided(t.shape, t.stride(), t.storage_offset())


def show_views(base: torch.Tensor, **others: torch.Tensor) -> Figure:
    """Draw the storage (memory) of the 2-D tensor `base` as one row of cells, then `base` and
    each tensor in `others` as a grid: a cell's colour is its place in memory, so views of the
    same storage reuse the colours, and a tensor with storage of its own is drawn grey."""
    tensors = {"base": base, **others}
    if any(t.dim() not in (1, 2) for t in tensors.values()):
        raise ValueError("show_views draws 1-D and 2-D tensors")
    storage = base.untyped_storage()
    size = storage.nbytes() // base.element_size()
    fig = plt.figure(figsize=(max(2.4 * len(tensors), 0.55 * size + 0.5), 3.8))
    memory = fig.add_axes((0.02, 0.74, 0.96, 0.16))
    flat = torch.empty(0, dtype=base.dtype).set_(storage, 0, (size,), (1,))
    _grid(memory, flat[None, :], [list(range(size))], None,
          "the memory (storage) of base: one row of numbers, its colours used below", (1, size))
    width = 0.96 / len(tensors)
    for n, (name, t) in enumerate(tensors.items()):
        ax = fig.add_axes((0.02 + n * width, 0.02, width * 0.9, 0.45))
        t2 = _as_2d(t)
        shares = t.untyped_storage().data_ptr() == storage.data_ptr()
        places = _as_2d(_storage_indices(t)) if shares else torch.full(t2.shape, 15)
        colours = [[int(places[i, j]) for j in range(t2.shape[1])] for i in range(t2.shape[0])]
        how = "" if t is base else ": a view" if shares else ": a copy (new memory)"
        title = (f"{name}{how}\nshape {tuple(t.shape)}, stride {t.stride()}\n"
                 f"contiguous: {t.is_contiguous()}")
        _grid(ax, t2, colours, None, title, (max(t2.shape[0], 1), max(t2.shape[1], 1)))
    return fig
