"""Exercise checks for lesson 04 (data), and the small Dataset its num_workers demo uses.

`SlowDataset` lives here, in an importable module, on purpose: DataLoader worker processes
started with "spawn" (the default on macOS and Windows) re-create the dataset by importing
its class by name, and a class defined inside a notebook cannot be imported that way.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from helpers.check import NotAttempted, check_shape, check_tensor, failure as _fail, require_attempted as _not_attempted

__all__ = [
    "SlowDataset",
    "check_wine_dataset",
    "check_eval_transform",
    "check_padding_mask",
    "check_sample_weights",
    "check_make_split",
]


class SlowDataset(Dataset):
    """`n` samples whose `__getitem__` pretends to read a file: it waits `delay` seconds.

    Item i is (features, label): a float32 tensor of `size` values computed from i and the
    int64 label i % 10. The wait stands in for the disk reads and image decoding that make
    real datasets slow; it is what DataLoader workers can overlap.
    """

    def __init__(self, n: int = 96, delay: float = 0.004, size: int = 16) -> None:
        self.n = n
        self.delay = delay
        self.size = size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for SlowDataset of length {self.n}")
        time.sleep(self.delay)                                  # "reading from disk"
        features = torch.linspace(0.0, 1.0, self.size) * index  # "decoding": a little work
        return features.sin(), torch.tensor(index % 10)


# ----------------------------------------------------------------------------- helpers


def _ok(name: str) -> None:
    print(f"✔ {name}: correct")


def _wine_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine

    wine = load_wine()
    return wine.data, wine.target


def _digit_image(size: int = 16):
    """A PIL grayscale image of one digit, upscaled (the input of the transform exercise)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = (load_digits().images[3] * (255 / 16)).astype(np.uint8)
    return Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST)


# ----------------------------------------------------------------------------- exercise 1


def check_wine_dataset(dataset_class: Any) -> None:
    """Exercise 1: the fixed BuggyWine: (float32 features (13,), int64 label ()), len = rows, a batch trains."""
    name = "WineDataset"
    _not_attempted(dataset_class, name)
    if not isinstance(dataset_class, type):
        raise _fail(name, f"expected a class, got {type(dataset_class).__name__}",
                    "define it with `class WineDataset(Dataset):`")
    features, labels = _wine_arrays()
    dataset = dataset_class(features, labels)
    length = dataset.__len__()
    if length is None:
        raise NotAttempted(f"{name}: not attempted yet: __len__ returns None; fill in the three methods")
    if length == features.shape[1]:
        raise _fail(name, f"len(dataset) is {length}, the number of measurements per sample (bug 3 is still there)",
                    "__len__ counts the samples (rows): len(self.labels), not len(self.features[0])")
    if length != len(labels):
        raise _fail(name, f"len(dataset) is {length}, expected {len(labels)} (one item per row)",
                    "__len__ should return the number of samples, len(self.labels)")
    item = dataset[0]
    if item is None:
        raise NotAttempted(f"{name}: not attempted yet: __getitem__ returns None")
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise _fail(name, f"dataset[0] should be a pair (features, label), got {type(item).__name__}",
                    "return features, label")
    for index in (0, 77, len(labels) - 1):
        x, y = dataset[index]
        check_tensor(x, torch.tensor(features[index], dtype=torch.float32), name=f"features of dataset[{index}]",
                     hint="torch.from_numpy keeps NumPy's float64, and nn.Linear's weights are float32: "
                          "convert with torch.tensor(..., dtype=torch.float32) or .float()")
        check_tensor(y, torch.tensor(labels[index], dtype=torch.int64), name=f"label of dataset[{index}]",
                     hint="torch.FloatTensor makes the labels float; cross_entropy wants class indices as "
                          "int64 scalars (shape ()): torch.tensor(labels, dtype=torch.int64)")
    xb, yb = next(iter(DataLoader(dataset, batch_size=5)))
    check_shape(xb, (5, features.shape[1]), name="a batch of 5 feature rows")
    check_shape(yb, (5,), name="a batch of 5 labels")
    torch.nn.functional.cross_entropy(torch.nn.Linear(features.shape[1], 3)(xb), yb)  # a batch trains
    return _ok(name)


# ----------------------------------------------------------------------------- exercise 2


def _reference_eval_transform():
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=[0.5], std=[0.5])])


def check_eval_transform(transform: Any) -> None:
    """Exercise 2: PIL image -> float32 (1, H, W) tensor, scaled to [0, 1], normalised to [-1, 1]."""
    name = "eval_transform"
    _not_attempted(transform, name)
    if not callable(transform):
        raise _fail(name, f"expected a transform (something callable), got {type(transform).__name__}",
                    "build it with v2.Compose([...])")
    image = _digit_image()
    expected = _reference_eval_transform()(image)
    with torch.random.fork_rng(devices=[]):  # two seeded calls, the caller's random state left alone
        try:
            torch.manual_seed(1)
            got = transform(image)
            torch.manual_seed(0)
            again = transform(image)
        except Exception as error:  # noqa: BLE001 - any error of the student's pipeline gets a hint
            raise _fail(name, f"calling it on a PIL image raised {type(error).__name__}: {error}",
                        "the order matters: ToImage, then ToDtype(torch.float32, scale=True), then Normalize "
                        "(Normalize needs a float tensor)") from None
    if isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == expected.shape:
        if got.max() > 2:
            raise _fail(name, f"values reach {got.max().item():.4g}: the pixels were not scaled to [0, 1]",
                        "v2.ToDtype(torch.float32, scale=True) divides by 255; without scale=True it only casts")
        if got.min() >= 0 and expected.min() < 0:
            raise _fail(name, "all values are >= 0: the image was not normalised",
                        "finish with v2.Normalize(mean=[0.5], std=[0.5]), which maps [0, 1] to [-1, 1]")
    if isinstance(got, torch.Tensor) and isinstance(again, torch.Tensor) and not torch.equal(again, got):
        raise _fail(name, "two calls on the same image give different results",
                    "an evaluation transform must be deterministic: drop the Random* transforms")
    check_tensor(got, expected, name=name, atol=1e-6,
                 hint="ToImage, then ToDtype(torch.float32, scale=True), then Normalize(mean=[0.5], std=[0.5])")
    return _ok(name)


# ----------------------------------------------------------------------------- exercise 3


def check_padding_mask(lengths: torch.Tensor, max_len: int, mask: Any) -> None:
    """Exercise 3: mask[i, t] is True for the real tokens of sequence i (t < lengths[i])."""
    expected = torch.arange(max_len)[None, :] < lengths[:, None]
    if isinstance(mask, torch.Tensor) and mask.dtype != torch.bool and mask.shape == expected.shape:
        raise _fail("mask", f"dtype is {mask.dtype}, expected torch.bool",
                    "a comparison such as `a < b` gives a bool tensor directly")
    return check_tensor(mask, expected, name="mask", quiet=False,
                        hint="compare positions torch.arange(max_len) (shape (1, T)) with lengths (shape (N, 1)); "
                             "broadcasting gives (N, T). True marks real tokens, False padding")


# ----------------------------------------------------------------------------- exercise 4


def check_sample_weights(labels: torch.Tensor, weights: Any) -> None:
    """Exercise 4: one weight per sample, 1 / (number of samples of its class)."""
    counts = torch.bincount(labels)
    expected = 1.0 / counts[labels].double()
    if isinstance(weights, torch.Tensor) and not weights.is_floating_point():
        raise _fail("weights", f"dtype is {weights.dtype}, expected a floating-point dtype",
                    "1 / counts with integer counts must be a float division: use 1.0 / counts.float()")
    if isinstance(weights, torch.Tensor) and weights.shape == counts.shape and len(counts) != len(labels):
        raise _fail("weights", f"shape is {tuple(weights.shape)}: one weight per class, expected one per sample "
                    f"({len(labels)})", "index the per-class weights with the labels: class_weights[labels]")
    return check_tensor(weights, expected, name="weights", check_dtype=False, atol=1e-7, quiet=False,
                        hint="count each class with torch.bincount(labels), then weight = 1 / count[label]")


# ----------------------------------------------------------------------------- exercise 5


def check_make_split(make_split: Any, dataset: Any) -> None:
    """Exercise 5: make_split(dataset) -> (train 80 %, val 20 %) Subsets from random_split: the same
    split on every call, shuffled, and PyTorch's global random state left alone."""
    name = "make_split"
    _not_attempted(make_split, name)
    state = torch.get_rng_state()
    result = make_split(dataset)
    changed = not torch.equal(state, torch.get_rng_state())
    if result is Ellipsis or result is None:
        raise NotAttempted(f"{name}: not attempted yet: it returns {result!r}; return random_split(...)")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise _fail(name, f"should return a pair (train_part, val_part), got {type(result).__name__}",
                    "return random_split(dataset, [0.8, 0.2], generator=...)")
    train_part, val_part = result
    for part, part_name in ((train_part, "train_part"), (val_part, "val_part")):
        if not isinstance(part, Subset):
            raise _fail(part_name, f"expected a torch.utils.data.Subset, got {type(part).__name__}",
                        "return random_split(dataset, [0.8, 0.2], generator=...)")
    n = len(dataset)
    if (len(train_part), len(val_part)) != (int(0.8 * n), n - int(0.8 * n)):
        raise _fail(name, f"the parts hold {len(train_part)} and {len(val_part)} samples, expected "
                    f"{int(0.8 * n)} and {n - int(0.8 * n)}", "the fractions are [0.8, 0.2]: training first")
    if changed:
        raise _fail(name, "it changed PyTorch's global random state: torch.manual_seed resets it for all the code "
                    "that runs afterwards, and random_split without a generator draws from it",
                    "give random_split a generator of its own: generator=torch.Generator().manual_seed(0)")
    if sorted(list(train_part.indices) + list(val_part.indices)) != list(range(n)):
        raise _fail(name, "train_part and val_part overlap or miss samples", "split once with random_split")
    if list(train_part.indices) == list(range(len(train_part))):
        raise _fail(name, "train_part holds the first 80 % in order: the split is not shuffled",
                    "random_split shuffles; do not slice the dataset")
    torch.rand(3)  # other code draws random numbers between two calls
    again = make_split(dataset)
    if list(again[0].indices) != list(train_part.indices):
        raise _fail(name, "a second call gave a different split",
                    "without a seeded generator random_split depends on the global random state: "
                    "pass generator=torch.Generator().manual_seed(0)")
    return _ok(name)
