"""Tests of helpers.checkpoint and Trainer.save/resume: exact resume, atomic writes, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import checkpoint
from helpers.callbacks import Callback, SaveCheckpoint
from helpers.checkpoint import CheckpointMismatch
from helpers.trainer import Trainer, accuracy

EPOCHS, STOP_AFTER = 5, 2


def data() -> TensorDataset:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(96, 4, generator=gen)
    return TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())


def make_run(seed: int, loader_kind: str = "dataloader", callbacks=()) -> tuple[Trainer, object, object]:
    """A run whose result depends on every RNG: shuffled data, dropout, and model init."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    dataset = data()
    if loader_kind == "dataloader":
        train = DataLoader(dataset, batch_size=16, shuffle=True)  # no generator: the global RNG shuffles
    else:
        from helpers.data import TensorBatchLoader

        train = TensorBatchLoader(*dataset.tensors, batch_size=16, shuffle=True)
    val = DataLoader(dataset, batch_size=32)
    trainer = Trainer(model, optimizer, nn.CrossEntropyLoss(), device="cpu", scheduler=scheduler,
                      metrics={"accuracy": accuracy}, callbacks=callbacks, progress=False)
    return trainer, train, val


def assert_same_run(a: Trainer, b: Trainer) -> None:
    assert a.history == b.history
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name
    assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("loader_kind", ["dataloader", "tensorbatchloader"])
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, loader_kind):
    whole, train, val = make_run(seed=0, loader_kind=loader_kind)
    whole.fit(train, val, epochs=EPOCHS)

    first, train, val = make_run(seed=0, loader_kind=loader_kind)
    first.fit(train, val, epochs=STOP_AFTER)
    first.save(tmp_path / "run.pt")
    torch.rand(1000), random.random(), np.random.rand()  # the new "process" starts from other RNG states

    second, train, val = make_run(seed=123, loader_kind=loader_kind)  # other initial weights too
    second.resume(tmp_path / "run.pt")
    assert second.epoch == STOP_AFTER
    second.fit(train, val, epochs=EPOCHS - second.epoch)
    assert second.history["epoch"] == list(range(1, EPOCHS + 1))
    assert_same_run(whole, second)


def test_resume_without_the_rng_states_would_differ(tmp_path, monkeypatch):
    """The control experiment: the exact-resume test above can tell a missing RNG restore."""
    whole, train, val = make_run(seed=0)
    whole.fit(train, val, epochs=EPOCHS)
    first, train, val = make_run(seed=0)
    first.fit(train, val, epochs=STOP_AFTER)
    first.save(tmp_path / "run.pt")
    torch.manual_seed(99)
    monkeypatch.setattr(checkpoint, "set_rng_states", lambda states: None)
    second, train, val = make_run(seed=123)
    second.resume(tmp_path / "run.pt").fit(train, val, epochs=EPOCHS - STOP_AFTER)
    assert whole.history["train_loss"][:STOP_AFTER] == second.history["train_loss"][:STOP_AFTER]
    assert not torch.equal(whole.model[0].weight, second.model[0].weight)


class Crash(Callback):
    """Simulates a crash (an exception) right after epoch `after` has been saved."""

    def __init__(self, after: int) -> None:
        self.after = after

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] == self.after:
            raise RuntimeError("crash")  # not KeyboardInterrupt: fit() ends cleanly on Ctrl-C


def test_resume_after_a_crash_from_the_save_checkpoint_callback(tmp_path):
    whole, train, val = make_run(seed=0)
    whole.fit(train, val, epochs=EPOCHS)
    path = tmp_path / "last.pt"
    crashed, train, val = make_run(seed=0, callbacks=[SaveCheckpoint(path), Crash(after=3)])
    with pytest.raises(RuntimeError, match="crash"):
        crashed.fit(train, val, epochs=EPOCHS)
    resumed, train, val = make_run(seed=7, callbacks=[SaveCheckpoint(path)])
    resumed.resume(path).fit(train, val, max_epochs=EPOCHS)
    assert resumed.epoch == EPOCHS
    assert_same_run(whole, resumed)


def test_checkpoint_contents_load_with_weights_only(tmp_path):
    trainer, train, val = make_run(seed=0)
    trainer.fit(train, val, epochs=1)
    path = trainer.save(tmp_path / "sub" / "run.pt")  # missing folders are created
    state = torch.load(path, weights_only=True)
    assert set(state) == {*checkpoint.TRAINER_KEYS, "callbacks"}
    assert state["model_class"] == "Sequential"
    assert state["model_shapes"] == {"0.weight": [16, 4], "0.bias": [16], "3.weight": [2, 16], "3.bias": [2]}
    assert state["epoch"] == 1 and state["history"] == trainer.history
    assert set(state["rng"]) >= {"python", "numpy", "torch"}


def test_rng_states_round_trip():
    states = checkpoint.rng_states()
    expected = (random.random(), np.random.rand(3).tolist(), torch.rand(3))
    random.random(), np.random.rand(5), torch.rand(5)
    checkpoint.set_rng_states(states)
    got = (random.random(), np.random.rand(3).tolist(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_a_failed_save_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    trainer, train, val = make_run(seed=0)
    path = trainer.save(tmp_path / "run.pt")
    old_bytes = path.read_bytes()
    trainer.fit(train, val, epochs=1)

    real_save = torch.save

    def save_then_crash(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)  # most of the bytes are written...
        file.truncate(100)  # ...then the disk fills up
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(OSError, match="No space left"):
        trainer.save(path)
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 0


def test_missing_checkpoint_names_the_path(tmp_path):
    trainer, _, _ = make_run(seed=0)
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        trainer.resume(tmp_path / "nowhere.pt")


def test_checkpoint_of_another_model_names_the_differences(tmp_path):
    trainer, _, _ = make_run(seed=0)
    path = trainer.save(tmp_path / "run.pt")
    other = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2), nn.Linear(2, 2))
    other_trainer = Trainer(other, torch.optim.SGD(other.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                            device="cpu", progress=False)
    with pytest.raises(CheckpointMismatch) as error:
        other_trainer.resume(path)
    message = str(error.value)
    assert "missing in the checkpoint: 4.weight, 4.bias" in message
    assert "0.weight is (16, 4) there but (32, 4) here" in message
    assert "run.pt" in message
    with pytest.raises(CheckpointMismatch, match="not in this model: 3.weight"):
        checkpoint.load_weights(nn.Sequential(nn.Linear(4, 16)), path)


def test_load_weights_from_a_trainer_checkpoint_or_a_bare_state_dict(tmp_path):
    trainer, _, _ = make_run(seed=0)
    path = trainer.save(tmp_path / "run.pt")
    fresh, _, _ = make_run(seed=5)
    checkpoint.load_weights(fresh.model, path)
    assert torch.equal(fresh.model[0].weight, trainer.model[0].weight)
    torch.save(trainer.model.state_dict(), tmp_path / "bare.pt")
    other, _, _ = make_run(seed=6)
    checkpoint.load_weights(other.model, tmp_path / "bare.pt")
    assert torch.equal(other.model[3].bias, trainer.model[3].bias)
    with pytest.raises(ValueError, match="not a Trainer checkpoint"):
        other.resume(tmp_path / "bare.pt")


class NotATensor:
    pass


def test_unsafe_or_broken_files_get_readable_errors(tmp_path):
    torch.save({"model": NotATensor()}, tmp_path / "unsafe.pt")
    with pytest.raises(RuntimeError, match="weights_only=True"):
        checkpoint.load_checkpoint(tmp_path / "unsafe.pt")
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RuntimeError, match="not a readable checkpoint"):
        checkpoint.load_checkpoint(tmp_path / "broken.pt")


def test_resume_without_the_saved_scheduler_is_refused(tmp_path):
    trainer, _, _ = make_run(seed=0)
    path = trainer.save(tmp_path / "run.pt")
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    plain = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9), nn.CrossEntropyLoss(),
                    device="cpu", progress=False)
    with pytest.raises(ValueError, match="scheduler"):
        plain.resume(path)


def test_model_shapes_lists_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    shapes = checkpoint.model_shapes(model)
    assert shapes["0.weight"] == [2, 3] and shapes["1.running_mean"] == [2] and shapes["1.num_batches_tracked"] == []


def test_resume_restores_the_grad_scaler_or_refuses_clearly(tmp_path):
    saved, train, val = make_run(seed=0)
    saved.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # fp16 needs CUDA; the state is the same
    saved.fit(train, val, epochs=1)
    path = saved.save(tmp_path / "run.pt")
    with_scaler, _, _ = make_run(seed=1)
    with_scaler.scaler = torch.amp.GradScaler("cpu")
    with_scaler.resume(path)
    assert with_scaler.scaler.state_dict() == saved.scaler.state_dict()
    without, _, _ = make_run(seed=1)
    with pytest.raises(ValueError, match=r"GradScaler.*amp='fp16'.*load_weights"):
        without.resume(path)


def test_compiled_models_save_plain_keys_and_resume_either_way(tmp_path):
    plain, _, _ = make_run(seed=0)
    compiled, _, _ = make_run(seed=1)
    compiled.model = torch.compile(compiled.model)  # compiles lazily, at the first call: not here
    assert next(iter(compiled.model.state_dict())).startswith("_orig_mod.")
    path = compiled.save(tmp_path / "compiled.pt")
    state = checkpoint.load_checkpoint(path)
    assert list(state["model"]) == list(plain.model.state_dict()) == list(state["model_shapes"])
    plain.resume(path)
    assert torch.equal(plain.model[0].weight, compiled.model._orig_mod[0].weight)
    again, _, _ = make_run(seed=2)
    again.model = torch.compile(again.model)
    again.resume(plain.save(tmp_path / "plain.pt"))
    assert torch.equal(again.model._orig_mod[0].weight, plain.model[0].weight)
    fresh = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    assert torch.equal(checkpoint.load_weights(fresh, path)[3].bias, compiled.model._orig_mod[3].bias)
