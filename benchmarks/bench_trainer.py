"""How much does helpers.Trainer cost compared with the loop written by hand?

    python benchmarks/bench_trainer.py            # the full run (a few minutes on 2 CPU cores)
    python benchmarks/bench_trainer.py --quick    # a smoke run (seconds)

Variants, all with the same seed, model, data, batches and number of optimizer steps:
  (a) hand-written loop over pre-batched tensors (a Python list of (x, y) batches)
  (b) the same loop over torch DataLoader(TensorDataset(x, y))
  (c) helpers.Trainer(progress=False) over helpers.data.TensorBatchLoader
  (c') helpers.Trainer(progress=False) over the pre-batched list of (a)
  (d) PyTorch Lightning's Trainer over the same loader as (c), if `lightning` is installed

Every variant also computes the epoch's mean training loss (the hand-written loops with
loss.item() per batch, as the lesson does). The data is not shuffled, so (a), (b), (c) and
(c') do exactly the same arithmetic: the script checks that they end with identical weights.

Workloads: the digits CNN (scikit-learn's 8x8 digits, a small conv net) and a tiny MLP
(2 -> 16 -> 2, batch 32) where the per-step overhead of the loop is most of the time.
Variants run interleaved (a b c c' d, then d c' c b a, ...) so that a slow moment of a shared
machine hits all of them alike; the table shows each one's median time and its ratio to (a).
Timing uses one CPU thread by default (--threads): tiny models gain nothing from more,
and one thread is much less noisy on a busy machine. The clock is the process's CPU time
(time.process_time) by default: on a shared machine, wall time also counts the moments other
programs held the CPU. On an idle machine with one thread the two agree; --clock wall uses
wall time (time.perf_counter).
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from helpers.trainer import Trainer  # noqa: E402

try:
    from helpers.data import TensorBatchLoader
except ImportError:  # the fast loader is optional here: fall back to the pre-batched list
    TensorBatchLoader = None

LIGHTNING_MISSING = "not installed"
L = None  # the lightning module, imported in main() unless --no-lightning (its import takes seconds)


def import_lightning():
    try:
        import lightning
        return lightning
    except ImportError:
        pass
    try:
        import pytorch_lightning
        return pytorch_lightning
    except ImportError:
        return None


class Workload:
    """A model factory, its data and how long to train it."""

    def __init__(self, name: str, make_model: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor,
                 batch_size: int, epochs: int, lr: float) -> None:
        self.name, self.make_model, self.x, self.y = name, make_model, x, y
        self.batch_size, self.epochs, self.lr = batch_size, epochs, lr
        self.batches = list(zip(x.split(batch_size), y.split(batch_size)))

    @property
    def steps(self) -> int:
        return self.epochs * len(self.batches)

    def fresh(self) -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)  # every variant starts from the same weights
        model = self.make_model()
        return model, torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9)


def digits_workload(epochs: int) -> Workload:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.tensor(digits.target, dtype=torch.int64)

    def cnn() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, 10))

    return Workload(f"digits CNN ({len(y)} images, batch 64, {epochs} epochs)", cnn, x, y, 64, epochs, 0.05)


def mlp_workload(steps: int) -> Workload:
    gen = torch.Generator().manual_seed(0)
    batch, per_epoch = 32, 100
    x = torch.randn(batch * per_epoch, 2, generator=gen)
    y = (x[:, 0] * x[:, 1] > 0).long()  # XOR-like quadrants

    def mlp() -> nn.Module:
        return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))

    return Workload(f"tiny MLP (2 -> 16 -> 2, batch 32, {steps} steps)", mlp, x, y, batch, steps // per_epoch, 0.1)


# ----------------------------------------------------------------------------- the variants


def hand_written(work: Workload, loader) -> nn.Module:
    model, optimizer = work.fresh()
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(work.epochs):
        total, count = 0.0, 0
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            count += len(yb)
        epoch_loss = total / count  # noqa: F841  (computed, as any real loop does)
    return model


def variant_a(work: Workload) -> nn.Module:
    return hand_written(work, work.batches)


def variant_b(work: Workload) -> nn.Module:
    return hand_written(work, DataLoader(TensorDataset(work.x, work.y), batch_size=work.batch_size))


def with_trainer(work: Workload, loader) -> nn.Module:
    model, optimizer = work.fresh()
    Trainer(model, optimizer, nn.CrossEntropyLoss(), device="cpu", progress=False).fit(loader, epochs=work.epochs)
    return model


def variant_c(work: Workload) -> nn.Module:
    if TensorBatchLoader is None:
        return with_trainer(work, work.batches)
    return with_trainer(work, TensorBatchLoader(work.x, work.y, batch_size=work.batch_size, shuffle=False))


def variant_c_list(work: Workload) -> nn.Module:
    return with_trainer(work, work.batches)


def variant_d(work: Workload) -> nn.Module:
    model, optimizer = work.fresh()

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.loss_fn = nn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            loss = self.loss_fn(self.model(xb), yb)
            self.log("train_loss", loss, on_step=False, on_epoch=True)  # the epoch's mean loss
            return loss

        def configure_optimizers(self):
            return optimizer

    loader = work.batches if TensorBatchLoader is None else \
        TensorBatchLoader(work.x, work.y, batch_size=work.batch_size, shuffle=False)
    trainer = L.Trainer(max_epochs=work.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        num_sanity_val_steps=0)
    trainer.fit(Module(), train_dataloaders=loader)
    return model


def variants() -> dict[str, Callable[[Workload], nn.Module]]:
    found = {"(a) hand-written loop": variant_a, "(b) loop over DataLoader": variant_b}
    loader = "TensorBatchLoader" if TensorBatchLoader is not None else "pre-batched list"
    found[f"(c) helpers.Trainer ({loader})"] = variant_c
    if TensorBatchLoader is not None:
        found["(c') helpers.Trainer (pre-batched list)"] = variant_c_list
    if L is not None:
        found[f"(d) Lightning {L.__version__}"] = variant_d
    return found


# ----------------------------------------------------------------------------- timing


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def time_once(run: Callable[[Workload], nn.Module], work: Workload,
              clock: Callable[[], float]) -> tuple[float, nn.Module]:
    gc.collect()  # not timed: collect the garbage of the previous run (Lightning leaves a lot) first
    start = clock()
    model = run(work)
    return clock() - start, model


def bench(work: Workload, repeats: int, clock: str) -> None:
    runs = variants()
    times: dict[str, list[float]] = {name: [] for name in runs}
    final: dict[str, nn.Module] = {}
    for name, run in runs.items():  # warm-up round, not timed: first-call costs, lazy imports
        final[name] = run(work)
    order = list(runs)
    for _ in range(repeats):
        for name in order:  # interleaved: a b c d, then d c b a, ...
            seconds, final[name] = time_once(runs[name], work, CLOCKS[clock])
            times[name].append(seconds)
        order.reverse()  # so that no variant always runs first (or right after the slowest one)
    base = statistics.median(times["(a) hand-written loop"])
    print(f"\n{work.name}: {work.steps} optimizer steps, median of {repeats} interleaved runs ({clock} time)")
    print(f"{'variant':<42}{'median s':>10}{'ratio':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<42}{median:>10.3f}{median / base:>8.2f}")
    if L is None:
        print(f"{'(d) PyTorch Lightning':<42}{LIGHTNING_MISSING:>18}")
    reference = list(final["(a) hand-written loop"].parameters())
    same = all(all(torch.equal(p, q) for p, q in zip(reference, final[name].parameters()))
               for name in final if not name.startswith("(d)"))
    print(f"(a), (b), (c) end with identical weights: {'yes' if same else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 repeat: a smoke test, not a measurement")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per variant (default 9, quick 1)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="cpu: process CPU time (default); wall")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--no-lightning", action="store_true", help="skip (d) even if Lightning is installed")
    args = parser.parse_args()
    global L, LIGHTNING_MISSING
    if args.no_lightning:
        LIGHTNING_MISSING = "skipped"
    else:
        L = import_lightning()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)  # no "GPU available: False" banners
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning|pytorch_lightning")
    repeats = args.repeats or (1 if args.quick else 9)
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s); Lightning: "
          f"{L.__version__ if L is not None else LIGHTNING_MISSING}")
    bench(digits_workload(epochs=1 if args.quick else 5), repeats, args.clock)
    bench(mlp_workload(steps=200 if args.quick else 3000), repeats, args.clock)


if __name__ == "__main__":
    main()
