"""Pretrain the course's backbone for lesson 10 and write data/backbone.pt and its SHA-256.

    python -m helpers.lessons.lesson_10_transfer.pretrain

Source task (transfer.py): scikit-learn's 8x8 digits 0-4, the only labelled images the installed
packages ship, in 4 orientations (20 classes: digit and number of quarter turns), every image
seen in many randomly shifted, noisy copies; the lesson transfers the backbone to upright digits
5-9, which it never sees here. A `Backbone` and a linear head of 20 classes are trained with
AdamW and cross-entropy; the head is dropped and the backbone's state dict saved.
Deterministic: seeded, one thread, so two runs give equal weights. It takes about 20 s of CPU
(15 epochs of 57 steps; about 35 s of wall time on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from helpers.lessons.lesson_10_transfer.transfer import (SOURCE_LABELS, WEIGHTS, Backbone, TransferNet, augment, sha256,
                                                         source_task)

__all__ = ["pretrain", "main"]

EPOCHS = 15
BATCH = 64


def pretrain(epochs: int = EPOCHS, max_steps: int | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Train a Backbone on the source task; return its state dict. `max_steps` stops early (tests).
    It runs on one CPU thread (the thread count is restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(epochs, max_steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(epochs: int, max_steps: int | None, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = source_task()
    model = TransferNet(Backbone(), num_classes=SOURCE_LABELS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), BATCH):
            index = order[start:start + BATCH]
            loss = loss_fn(model(augment(x[index], generator)), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if max_steps is not None and step >= max_steps:
                return model.backbone.state_dict()
    return model.backbone.state_dict()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where to write the weights")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    state = pretrain(args.epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    digest = sha256(args.out)
    args.out.with_name(args.out.name + ".sha256").write_text(f"{digest}  {args.out.name}\n")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, sha256 {digest}) in "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
