"""Tests of helpers.trainer: the loop, metrics, AMP, accumulation, clipping, schedulers, errors."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.callbacks import Callback
from helpers.trainer import NonFiniteLossError, Trainer, accuracy

ROOT = Path(__file__).resolve().parents[1]


def blobs(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs in 2-D: an easy 2-class problem."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=gen) * 0.5 + (y.float() * 2 - 1).unsqueeze(1)
    return x, y


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pre-batched data, in order (a plain list is a valid loader)."""
    return list(zip(x.split(batch_size), y.split(batch_size)))


def mlp(seed: int = 0, out: int = 2) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, out))


def make_trainer(model: nn.Module | None = None, lr: float = 0.1, **kwargs) -> Trainer:
    model = model or mlp()
    kwargs.setdefault("progress", False)
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=lr), nn.CrossEntropyLoss(), device="cpu", **kwargs)


def params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ----------------------------------------------------------------------------- fit / evaluate / predict


def test_fit_learns_and_fills_the_history():
    x, y = blobs()
    trainer = make_trainer(lr=0.5, metrics={"accuracy": accuracy})
    history = trainer.fit(batches(x, y, 16), batches(x, y, 32), epochs=4)
    assert history is trainer.history
    assert list(history) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"]
    assert history["epoch"] == [1, 2, 3, 4] and trainer.epoch == 4
    assert all(len(values) == 4 for values in history.values())
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert history["lr"] == [0.5] * 4


def test_fit_twice_goes_on_counting_epochs():
    x, y = blobs()
    trainer = make_trainer()
    trainer.fit(batches(x, y, 16), epochs=2)
    trainer.fit(batches(x, y, 16), epochs=3)
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5]


def test_history_stays_aligned_when_validation_starts_later():
    x, y = blobs()
    trainer = make_trainer()
    trainer.fit(batches(x, y, 16), epochs=1)
    trainer.fit(batches(x, y, 16), batches(x, y, 16), epochs=1)
    assert len(trainer.history["val_loss"]) == 2
    assert math.isnan(trainer.history["val_loss"][0]) and not math.isnan(trainer.history["val_loss"][1])


def test_trainer_equals_the_hand_written_loop_exactly():
    x, y = blobs()
    data = batches(x, y, 16)
    manual = mlp()
    optimizer = torch.optim.SGD(manual.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        for xb, yb in data:
            loss = nn.functional.cross_entropy(manual(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model = mlp()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), nn.CrossEntropyLoss(),
                      device="cpu", progress=False)
    trainer.fit(data, epochs=3)
    assert all(torch.equal(a, b) for a, b in zip(manual.parameters(), model.parameters()))


def test_accuracy_multiclass_and_binary():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 2])).item() == pytest.approx(0.5)
    binary = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    assert accuracy(binary, torch.tensor([1.0, 0.0, 0.0, 0.0])).item() == pytest.approx(0.75)
    assert accuracy(binary.squeeze(1), torch.tensor([1, 0, 1, 0])).item() == pytest.approx(1.0)


def fixed_logits_data() -> tuple[torch.Tensor, torch.Tensor]:
    """10 samples whose inputs are the logits; batches of 4, 4, 2 have accuracy 1, 0.5, 0.

    Over all samples the accuracy is 6/10 = 0.6; the mean of the batch accuracies is 0.5.
    """
    y = torch.zeros(10, dtype=torch.int64)
    right, wrong = [2.0, -2.0], [-2.0, 2.0]
    x = torch.tensor([right] * 4 + [right, right, wrong, wrong] + [wrong] * 2)
    return x, y


class Identity2(nn.Module):
    """Returns its input unchanged, but has a (frozen) parameter so an optimizer can be built."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0 * self.unused


def test_metrics_and_loss_are_averaged_over_samples_not_batches():
    x, y = fixed_logits_data()
    trainer = make_trainer(Identity2(), lr=0.0, metrics={"accuracy": accuracy})
    data = batches(x, y, 4)
    assert [len(b[1]) for b in data] == [4, 4, 2]
    trainer.fit(data, data, epochs=1)
    assert trainer.history["train_accuracy"][0] == pytest.approx(0.6)
    assert trainer.history["val_accuracy"][0] == pytest.approx(0.6)
    assert trainer.history["train_loss"][0] == pytest.approx(nn.functional.cross_entropy(x, y).item(), rel=1e-6)
    assert trainer.evaluate(data)["accuracy"] == pytest.approx(0.6)


def test_metric_returning_a_python_float_works_too():
    x, y = fixed_logits_data()
    trainer = make_trainer(Identity2(), lr=0.0, metrics={"acc": lambda out, t: accuracy(out, t).item()})
    assert trainer.evaluate(batches(x, y, 4)) == {"loss": pytest.approx(nn.functional.cross_entropy(x, y).item()),
                                                  "acc": pytest.approx(0.6)}


def test_evaluate_uses_eval_mode_and_restores_the_mode():
    seen = []

    class Spy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 2)

        def forward(self, x):
            seen.append(self.training)
            return self.linear(x)

    x, y = blobs(8)
    trainer = make_trainer(Spy())
    trainer.model.train()
    result = trainer.evaluate(batches(x, y, 4))
    assert set(result) == {"loss"} and seen == [False, False] and trainer.model.training


def test_predict_on_a_tensor_and_on_loaders():
    x, y = blobs(50)
    trainer = make_trainer()
    expected = trainer.model(x).detach()
    from_tensor = trainer.predict(x, batch_size=16)
    assert from_tensor.shape == (50, 2) and torch.allclose(from_tensor, expected, atol=1e-6)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    assert torch.allclose(trainer.predict(loader), expected, atol=1e-6)
    assert torch.allclose(trainer.predict(x.split(7)), expected, atol=1e-6)  # bare input batches
    assert trainer.model.training
    with pytest.raises(ValueError, match="no batches"):
        trainer.predict([])


def test_models_with_several_inputs_get_them_unpacked():
    class AddTwo(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 2)

        def forward(self, a, b):
            return self.linear(a + b)

    x, y = blobs(16)
    trainer = make_trainer(AddTwo())
    history = trainer.fit([((x, x), y)], epochs=1)
    assert history["epoch"] == [1]
    expected = trainer.model(x, x).detach()
    assert torch.allclose(trainer.predict([((x, x), y)]), expected)
    # (x1, x2, targets), as helpers.data.pad_collate makes them: the last item is the targets.
    trainer.fit([(x, x, y)], epochs=1)
    assert trainer.history["epoch"] == [1, 2]
    assert torch.allclose(trainer.predict([(x, x, y)]), trainer.model(x, x).detach())


def test_predict_on_batches_of_inputs_alone():
    x, _ = blobs(20)
    trainer = make_trainer()
    assert torch.allclose(trainer.predict([(xb,) for xb in x.split(8)]), trainer.model(x).detach())


def test_torch_dataloader_and_loader_without_len_work():
    x, y = blobs(40)
    trainer = make_trainer()
    trainer.fit(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True), epochs=1)
    trainer.fit((batch for batch in batches(x, y, 16)), epochs=1)  # a generator has no len()
    assert trainer.history["epoch"] == [1, 2]


def test_plot_history_draws_the_history():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    x, y = blobs()
    trainer = make_trainer(metrics={"accuracy": accuracy})
    trainer.fit(batches(x, y, 32), batches(x, y, 32), epochs=2)
    fig = trainer.plot_history()
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy"] and len(fig.axes[0].lines) == 2


# ----------------------------------------------------------------------------- progress


def test_progress_false_prints_nothing(capfd):
    x, y = blobs()
    make_trainer(progress=False, metrics={"accuracy": accuracy}).fit(batches(x, y, 16), batches(x, y, 16), epochs=2)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_bar_goes_to_stderr_with_the_epoch_logs(capfd):
    x, y = blobs()
    make_trainer(progress=True).fit(batches(x, y, 16), batches(x, y, 16), epochs=2)
    out, err = capfd.readouterr()
    assert out == ""
    assert "epoch 2/2" in err and "val_loss=" in err and "4/4" in err


# ----------------------------------------------------------------------------- AMP


def test_bf16_autocast_on_cpu_runs_and_stays_close_to_float32():
    x, y = blobs(128)
    data = batches(x, y, 32)
    plain = make_trainer(mlp(), lr=0.2)
    mixed = make_trainer(mlp(), lr=0.2, amp="bf16")
    plain.fit(data, data, epochs=3)
    mixed.fit(data, data, epochs=3)
    assert mixed.history["train_loss"] != plain.history["train_loss"]  # bf16 really was used
    for key in ("train_loss", "val_loss"):
        assert mixed.history[key] == pytest.approx(plain.history[key], rel=0.05, abs=0.02)
    assert mixed.predict(x).dtype == torch.float32


def test_fp16_on_cpu_says_to_use_bf16():
    with pytest.raises(ValueError, match="bf16"):
        make_trainer(amp="fp16")


@pytest.mark.parametrize("kwargs, message", [
    ({"amp": "fp8"}, "amp must be"),
    ({"scheduler_step": "step"}, "scheduler_step"),
    ({"accumulate": 0}, "accumulate"),
    ({"grad_clip": 0.0}, "grad_clip"),
])
def test_invalid_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_trainer(**kwargs)


def test_the_grad_scaler_code_path_with_clipping_matches_plain_training():
    """fp16 needs CUDA; on CPU a disabled GradScaler still runs the scaler branch of the step."""
    x, y = blobs()
    plain = make_trainer(mlp(), grad_clip=0.05)
    scaled = make_trainer(mlp(), grad_clip=0.05)
    scaled.scaler = torch.amp.GradScaler("cuda", enabled=False)
    plain.fit(batches(x, y, 16), epochs=2)
    scaled.fit(batches(x, y, 16), epochs=2)
    assert all(torch.equal(a, b) for a, b in zip(plain.model.parameters(), scaled.model.parameters()))


# ----------------------------------------------------------------------------- accumulation and clipping


@pytest.mark.parametrize("n", [64, 48])  # 48: the last accumulation group has 2 batches, not 4
def test_accumulating_4_batches_of_8_equals_batches_of_32(n):
    x, y = blobs(n)
    small = make_trainer(mlp(), lr=0.3, accumulate=4)
    large = make_trainer(mlp(), lr=0.3)
    small.fit(batches(x, y, 8), epochs=3)
    large.fit(batches(x, y, 32), epochs=3)
    for a, b in zip(small.model.parameters(), large.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    unaccumulated = make_trainer(mlp(), lr=0.3)
    unaccumulated.fit(batches(x, y, 8), epochs=3)
    assert not torch.allclose(unaccumulated.model[0].weight, large.model[0].weight, atol=1e-3)


def test_accumulation_steps_at_the_end_of_a_loader_without_len():
    x, y = blobs(24)
    trainer = make_trainer(accumulate=4)
    before = params(trainer.model)
    trainer.fit((b for b in batches(x, y, 8)), epochs=1)  # 3 batches: the group never fills
    assert not any(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_gradient_clipping_equals_the_manual_clip():
    x, y = blobs()
    data = batches(x, y, 16)
    manual = mlp()
    optimizer = torch.optim.SGD(manual.parameters(), lr=0.5)
    for xb, yb in data:
        optimizer.zero_grad()
        nn.functional.cross_entropy(manual(xb), yb).backward()
        norm = nn.utils.clip_grad_norm_(manual.parameters(), max_norm=0.05)
        assert norm > 0.05  # the clip is active, so the test can tell clipping from none
        optimizer.step()
    clipped = make_trainer(mlp(), lr=0.5, grad_clip=0.05)
    clipped.fit(data, epochs=1)
    unclipped = make_trainer(mlp(), lr=0.5)
    unclipped.fit(data, epochs=1)
    for a, b in zip(manual.parameters(), clipped.model.parameters()):
        assert torch.allclose(a, b, atol=1e-7)
    assert not torch.allclose(manual[0].weight, unclipped.model[0].weight, atol=1e-4)


# ----------------------------------------------------------------------------- schedulers


def test_scheduler_stepped_per_epoch_or_per_batch():
    x, y = blobs()
    data = batches(x, y, 16)  # 4 batches per epoch
    per_epoch = make_trainer(lr=0.1)
    per_epoch.scheduler = torch.optim.lr_scheduler.StepLR(per_epoch.optimizer, step_size=1, gamma=0.5)
    per_epoch.fit(data, epochs=3)
    assert per_epoch.history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    per_batch = Trainer(model, optimizer, nn.CrossEntropyLoss(), device="cpu", progress=False,
                        scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5),
                        scheduler_step="batch")
    per_batch.fit(data, epochs=3)
    assert per_batch.history["lr"] == pytest.approx([0.1, 0.1 * 0.5 ** 4, 0.1 * 0.5 ** 8])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 12)


def test_reduce_lr_on_plateau_reduces_after_patience():
    x, y = blobs()
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)

    def constant_loss(outputs, targets):  # never improves
        return outputs.sum() * 0 + 1.0

    trainer = Trainer(model, optimizer, constant_loss, device="cpu", progress=False, scheduler=plateau)
    trainer.fit(batches(x, y, 32), batches(x, y, 32), epochs=6)
    # epoch 1 sets the best; epochs 2, 3 are within patience; after epoch 4 the lr halves.
    assert trainer.history["lr"] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05])


def test_reduce_lr_on_plateau_per_batch_is_refused():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        Trainer(model, optimizer, nn.CrossEntropyLoss(), progress=False, scheduler_step="batch",
                scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer))


# ----------------------------------------------------------------------------- callbacks and events


class Recorder(Callback):
    def __init__(self, stop_after: int | None = None) -> None:
        self.events: list[tuple] = []
        self.stop_after = stop_after

    def on_fit_start(self, trainer):
        self.events.append(("fit_start",))

    def on_epoch_start(self, trainer, epoch):
        self.events.append(("epoch_start", epoch))

    def on_batch_end(self, trainer, batch, loss):
        assert isinstance(loss, torch.Tensor) and loss.ndim == 0
        self.events.append(("batch_end", batch))

    def on_epoch_end(self, trainer, logs):
        assert trainer.history["epoch"][-1] == logs["epoch"] == trainer.epoch  # history is already updated
        self.events.append(("epoch_end", logs["epoch"]))
        if logs["epoch"] == self.stop_after:
            trainer.stop_training = True

    def on_fit_end(self, trainer):
        self.events.append(("fit_end",))


def test_callbacks_hear_every_event_in_order_and_can_stop_training():
    x, y = blobs(32)
    recorder = Recorder(stop_after=2)
    trainer = make_trainer(callbacks=[recorder])
    trainer.fit(batches(x, y, 16), epochs=5)
    assert recorder.events == [("fit_start",),
                               ("epoch_start", 1), ("batch_end", 0), ("batch_end", 1), ("epoch_end", 1),
                               ("epoch_start", 2), ("batch_end", 0), ("batch_end", 1), ("epoch_end", 2),
                               ("fit_end",)]
    assert trainer.history["epoch"] == [1, 2]
    trainer.fit(batches(x, y, 16), epochs=1)  # stop_training is reset by the next fit
    assert trainer.history["epoch"] == [1, 2, 3]


# ----------------------------------------------------------------------------- clear errors


def _trainer_whose_loss_breaks() -> tuple[Trainer, torch.Tensor, torch.Tensor, itertools.count]:
    """A Trainer whose loss turns NaN at call 13: with 8 batches per epoch, epoch 2, batch 5
    (and the counter of its calls)."""
    x, y = blobs()
    calls = itertools.count(1)

    def loss_that_breaks(outputs, targets):
        loss = nn.functional.cross_entropy(outputs, targets)
        return loss * float("nan") if next(calls) == 8 + 5 else loss

    model = mlp()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_that_breaks, device="cpu",
                      progress=False)
    return trainer, x, y, calls


def test_nan_loss_names_the_epoch_and_batch():
    trainer, x, y, calls = _trainer_whose_loss_breaks()
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, batch 5 .*lower learning rate"):
        trainer.fit(batches(x, y, 8), epochs=3)
    assert trainer.history["epoch"] == [1]


def test_nan_loss_stops_training_at_the_next_sync_not_at_the_end_of_the_epoch():
    trainer, x, y, calls = _trainer_whose_loss_breaks()
    trainer.sync_interval = 0.0  # sync after every batch (the default is once a second)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, batch 5 "):
        trainer.fit(batches(x, y, 8), epochs=3)
    assert next(calls) == 14  # batches 6 to 8 never ran


def test_infinite_loss_is_caught_too():
    x, y = blobs()
    model = mlp()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                      lambda out, t: nn.functional.cross_entropy(out, t) * float("inf"), device="cpu", progress=False)
    with pytest.raises(NonFiniteLossError, match="loss became inf at epoch 1, batch 1"):
        trainer.fit(batches(x, y, 16), epochs=1)


def test_broadcasting_shape_mismatch_is_caught_before_the_loss():
    x, y = blobs()
    model = mlp(out=1)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(), device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"outputs have shape \(16, 1\) but targets have shape \(16,\)"):
        trainer.fit(batches(x, y.float(), 16), epochs=1)
    with pytest.raises(ValueError, match="broadcast"):
        trainer.evaluate(batches(x, y.float(), 16))
    # The same model with (N, 1) targets is fine, and so is cross-entropy's (N, C) vs (N,).
    trainer.fit(batches(x, y.float().unsqueeze(1), 16), epochs=1)
    make_trainer().fit(batches(x, y, 16), epochs=1)


def test_empty_loaders_are_named():
    trainer = make_trainer()
    with pytest.raises(ValueError, match="training loader produced no batches"):
        trainer.fit([], epochs=1)
    with pytest.raises(ValueError, match="evaluation loader produced no batches"):
        trainer.evaluate([])
    x, y = blobs(8)
    with pytest.raises(ValueError, match="training loader produced no batches"):
        trainer.fit(DataLoader(TensorDataset(x, y), batch_size=16, drop_last=True), epochs=1)


def test_a_batch_that_is_not_a_pair_is_named():
    x, _ = blobs(8)
    with pytest.raises(TypeError, match=r"pair \(inputs, targets\).*got a tensor of shape \(4, 2\)"):
        make_trainer().fit(x.split(4), epochs=1)


def test_a_loss_that_is_not_a_single_number_is_named():
    x, y = blobs(8)
    model = mlp()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(reduction="none"),
                      device="cpu", progress=False)
    with pytest.raises(ValueError, match="reduction='mean'"):
        trainer.fit(batches(x, y, 4), epochs=1)


# ----------------------------------------------------------------------------- devices, metric objects, max_epochs


def test_the_loss_module_and_metric_modules_move_to_the_device_with_the_model():
    class CountNonzero(nn.Module):  # a metric object that is a module, as torchmetrics' are
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("count", torch.zeros(()))

        def update(self, outputs, targets):
            self.count += (targets != 0).sum()

        def compute(self):
            return self.count

        def reset(self):
            self.count.zero_()

    model = mlp()
    weighted = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))  # a CPU weight fails on CUDA and MPS
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), weighted, device="meta",
                      metrics={"nonzero": CountNonzero()}, progress=False)
    assert trainer.model[0].weight.device.type == "meta"
    assert trainer.loss_fn.weight.device.type == "meta"
    assert trainer.metrics["nonzero"].count.device.type == "meta"


class TokenAccuracy:
    """Correct tokens / real tokens over the whole epoch; padding (-100) does not count."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.correct, self.total = 0, 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        real = targets != -100
        self.correct += int(((outputs.argmax(dim=1) == targets) & real).sum())
        self.total += int(real.sum())

    def compute(self) -> float:
        return self.correct / self.total


def token_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Logits (N, C=2, T=4) and token targets (N, T): batch 1 has 8 real tokens, all right;
    batch 2 has 2 real tokens (and 6 padding), both wrong. Per token: 8/10. Per sequence-weighted
    batch mean (the plain-function rule): (1.0 * 2 + 0.0 * 2) / 4 = 0.5."""
    right = torch.tensor([[2.0] * 4, [-2.0] * 4]).expand(2, 2, 4)  # class 0 everywhere
    full = torch.zeros(2, 4, dtype=torch.int64)
    padded = torch.tensor([[1, -100, -100, -100], [1, -100, -100, -100]])
    return [(right.clone(), full), (right.clone(), padded)]


def test_metric_objects_are_updated_per_batch_and_computed_once_per_epoch():
    data = token_batches()
    model = Identity2()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0),
                      nn.CrossEntropyLoss(ignore_index=-100), device="cpu", progress=False,
                      metrics={"token_acc": TokenAccuracy(), "acc_fn": accuracy})
    trainer.fit(data, data[1:], epochs=2)  # validation on the padded batch alone: 0 of 2 tokens right
    assert trainer.history["train_token_acc"] == [pytest.approx(0.8)] * 2  # reset every epoch
    assert trainer.history["val_token_acc"] == [0.0, 0.0]  # reset between training and validation
    assert trainer.evaluate(data)["token_acc"] == pytest.approx(0.8)
    plain = trainer.evaluate(data)["acc_fn"]  # a plain function keeps the per-batch rule
    assert not math.isclose(plain, 0.8)


def test_fit_max_epochs_trains_up_to_a_total():
    x, y = blobs(32)
    trainer = make_trainer()
    trainer.fit(batches(x, y, 16), max_epochs=2)
    assert trainer.history["epoch"] == [1, 2]
    trainer.fit(batches(x, y, 16), max_epochs=5)  # 3 more
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5]
    trainer.fit(batches(x, y, 16), max_epochs=4)  # already past it: nothing to do
    assert trainer.epoch == 5
    with pytest.raises(ValueError, match="either epochs=.*or max_epochs="):
        trainer.fit(batches(x, y, 16), epochs=1, max_epochs=6)
    with pytest.raises(ValueError, match="epochs=.*max_epochs="):
        trainer.fit(batches(x, y, 16))


# ----------------------------------------------------------------------------- fp16 GradScaler


def test_a_skipped_fp16_step_does_not_step_the_per_batch_scheduler():
    """A scaled loss that overflows makes the GradScaler skip optimizer.step(); the scheduler must skip too."""
    x, y = blobs(64)
    calls = itertools.count(1)

    def overflow_on_batch_2(outputs, targets):  # finite loss, but x 65536 (the scale) overflows float32
        loss = nn.functional.cross_entropy(outputs, targets)
        return loss * 1e35 if next(calls) == 2 else loss

    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(1))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    trainer = Trainer(model, optimizer, overflow_on_batch_2, device="cpu", progress=False,
                      scheduler=scheduler, scheduler_step="batch")
    trainer.scaler = torch.amp.GradScaler("cpu")  # fp16 needs CUDA; a CPU scaler runs the same code path
    trainer.fit(batches(x, y, 16), epochs=1)
    assert len(steps) == 3 and trainer.scaler.get_scale() < 65536.0  # one of 4 steps was skipped
    assert scheduler.last_epoch == 3
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)


# ----------------------------------------------------------------------------- hooks


def test_on_before_optimizer_step_sees_the_accumulated_unclipped_gradients():
    x, y = blobs()
    data = batches(x, y, 8)  # 8 batches, accumulated in pairs: 4 optimizer steps
    manual = mlp()
    optimizer = torch.optim.SGD(manual.parameters(), lr=0.5)
    expected = []
    for i in range(0, len(data), 2):
        for xb, yb in data[i:i + 2]:
            (nn.functional.cross_entropy(manual(xb), yb) / 2).backward()
        expected.append(float(nn.utils.clip_grad_norm_(manual.parameters(), max_norm=0.05)))
        optimizer.step()
        optimizer.zero_grad()

    class GradNorm(Callback):
        def __init__(self) -> None:
            self.norms: list[float] = []

        def on_before_optimizer_step(self, trainer):
            grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    recorder = GradNorm()
    trainer = make_trainer(mlp(), lr=0.5, grad_clip=0.05, accumulate=2, callbacks=[recorder])
    trainer.fit(data, epochs=1)
    assert recorder.norms == pytest.approx(expected, rel=1e-5)
    assert min(expected) > 0.05  # so the callback ran before the clip


def test_on_exception_hears_the_error_before_it_propagates():
    heard = []

    class Listener(Callback):
        def on_exception(self, trainer, exception):
            heard.append(exception)

        def on_fit_end(self, trainer):
            heard.append("fit_end")

    x, y = blobs(16)
    model = mlp()

    def broken_loss(outputs, targets):
        raise RuntimeError("boom")

    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), broken_loss, device="cpu",
                      progress=False, callbacks=[Listener()])
    with pytest.raises(RuntimeError, match="boom") as error:
        trainer.fit(batches(x, y, 8), epochs=1)
    assert heard == [error.value]  # and no on_fit_end


# ----------------------------------------------------------------------------- the benchmark script


@pytest.mark.slow
def test_benchmark_quick_run_prints_its_table():
    script = ROOT / "benchmarks" / "bench_trainer.py"
    result = subprocess.run([sys.executable, str(script), "--quick", "--no-lightning"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "hand-written loop" in result.stdout and "helpers.Trainer" in result.stdout
    assert "digits CNN" in result.stdout and "tiny MLP" in result.stdout
