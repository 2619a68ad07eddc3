"""How much faster is TensorBatchLoader than DataLoader(TensorDataset) for in-memory data?

Times one shuffled epoch over the digits training split (1257 samples) at batch size 64 with
each loader, alternating between them so that any slowdown of the machine hits both equally,
and reports the medians and their ratio. The loop only fetches batches (no model), which is
what differs between the two.

    python benchmarks/bench_loader.py [--repeats 31] [--batch-size 64]

Also writes benchmarks/results/bench_loader.json (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from helpers.data import TensorBatchLoader, digits_tensors


def epoch_seconds(loader) -> float:
    start = time.perf_counter()
    for xb, yb in loader:
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    x, y = digits_tensors(seed=0)["train"]
    loaders = {
        "TensorBatchLoader": TensorBatchLoader(x, y, batch_size=args.batch_size, shuffle=True),
        "DataLoader(TensorDataset)": DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True),
    }
    times: dict[str, list[float]] = {name: [] for name in loaders}
    for name, loader in loaders.items():  # one warm-up epoch each, not timed
        epoch_seconds(loader)
    for _ in range(args.repeats):
        for name, loader in loaders.items():  # interleaved
            times[name].append(epoch_seconds(loader))

    medians = {name: statistics.median(t) for name, t in times.items()}
    fastest = {name: min(t) for name, t in times.items()}  # the cost with the least interference
    fast, slow = "TensorBatchLoader", "DataLoader(TensorDataset)"
    speedup = {"medians": medians[slow] / medians[fast], "fastest": fastest[slow] / fastest[fast]}
    print(f"One epoch over {len(y)} digits, batch size {args.batch_size}, {args.repeats} interleaved runs "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}):")
    for name in loaders:
        print(f"  {name:<27} median {medians[name] * 1e3:7.2f} ms   fastest {fastest[name] * 1e3:7.2f} ms")
    print(f"  TensorBatchLoader is {speedup['medians']:.1f}x faster (medians), {speedup['fastest']:.1f}x (fastest)")

    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    summary = {"samples": len(y), "batch_size": args.batch_size, "repeats": args.repeats, "torch": torch.__version__,
               "median_seconds": medians, "fastest_seconds": fastest, "speedup": speedup, "all_seconds": times}
    (results / "bench_loader.json").write_text(json.dumps(summary, indent=2) + "\n")

if __name__ == "__main__":
    main()
