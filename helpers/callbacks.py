"""Callbacks: code that runs at fixed points of Trainer.fit, without editing the loop.

A callback subclasses `Callback` and overrides only the events it needs. The Trainer has one
way to reach them, `Trainer._emit(event, ...)`, which calls that method on every callback in
the order of the `callbacks` list:

    on_fit_start(trainer)                  before the first epoch of fit()
    on_epoch_start(trainer, epoch)         epochs count from 1 (and go on counting after resume)
    on_batch_end(trainer, batch, loss)     after each training batch; `loss` is a tensor (.item() syncs a GPU)
    on_epoch_end(trainer, logs)            after training, validation, the scheduler and the history update
    on_fit_end(trainer)                    after the last epoch, or after an early stop

A callback acts only through the trainer's public attributes: it reads `trainer.history` or
`logs`, sets `trainer.stop_training = True` to stop after the current epoch, or loads weights
into `trainer.model`. Callback state (best value, patience counter) is not in checkpoints.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # only for type hints: trainer.py imports this module
    from helpers.trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "BestModel", "SaveCheckpoint"]


class Callback:
    """Base class: every event does nothing until a subclass overrides it."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once when fit() starts."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Called before epoch `epoch` (counting from 1) trains."""

    def on_batch_end(self, trainer: Trainer, batch: int, loss: torch.Tensor) -> None:
        """Called after training batch `batch` (counting from 0 in each epoch)."""

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        """Called after each epoch with its logs (the values just added to trainer.history)."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once when fit() ends normally (not after an exception)."""


def _check_mode(mode: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' (for losses) or 'max' (for accuracy and the like), got {mode!r}")


def _monitored(logs: dict[str, float], monitor: str, who: str) -> float:
    """logs[monitor], or an error that lists what can be monitored."""
    if monitor not in logs:
        hint = " (did you pass val_loader to fit()?)" if monitor.startswith("val_") else ""
        raise ValueError(f"{who} monitors {monitor!r}, but the epoch logs only have: {', '.join(logs)}{hint}")
    return logs[monitor]


def _improved(value: float, best: float, mode: str, min_delta: float = 0.0) -> bool:
    """True when `value` beats `best` by more than min_delta; NaN never improves."""
    if math.isnan(value):
        return False
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A snapshot of the weights, on the CPU so it costs no GPU memory."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved for `patience` epochs in a row.

    "Improved" means by more than `min_delta` (down for mode="min", up for mode="max").
    With restore_best=True the model gets the weights of its best epoch back when fit() ends,
    so evaluating it afterwards evaluates the best model, not the last one.
    Counting starts afresh at every fit() call.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 3, min_delta: float = 0.0,
                 restore_best: bool = True) -> None:
        _check_mode(mode)
        if patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {patience}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = min_delta, restore_best
        self._reset()

    def on_fit_start(self, trainer: Trainer) -> None:
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.wait = 0  # epochs since the last improvement
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, int(logs["epoch"]), 0
            if self.restore_best:
                self.best_state = _copy_state(trainer.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(logs["epoch"])
            trainer.stop_training = True

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)


class BestModel(Callback):
    """Keep a copy of the weights from the epoch with the best `monitor` value.

    The copy lives in memory (`best_state`, on the CPU); `restore(model)` loads it. With `path`,
    every new best is also saved there as a full checkpoint (Trainer.save), so
    `helpers.checkpoint.load_weights(model, path)` or `Trainer.resume(path)` can use it later.
    The best is kept across fit() calls on the same trainer.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", path: str | Path | None = None) -> None:
        _check_mode(mode)
        self.monitor, self.mode, self.path = monitor, mode, path
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "BestModel")
        if _improved(value, self.best, self.mode):
            self.best, self.best_epoch = value, int(logs["epoch"])
            self.best_state = _copy_state(trainer.model)
            if self.path is not None:
                trainer.save(self.path)

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best weights into `model` (e.g. trainer.model) and return it."""
        if self.best_state is None:
            raise RuntimeError(f"BestModel has no weights yet: no epoch has reported {self.monitor!r}")
        model.load_state_dict(self.best_state)
        return model


class SaveCheckpoint(Callback):
    """Save the whole run (Trainer.save) to `path` after every `every` epochs.

    After a crash, `Trainer.resume(path)` continues from the last saved epoch exactly.
    The file is replaced atomically, so a crash during saving keeps the previous one.
    """

    def __init__(self, path: str | Path, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 epoch, got {every}")
        self.path, self.every = path, every

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if trainer.epoch % self.every == 0:
            trainer.save(self.path)
