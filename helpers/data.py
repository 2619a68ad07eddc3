"""Data for the lessons, all available offline.

- digits: scikit-learn's 8x8 handwritten digits (1797 images, shipped inside scikit-learn),
  split into train/val/test the same way for every notebook.
- TensorBatchLoader: a fast loader for datasets that are already tensors in memory.
- Synthetic sequence tasks (reverse, sort, pattern) and pad_collate for variable-length batches.
- fashion_mnist / cifar10: torchvision datasets read from disk, never downloaded implicitly.

Token vocabulary of the sequence tasks: PAD=0, BOS=1 (begin of sequence), EOS=2 (end of
sequence; reserved), and content tokens 3 .. vocab_size-1.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

__all__ = [
    "PAD", "BOS", "EOS", "FIRST_TOKEN",
    "digits_tensors", "DigitsDataset", "TensorBatchLoader",
    "reverse_task", "sort_task", "pattern_task", "shift_right", "pad_collate",
    "fashion_mnist", "cifar10",
]

PAD, BOS, EOS = 0, 1, 2
FIRST_TOKEN = 3  # the first content token; 0-2 are reserved


# ----------------------------------------------------------------------------- digits


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """load_digits() parses a CSV file (about a second): do it once per process."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    digits = load_digits()
    return digits.images, digits.target


def digits_tensors(seed: int = 0, val_fraction: float = 0.15,
                   test_fraction: float = 0.15) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The digits data as {"train": (x, y), "val": (x, y), "test": (x, y)}.

    x is float32 (N, 1, 8, 8) in [0, 1] (the raw pixels are 0..16), y is int64 (N,) in 0..9.
    The split is stratified (each part has the same share of every digit) and depends only on
    `seed`. With the defaults the sizes are train 1257, val 270, test 270 (of 1797).
    """
    from sklearn.model_selection import train_test_split

    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be > 0 and add up to less than 1")
    images, labels = _digits_arrays()
    n = len(labels)
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)  # counts, so sizes are exact
    index = np.arange(n)
    rest, test = train_test_split(index, test_size=n_test, stratify=labels, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=seed)
    x = torch.tensor(images / 16.0, dtype=torch.float32).unsqueeze(1)  # a copy: the cache stays untouched
    y = torch.tensor(labels, dtype=torch.int64)
    return {name: (x[idx], y[idx]) for name, idx in (("train", train), ("val", val), ("test", test))}


class DigitsDataset(Dataset):
    """One split of digits_tensors as a torch Dataset: item i is (image, label).

    image is (1, 8, 8), or (64,) with flatten=True; `transform`, if given, is applied to it.
    """

    def __init__(self, split: str = "train", seed: int = 0, transform: Callable[[torch.Tensor], Any] | None = None,
                 flatten: bool = False) -> None:
        splits = digits_tensors(seed)
        if split not in splits:
            raise ValueError(f"split must be one of {list(splits)}, got {split!r}")
        self.images, self.labels = splits[split]
        if flatten:
            self.images = self.images.flatten(1)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


# ----------------------------------------------------------------------------- loader


class TensorBatchLoader:
    """Batches of in-memory tensors, without DataLoader's per-sample work.

    DataLoader calls dataset[i] once per sample and then stacks the samples (collate). When the
    whole dataset is already one tensor, one random permutation per epoch and one gather per
    batch give the same batches much faster (about 20-50x for the digits at batch size 64, see
    benchmarks/bench_loader.py). Use: `for xb, yb in TensorBatchLoader(x, y, batch_size=64, shuffle=True)`.

    Every sample appears once per epoch; the last batch is smaller unless drop_last=True.
    Shuffling draws from `generator` (or torch's global generator), so a seeded generator
    reproduces the order.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                 generator: torch.Generator | None = None) -> None:
        if not tensors:
            raise ValueError("give at least one tensor, e.g. TensorBatchLoader(x, y, batch_size=64)")
        if any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError(f"all tensors need the same first dimension, got {[len(t) for t in tensors]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator

    @property
    def dataset_size(self) -> int:
        """Number of samples (not batches)."""
        return len(self.tensors[0])

    def __len__(self) -> int:
        """Number of batches per epoch."""
        if self.drop_last:
            return self.dataset_size // self.batch_size
        return math.ceil(self.dataset_size / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n, size = self.dataset_size, self.batch_size
        if not self.shuffle:  # plain slices: views of the data, nothing copied
            for start in range(0, len(self) * size, size):
                yield tuple(t[start:start + size] for t in self.tensors)
            return
        order = torch.randperm(n, generator=self.generator)  # one random permutation per epoch
        order = order.to(self.tensors[0].device)  # moved once, not once per batch (for GPU data)
        for start in range(0, len(self) * size, size):
            # Gather each batch with a slice of the permutation: never a shuffled copy of the whole
            # dataset in memory. index_select rather than t[index] (same result): for a small batch
            # it stays on one thread, whereas t[index] may wake a thread pool, which on a busy
            # machine costs milliseconds per batch (seen in benchmarks/bench_loader.py).
            index = order[start:start + size]
            yield tuple(t.index_select(0, index.to(t.device)) for t in self.tensors)


# ----------------------------------------------------------------------------- sequence tasks


def _random_tokens(n: int, seq_len: int, vocab_size: int, generator: torch.Generator) -> torch.Tensor:
    if vocab_size <= FIRST_TOKEN:
        raise ValueError(f"vocab_size must be more than {FIRST_TOKEN} (tokens 0-2 are PAD, BOS, EOS)")
    return torch.randint(FIRST_TOKEN, vocab_size, (n, seq_len), generator=generator)


def reverse_task(n: int, seq_len: int, vocab_size: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(src, tgt), both int64 (n, seq_len): random content tokens and the same sequence reversed."""
    src = _random_tokens(n, seq_len, vocab_size, torch.Generator().manual_seed(seed))
    return src, src.flip(1)


def sort_task(n: int, seq_len: int, vocab_size: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(src, tgt), both int64 (n, seq_len): random content tokens and the same tokens sorted."""
    src = _random_tokens(n, seq_len, vocab_size, torch.Generator().manual_seed(seed))
    return src, src.sort(dim=1).values


def shift_right(tgt: torch.Tensor, bos_id: int = BOS) -> torch.Tensor:
    """Decoder input for teacher forcing: BOS followed by tgt without its last token, (N, T).

    The decoder reads tgt_in[:, t] = tgt[:, t-1] and is trained to predict tgt[:, t].
    """
    bos = torch.full_like(tgt[:, :1], bos_id)
    return torch.cat([bos, tgt[:, :-1]], dim=1)


def _contains(sequence: list[int], pattern: list[int]) -> bool:
    k = len(pattern)
    return any(sequence[i:i + k] == pattern for i in range(len(sequence) - k + 1))


def pattern_task(n: int, seq_len: int, pattern: Sequence[int], seed: int = 0, vocab_size: int = 8,
                 min_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A detection task: label 1 if `pattern` occurs as a contiguous run in the sequence, else 0.

    Returns (ids, lengths, labels): ids int64 (n, seq_len) padded with PAD, lengths (n,), labels (n,).
    Lengths are drawn from min_len..seq_len (default: all seq_len). The pattern is planted in
    about half of the sequences, so the classes are roughly balanced; labels are computed by
    searching every sequence, so chance occurrences count too.
    """
    pattern = [int(p) for p in pattern]
    min_len = seq_len if min_len is None else min_len
    if not all(FIRST_TOKEN <= p < vocab_size for p in pattern):
        raise ValueError(f"pattern tokens must be content tokens {FIRST_TOKEN}..{vocab_size - 1}, got {pattern}")
    if not 1 <= len(pattern) <= min_len <= seq_len:
        raise ValueError(f"need 1 <= len(pattern) <= min_len <= seq_len, got {len(pattern)}, {min_len}, {seq_len}")
    gen = torch.Generator().manual_seed(seed)
    ids = _random_tokens(n, seq_len, vocab_size, gen)
    lengths = torch.randint(min_len, seq_len + 1, (n,), generator=gen)
    plant = torch.rand(n, generator=gen) < 0.5
    labels = torch.zeros(n, dtype=torch.int64)
    for i in range(n):
        length = int(lengths[i])
        if plant[i]:
            start = int(torch.randint(0, length - len(pattern) + 1, (1,), generator=gen))
            ids[i, start:start + len(pattern)] = torch.tensor(pattern)
        ids[i, length:] = PAD
        labels[i] = int(_contains(ids[i, :length].tolist(), pattern))
    return ids, lengths, labels


def pad_collate(batch: Sequence[tuple[torch.Tensor, Any]],
                pad_value: int = PAD) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """collate_fn for variable-length sequences: [(ids_1d, label), ...] -> (ids (N, T), lengths (N,), labels (N,)).

    Shorter sequences are padded at the end with pad_value up to the longest one (T).
    Use: DataLoader(dataset, batch_size=32, collate_fn=pad_collate).
    """
    sequences = [torch.as_tensor(ids) for ids, _ in batch]
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    padded = pad_sequence(sequences, batch_first=True, padding_value=pad_value)
    labels = torch.as_tensor([int(label) for _, label in batch], dtype=torch.int64)
    return padded, lengths, labels


# ----------------------------------------------------------------------------- torchvision, offline


def _missing_files(folder: Path, names: Sequence[str]) -> list[str]:
    return [name for name in names if not (folder / name).is_file()]


def _not_found(dataset: str, root: str | os.PathLike, folder: Path, missing: list[str], call: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{dataset} is not in root={str(root)!r}: the files {', '.join(missing)} are missing from {folder}.\n"
        f"The course never downloads during lessons. To get the data, run once while online:\n"
        f"    {call}\n"
        f"or copy the folder {folder.relative_to(root)} from a machine that has it into {root}."
    )


def fashion_mnist(root: str | os.PathLike, train: bool = True, transform: Callable | None = None):
    """torchvision's FashionMNIST read from `root` (download=False); FileNotFoundError if missing.

    Items are (PIL image, label) unless `transform` converts them, e.g.
    torchvision.transforms.ToTensor(). Expected files: root/FashionMNIST/raw/ with
    train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte.
    """
    from torchvision.datasets import FashionMNIST

    folder = Path(root) / "FashionMNIST" / "raw"
    # The same names torchvision checks: its resource list without the .gz ending.
    names = [name.removesuffix(".gz") for name, _ in FashionMNIST.resources]
    missing = _missing_files(folder, names)
    if missing:
        raise _not_found("FashionMNIST", root, folder, missing,
                         f"torchvision.datasets.FashionMNIST({str(root)!r}, train=True, download=True)")
    return FashionMNIST(root, train=train, transform=transform, download=False)


def cifar10(root: str | os.PathLike, train: bool = True, transform: Callable | None = None):
    """torchvision's CIFAR10 read from `root` (download=False); FileNotFoundError if missing.

    Items are (PIL image, label) unless `transform` converts them. Expected files:
    root/cifar-10-batches-py/ with data_batch_1 .. data_batch_5, test_batch and batches.meta.
    torchvision also checks their MD5 checksums; a damaged file gives a RuntimeError.
    """
    from torchvision.datasets import CIFAR10

    folder = Path(root) / CIFAR10.base_folder
    names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]
    missing = _missing_files(folder, names)
    if missing:
        raise _not_found("CIFAR-10", root, folder, missing,
                         f"torchvision.datasets.CIFAR10({str(root)!r}, download=True)")
    try:
        return CIFAR10(root, train=train, transform=transform, download=False)
    except RuntimeError as error:  # all files exist, so a checksum failed
        raise RuntimeError(f"CIFAR-10 files in {folder} are damaged or incomplete (MD5 checksum mismatch). "
                           f"Delete the folder and download again (download=True, online).") from error
