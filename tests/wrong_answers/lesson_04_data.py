"""Typical wrong answers for assignment 04 (data); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

_ARRAY_DATASET = """
class ArrayDataset(Dataset):
    def __init__(self, features, labels, transform=None):
{init}
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        x = self.features[index]
{apply}
        return x, self.labels[index]
"""
_CHECK = """        if len(features) != len(labels):
            raise ValueError(f"{len(features)} != {len(labels)}")
"""
_APPLY = """        if self.transform is not None:
            x = self.transform(x)"""
_GOOD_FEATURES = "        self.features = torch.as_tensor(np.asarray(features), dtype=torch.float32)\n"
_GOOD_LABELS = "        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)"


def _array_dataset(check=_CHECK, features=_GOOD_FEATURES, labels=_GOOD_LABELS, apply=_APPLY):
    return _ARRAY_DATASET.format(init=check + features + labels, apply=apply)


_FOLDER_DATASET = """
class FolderDataset(Dataset):
    def __init__(self, root, transform=None):
        root = Path(root)
        self.classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
        self.samples = [(path, label) for label, name in enumerate(self.classes)
                        for path in sorted((root / name).glob("{pattern}"))]
        self.transform = transform
{extra_init}
    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
{get}
        if self.transform is not None:
            image = self.transform(image)
        return image, label
"""
_GOOD_GET = """        path, label = self.samples[index]
        with Image.open(path) as file:
            image = file.convert("L")"""

WRONG_ANSWERS = [
    WrongAnswer("array_dataset", _array_dataset(labels="        self.labels = torch.FloatTensor(np.asarray(labels))"),
                ("test_array_dataset",), "labels stored as float32 (FloatTensor(y), as a tutorial you may find online does)"),
    WrongAnswer("array_dataset", _array_dataset(features="        self.features = torch.as_tensor(np.asarray(features))\n"),
                ("test_array_dataset",), "features not converted: NumPy float64 stays float64"),
    WrongAnswer("array_dataset", _array_dataset(check=""),
                ("test_array_dataset",), "no ValueError for mismatched lengths"),
    WrongAnswer("array_dataset", _array_dataset(apply="        pass"),
                ("test_array_dataset",), "transform ignored"),
    WrongAnswer("array_dataset", _array_dataset(
        features="        self.features = torch.from_numpy(features).float()\n",
        labels="        self.labels = torch.from_numpy(np.asarray(labels)).long()"),
        ("test_array_dataset",), "torch.from_numpy: fails when the features are a tensor"),
    WrongAnswer("array_dataset", _ARRAY_DATASET.format(
        init=_CHECK + "        self.features = features\n" + _GOOD_LABELS,
        apply=_APPLY + """
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)"""),
        ("test_array_dataset",), "transform applied to the raw row, before the float32 conversion"),
    WrongAnswer("pad_collate", """
def pad_collate(batch):
    padded = torch.zeros(len(batch), 10, dtype=torch.int64)
    for i, (sequence, _) in enumerate(batch):
        padded[i, :len(sequence)] = sequence
    lengths = torch.tensor([len(s) for s, _ in batch])
    return padded, lengths, torch.tensor([label for _, label in batch])
""", ("test_pad_collate",), "pads to a fixed length instead of the batch maximum"),
    WrongAnswer("pad_collate", """
def pad_collate(batch):
    padded = pad_sequence([s for s, _ in batch], batch_first=True)
    lengths = torch.tensor([len(row) for row in padded])
    return padded, lengths, torch.tensor([label for _, label in batch])
""", ("test_pad_collate",), "lengths computed after padding"),
    WrongAnswer("pad_collate", """
def pad_collate(batch):
    padded = pad_sequence([s for s, _ in batch], batch_first=True)
    lengths = torch.tensor([len(s) for s, _ in batch])
    return padded, lengths, torch.tensor([label for _, label in batch], dtype=torch.float32)
""", ("test_pad_collate",), "labels returned as float"),
    WrongAnswer("pad_collate", """
def pad_collate(batch):
    batch = sorted(batch, key=lambda pair: len(pair[0]), reverse=True)
    padded = pad_sequence([s for s, _ in batch], batch_first=True)
    lengths = torch.tensor([len(s) for s, _ in batch])
    return padded, lengths, torch.tensor([label for _, label in batch])
""", ("test_pad_collate",), "sorts the batch by length"),
    WrongAnswer("split_indices", """
def split_indices(n, fractions, seed):
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError("bad fractions")
    sizes = [int(f * n) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    torch.manual_seed(seed)
    return list(torch.randperm(n).split(sizes))
""", ("test_split_indices",), "torch.manual_seed changes the global random state"),
    WrongAnswer("split_indices", """
def split_indices(n, fractions, seed):
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError("bad fractions")
    sizes = [round(f * n) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    return list(torch.randperm(n, generator=torch.Generator().manual_seed(seed)).split(sizes))
""", ("test_split_indices",), "rounds to nearest instead of down"),
    WrongAnswer("split_indices", """
def split_indices(n, fractions, seed):
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError("bad fractions")
    sizes = [int(f * n) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    gen = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=gen)[:size] for size in sizes]
""", ("test_split_indices",), "parts drawn independently: they overlap"),
    WrongAnswer("split_indices", """
def split_indices(n, fractions, seed):
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError("bad fractions")
    sizes = [int(f * n) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    return list(torch.arange(n).split(sizes))
""", ("test_split_indices",), "not shuffled (and ignores the seed)"),
    WrongAnswer("split_indices", """
def split_indices(n, fractions, seed):
    if abs(sum(fractions) - 1) > 1e-6:
        raise ValueError("fractions must add up to 1")
    sizes = [int(f * n) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    return list(torch.randperm(n, generator=torch.Generator().manual_seed(seed)).split(sizes))
""", ("test_split_indices",), "negative fractions not rejected: torch's split_with_sizes raises a RuntimeError"),
    WrongAnswer("split_indices", """
def split_indices(n, fractions, seed):
    if min(fractions) < 0 or sum(fractions) != 1:
        raise ValueError("bad fractions")
    sizes = [int(f * n) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    return list(torch.randperm(n, generator=torch.Generator().manual_seed(seed)).split(sizes))
""", ("test_split_indices",), "sum of fractions compared with 1 exactly: [0.7, 0.2, 0.1] is rejected"),
    WrongAnswer("folder_dataset", _FOLDER_DATASET.format(
        pattern="*.png", extra_init="", get=_GOOD_GET.replace('convert("L")', 'convert("RGB")')),
        ("test_folder_dataset",), "images converted to RGB, not greyscale"),
    WrongAnswer("folder_dataset", _FOLDER_DATASET.format(
        pattern="*", extra_init="", get=_GOOD_GET),
        ("test_folder_dataset",), "reads every file in the class folders, not only .png"),
    WrongAnswer("folder_dataset", _FOLDER_DATASET.format(
        pattern="*.png",
        extra_init="        self.images = [Image.open(path).convert('L') for path, _ in self.samples]\n",
        get="        image, label = self.images[index], self.samples[index][1]"),
        ("test_folder_dataset",), "loads all images in __init__ (eager, not lazy)"),
    WrongAnswer("folder_dataset", """
class FolderDataset(Dataset):
    def __init__(self, root, transform=None):
        root = Path(root)
        self.classes = [entry.name for entry in root.iterdir()]
        self.samples = [(path, label) for label, name in enumerate(self.classes)
                        for path in sorted((root / name).glob("*.png"))]
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        with Image.open(path) as file:
            image = file.convert("L")
        if self.transform is not None:
            image = self.transform(image)
        return image, label
""", ("test_folder_dataset",), "classes not sorted, and files in root counted as classes"),
    WrongAnswer("folder_dataset", _FOLDER_DATASET.format(
        pattern="*.png", extra_init="",
        get=_GOOD_GET + "\n        label = torch.tensor(label)"),
        ("test_folder_dataset",), "label returned as a tensor, not a Python int"),
    WrongAnswer("q1", 'q1_answer = "c"', ("test_q1",), "the global seed depends on what ran in between", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "a"', ("test_q2",), "workers do work on macOS", hidden_only=QUIZ_KEY),
]
