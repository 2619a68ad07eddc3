"""Trainer: the training loop from the lesson, written once, with the extras real runs need.

    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                      metrics={"accuracy": accuracy})
    history = trainer.fit(train_loader, val_loader, epochs=5)   # 5 more epochs
    trainer.fit(train_loader, val_loader, max_epochs=20)         # or: on until epoch 20 in all
    trainer.plot_history()

Every training batch runs the loop you wrote by hand (forward, loss, backward, step, zero_grad).
Around it the Trainer adds:
  - metrics over the whole epoch: a function's batch values are averaged, each weighted by the
    batch's size; a metric object (update/compute/reset, as in torchmetrics) sees every batch
    and computes the epoch's value itself (right for F1, AUROC, or tokens with padding),
  - a learning-rate scheduler, stepped per epoch or per batch,
  - mixed precision: amp="bf16" (CPU or GPU), amp="fp16" (CUDA, with a GradScaler),
  - gradient accumulation and clipping,
  - callbacks (helpers.callbacks): early stopping, best-model keeping, checkpoints, CSV logs,
  - save() / resume() of the whole run (helpers.checkpoint), bit-identical on the CPU,
  - Ctrl-C ends fit() cleanly: on_fit_end callbacks run (EarlyStopping restores the best weights),
  - readable errors for the usual mistakes (NaN loss, silently broadcast shapes, empty loader).

Speed: the loop never calls .item() per batch, which on a GPU waits until the GPU has finished.
It keeps each batch's loss as a tensor and reads the new ones once a second (`sync_interval`),
for the progress bar and to stop at a NaN loss, and all of them at the end of the epoch.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeGuard, cast

import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm.auto import tqdm  # a widget in JupyterLab, a text bar (on stderr) elsewhere

from helpers import checkpoint
from helpers.callbacks import Callback
from helpers.device import pick_device

__all__ = ["Trainer", "accuracy", "NonFiniteLossError", "MetricObject"]


class MetricObject(Protocol):
    """A metric that sees every batch before it gives the epoch's value (torchmetrics' protocol).

    Needed when the epoch's value is not a mean of batch values: F1, precision, AUROC, or a
    per-token accuracy whose batches hold different numbers of padding tokens.
    """

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None: ...
    def compute(self) -> float | torch.Tensor: ...
    def reset(self) -> None: ...


# A metric function maps (outputs, targets) of one batch to the batch's mean value: a float, or
# a 0-d tensor (better: no GPU sync). Averages over samples, like accuracy or MAE, add up
# correctly when weighted by batch size; anything else needs a MetricObject.
Metric = Callable[[torch.Tensor, torch.Tensor], "float | torch.Tensor"] | MetricObject

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of correct predictions in a batch, as a 0-d tensor.

    outputs (N, C, ...) of class scores: the prediction is the argmax over dim 1.
    outputs (N,) or (N, 1) of a binary classifier's logits: the prediction is 1 where the logit is > 0.
    """
    if outputs.ndim >= 2 and outputs.shape[1] > 1:
        predicted = outputs.argmax(dim=1)
    else:
        predicted = (outputs > 0).reshape(targets.shape).to(targets.dtype)
    return (predicted == targets).float().mean()


class Trainer:
    """Trains `model` with `optimizer` on `loss_fn(outputs, targets)`; see the module docstring.

    device: "auto" picks cuda, mps or cpu (helpers.pick_device); the model is moved there, and so
        are loss_fn and metric objects that are modules (e.g. a class-weighted CrossEntropyLoss).
    metrics: name -> metric function(outputs, targets) or metric object (MetricObject), logged as
        train_<name> and val_<name>.
    scheduler / scheduler_step: stepped after each "epoch" or each optimizer step ("batch").
        ReduceLROnPlateau is stepped per epoch on val_loss (train_loss without a val_loader).
    amp: None, "bf16" or "fp16" (mixed precision). grad_clip: max total gradient norm.
    accumulate: sum the gradients of this many batches before each optimizer step.
    progress: one tqdm bar per epoch; False prints nothing (but a line after Ctrl-C).

    history: "epoch", "train_loss", "train_<metric>", "val_loss", "val_<metric>" (with a val_loader)
    and "lr", the learning rate of the first parameter group at the start of each epoch.
    """

    sync_interval = 1.0  # seconds between reads of the recent losses (one GPU sync each)

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., torch.Tensor], *,
                 device: str | torch.device = "auto", metrics: Mapping[str, Metric] | None = None,
                 scheduler: Any = None, scheduler_step: str = "epoch", callbacks: Sequence[Callback] = (),
                 amp: str | None = None, grad_clip: float | None = None, accumulate: int = 1,
                 progress: bool = True) -> None:
        if scheduler_step not in ("epoch", "batch"):
            raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
        if isinstance(scheduler, ReduceLROnPlateau) and scheduler_step == "batch":
            raise ValueError("ReduceLROnPlateau watches an epoch metric: use scheduler_step='epoch'")
        if not (isinstance(accumulate, int) and accumulate >= 1):
            raise ValueError(f"accumulate must be a whole number >= 1, got {accumulate!r}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be a positive max norm (or None), got {grad_clip!r}")
        if amp not in (None, *_AMP_DTYPES):
            raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}")
        self.device = pick_device(str(device))
        if self.device.type == "cuda" and self.device.index is None:  # "cuda" -> "cuda:0", as tensors report it
            self.device = torch.device("cuda", torch.cuda.current_device())
        if amp == "fp16" and self.device.type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA GPU (float16 training needs a GradScaler, which runs on "
                             f"CUDA), but this Trainer runs on {self.device.type}: use amp='bf16' on CPU")
        self.model = model.to(self.device)
        # A loss or metric with tensors of its own (class weights) must be where the outputs are.
        self.loss_fn = loss_fn.to(self.device) if isinstance(loss_fn, nn.Module) else loss_fn
        self.metrics = {name: metric.to(self.device) if isinstance(metric, nn.Module) else metric
                        for name, metric in (metrics or {}).items()}
        self.optimizer, self.scheduler = optimizer, scheduler
        self.scheduler_step, self.callbacks = scheduler_step, list(callbacks)
        self.amp, self.grad_clip, self.accumulate, self.progress = amp, grad_clip, accumulate, progress
        # fp16 gradients of small losses underflow to 0: the scaler multiplies the loss first.
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.history: dict[str, list[float]] = {}
        self.epoch = 0  # epochs completed, over all fit() calls (and restored by resume())
        self.stop_training = False  # a callback sets it to end fit() after the current epoch

    # ------------------------------------------------------------------ the public API

    def fit(self, train_loader: Iterable, val_loader: Iterable | None = None, epochs: int | None = None, *,
            max_epochs: int | None = None) -> dict[str, list[float]]:
        """Train `epochs` more epochs, or on until `max_epochs` in all; return self.history.

        Give one of the two: max_epochs=20 after resume() (or after an earlier fit) trains up to
        epoch 20 of the whole run, as `max_epochs` does in Lightning; epochs=5 trains 5 more.
        The history has one list per key, one value per epoch.

        Loaders yield (inputs, targets) batches; inputs may be a tuple of tensors, passed as
        model(*inputs). A longer batch (x1, ..., xk, targets), e.g. from helpers.data.pad_collate,
        means model(x1, ..., xk): the last item is always the targets.

        Ctrl-C (KeyboardInterrupt) stops training cleanly: the epoch in progress is dropped,
        on_fit_end callbacks run and the history is returned. Any other exception goes to the
        callbacks' on_exception, then propagates.
        """
        last = self._last_epoch(epochs, max_epochs)
        self.stop_training = False
        try:
            self._emit("on_fit_start")
            for epoch in range(self.epoch + 1, last + 1):
                self._fit_epoch(train_loader, val_loader, epoch, last)
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            print(f"\nfit() stopped by Ctrl-C after {self.epoch} complete epochs (all in trainer.history)",
                  file=sys.stderr)
        except BaseException as error:
            self._emit("on_exception", error)
            raise
        self._emit("on_fit_end")
        return self.history

    def _last_epoch(self, epochs: int | None, max_epochs: int | None) -> int:
        """The epoch fit() ends with, from epochs= (more) or max_epochs= (in all)."""
        if (epochs is None) == (max_epochs is None):
            given = "both" if epochs is not None else "neither"
            raise ValueError(f"fit() takes either epochs= (how many more epochs) or max_epochs= (train until "
                             f"trainer.epoch reaches it), got {given}")
        name, value = ("epochs", epochs) if epochs is not None else ("max_epochs", max_epochs)
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        return self.epoch + value if name == "epochs" else value

    def _fit_epoch(self, train_loader: Iterable, val_loader: Iterable | None, epoch: int, last: int) -> None:
        """Train and validate one epoch, step the scheduler, record the logs, tell the callbacks."""
        self._emit("on_epoch_start", epoch)
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch starts with
        bar = tqdm(total=_length(train_loader), desc=f"epoch {epoch}/{last}", unit="batch",
                   mininterval=0.5, dynamic_ncols=True) if self.progress else None
        logs: dict[str, float] = {"epoch": epoch}
        try:
            logs |= {f"train_{k}": v for k, v in self._train_epoch(train_loader, epoch, bar).items()}
            if val_loader is not None:
                logs |= {f"val_{k}": v for k, v in self.evaluate(val_loader).items()}
        finally:  # close the bar even after an error, so it does not linger in the notebook
            if bar is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "epoch"}, refresh=False)
                bar.close()
        logs["lr"] = lr
        if self.scheduler is not None and self.scheduler_step == "epoch":
            if isinstance(self.scheduler, ReduceLROnPlateau):
                self.scheduler.step(logs.get("val_loss", logs["train_loss"]))
            else:
                self.scheduler.step()
        self.epoch = epoch
        self._record(logs)
        self._emit("on_epoch_end", logs)

    @torch.no_grad()
    def evaluate(self, loader: Iterable) -> dict[str, float]:
        """Mean loss and metrics over all batches of `loader`, in eval mode: {"loss": ..., name: ...}."""
        was_training = self.model.training
        self.model.eval()  # dropout off, batchnorm uses its running statistics
        stats = self._new_stats()
        try:
            for i, batch in enumerate(loader):
                inputs, targets = self._unpack(batch)
                with self._autocast():
                    outputs = self._forward(inputs)
                    loss = self._loss(outputs, targets, check_shapes=i == 0)
                self._track(stats, outputs, targets, loss)
        finally:
            self.model.train(was_training)
        if not stats["size"]:
            raise ValueError("the evaluation loader produced no batches: is its dataset empty?")
        return self._summarize(stats)

    @torch.no_grad()
    def predict(self, data: torch.Tensor | Iterable, batch_size: int = 256) -> torch.Tensor:
        """Model outputs, on the CPU, for a tensor of inputs (run in batches) or a loader.

        A loader may yield batches as fit() takes them (their targets are ignored) or bare input tensors.
        """
        if isinstance(data, torch.Tensor):
            batches: Iterable = data.split(batch_size)
        else:
            batches = (_inputs_of(batch) if isinstance(batch, (tuple, list)) else batch for batch in data)
        was_training = self.model.training
        self.model.eval()
        outputs = []
        try:
            for inputs in batches:
                with self._autocast():
                    out = self._forward(self._to_device(inputs))
                outputs.append(out.float() if self.amp and out.is_floating_point() else out)
        finally:
            self.model.train(was_training)
        if not outputs:
            raise ValueError("predict got no inputs: the loader produced no batches")
        return torch.cat(outputs).cpu()

    def plot_history(self, **kwargs: Any) -> Any:
        """Loss and metric curves of self.history (helpers.plots.plot_history); returns the Figure."""
        from helpers.plots import plot_history  # imported here: matplotlib is slow to import

        return plot_history(self.history, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Save everything needed to continue this run exactly (atomically; see helpers.checkpoint)."""
        return checkpoint.save_checkpoint({
            "model_class": type(self.model).__name__,
            "model_shapes": checkpoint.model_shapes(self.model),
            "model": checkpoint.model_state(self.model),  # plain names, also for a torch.compile'd model
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "rng": checkpoint.rng_states(),
            "callbacks": {key: state for key, callback in zip(self._callback_keys(), self.callbacks)
                          if (state := callback.state_dict())},
        }, path)

    def resume(self, path: str | Path) -> Trainer:
        """Restore a run saved by save() into this trainer; then fit(..., max_epochs=total).

        Build the model, optimizer, scheduler and callbacks as for the saved run first: their
        states are loaded into them. Restores the random generators too, so the run continues
        exactly. A compiled model (torch.compile) resumes a plain model's run and vice versa.
        """
        state = checkpoint.load_checkpoint(path, required=checkpoint.TRAINER_KEYS)
        checkpoint.check_model_matches(self.model, state, path)
        if state["scheduler"] is not None and self.scheduler is None:
            raise ValueError(f"{str(path)!r} was saved with a learning-rate scheduler but this Trainer has none: "
                             f"create it with the same scheduler to resume exactly")
        if state["scaler"] and self.scaler is None:  # {} is the state of a disabled scaler
            raise ValueError(f"{str(path)!r} was saved with a GradScaler (amp='fp16') but this Trainer has none: "
                             f"create it with amp='fp16' (on a CUDA GPU) to resume the run, or load the weights "
                             f"alone with helpers.checkpoint.load_weights(model, path)")
        checkpoint.load_model_state(self.model, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and self.scaler is not None:  # checked above
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = state["epoch"]
        self.history = {key: list(values) for key, values in state["history"].items()}
        checkpoint.set_rng_states(state["rng"])
        saved = state.get("callbacks", {})  # checkpoints from before callbacks had states have none
        for key, callback in zip(self._callback_keys(), self.callbacks):
            callback.on_resume(self, saved.get(key))
        return self

    def _callback_keys(self) -> list[str]:
        """A name per callback for its saved state: "BestModel", then "BestModel#2" for a second one."""
        seen: Counter[str] = Counter()
        keys = []
        for callback in self.callbacks:
            name = type(callback).__name__
            seen[name] += 1
            keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
        return keys

    # ------------------------------------------------------------------ one epoch

    def _train_epoch(self, loader: Iterable, epoch: int, bar: Any) -> dict[str, float]:
        self.model.train()
        n_batches = _length(loader)
        stats = self._new_stats()
        synced_at, synced_time = 0, time.monotonic()
        pending = False  # gradients summed but not yet used by an optimizer step
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(loader):
            inputs, targets = self._unpack(batch)
            # Batches are grouped by `accumulate`; the last group of an epoch may be shorter.
            group_start = i - i % self.accumulate
            group = self.accumulate if n_batches is None else min(self.accumulate, n_batches - group_start)
            with self._autocast():
                outputs = self._forward(inputs)
                loss = self._loss(outputs, targets, check_shapes=i == 0)
            # Dividing by the group size makes the summed gradients their mean: the same
            # gradient as one batch `group` times larger.
            scaled = loss / group if group > 1 else loss
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            pending = True
            if i + 1 - group_start == group:
                self._optimizer_step()
                pending = False
            self._track(stats, outputs, targets, loss)
            if self.callbacks:
                self._emit("on_batch_end", i, loss)
            if bar is not None:
                bar.update()
            if time.monotonic() - synced_time >= self.sync_interval:  # one GPU sync a second, not one a batch
                recent = torch.stack(stats["loss"][synced_at:]).float().cpu()
                _check_finite(recent, epoch, first_batch=synced_at)  # stop now, not after an epoch of NaNs
                if bar is not None:
                    bar.set_postfix(loss=f"{recent.mean().item():.4g}", refresh=False)
                synced_at, synced_time = len(stats["loss"]), time.monotonic()
        if not stats["size"]:
            raise ValueError("the training loader produced no batches: is the dataset empty, "
                             "or smaller than batch_size with drop_last=True?")
        if pending:  # a loader without len() ended inside an accumulation group
            self._optimizer_step()
        return self._summarize(stats, epoch=epoch)

    def _optimizer_step(self) -> None:
        """Step on the gradients summed since the last step (clipped if asked), then zero them."""
        if self.scaler is not None and (self.grad_clip is not None or self.callbacks):
            self.scaler.unscale_(self.optimizer)  # clip, and show callbacks, the true gradients, not the scaled ones
        if self.callbacks:
            self._emit("on_before_optimizer_step")
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        stepped = self._step()
        self.optimizer.zero_grad(set_to_none=True)
        if stepped and self.scheduler is not None and self.scheduler_step == "batch":
            self.scheduler.step()

    def _step(self) -> bool:
        """optimizer.step(), through the GradScaler with fp16; False if the scaler skipped it.

        The scaler skips the step when the gradients overflowed (inf/NaN) and lowers its scale;
        the per-batch scheduler must then skip too, or its schedule runs ahead of the optimizer.
        An optimizer hook tells whether the step ran, without another GPU sync.
        """
        if self.scaler is None:
            self.optimizer.step()
            return True
        stepped: list[bool] = []
        hook = self.optimizer.register_step_post_hook(lambda *args: stepped.append(True))
        try:
            self.scaler.step(self.optimizer)
        finally:
            hook.remove()
        self.scaler.update()
        return bool(stepped)

    # ------------------------------------------------------------------ small pieces

    def _emit(self, event: str, *args: Any) -> None:
        """Call method `event` of every callback: the one way callbacks hear from the Trainer."""
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_AMP_DTYPES[self.amp])

    def _to_device(self, data: Any) -> Any:
        if isinstance(data, torch.Tensor):
            if data.device == self.device:  # already there: skip the call, it costs a microsecond per batch
                return data
            # non_blocking: a copy from pinned CPU memory to the GPU overlaps with computation.
            return data.to(self.device, non_blocking=True)
        if isinstance(data, (tuple, list)):
            return tuple(self._to_device(item) for item in data)
        return data

    def _unpack(self, batch: Any) -> tuple[Any, torch.Tensor]:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise TypeError(f"each batch must be a pair (inputs, targets) or (x1, ..., xk, targets), "
                            f"got {_describe(batch)}")
        return self._to_device(_inputs_of(batch)), self._to_device(batch[-1])

    def _forward(self, inputs: Any) -> torch.Tensor:
        return self.model(*inputs) if isinstance(inputs, tuple) else self.model(inputs)

    def _loss(self, outputs: torch.Tensor, targets: torch.Tensor, check_shapes: bool) -> torch.Tensor:
        if check_shapes:  # on the first batch only: shapes do not change between batches
            _check_shapes(outputs, targets)
        loss = self.loss_fn(outputs, targets)
        if loss.ndim != 0:
            raise ValueError(f"loss_fn returned shape {tuple(loss.shape)}, expected a single number: "
                             f"use reduction='mean' (the default)")
        return loss

    def _new_stats(self) -> dict[str, list]:
        """Empty per-batch lists of sizes, losses and metric-function values; resets the metric objects."""
        stats: dict[str, list] = {"size": [], "loss": []}
        for name, metric in self.metrics.items():
            if _is_metric_object(metric):
                metric.reset()
            else:
                stats[name] = []
        return stats

    def _track(self, stats: dict[str, list], outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        """Keep this batch's size, loss and metrics; tensors stay tensors until the epoch ends."""
        stats["size"].append(len(targets))
        stats["loss"].append(loss.detach())
        for name, metric in self.metrics.items():
            with torch.no_grad():
                if _is_metric_object(metric):  # a metric object keeps what it needs itself
                    metric.update(outputs.detach(), targets)
                else:  # a function: its value for this batch
                    stats[name].append(cast(Callable[..., Any], metric)(outputs.detach(), targets))

    def _summarize(self, stats: dict[str, list], epoch: int | None = None) -> dict[str, float]:
        """Epoch values. With `epoch`, a NaN/inf training loss raises, naming the batch."""
        sizes = torch.tensor(stats["size"], dtype=torch.float64)
        means = {}
        for name in ("loss", *self.metrics):
            if name not in stats:
                means[name] = _number(cast(MetricObject, self.metrics[name]).compute(), name)
                continue
            per_batch = _per_batch(stats[name])
            if name == "loss" and epoch is not None:
                _check_finite(per_batch, epoch)
            # Weighted by batch size: a smaller last batch counts less, as its samples do.
            means[name] = float((per_batch * sizes).sum() / sizes.sum())
        return means

    def _record(self, logs: dict[str, float]) -> None:
        """Append logs to the history; a key missing on either side gets NaN, so lists stay aligned."""
        done = len(self.history.get("epoch", []))
        for key in [*self.history, *(k for k in logs if k not in self.history)]:
            self.history.setdefault(key, [math.nan] * done).append(logs.get(key, math.nan))


def _is_metric_object(metric: Any) -> TypeGuard[MetricObject]:
    return all(callable(getattr(metric, method, None)) for method in ("update", "compute", "reset"))


def _number(value: float | torch.Tensor, name: str) -> float:
    """A metric object's compute() result as a float, or an error naming the metric."""
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise ValueError(f"metric {name!r}.compute() returned a tensor of shape {tuple(value.shape)}, expected one "
                         f"number: average per-class values (e.g. torchmetrics' average='macro')")
    return float(value)


def _check_finite(losses: torch.Tensor, epoch: int, first_batch: int = 0) -> None:
    """Raise NonFiniteLossError naming the first NaN/inf loss; losses[0] is batch `first_batch` (from 0)."""
    bad = ~torch.isfinite(losses)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise NonFiniteLossError(
            f"loss became {losses[i].item()} at epoch {epoch}, batch {first_batch + i + 1} (counting from 1); "
            f"try a lower learning rate or gradient clipping (grad_clip=1.0)")


def _per_batch(values: list) -> torch.Tensor:
    """One float64 CPU tensor from a list of per-batch values (0-d tensors or floats)."""
    if isinstance(values[0], torch.Tensor):
        return torch.stack([v.reshape(()) for v in values]).cpu().double()  # one GPU->CPU copy
    return torch.tensor(values, dtype=torch.float64)


def _inputs_of(batch: tuple | list) -> Any:
    """All items but the last (the targets); a single input stays unwrapped. (x,) has no targets."""
    return batch[0] if len(batch) <= 2 else tuple(batch[:-1])


def _length(loader: Iterable) -> int | None:
    """Batches per epoch, or None for a loader without len()."""
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _check_shapes(outputs: Any, targets: Any) -> None:
    """Catch silent broadcasting before the loss sees it.

    MSE of outputs (N, 1) and targets (N,) broadcasts both to (N, N): it compares every output
    with every target, trains on nonsense and raises no error (only a warning that is easy to miss).
    """
    if not (isinstance(outputs, torch.Tensor) and isinstance(targets, torch.Tensor)) or outputs.shape == targets.shape:
        return
    try:
        both = torch.broadcast_shapes(outputs.shape, targets.shape)
    except RuntimeError:
        return  # not broadcastable: the loss raises its own error (or, like cross-entropy, expects this)
    if both != outputs.shape and both != targets.shape:
        raise ValueError(
            f"model outputs have shape {tuple(outputs.shape)} but targets have shape {tuple(targets.shape)}: "
            f"the loss would silently broadcast them to {tuple(both)} and compare every output with every "
            f"target. Make the shapes equal, e.g. outputs.squeeze(-1) in the model or targets.unsqueeze(-1) "
            f"in the data.")


def _describe(batch: Any) -> str:
    if isinstance(batch, torch.Tensor):
        return f"a tensor of shape {tuple(batch.shape)}"
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)} items"
    return f"a {type(batch).__name__}"
