"""Plots the lessons use: training curves, image grids, predictions and confusion matrices.

Every function returns the matplotlib Figure and never calls plt.show(): a notebook shows a
returned figure by itself, and a script can fig.savefig(...) it. Wherever colour carries a
meaning, a label, marker or text mark carries it too (for readers who cannot tell the colours apart).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_history", "show_images", "show_predictions", "confusion_matrix", "plot_confusion_matrix"]

CORRECT_COLOUR, WRONG_COLOUR = "tab:green", "tab:red"


def _figure_of(ax: Axes) -> Figure:
    """The top-level Figure an Axes belongs to (even inside a subfigure)."""
    figure = ax.get_figure(root=True)
    if figure is None:
        raise ValueError("these axes belong to no figure: create them with plt.subplots")
    return figure


# ----------------------------------------------------------------------------- training curves


def _metric_names(history: dict[str, list[float]]) -> list[str]:
    """Names m with a train_m or val_m entry, in order of appearance, loss excluded."""
    names: list[str] = []
    for key in history:
        for prefix in ("train_", "val_"):
            if key.startswith(prefix) and key[len(prefix):] not in names + ["loss"]:
                names.append(key[len(prefix):])
    return names


def plot_history(history: dict[str, list[float]], metrics: Sequence[str] | None = None,
                 axes: Sequence[Axes] | None = None) -> Figure:
    """Training curves: one panel for train_loss/val_loss, then one per metric (train_<m>/val_<m>).

    x is history["epoch"] if present, else 1..n. metrics=None plots every metric found in the
    history. Missing keys (e.g. no validation) are skipped. `axes`: one Axes per panel to draw into.
    """
    names = ["loss"] + list(_metric_names(history) if metrics is None else metrics)
    if axes is None:
        _, grid = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
        panels: list[Axes] = list(grid[0])
    elif len(axes) != len(names):
        raise ValueError(f"need {len(names)} axes (loss + {names[1:]}), got {len(axes)}")
    else:
        panels = list(axes)
    for ax, name in zip(panels, names):
        for split, style in (("train", "o-"), ("val", "s--")):  # marker and line style, not only colour
            values = history.get(f"{split}_{name}")
            if not values:
                continue
            epochs = history.get("epoch")
            x = list(epochs) if epochs is not None and len(epochs) == len(values) else list(range(1, len(values) + 1))
            ax.plot(x, list(values), style, label=split, markersize=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig = _figure_of(panels[0])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- images


def _to_numpy_images(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) -> float array (N, H, W) or (N, H, W, 3), each image scaled to [0, 1]."""
    x = torch.as_tensor(images).detach().cpu().float()
    if x.dim() == 4:
        if x.size(1) == 1:
            x = x[:, 0]
        elif x.size(1) == 3:
            x = x.permute(0, 2, 3, 1)  # matplotlib wants channels last
        else:
            raise ValueError(f"images need 1 or 3 channels, got shape {tuple(x.shape)}")
    elif x.dim() != 3:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got shape {tuple(x.shape)}")
    # Min-max per image so that normalised inputs (negative values, any range) still display;
    # imshow would clip colour images outside [0, 1].
    flat = x.reshape(len(x), -1)
    low = flat.min(dim=1).values.view(-1, *[1] * (x.dim() - 1))
    high = flat.max(dim=1).values.view(-1, *[1] * (x.dim() - 1))
    return ((x - low) / (high - low).clamp(min=1e-12)).numpy()


def _name(label: int | torch.Tensor, class_names: Sequence[str] | None) -> str:
    label = int(label)
    return class_names[label] if class_names is not None else str(label)


def _image_grid(n: int, ncols: int) -> tuple[Figure, list[Axes]]:
    """A figure with exactly n axes laid out in rows of ncols (empty grid cells removed)."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.8 * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def show_images(images: torch.Tensor, labels: Sequence[int] | torch.Tensor | None = None, ncols: int = 8,
                class_names: Sequence[str] | None = None) -> Figure:
    """A grid of images (N, C, H, W) with C 1 or 3, or (N, H, W); titled with the labels if given."""
    pixels = _to_numpy_images(images)
    fig, axes = _image_grid(len(pixels), ncols)
    for i, ax in enumerate(axes):
        ax.imshow(pixels[i], cmap="gray" if pixels.ndim == 3 else None, vmin=0, vmax=1)
        ax.axis("off")
        if labels is not None:
            ax.set_title(_name(labels[i], class_names), fontsize=9)
    fig.tight_layout()
    return fig


def show_predictions(images: torch.Tensor, targets: Sequence[int] | torch.Tensor,
                     predictions: Sequence[int] | torch.Tensor, class_names: Sequence[str] | None = None,
                     ncols: int = 8) -> Figure:
    """Images titled "✓ pred X (true Y)" in green when right, "✗ pred X (true Y)" in red when wrong."""
    pixels = _to_numpy_images(images)
    fig, axes = _image_grid(len(pixels), ncols)
    for i, ax in enumerate(axes):
        ax.imshow(pixels[i], cmap="gray" if pixels.ndim == 3 else None, vmin=0, vmax=1)
        ax.axis("off")
        right = int(predictions[i]) == int(targets[i])
        mark, colour = ("✓", CORRECT_COLOUR) if right else ("✗", WRONG_COLOUR)
        ax.set_title(f"{mark} pred {_name(predictions[i], class_names)} (true {_name(targets[i], class_names)})",
                     color=colour, fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- confusion matrix


def confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """int64 (num_classes, num_classes): entry [i, j] counts samples of true class i predicted as j."""
    targets = torch.as_tensor(targets).detach().cpu().long().flatten()
    predictions = torch.as_tensor(predictions).detach().cpu().long().flatten()
    if targets.shape != predictions.shape:
        raise ValueError(f"targets and predictions differ in length: {len(targets)} vs {len(predictions)}")
    for name, values in (("targets", targets), ("predictions", predictions)):
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= num_classes):
            raise ValueError(f"{name} must be in 0..{num_classes - 1}")
    # Pair (i, j) gets the single index i * C + j; one bincount then counts every pair at once.
    counts = torch.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def plot_confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, class_names: Sequence[str] | None = None,
                          normalize: bool = False, num_classes: int | None = None, ax: Axes | None = None) -> Figure:
    """Confusion matrix as an annotated heat map: rows are true classes, columns predictions.

    normalize=True divides each row by its total, so the diagonal shows each class's recall.
    The number of classes is len(class_names), else num_classes, else the largest label + 1.
    """
    targets, predictions = torch.as_tensor(targets), torch.as_tensor(predictions)
    if num_classes is None:
        num_classes = len(class_names) if class_names is not None else int(max(targets.max(), predictions.max())) + 1
    matrix = confusion_matrix(targets, predictions, num_classes).double()
    if normalize:
        matrix = matrix / matrix.sum(dim=1, keepdim=True).clamp(min=1)
    if ax is None:
        size = 1.5 + 0.5 * num_classes
        _, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix.numpy(), cmap="Blues", vmin=0)
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    long_names = class_names is not None  # words need rotating to fit; digits do not
    ax.set_xticks(range(num_classes), names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(num_classes), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix" + (" (rows sum to 1)" if normalize else ""))
    threshold = matrix.max().item() / 2
    for i in range(num_classes):
        for j in range(num_classes):
            value = matrix[i, j].item()
            text = f"{value:.2f}" if normalize else str(int(value))
            # The numbers themselves carry the information; the colour only makes them readable.
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if value > threshold else "black")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig = _figure_of(ax)
    fig.tight_layout()
    return fig
