"""Callbacks: code that runs at fixed points of Trainer.fit, without editing the loop.

A callback subclasses `Callback` and overrides only the events it needs. The Trainer has one
way to reach them, `Trainer._emit(event, ...)`, which calls that method on every callback in
the order of the `callbacks` list (only on_resume, which hands each callback its own saved
state, is called by Trainer.resume() directly):

    on_fit_start(trainer)                  before the first epoch of fit()
    on_epoch_start(trainer, epoch)         epochs count from 1 (and go on counting after resume)
    on_before_optimizer_step(trainer)      gradients summed (and unscaled) but not yet clipped: log their norm here
    on_batch_end(trainer, batch, loss)     after each training batch; `loss` is a tensor (.item() syncs a GPU)
    on_epoch_end(trainer, logs)            after training, validation, the scheduler and the history update
    on_fit_end(trainer)                    after the last epoch, an early stop, or Ctrl-C
    on_exception(trainer, exception)       instead of on_fit_end when fit() fails, before the error propagates
    on_resume(trainer, state)              in Trainer.resume(), after the run is restored

A callback acts only through the trainer's public attributes: it reads `trainer.history` or
`logs`, sets `trainer.stop_training = True` to stop after the current epoch, or loads weights
into `trainer.model`.

Checkpoints hold each callback's `state_dict()`, and `Trainer.resume()` hands it back through
`on_resume`, so a resumed run goes on exactly: BestModel does not take the first epoch after a
resume for a new best, and EarlyStopping goes on counting. Best values and counts are rebuilt
from the restored history (always in step with the checkpoint, whatever the callbacks' order);
the state adds what the history cannot tell, such as the best epoch's weights.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch
from torch import nn

from helpers import checkpoint

if TYPE_CHECKING:  # only for type hints: trainer.py imports this module
    from helpers.trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "BestModel", "SaveCheckpoint", "CSVLogger"]


class Callback:
    """Base class: every event does nothing until a subclass overrides it."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once when fit() starts."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Called before epoch `epoch` (counting from 1) trains."""

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        """Called before each optimizer step, with the step's gradients in the parameters' .grad.

        They are summed over the accumulated batches, unscaled (fp16), and not yet clipped.
        """

    def on_batch_end(self, trainer: Trainer, batch: int, loss: torch.Tensor) -> None:
        """Called after training batch `batch` (counting from 0 in each epoch)."""

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        """Called after each epoch with its logs (the values just added to trainer.history)."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once when fit() ends normally or by Ctrl-C (not after another exception)."""

    def on_exception(self, trainer: Trainer, exception: BaseException) -> None:
        """Called when fit() fails, with the exception, just before it propagates (Ctrl-C is no failure)."""

    def state_dict(self) -> dict[str, Any]:
        """What this callback needs to go on after a resume; Trainer.save() stores it.

        Tensors and plain Python values only: checkpoints are loaded with weights_only=True.
        """
        return {}

    def on_resume(self, trainer: Trainer, state: dict[str, Any] | None) -> None:
        """Called by Trainer.resume() once the run is restored, with what state_dict() returned
        when the checkpoint was saved (None if the checkpoint holds nothing for this callback)."""


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
    """A snapshot of the weights, on the CPU so it costs no GPU memory (plain names, even if compiled)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in checkpoint.model_state(model).items()}


def _replay(history: dict[str, list[float]], monitor: str, mode: str, min_delta: float = 0.0,
            after: int = 0) -> tuple[float, int | None, int]:
    """(best, best epoch, epochs since it) over the history's epochs after `after`, as live tracking finds them."""
    best, best_epoch, wait = (math.inf if mode == "min" else -math.inf), None, 0
    for epoch, value in zip(history.get("epoch", []), history.get(monitor, [])):
        if epoch <= after:
            continue
        if _improved(value, best, mode, min_delta):
            best, best_epoch, wait = value, int(epoch), 0
        else:
            wait += 1
    return best, best_epoch, wait


def _best_weights(trainer: Trainer, best_epoch: int | None, state: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The best epoch's weights after a resume: the saved copy, or the restored model's if they are the best.

    The saved copy misses the last epoch when a SaveCheckpoint earlier in the callbacks list
    saved before this callback heard of that epoch; the checkpoint's model has those weights.
    """
    if best_epoch is not None and state.get("best_epoch") == best_epoch and state.get("best_state") is not None:
        return state["best_state"]
    return _copy_state(trainer.model) if best_epoch is not None and best_epoch == trainer.epoch else None


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved for `patience` epochs in a row.

    "Improved" means by more than `min_delta` (down for mode="min", up for mode="max").
    With restore_best=True the model gets the weights of its best epoch back when fit() ends
    (also after Ctrl-C), so evaluating it afterwards evaluates the best model, not the last one.
    Counting starts afresh at every fit() call, except the first one after Trainer.resume(),
    which goes on with the count of the fit() that was saved. Checkpoints then also hold a copy
    of the best weights (with restore_best=True).
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 3, min_delta: float = 0.0,
                 restore_best: bool = True) -> None:
        _check_mode(mode)
        if patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {patience}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = min_delta, restore_best
        self._reset(fit_start=0)
        self._resumed = False  # set by on_resume: the next fit() goes on counting

    def on_fit_start(self, trainer: Trainer) -> None:
        if self._resumed:
            self._resumed = False
        else:
            self._reset(fit_start=trainer.epoch)

    def _reset(self, fit_start: int) -> None:
        self.fit_start = fit_start  # epochs done before this fit(): only later ones count
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
            checkpoint.load_model_state(trainer.model, self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"fit_start": self.fit_start, "best_epoch": self.best_epoch, "best_state": self.best_state}

    def on_resume(self, trainer: Trainer, state: dict[str, Any] | None) -> None:
        if state is None:  # the saved run had no EarlyStopping: count afresh
            return
        self._reset(fit_start=state["fit_start"])
        self.best, self.best_epoch, self.wait = _replay(trainer.history, self.monitor, self.mode, self.min_delta,
                                                        after=self.fit_start)
        if self.restore_best:
            self.best_state = _best_weights(trainer, self.best_epoch, state)
        self._resumed = True


class BestModel(Callback):
    """Keep a copy of the weights from the epoch with the best `monitor` value.

    The copy lives in memory (`best_state`, on the CPU); `restore(model)` loads it. With `path`,
    every new best is also saved there as a full checkpoint (Trainer.save), so
    `helpers.checkpoint.load_weights(model, path)` or `Trainer.resume(path)` can use it later.
    The best is kept across fit() calls on the same trainer, and across Trainer.resume() (the
    best value comes from the restored history; checkpoints hold a copy of the best weights).
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

    def state_dict(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "best_state": self.best_state}

    def on_resume(self, trainer: Trainer, state: dict[str, Any] | None) -> None:
        # Rebuilt from the history even without a saved state, so no worse epoch overwrites `path`.
        self.best, self.best_epoch, _ = _replay(trainer.history, self.monitor, self.mode)
        self.best_state = _best_weights(trainer, self.best_epoch, state or {})

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best weights into `model` (e.g. trainer.model) and return it."""
        if self.best_state is None:
            if self.best_epoch is not None:
                where = f"load them from {str(self.path)!r} with helpers.checkpoint.load_weights" if self.path \
                    else "pass BestModel(path=...) to keep them on disk"
                raise RuntimeError(f"BestModel knows its best epoch ({self.best_epoch}) from the resumed history, "
                                   f"but the checkpoint had no copy of its weights: {where}")
            raise RuntimeError(f"BestModel has no weights yet: no epoch has reported {self.monitor!r}")
        return checkpoint.load_model_state(model, self.best_state)


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


class CSVLogger(Callback):
    """Write trainer.history to the CSV file `path` after every epoch: one row per epoch, one column per key.

    The whole file is rewritten each time, atomically (written, then renamed over the old one):
    a crash never leaves half a row, a column that appears later (val_loss from a later fit())
    gets its header, and after Trainer.resume() the file holds the whole run again.
    pandas.read_csv(path) reads it back.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(trainer.history)
        writer.writerows(zip(*trainer.history.values()))  # floats as repr(): no digits lost
        data = text.getvalue().encode()
        def write(file: IO[bytes]) -> None:
            file.write(data)

        checkpoint.atomic_write(self.path, write)
