"""How fast does a class get graded: nbgrader's sequential autograde vs grader.parallel.

Makes a temporary course with assignment 01 and N synthetic submissions (a mix of the
reference solution, the untouched release notebook, typical wrong answers from
tests/wrong_answers/, and hostile-but-safe ones: a cell that raises, a cell that calls
sys.exit(0), a cell that prints 10 000 lines), copies it, and grades one copy with
`nbgrader autograde 01_tensors` (one process, one student after another) and the other with
`python -m grader.parallel autograde 01_tensors` in the same run. Prints submissions
per minute for each, their ratio, and checks that both gave every student the same score.

    python benchmarks/bench_grading.py [--n 100] [--jobs N [N ...]] [--quick]

The target: 100 submissions of assignment 01 in under 5 minutes on 2 cores. Uses whatever
nbgrader_config.py configures (sandbox kernel included). Also writes
benchmarks/results/bench_grading.json (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from grading import make_course_copy, nbgrader, read_gradebook, replace_cell, submit  # noqa: E402
from wrong_answers import WRONG_ANSWERS  # noqa: E402

ASSIGNMENT = "01_tensors"
NOTEBOOK = "01_tensors.ipynb"


def submissions(n: int) -> list[tuple[str, nbformat.NotebookNode]]:
    """n (student id, notebook) pairs cycling through right, blank, wrong and hostile work."""
    source = nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    kinds: list[tuple[str, nbformat.NotebookNode | None]] = [("right", source), ("blank", None)]
    for index, wrong in enumerate(WRONG_ANSWERS[ASSIGNMENT]):
        kinds.append((f"wrong{index:02d}", replace_cell(source, wrong.cell, wrong.code.strip("\n"))))
    kinds += [
        ("raises", replace_cell(source, "one_hot", 'raise RuntimeError("student code raised")')),
        ("exits", replace_cell(source, "batched_matmul", "import sys\nsys.exit(0)")),
        ("chatty", replace_cell(source, "q1", 'q1_answer = "b"\nfor i in range(10_000):\n    print(i)')),
    ]
    return [(f"{kinds[i % len(kinds)][0]}-{i:03d}", kinds[i % len(kinds)][1]) for i in range(n)]


def build_course(folder: Path, n: int) -> tuple[Path, list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    course = make_course_copy(folder, ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    students = []
    for student, notebook in submissions(n):
        submit(course, student, ASSIGNMENT, {NOTEBOOK: notebook if notebook is not None else release})
        students.append(student)
    return course, students


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="submissions (default 100)")
    parser.add_argument("--jobs", type=int, nargs="+", default=None,
                        help="parallel jobs; several values time one run each (default: the usable cores)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 6 submissions")
    args = parser.parse_args()
    n = 6 if args.quick else args.n
    load_before = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        print(f"Preparing a course with {n} submissions of {ASSIGNMENT} ...", flush=True)
        course, students = build_course(Path(tmp) / "base", n)
        sequential_course = Path(tmp) / "sequential"
        shutil.copytree(course, sequential_course)
        print("nbgrader autograde (sequential) ...", flush=True)
        sequential_s, sequential = timed([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT],
                                         sequential_course)
        print(f"  {sequential_s:.1f} s (exit {sequential.returncode})", flush=True)
        seq_scores = read_gradebook(sequential_course, ASSIGNMENT, students).total

        runs = []
        for jobs in args.jobs or [cores]:
            parallel_course = Path(tmp) / f"parallel-{jobs}"
            shutil.copytree(course, parallel_course)
            print(f"grader.parallel autograde --jobs {jobs} ...", flush=True)
            parallel_s, parallel = timed([sys.executable, "-m", "grader.parallel", "autograde", ASSIGNMENT,
                                          "--jobs", str(jobs), "--log-dir", str(Path(tmp) / f"logs-{jobs}")],
                                         parallel_course)
            print(f"  {parallel_s:.1f} s (exit {parallel.returncode})", flush=True)
            if parallel.returncode != 0:
                print(parallel.stdout[-3000:], parallel.stderr[-3000:])
            par_scores = read_gradebook(parallel_course, ASSIGNMENT, students).total
            differ = {s: (seq_scores[s], par_scores[s]) for s in students if seq_scores[s] != par_scores[s]}
            runs.append({"jobs": jobs, "seconds": parallel_s, "per_minute": n / parallel_s * 60,
                         "speedup": sequential_s / parallel_s, "exit": parallel.returncode, "scores_differ": differ})

    print(f"\n{n} submissions of {ASSIGNMENT} on {cores} cores ({platform.machine()}, "
          f"load average before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}):")
    print(f"  nbgrader autograde (sequential)          {sequential_s:7.1f} s  "
          f"{n / sequential_s * 60:6.1f} submissions/min")
    for run in runs:
        print(f"  grader.parallel --jobs {run['jobs']:<3}      {run['seconds']:7.1f} s  "
              f"{run['per_minute']:6.1f} submissions/min  speed-up {run['speedup']:.2f}x  "
              f"same scores as sequential: {not run['scores_differ']}"
              + (f" (differ: {run['scores_differ']})" if run["scores_differ"] else ""))
    best = min(run["seconds"] for run in runs) * 100 / n
    print(f"  target, 100 submissions in under 5 minutes: {'met' if best < 300 else 'NOT met'} "
          f"(best run: {best / 60:.1f} min per 100)")

    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "bench_grading.json").write_text(json.dumps({
        "n": n, "cores": cores, "load_before": load_before, "sequential_s": sequential_s,
        "sequential_exit": sequential.returncode, "parallel": runs,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
