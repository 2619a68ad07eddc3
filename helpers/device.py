"""Device choice and reproducibility: the two lines every experiment starts with."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(preferred: str = "auto") -> torch.device:
    """Return `preferred` as a device, or with "auto" the best available: cuda, then mps, then cpu."""
    if preferred != "auto":
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {preferred!r} requested but CUDA is not available; use 'cpu' or 'auto'")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {preferred!r} requested but MPS is not available; use 'cpu' or 'auto'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a torch.Generator seeded the same.

    With deterministic=True, also ask PyTorch for deterministic kernels (slower on GPU;
    errors on operations that have no deterministic version).

    PYTHONHASHSEED (the order of sets of strings) is read only when a Python process starts:
    setting it here cannot change this interpreter, only the processes it starts later, such as
    DataLoader workers on macOS and Windows. For this process, set it before starting Python.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)  # for child processes only: see the docstring
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)
