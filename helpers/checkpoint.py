"""Checkpoints: save a training run so that it can go on later exactly as if never stopped.

Trainer.save(path) writes one file with the model, optimizer, scheduler and GradScaler states,
the epoch count, the history, every random-number generator's state, the callbacks' states
(e.g. EarlyStopping's count and best weights), and the model's class name and parameter shapes
(to name the differences when it is loaded into another model).

Weights are saved without the "_orig_mod." prefix that torch.compile adds to their names, so
a checkpoint of a compiled model loads into the plain model, and the other way round.

Three rules make this safe:
  - Atomic writes: the file is written under a temporary name in the same folder, flushed to
    disk, then renamed over the old one (os.replace is atomic). A crash or a full disk during
    saving leaves the previous checkpoint intact, never half a file.
  - Safe loads: torch.load(..., weights_only=True) only rebuilds tensors and plain Python
    values, so a checkpoint from somewhere else cannot run code when you load it. That is why
    RNG states are stored as tensors, lists and ints (NumPy arrays are not allowed).
  - Exact resume: the data order and dropout masks come from random numbers. A torch
    DataLoader(shuffle=True) without its own `generator` (and TensorBatchLoader with
    generator=None) draws each epoch's order from torch's global generator, which the
    checkpoint saves and resume() restores. So on the CPU, a run stopped after epoch k and
    resumed gives bit-identical weights and history. A loader with its own torch.Generator
    is not covered: its state is not in the checkpoint.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "CheckpointMismatch",
    "atomic_write",
    "save_checkpoint",
    "load_checkpoint",
    "rng_states",
    "set_rng_states",
    "model_state",
    "load_model_state",
    "model_shapes",
    "check_model_matches",
    "load_weights",
]

# What Trainer.save writes; load_checkpoint(..., required=TRAINER_KEYS) checks they are there.
# Trainer.save also writes "callbacks", optional so that checkpoints from before it still load.
TRAINER_KEYS = ("model_class", "model_shapes", "model", "optimizer", "scheduler", "scaler", "epoch", "history", "rng")

_COMPILED_PREFIX = "_orig_mod."  # torch.compile's wrapper holds the model as `_orig_mod`


class CheckpointMismatch(ValueError):
    """The checkpoint was saved from a model with other parameter names or shapes."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call write(file) on a temporary file next to `path`, then rename it over `path` atomically.

    A crash or a full disk while writing leaves the previous file intact, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target: os.replace is only atomic within one file system.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename makes them "the" file
        os.replace(tmp_name, path)
    except BaseException:  # also KeyboardInterrupt: never leave the temporary file behind
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself survive a power cut (not possible on Windows)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write `state` to `path` atomically (see the module docstring); return the path."""
    return atomic_write(path, lambda file: torch.save(state, file))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a checkpoint safely (weights_only=True); check that it has the `required` keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {str(path)!r} (absolute path: {path.resolve()})")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise RuntimeError(
            f"{str(path)!r} holds objects other than tensors and plain Python values, so the safe "
            f"weights_only=True load refuses it. Only if you trust its source: "
            f"torch.load({str(path)!r}, weights_only=False)\n  ({error})") from None
    except RuntimeError as error:
        raise RuntimeError(f"{str(path)!r} is not a readable checkpoint (truncated or not a torch file?): {error}") \
            from None
    missing = [key for key in required if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f"{str(path)!r} is not a Trainer checkpoint: it has no {', '.join(missing)}. "
                         f"For a bare state_dict use helpers.checkpoint.load_weights(model, path).")
    return state


def rng_states() -> dict[str, Any]:
    """The state of every global random generator, as values that weights_only loading accepts."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    # Apple GPUs draw dropout masks from their own generator. Untested here: the course's CI has no Mac.
    if torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore the generators saved by rng_states()."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = states["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "mps" in states and torch.backends.mps.is_available():  # untested here, as in rng_states()
        torch.mps.set_rng_state(states["mps"])


def _plain_name(name: str) -> str:
    return name.replace(_COMPILED_PREFIX, "")


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """model.state_dict() with the names of the plain model, also for a torch.compile'd one.

    torch.compile(model).state_dict() calls the weight "_orig_mod.0.weight" where the model itself
    says "0.weight": saved as is, it would only load into a compiled model.
    """
    return {_plain_name(name): tensor for name, tensor in model.state_dict().items()}


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Load a state saved by model_state() into `model`, compiled or not; return the model."""
    names = {_plain_name(name): name for name in model.state_dict()}
    model.load_state_dict({names.get(name, name): tensor for name, tensor in state.items()})
    return model


def model_shapes(model: nn.Module) -> dict[str, list[int]]:
    """Name -> shape of every parameter and buffer (the keys of model_state(model))."""
    return _shapes(model_state(model))


def _shapes(state_dict: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {name: list(tensor.shape) for name, tensor in state_dict.items()}


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_model_matches(model: nn.Module, state: dict[str, Any], path: str | os.PathLike = "checkpoint") -> None:
    """Raise CheckpointMismatch naming the missing, extra and differently shaped entries."""
    shapes: dict[str, list[int]] = state.get("model_shapes") or _shapes(state["model"])
    saved = {_plain_name(name): shape for name, shape in shapes.items()}  # older checkpoints kept the prefix
    here = model_shapes(model)
    missing = [name for name in here if name not in saved]
    extra = [name for name in saved if name not in here]
    different = [f"{name} is {tuple(saved[name])} there but {tuple(shape)} here"
                 for name, shape in here.items() if name in saved and list(saved[name]) != shape]
    if not (missing or extra or different):
        return
    saved_class = state.get("model_class", "an unknown model")
    lines = [f"the checkpoint {str(path)!r} was saved from another model "
             f"({saved_class}; this model is {type(model).__name__}):"]
    if missing:
        lines.append(f"  missing in the checkpoint: {_names(missing)}")
    if extra:
        lines.append(f"  not in this model: {_names(extra)}")
    if different:
        lines.append(f"  different shapes: {_names(different)}")
    lines.append("  Build the model with the same class and sizes as when the checkpoint was saved.")
    raise CheckpointMismatch("\n".join(lines))


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the weights from a Trainer checkpoint (or a bare saved state_dict) into `model`."""
    state = load_checkpoint(path)
    if "model" not in state:  # torch.save(model.state_dict(), path) saves the state_dict alone
        state = {"model": state}
    check_model_matches(model, state, path)
    return load_model_state(model, state["model"])
