"""Run many variants of one assignment's notebook quickly: one warm interpreter, a fork each.

Grading a submission costs two kernel starts, each importing torch (about 5.5 s of CPU of a
submission's 7.5), so the round trip grades through nbgrader only the submissions that show
something about the grader (tests/graded_assignments.py). The typical wrong answers show
something about the *tests*: that each one fails its own test cells, in the part students can
see, and no other. For those this module runs each variant the way a student's own
"Restart and Run All" does (IPython, one namespace, test cells after the answers, errors do not
stop the run), but in a child forked from one process that has imported torch, IPython and
helpers once: a variant then costs only its own cells.

Run as a script by `run_notebooks` (a fresh interpreter, not the test process: no test state
leaks into the children):

    python tests/forked_runs.py JOB.json

JOB.json: {"folder": the assignment's release folder (copied for each variant: its data files),
"work": a folder for the copies and results, "runs": {label: notebook JSON}}. For each label it
writes work/<label>.json: one entry per code cell, in order: {"grade_id", "error"}, where
"error" is None or what IPython's kernel would send as the cell's error output (ename, evalue
and the rendered traceback, "Cell In[n], line m" included, which grader.feedback reads).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CELL_TIMEOUT = 120  # s, as the course's Execute.timeout


def start_runs(folder: Path, runs: dict[str, Any], work: Path) -> subprocess.Popen:
    """Start running each notebook of `runs` (label -> nbformat notebook) in a fork of one warm
    interpreter, in a copy of `folder`; `finish_runs` waits for the results."""
    work.mkdir(parents=True, exist_ok=True)
    job = work / "job.json"
    job.write_text(json.dumps({"folder": str(folder), "work": str(work), "runs": runs}))
    env = {**os.environ, "MPLBACKEND": "Agg"}
    with open(work / "runner.log", "w") as log:
        return subprocess.Popen([sys.executable, __file__, str(job)], cwd=work, env=env, stdout=log,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)  # its forks die with it (finish_runs)


def finish_runs(process: subprocess.Popen, timeout: float = 900) -> dict[str, list[dict]]:
    """label -> the code cells' results of the runs `process` (start_runs) made (see above)."""
    work = Path(process.args[-1]).parent
    try:
        process.wait(timeout)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # a fork still running after a timeout or an error
        except ProcessLookupError:
            pass
    log = (work / "runner.log").read_text()[-3000:]
    assert process.returncode == 0, f"the forked runs failed:\n{log}"
    labels = json.loads((work / "job.json").read_text())["runs"]
    return {label: json.loads((work / f"{label}.json").read_text()) for label in labels}


def run_notebooks(folder: Path, runs: dict[str, Any], work: Path, timeout: float = 900) -> dict[str, list[dict]]:
    """start_runs, then finish_runs."""
    return finish_runs(start_runs(folder, runs, work), timeout)


def _child(source_cells: list[tuple[str | None, str]], log: Path) -> list[dict]:
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
    with open(log, "w") as out:
        sys.stdout = sys.stderr = out
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
    return results


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    folder, work = Path(job["folder"]), Path(job["work"])
    # What every assignment imports, once (forks share it): torch, IPython, helpers, plotting;
    # torch._dynamo too, which the first optimizer created imports in torch 2.14.
    import IPython.core.interactiveshell  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401
    import torchvision  # noqa: F401

    import helpers  # noqa: F401
    import helpers.check  # noqa: F401

    for label, notebook in job["runs"].items():
        cells = [(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"), "".join(cell["source"]))
                 for cell in notebook["cells"] if cell["cell_type"] == "code"]
        place = work / label
        shutil.copytree(folder, place)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the child: run the notebook, write its results, never return
            code = 1
            try:
                os.chdir(place)
                tmp = place / ".tmp"
                tmp.mkdir()
                os.environ["TMPDIR"] = str(tmp)
                tempfile.tempdir = None  # read TMPDIR again
                results = _child(cells, work / f"{label}.log")
                (work / f"{label}.json").write_text(json.dumps(results))
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            log = work / f"{label}.log"
            raise SystemExit(f"{label}: the run ended with status {status}:\n"
                             f"{log.read_text()[-3000:] if log.exists() else ''}")


if __name__ == "__main__":
    main(sys.argv[1])
