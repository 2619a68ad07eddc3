"""Tests of helpers.callbacks: the base class, EarlyStopping, BestModel, SaveCheckpoint."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

from helpers.callbacks import BestModel, Callback, CSVLogger, EarlyStopping, SaveCheckpoint
from helpers.checkpoint import load_checkpoint, load_weights
from helpers.trainer import Trainer


def toy_data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=gen)
    return list(zip(x.split(16), (x.sum(1, keepdim=True)).split(16)))


class Snapshots(Callback):
    """Records the weights after every epoch (placed before the callback under test)."""

    def __init__(self) -> None:
        self.weights: dict[int, torch.Tensor] = {}

    def on_epoch_end(self, trainer, logs):
        self.weights[int(logs["epoch"])] = trainer.model.weight.detach().clone()


def scripted_trainer(val_scores: list[float], callbacks: list[Callback]) -> Trainer:
    """A trainer whose weights change every epoch and whose val_score follows `val_scores`."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    scores = iter(val_scores)

    def score(outputs, targets):  # the scripted value on validation, 0 on training batches
        return next(scores) if not model.training else 0.0

    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss(), device="cpu",
                   metrics={"score": score}, callbacks=[Snapshots(), *callbacks], progress=False)


def run(trainer: Trainer, epochs: int) -> None:
    data = toy_data()
    trainer.fit(data, data[:1], epochs=epochs)  # one validation batch: one score per epoch


def snapshots(trainer: Trainer) -> Snapshots:
    return trainer.callbacks[0]  # type: ignore[return-value]


def test_base_callback_events_do_nothing():
    callback = Callback()
    assert callback.on_fit_start(None) is None and callback.on_epoch_start(None, 1) is None  # type: ignore[arg-type]
    assert callback.on_batch_end(None, 0, torch.tensor(1.0)) is None  # type: ignore[arg-type]
    assert callback.on_epoch_end(None, {}) is None and callback.on_fit_end(None) is None  # type: ignore[arg-type]
    trainer = scripted_trainer([1.0] * 2, [Callback()])
    run(trainer, 2)
    assert trainer.history["epoch"] == [1, 2]


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    stopper = EarlyStopping(monitor="val_score", mode="min", patience=3)
    trainer = scripted_trainer([5.0, 3.0, 4.0, 4.0, 4.0, 1.0, 1.0], [stopper])
    run(trainer, 7)
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5]  # best at 2, then 3 epochs without improvement
    assert (stopper.best, stopper.best_epoch, stopper.stopped_epoch) == (3.0, 2, 5)
    weights = snapshots(trainer).weights
    assert torch.equal(trainer.model.weight, weights[2]) and not torch.equal(weights[2], weights[5])


def test_early_stopping_without_restore_keeps_the_last_weights():
    stopper = EarlyStopping(monitor="val_score", patience=1, restore_best=False)
    trainer = scripted_trainer([1.0, 2.0, 0.5], [stopper])
    run(trainer, 3)
    assert trainer.history["epoch"] == [1, 2]
    assert torch.equal(trainer.model.weight, snapshots(trainer).weights[2])


def test_early_stopping_min_delta_and_mode_max():
    small_steps = EarlyStopping(monitor="val_score", mode="min", patience=2, min_delta=0.1)
    trainer = scripted_trainer([5.0, 4.95, 4.9, 1.0], [small_steps])
    run(trainer, 4)
    assert trainer.history["epoch"] == [1, 2, 3]  # improvements of 0.05 do not count
    rising = EarlyStopping(monitor="val_score", mode="max", patience=2)
    trainer = scripted_trainer([0.5, 0.7, 0.6, 0.8, 0.7, 0.6, 0.9], [rising])
    run(trainer, 7)
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5, 6] and rising.best_epoch == 4
    assert torch.equal(trainer.model.weight, snapshots(trainer).weights[4])


def test_early_stopping_counts_afresh_in_every_fit():
    stopper = EarlyStopping(monitor="val_score", patience=2)
    trainer = scripted_trainer([1.0, 2.0, 3.0, 9.0, 9.0, 9.0], [stopper])
    run(trainer, 3)
    assert trainer.history["epoch"] == [1, 2, 3]
    run(trainer, 3)  # a new fit: 9.0 is its first (and best) value
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5, 6] and stopper.best_epoch == 4


def test_monitoring_a_missing_key_names_the_available_ones():
    trainer = scripted_trainer([1.0], [EarlyStopping(monitor="val_accuracy")])
    with pytest.raises(ValueError, match=r"'val_accuracy'.*val_score"):
        run(trainer, 1)
    trainer = scripted_trainer([], [BestModel()])
    with pytest.raises(ValueError, match="did you pass val_loader"):
        trainer.fit(toy_data(), epochs=1)


@pytest.mark.parametrize("make", [lambda: EarlyStopping(mode="lowest"), lambda: EarlyStopping(patience=0),
                                  lambda: BestModel(mode="up"), lambda: SaveCheckpoint("x.pt", every=0)])
def test_invalid_callback_settings_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_best_model_keeps_the_best_weights_in_memory():
    best = BestModel(monitor="val_score", mode="max")
    trainer = scripted_trainer([0.1, 0.9, 0.5, 0.3], [best])
    with pytest.raises(RuntimeError, match="no weights yet"):
        best.restore(trainer.model)
    run(trainer, 4)
    weights = snapshots(trainer).weights
    assert (best.best, best.best_epoch) == (0.9, 2)
    assert torch.equal(best.best_state["weight"], weights[2])
    assert torch.equal(trainer.model.weight, weights[4])  # BestModel alone does not touch the model
    best.restore(trainer.model)
    assert torch.equal(trainer.model.weight, weights[2])


def test_best_model_saves_each_new_best_to_its_path(tmp_path):
    path = tmp_path / "best.pt"
    best = BestModel(monitor="val_score", mode="min", path=path)
    trainer = scripted_trainer([3.0, 1.0, 2.0, 5.0], [best])
    run(trainer, 4)
    assert load_checkpoint(path)["epoch"] == 2
    model = nn.Linear(3, 1)
    load_weights(model, path)
    assert torch.equal(model.weight, snapshots(trainer).weights[2])


def test_save_checkpoint_every_n_epochs(tmp_path):
    path = tmp_path / "last.pt"
    trainer = scripted_trainer([1.0] * 5, [SaveCheckpoint(path, every=2)])
    run(trainer, 5)
    state = load_checkpoint(path)
    assert state["epoch"] == 4 and state["history"]["epoch"] == [1, 2, 3, 4]


# ----------------------------------------------------------------------------- after resume() and Ctrl-C


@pytest.mark.parametrize("scores", [[3.0, 1.0, 2.0], [3.0, 1.0]])  # [3, 1]: the saved epoch is the best
def test_best_model_after_resume_keeps_the_true_best(tmp_path, scores):
    best_path, last_path = tmp_path / "best.pt", tmp_path / "last.pt"
    # SaveCheckpoint first: its checkpoint is written before BestModel hears of the epoch.
    first = scripted_trainer(scores, [SaveCheckpoint(last_path), BestModel(monitor="val_score", path=best_path)])
    run(first, len(scores))
    best_weights = snapshots(first).weights[2]
    best = BestModel(monitor="val_score", path=best_path)
    resumed = scripted_trainer([5.0], [best]).resume(last_path)
    run(resumed, 1)  # 5.0 is worse than the run's best, 1.0 at epoch 2
    assert load_checkpoint(best_path)["epoch"] == 2
    assert (best.best, best.best_epoch) == (1.0, 2)
    assert torch.equal(best.restore(nn.Linear(3, 1)).weight, best_weights)


def test_early_stopping_goes_on_counting_after_resume_and_restores_the_best(tmp_path):
    path = tmp_path / "last.pt"
    first = scripted_trainer([1.0, 2.0], [SaveCheckpoint(path), EarlyStopping(monitor="val_score", patience=2)])
    run(first, 2)  # best at epoch 1, then one epoch without improvement
    stopper = EarlyStopping(monitor="val_score", patience=2)
    resumed = scripted_trainer([3.0, 0.5, 0.5], [stopper]).resume(path)
    run(resumed, 3)
    assert resumed.history["epoch"] == [1, 2, 3]  # epoch 3 is the second without improvement
    assert (stopper.best, stopper.best_epoch, stopper.stopped_epoch) == (1.0, 1, 3)
    assert torch.equal(resumed.model.weight, snapshots(first).weights[1])
    run(resumed, 1)  # a later fit() counts afresh again
    assert resumed.history["epoch"] == [1, 2, 3, 4] and stopper.best_epoch == 4


class CtrlC(Callback):
    """Presses Ctrl-C after the first batch of epoch `epoch`."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, trainer, batch, loss):
        if trainer.epoch + 1 == self.epoch and batch == 0:
            raise KeyboardInterrupt


def test_ctrl_c_ends_fit_cleanly_and_early_stopping_restores_the_best(capsys):
    ended = []
    stopper = EarlyStopping(monitor="val_score", patience=5)
    trainer = scripted_trainer([3.0, 1.0, 2.0], [stopper, CtrlC(epoch=4)])
    trainer.callbacks.append(type("End", (Callback,), {"on_fit_end": lambda self, t: ended.append(t.epoch)})())
    history = trainer.fit(toy_data(), toy_data()[:1], epochs=6)
    assert history is trainer.history and history["epoch"] == [1, 2, 3] and trainer.epoch == 3
    assert ended == [3]
    assert torch.equal(trainer.model.weight, snapshots(trainer).weights[2])
    assert "stopped by Ctrl-C after 3 complete epochs" in capsys.readouterr().err


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    path = tmp_path / "logs" / "run.csv"
    trainer = scripted_trainer([1.0, 2.0, 3.0], [CSVLogger(path)])
    trainer.fit(toy_data(), epochs=1)  # no validation yet: the val columns come later
    run(trainer, 2)
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == list(trainer.history)
    assert [float(row["epoch"]) for row in rows] == [1, 2, 3]
    for key, values in trainer.history.items():
        got = [float(row[key]) for row in rows]
        assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(got, values)), key
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.csv"]  # no temporary file left


def test_csv_logger_after_resume_has_the_whole_history(tmp_path):
    ckpt, path = tmp_path / "last.pt", tmp_path / "run.csv"
    run(scripted_trainer([1.0, 2.0], [SaveCheckpoint(ckpt), CSVLogger(path)]), 2)
    resumed = scripted_trainer([3.0], [CSVLogger(path)]).resume(ckpt)
    run(resumed, 1)
    with path.open(newline="") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["1", "2", "3"]
