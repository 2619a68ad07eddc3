"""Lesson 10 (transfer learning): the course's small backbone, its source and target tasks.

No pretrained weights can be downloaded here, so the course pretrains its own backbone
(`python -m helpers.lessons.lesson_10_transfer.pretrain`, data/backbone.pt). The only labelled
image set that ships with the installed packages is scikit-learn's 8x8 handwritten digits, so
it is split by class:

* the **source task** is digits 0-4 (every image of them, about 900), each also turned by 90,
  180 and 270 degrees, 20 classes in all (digit and orientation: about 3,600 images), every image
  seen many times shifted by up to one pixel, with a little noise. The orientations make the task
  larger and its features more general than those of five upright classes alone;
* the **target task** is digits 5-9, classes the backbone has never seen, upright, with only a
  few labelled images per class for training; the rest are for testing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["Backbone", "TransferNet", "SOURCE_CLASSES", "SOURCE_LABELS", "TARGET_CLASSES", "FEATURES", "WEIGHTS",
           "source_task", "target_task", "few_labels", "load_backbone", "sha256", "augment"]

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
FEATURES = 128
WEIGHTS = Path(__file__).with_name("data") / "backbone.pt"


class Backbone(nn.Sequential):
    """Three 3x3 conv -> BatchNorm -> ReLU stages (16, 32, 32 channels; a 2x2 max-pool after the
    second), then average pooling to 2x2, flattened: (N, 1, 8, 8) -> (N, 128) features."""

    def __init__(self, *layers: Any) -> None:
        # With arguments it is a plain Sequential of them: slicing (backbone[7:9]) builds one that way.
        super().__init__(*(layers or (
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )))


class TransferNet(nn.Module):
    """A backbone and a new linear head: `.backbone` (N, 1, 8, 8) -> (N, 128), `.head` -> (N, classes)."""

    def __init__(self, backbone: nn.Module, num_classes: int = 5, features: int = FEATURES) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def _digits(classes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.int64)
    keep = torch.isin(y, torch.tensor(classes))
    return x[keep], y[keep] - min(classes)


SOURCE_LABELS = 4 * len(SOURCE_CLASSES)


def source_task() -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of digits 0-4 in 4 orientations: x (4N, 1, 8, 8) in [0, 1], y (4N,) in 0..19,
    where label digit + 5 * r is the digit turned r times by 90 degrees."""
    x, y = _digits(SOURCE_CLASSES)
    turns = range(4)
    return (torch.cat([torch.rot90(x, r, (2, 3)) for r in turns]),
            torch.cat([y + len(SOURCE_CLASSES) * r for r in turns]))


def target_task() -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of digits 5-9: x (N, 1, 8, 8) in [0, 1], y (N,) in 0..4 (label 0 is the digit 5)."""
    return _digits(TARGET_CLASSES)


def few_labels(x: torch.Tensor, y: torch.Tensor, per_class: int, seed: int = 0
               ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Split (x, y) into `per_class` labelled images of each class for training and the rest for testing."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    train = torch.cat([order[y[order] == c][:per_class] for c in y.unique()])
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[train] = False
    return (x[train], y[train]), (x[mask], y[mask])


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by -1, 0 or 1 pixel in each direction (zeros come in), plus noise of std 0.05."""
    n = len(x)
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=generator)
    dx = torch.randint(0, 3, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(8))[:, None, :, None].expand(n, 1, 8, 10)
    shifted = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(8))[:, None, None, :].expand(n, 1, 8, 8)
    shifted = shifted.gather(3, cols)
    return (shifted + 0.05 * torch.randn(shifted.shape, generator=generator)).clamp(0, 1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_backbone(path: Path | None = None) -> Backbone:
    """The pretrained backbone from data/backbone.pt (weights_only=True: tensors only, no code runs)."""
    backbone = Backbone()
    backbone.load_state_dict(torch.load(path or WEIGHTS, weights_only=True))
    return backbone
