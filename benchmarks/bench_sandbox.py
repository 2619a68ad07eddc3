"""What does safe grading cost? `nbgrader autograde` of honest work, sandboxed vs stock.

Builds two temporary copies of the course with assignment 01 and N honest submissions (the
reference solution): one with the course's nbgrader_config.py (intake, notebook restoration,
two sandboxed kernels per notebook with the test cells in their own: docs/grading-sandbox.md)
and one where the config's last lines put nbgrader's stock preprocessors and the plain python3
kernel back (kernels stopped at once in both, as TwoKernelExecute does). It then runs
`nbgrader autograde --force` on each in turn, alternating, so that a busy machine slows both
alike, and reports the median wall time per command and per notebook and their ratio.

    python benchmarks/bench_sandbox.py [--students 4] [--rounds 3]

Also writes benchmarks/results/bench_sandbox.json (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01_tensors"

STOCK = '''
# --- benchmark baseline: nbgrader's stock pipeline and the plain python3 kernel ---
c.Autograde.sanitize_preprocessors = ["nbgrader.preprocessors." + n for n in
    ("ClearOutput", "DeduplicateIds", "OverwriteKernelspec", "OverwriteCells", "CheckCellMetadata")]
c.Autograde.autograde_preprocessors = ["nbgrader.preprocessors.Execute", "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata"]
# TwoKernelExecute stops its kernels at once (nothing to save); do the same here, so that the
# ratio measures the sandbox, the second kernel and the restoration, not a graceful shutdown.
c.Execute.shutdown_kernel = "immediate"
'''


def nbgrader(course: Path, *args: str) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"nbgrader {' '.join(args)} failed in {course}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return elapsed


def make_course(root: Path, students: int, stock: bool) -> Path:
    course = root / ("stock" if stock else "sandbox")
    (course / "source").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course)
    if stock:
        with open(course / "nbgrader_config.py", "a") as config:
            config.write(STOCK)
    shutil.copytree(REPO / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    for index in range(students):
        folder = course / "submitted" / f"student{index:02d}" / ASSIGNMENT
        folder.mkdir(parents=True)
        shutil.copy(REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", folder)
        (folder / "timestamp.txt").write_text("2026-11-23 12:00:00.000000 UTC")
    return course


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from grader.sandbox import bwrap_problem

    problem = bwrap_problem()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        courses = {"stock": make_course(Path(tmp), args.students, True),
                   "sandbox": make_course(Path(tmp), args.students, False)}
        times: dict[str, list[float]] = {"stock": [], "sandbox": []}
        for round_ in range(args.rounds):
            order = ("stock", "sandbox") if round_ % 2 == 0 else ("sandbox", "stock")
            for name in order:
                times[name].append(nbgrader(courses[name], "autograde", ASSIGNMENT, "--force"))
                print(f"round {round_ + 1}: {name:8s} {times[name][-1]:6.1f} s", flush=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["sandbox"] / medians["stock"]
    print(f"\n{args.students} honest submissions of {ASSIGNMENT}, {args.rounds} rounds, "
          f"sandbox mode: {'bwrap' if problem is None else 'rlimits only (' + problem + ')'}")
    for name in ("stock", "sandbox"):
        print(f"  {name:8s} median {medians[name]:6.1f} s per command, "
              f"{medians[name] / args.students:5.2f} s per notebook")
    print(f"  ratio sandbox / stock: {ratio:.2f}")
    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "bench_sandbox.json").write_text(json.dumps({
        "students": args.students, "rounds": args.rounds, "times_s": times, "median_s": medians,
        "ratio": ratio, "bwrap": problem is None, "machine": platform.platform(), "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
