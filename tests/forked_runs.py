"""Run many variants of one assignment's notebook quickly: one warm interpreter, a fork each.

Grading a submission costs two kernel starts, each importing torch (about 5.5 s of CPU of a
submission's 7.5), so the round trip grades through nbgrader only the submissions that show
something about the grader (tests/graded_assignments.py). The typical wrong answers show
something about the *tests*: that each one fails its own test cells, in the part students can
see, and no other. For those this module runs each variant the way a student's own
"Restart and Run All" does (IPython, one namespace, test cells after the answers, errors do not
stop the run), but in a child forked from one process that has imported torch, IPython and
helpers once: a variant then costs only its own cells.

The warm interpreter is `python tests/forked_runs.py`, started once per test process (the
first `start_runs`; a fresh interpreter, not the test process, so no test state leaks into the
children) and kept for the next assignments, whose imports it then already has. It reads one
job per line on stdin, the path of a JOB.json, and answers one line on stdout when the job is
done. JOB.json: {"folder": the assignment's release folder (copied for each variant: its data
files), "runs": {label: notebook JSON}}; its own folder takes the copies, logs and results. For
each label it writes <label>.json there: one entry per code cell, in order: {"grade_id",
"error"}, where "error" is None or what IPython's kernel would send as the cell's error output
(ename, evalue and the rendered traceback, "Cell In[n], line m" included, which grader.feedback
reads).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import selectors
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

CELL_TIMEOUT = 120  # s, as the course's Execute.timeout


_RUNNER: subprocess.Popen | None = None  # this test process's warm interpreter (start_runs)


def start_runs(folder: Path, runs: dict[str, Any], work: Path) -> Path:
    """Start running each notebook of `runs` (label -> nbformat notebook) in a fork of the warm
    interpreter, in a copy of `folder`; `finish_runs(job)` waits for the results."""
    global _RUNNER
    work.mkdir(parents=True, exist_ok=True)
    job = work / "job.json"
    job.write_text(json.dumps({"folder": str(folder), "runs": runs}))
    if _RUNNER is None or _RUNNER.poll() is not None:
        _RUNNER = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   env={**os.environ, "MPLBACKEND": "Agg"}, text=True,
                                   start_new_session=True)  # its forks die with it (_stop)
    assert _RUNNER.stdin is not None
    _RUNNER.stdin.write(f"{job}\n")
    _RUNNER.stdin.flush()
    return job


def _stop(runner: subprocess.Popen) -> None:
    global _RUNNER
    try:
        os.killpg(runner.pid, signal.SIGKILL)  # the interpreter and any fork still running
    except ProcessLookupError:
        pass
    runner.wait()
    _RUNNER = None


def finish_runs(job: Path, timeout: float = 900) -> dict[str, list[dict]]:
    """label -> the code cells' results of the job `start_runs` started (see above)."""
    runner = _RUNNER
    assert runner is not None and runner.stdout is not None, "finish_runs without start_runs"
    with selectors.DefaultSelector() as selector:
        selector.register(runner.stdout, selectors.EVENT_READ)
        answer = runner.stdout.readline().strip() if selector.select(timeout) else f"timed out after {timeout} s"
    if answer != f"done {job}":
        _stop(runner)
        log = job.parent / "runner.log"
        raise AssertionError(f"the forked runs failed: {answer or 'the interpreter died'}\n"
                             f"{log.read_text()[-3000:] if log.exists() else ''}")
    labels = json.loads(job.read_text())["runs"]
    return {label: json.loads((job.parent / f"{label}.json").read_text()) for label in labels}


def _child(source_cells: list[tuple[str | None, str]]) -> list[dict]:
    from IPython.core.interactiveshell import InteractiveShell

    class RecordingShell(InteractiveShell):
        """IPython as a kernel runs it, keeping each cell's error as the kernel would send it."""

        last_error: dict | None = None

        def _showtraceback(self, etype, evalue, stb):  # ipykernel publishes exactly these
            self.last_error = {"ename": getattr(etype, "__name__", str(etype)), "evalue": str(evalue),
                               "traceback": list(stb)}

    def on_alarm(signum, frame):
        raise TimeoutError(f"cell ran over {CELL_TIMEOUT} s")

    signal.signal(signal.SIGALRM, on_alarm)
    shell = RecordingShell.instance()
    results = []
    for grade_id, source in source_cells:
        shell.last_error = None
        signal.alarm(CELL_TIMEOUT)
        try:
            outcome = shell.run_cell(source, store_history=True)
        finally:
            signal.alarm(0)
        error = None if outcome.success else (shell.last_error or {"ename": "Error", "evalue": repr(
            outcome.error_in_exec or outcome.error_before_exec), "traceback": []})
        results.append({"grade_id": grade_id, "error": error})
    sys.stdout.flush()
    sys.stderr.flush()
    return results


def run_job(job_path: Path) -> None:
    """Run the job's notebooks, each in a fork of this process (see above)."""
    job = json.loads(job_path.read_text())
    folder, work = Path(job["folder"]), job_path.parent
    # Once for every fork: IPython, and the modules the notebooks import (top-level statements:
    # torch, helpers, torchvision, ...); torch._dynamo too when they use torch.optim, since the
    # first optimizer a process creates imports it (1.5-2 s in torch 2.14).
    import IPython.core.interactiveshell  # noqa: F401

    sources = ["".join(cell["source"]) for notebook in job["runs"].values() for cell in notebook["cells"]
               if cell["cell_type"] == "code"]
    modules = set(re.findall(r"^(?:import|from) ([\w.]+)", "\n".join(sources), re.MULTILINE))
    if any("optim" in source for source in sources):
        modules.add("torch._dynamo")
    for module in sorted(modules):
        try:
            importlib.import_module(module)
        except ImportError:  # the fork then reports it, in the cell that imports it
            pass

    for label, notebook in job["runs"].items():
        cells = [(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"), "".join(cell["source"]))
                 for cell in notebook["cells"] if cell["cell_type"] == "code"]
        place = work / label
        shutil.copytree(folder, place)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: run the notebook, write its results, never return
            code = 1
            try:
                log = os.open(work / f"{label}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(log, 1)  # nothing it prints reaches the answer pipe, C code's output included
                os.dup2(log, 2)
                os.chdir(place)
                tmp = place / ".tmp"
                tmp.mkdir()
                os.environ["TMPDIR"] = str(tmp)
                tempfile.tempdir = None  # read TMPDIR again
                results = _child(cells)
                (work / f"{label}.json").write_text(json.dumps(results))
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            log_path = work / f"{label}.log"
            raise RuntimeError(f"{label}: the run ended with status {status}:\n"
                               f"{log_path.read_text()[-3000:] if log_path.exists() else ''}")


def main() -> None:
    """The warm interpreter: a job path per line on stdin, `done JOB` (or why not) on stdout."""
    answers = os.fdopen(os.dup(1), "w")  # the answer pipe; fd 1 and 2 go to each job's runner.log
    for line in sys.stdin:
        job = Path(line.strip())
        log = os.open(job.parent / "runner.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        try:
            run_job(job)
            answer = f"done {job}"
        except Exception as error:  # noqa: BLE001 (reported to the test, which fails with the log)
            traceback.print_exc()
            answer = f"failed {job}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(answer + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
