"""Tests for helpers.data: the digits split, DigitsDataset, TensorBatchLoader, the synthetic
sequence tasks, pad_collate, and the offline torchvision wrappers (on tiny files written here
in torchvision's own formats)."""

from __future__ import annotations

import os
import pickle
import struct
from collections import Counter

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import ToTensor

from helpers.data import (
    BOS, PAD, DigitsDataset, TensorBatchLoader, cifar10, digits_tensors, fashion_mnist, pad_collate, pattern_task,
    reverse_task, shift_right, sort_task,
)


# ----------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return digits_tensors(seed=0)


def test_digits_shapes_dtypes_and_sizes(digits):
    assert list(digits) == ["train", "val", "test"]
    sizes = {name: len(y) for name, (x, y) in digits.items()}
    assert sizes == {"train": 1257, "val": 270, "test": 270}  # the sizes the docstring promises
    for x, y in digits.values():
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8) and len(x) == len(y)
        assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10))
        assert x.min() == 0 and x.max() == 1


def test_digits_splits_are_disjoint_and_cover_the_data(digits):
    from sklearn.datasets import load_digits

    raw = load_digits()
    everything = Counter((img.tobytes(), int(label)) for img, label in zip(raw.images / 16.0, raw.target))
    ours = Counter((img.numpy().astype(np.float64).tobytes(), int(label))
                   for x, y in digits.values() for img, label in zip(x[:, 0], y))
    assert ours == everything  # every sample exactly once over the three splits


def test_digits_split_is_stratified(digits):
    whole = torch.cat([y for _, y in digits.values()]).bincount()
    for name in ("val", "test"):
        counts = digits[name][1].bincount()
        expected = whole * 270 / 1797
        assert (counts - expected).abs().max() <= 1, name


def test_digits_split_depends_only_on_the_seed(digits):
    again = digits_tensors(seed=0)
    other = digits_tensors(seed=1)
    for name in digits:
        assert torch.equal(digits[name][0], again[name][0]) and torch.equal(digits[name][1], again[name][1])
    assert not torch.equal(digits["test"][0], other["test"][0])
    sizes = {name: len(y) for name, (_, y) in digits_tensors(val_fraction=0.1, test_fraction=0.2).items()}
    assert sizes == {"train": 1258, "val": 180, "test": 359}
    with pytest.raises(ValueError):
        digits_tensors(val_fraction=0.5, test_fraction=0.5)


def test_digits_dataset_matches_the_tensors(digits):
    dataset = DigitsDataset("val")
    assert len(dataset) == 270
    image, label = dataset[5]
    assert torch.equal(image, digits["val"][0][5]) and label == digits["val"][1][5]
    flat_image, _ = DigitsDataset("test", flatten=True)[0]
    assert flat_image.shape == (64,)
    doubled, _ = DigitsDataset("train", transform=lambda x: 2 * x)[3]
    assert torch.equal(doubled, 2 * digits["train"][0][3])
    with pytest.raises(ValueError, match="split"):
        DigitsDataset("validation")


# ----------------------------------------------------------------------------- TensorBatchLoader


def make_data(n=10):
    return torch.arange(n * 2.0).view(n, 2), torch.arange(n)


def test_loader_without_shuffle_keeps_order_and_sizes():
    x, y = make_data(10)
    loader = TensorBatchLoader(x, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and loader.dataset_size == 10
    assert [len(yb) for _, yb in batches] == [4, 4, 2]  # the last batch is the rest
    assert torch.equal(torch.cat([yb for _, yb in batches]), y)
    assert all(isinstance(b, tuple) and len(b) == 2 for b in batches)
    # The same batches as DataLoader over a TensorDataset.
    for (xb, yb), (xd, yd) in zip(batches, DataLoader(TensorDataset(x, y), batch_size=4), strict=True):
        assert torch.equal(xb, xd) and torch.equal(yb, yd)


def test_loader_drop_last():
    x, y = make_data(10)
    loader = TensorBatchLoader(x, y, batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(yb) for _, yb in loader] == [4, 4]
    assert len(TensorBatchLoader(x, y, batch_size=5, drop_last=True)) == 2  # exact fit: nothing dropped
    assert len(TensorBatchLoader(x, batch_size=11, drop_last=True)) == 0


def test_loader_shuffle_sees_every_sample_once_and_keeps_pairs():
    x, y = make_data(23)
    loader = TensorBatchLoader(x, y, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(0))
    first, second = [torch.cat([yb for _, yb in loader]) for _ in range(2)]
    for epoch in (first, second):
        assert sorted(epoch.tolist()) == list(range(23))
    assert not torch.equal(first, second)  # a new order every epoch
    assert not torch.equal(first, y)
    for xb, yb in loader:  # rows of x stay with their labels
        assert torch.equal(xb, x[yb])


def test_loader_shuffle_is_reproducible_with_a_generator():
    x, y = make_data(50)

    def epochs(seed):
        loader = TensorBatchLoader(x, y, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return [torch.cat([yb for _, yb in loader]) for _ in range(3)]

    assert all(torch.equal(a, b) for a, b in zip(epochs(1), epochs(1)))
    assert not torch.equal(epochs(1)[0], epochs(2)[0])
    # Without a generator, torch's global seed decides.
    torch.manual_seed(3)
    a = torch.cat([yb for _, yb in TensorBatchLoader(x, y, batch_size=8, shuffle=True)])
    torch.manual_seed(3)
    b = torch.cat([yb for _, yb in TensorBatchLoader(x, y, batch_size=8, shuffle=True)])
    assert torch.equal(a, b)


def test_loader_errors():
    x, y = make_data(10)
    with pytest.raises(ValueError, match="same first dimension"):
        TensorBatchLoader(x, y[:9], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatchLoader(x, y, batch_size=0)
    with pytest.raises(ValueError, match="at least one"):
        TensorBatchLoader(batch_size=2)


# ----------------------------------------------------------------------------- sequence tasks


def test_reverse_and_sort_tasks():
    src, tgt = reverse_task(100, seq_len=6, vocab_size=9, seed=0)
    assert src.shape == tgt.shape == (100, 6) and src.dtype == torch.int64
    assert src.min() >= 3 and src.max() <= 8  # content tokens only: 0-2 are reserved
    assert torch.equal(tgt, src.flip(1))
    again, _ = reverse_task(100, seq_len=6, vocab_size=9, seed=0)
    assert torch.equal(src, again) and not torch.equal(src, reverse_task(100, 6, 9, seed=1)[0])
    src, tgt = sort_task(50, seq_len=7, vocab_size=12, seed=0)
    assert (tgt[:, 1:] >= tgt[:, :-1]).all()
    assert all(sorted(s) == t for s, t in zip(src.tolist(), tgt.tolist()))
    with pytest.raises(ValueError, match="vocab_size"):
        reverse_task(3, 4, vocab_size=3)


def test_shift_right():
    tgt = torch.tensor([[5, 6, 7], [8, 9, 10]])
    assert torch.equal(shift_right(tgt), torch.tensor([[BOS, 5, 6], [BOS, 8, 9]]))


def test_pattern_task_labels_are_correct():
    pattern = [3, 4, 5]
    ids, lengths, labels = pattern_task(300, seq_len=12, pattern=pattern, seed=0, vocab_size=7, min_len=5)
    assert ids.shape == (300, 12) and lengths.shape == labels.shape == (300,)
    assert lengths.min() >= 5 and lengths.max() <= 12 and len(set(lengths.tolist())) > 1
    for row, length, label in zip(ids.tolist(), lengths.tolist(), labels.tolist()):
        assert all(t == PAD for t in row[length:]) and all(3 <= t < 7 for t in row[:length])
        text = " " + " ".join(map(str, row[:length])) + " "
        assert label == int(" 3 4 5 " in text)  # an independent check: substring search
    assert 0.35 < labels.float().mean() < 0.65  # roughly balanced
    again = pattern_task(300, seq_len=12, pattern=pattern, seed=0, vocab_size=7, min_len=5)
    assert all(torch.equal(a, b) for a, b in zip((ids, lengths, labels), again))
    full, full_lengths, _ = pattern_task(10, seq_len=8, pattern=[3, 3])
    assert (full_lengths == 8).all() and (full != PAD).all()  # default: all full length


def test_pattern_task_errors():
    with pytest.raises(ValueError, match="content tokens"):
        pattern_task(5, 8, pattern=[1, 3])
    with pytest.raises(ValueError, match="min_len"):
        pattern_task(5, 8, pattern=[3, 4, 5], min_len=2)


def test_pad_collate():
    batch = [(torch.tensor([5, 6, 7]), 1), (torch.tensor([8]), 0), (torch.tensor([9, 10]), torch.tensor(1))]
    ids, lengths, labels = pad_collate(batch)
    assert torch.equal(ids, torch.tensor([[5, 6, 7], [8, 0, 0], [9, 10, 0]]))
    assert torch.equal(lengths, torch.tensor([3, 1, 2])) and torch.equal(labels, torch.tensor([1, 0, 1]))
    assert pad_collate(batch, pad_value=-1)[0][1].tolist() == [8, -1, -1]
    loader = DataLoader(batch, batch_size=2, collate_fn=pad_collate)
    first_ids, first_lengths, _ = next(iter(loader))
    assert first_ids.shape == (2, 3) and first_lengths.tolist() == [3, 1]


# ----------------------------------------------------------------------------- torchvision, offline


def write_idx(path, array: np.ndarray) -> None:
    """An IDX file as in the MNIST distribution: magic 0x0000080N (uint8, N dims), big-endian sizes, bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist(root, n_train=5, n_test=3):
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
        data[split] = images, labels
    return data


def test_fashion_mnist_reads_idx_files(tmp_path):
    written = write_fashion_mnist(tmp_path)
    for train, split in ((True, "train"), (False, "t10k")):
        dataset = fashion_mnist(tmp_path, train=train)
        images, labels = written[split]
        assert len(dataset) == len(labels)
        assert torch.equal(dataset.data, torch.from_numpy(images))
        assert dataset.targets.tolist() == labels.tolist()
        image, label = dataset[1]  # torchvision's default item: a PIL image and an int
        assert np.array_equal(np.asarray(image), images[1]) and label == labels[1]
    tensor_image, _ = fashion_mnist(str(tmp_path), transform=ToTensor())[0]
    assert tensor_image.shape == (1, 28, 28)
    assert torch.allclose(tensor_image[0], torch.from_numpy(written["train"][0][0]).float() / 255)


def test_fashion_mnist_missing_files_say_what_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        fashion_mnist(tmp_path / "data")
    message = str(error.value)
    assert str(tmp_path / "data") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "download=True" in message
    write_fashion_mnist(tmp_path)
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as error:
        fashion_mnist(tmp_path)
    assert "train-images" not in str(error.value)  # only the missing file is named


def write_cifar10(root, n_per_batch=3):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        # The CIFAR-10 python format: each row is 1024 red, then 1024 green, then 1024 blue bytes.
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f)
        written[name] = data, labels
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": n_per_batch, "num_vis": 3072}, f)
    return written


@pytest.fixture
def skip_cifar_checksums(monkeypatch):
    # torchvision checks each CIFAR file's MD5 against the real files', which our tiny files
    # cannot match. For this test only, check existence instead; all the loading code is real.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def test_cifar10_reads_python_batches(tmp_path, skip_cifar_checksums):
    written = write_cifar10(tmp_path)
    train = cifar10(tmp_path, train=True)
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert len(train) == 15 and train.data.shape == (15, 32, 32, 3)
    # torchvision turns channel-planar rows into height x width x channel images.
    assert np.array_equal(train.data, expected.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert train.targets == sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert train.classes[3] == "cat"
    test = cifar10(tmp_path, train=False, transform=ToTensor())
    image, label = test[2]
    data, labels = written["test_batch"]
    assert label == labels[2]
    assert torch.allclose(image, torch.from_numpy(data[2]).view(3, 32, 32).float() / 255)


def test_cifar10_wrong_checksums_are_reported(tmp_path):
    write_cifar10(tmp_path)  # files present, but not the real ones: the MD5 check fails
    with pytest.raises(RuntimeError, match="damaged"):
        cifar10(tmp_path)


def test_cifar10_missing_files_say_what_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        cifar10(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "cifar-10-batches-py" in message
    assert "data_batch_1" in message and "test_batch" in message and "batches.meta" in message
    assert "download=True" in message
