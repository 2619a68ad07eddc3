"""Small tools of lesson 09: what autograd keeps for the backward pass, and a slow dataset.

They live in a module (not in the notebook) so that DataLoader workers started with "spawn"
(macOS, Windows) can import the dataset class.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["saved_bytes", "SlowDataset"]


def saved_bytes(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Run `fn()` and return the bytes of the tensors autograd saves for the backward pass
    (each storage counted once), leaving out those of `exclude` (a model's parameters: they are
    in memory anyway). That is the activation memory a training step holds at its peak."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip and t.device.type != "meta":
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


class SlowDataset(Dataset):
    """`n` random samples of `features` numbers with labels; each item takes `delay` seconds to
    "load", as a file read and decoded would."""

    def __init__(self, n: int = 64, features: int = 32, delay: float = 0.002, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, features, generator=gen)
        self.y = torch.randint(0, 4, (n,), generator=gen)
        self.delay = delay

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(self.delay)
        return self.x[index], self.y[index]
