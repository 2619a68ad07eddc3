"""Run nbgrader on a temporary copy of the course, as an instructor would (used by the tests)."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import re
import runpy
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (REPO / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass(frozen=True)
class WrongAnswer:
    """A typical wrong answer: replace solution cell `cell` with `code`; the grade cells in
    `loses` must then score 0 and every other grade cell full marks. A *visible* test (the part
    of the test cell students have) must catch it, so that the student's own run names the
    mistake before they submit; `hidden_only` (the reason) marks the few that only the hidden
    tests catch: edge cases, or a gap still to close (tests/test_grading_roundtrip.py)."""

    cell: str
    code: str
    loses: tuple[str, ...]
    why: str
    hidden_only: str = ""


def nbgrader_unchecked(course: Path, *args: str, timeout: int = 900,
                       env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run an nbgrader command in `course` and return it whatever its exit status (its log is
    stdout + stderr): for batches where some students are expected to fail. `env`: variables
    to set for it (HOME, TMPDIR, ...). It runs as `nbgrader ARGS` would, in a child forked from
    the test process (`run_forked`: nbgrader's import is paid once per test process)."""
    # nbgrader calls `alembic` through PATH, so the environment's bin/ goes first.
    env = {**os.environ, **(env or {}),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = ["nbgrader", *args]
    status, output = run_forked(course, argv, env, timeout=timeout)
    return subprocess.CompletedProcess(argv, status, output, "")


def nbgrader(course: Path, *args: str, timeout: int = 900,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run an nbgrader command in `course`; fail with its log if it fails."""
    proc = nbgrader_unchecked(course, *args, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def run_forked(cwd: Path, argv: list[str], env: dict[str, str] | None = None,
               timeout: float = 300) -> tuple[int, str]:
    """Run `nbgrader ARGS` or `python -m MODULE ARGS` in `cwd` in a child forked from the test
    process, with `env` as its environment: the same application and arguments as the command
    line, without paying nbgrader's import (about 4 s of CPU) for every command. Returns (exit
    status, output)."""
    import nbgrader.apps.nbgraderapp  # noqa: F401  (imported here, once, not in every child)

    handle, name = tempfile.mkstemp(prefix="forked-", suffix=".log")
    os.close(handle)  # the child opens it by name; keeping this one would leak a descriptor per command
    log = Path(name)
    try:
        child = multiprocessing.get_context("fork").Process(target=_forked, args=(str(cwd), argv, env, str(log)))
        child.start()
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
            raise AssertionError(f"{shlex.join(argv)}: still running after {timeout} s\n{log.read_text()[-3000:]}")
        return child.exitcode, log.read_text()
    finally:
        log.unlink(missing_ok=True)


def _forked(cwd: str, argv: list[str], env: dict[str, str] | None, log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    os.chdir(cwd)
    if argv[0] == "nbgrader":
        from nbgrader.apps.nbgraderapp import NbGraderApp

        NbGraderApp.launch_instance(argv=argv[1:])
    elif argv[:2] == ["python", "-m"]:
        sys.argv = [argv[2], *argv[3:]]
        sys.path.insert(0, cwd)
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    else:
        raise ValueError(f"not an nbgrader or python -m command: {argv}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_server(process: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate a server the test started, and kill it if it does not stop within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


GUIDE = REPO / "docs" / "instructor.md"


def guide_section(heading: str) -> str:
    """The text of docs/instructor.md from the line `heading` ("## 6. ...", "### Canvas") to the
    next heading of the same or a higher level."""
    lines = GUIDE.read_text().splitlines()
    level = len(heading.split(" ")[0])
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("#") and len(lines[i].split(" ")[0]) <= level), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def guide_blocks(language: str, section: str | None = None) -> list[str]:
    """The fenced ```language blocks of the guide (or of one section of it), dedented, in order."""
    text = guide_section(section) if section else GUIDE.read_text()
    return [textwrap.dedent(block) for block in re.findall(rf"^[ \t]*```{language}\n(.*?)^[ \t]*```", text, re.S | re.M)]


def guide_block(language: str, must_contain: str, section: str | None = None) -> str:
    """The one ```language block of the guide (or of `section`) that contains `must_contain`:
    the tests run the guide's own commands and configuration, so the guide cannot go stale."""
    blocks = [block for block in guide_blocks(language, section) if must_contain in block]
    where = f"section {section!r}" if section else "the guide"
    assert len(blocks) == 1, f"expected one ```{language} block with {must_contain!r} in {where}, got {len(blocks)}"
    return blocks[0]


def make_course_copy(tmp: Path, assignment: str) -> Path:
    """A fresh course folder holding the config and one assignment's source."""
    course = tmp / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "source" / assignment, course / "source" / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return course


def notebook_names(assignment: str) -> list[str]:
    return sorted(p.name for p in (REPO / "source" / assignment).glob("*.ipynb"))


def grade_cells(notebook: nbformat.NotebookNode) -> dict[str, float]:
    """grade_id -> points for every autograded test cell."""
    cells = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cells[meta["grade_id"]] = float(meta["points"])
    return cells


def assignment_points(assignment: str) -> dict[str, float]:
    """grade_id -> points of every autograded test cell of the assignment's source notebooks."""
    return {cell: points for name in notebook_names(assignment)
            for cell, points in grade_cells(nbformat.read(REPO / "source" / assignment / name, as_version=4)).items()}


def copy_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A deep copy of `notebook`, to change without touching the original."""
    return nbformat.from_dict(json.loads(json.dumps(notebook)))


def replace_cell(notebook: nbformat.NotebookNode, grade_id: str, code: str) -> nbformat.NotebookNode:
    """A copy of `notebook` with the source of the cell `grade_id` replaced by `code`."""
    changed = copy_notebook(notebook)
    for cell in changed.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = code
            return changed
    raise KeyError(f"no cell with grade_id {grade_id!r}")


def submit(course: Path, student: str, assignment: str, notebooks: dict[str, nbformat.NotebookNode]) -> None:
    """Put `notebooks` where `nbgrader collect` would: submitted/<student>/<assignment>/."""
    submit_files(course, student, assignment, {name: nbformat.writes(nb) for name, nb in notebooks.items()})


@dataclass
class GradingResult:
    course: Path
    assignment: str
    total: dict[str, float] = field(default_factory=dict)       # student -> score
    max_score: float = 0.0
    cells: dict[str, dict[str, float]] = field(default_factory=dict)  # student -> grade_id -> score
    notebooks_executed: int = 0
    log: str = ""                                               # nbgrader autograde's output


def read_gradebook(course: Path, assignment: str, students: list[str], db_url: str | None = None,
                   course_id: str = "pytorch-in-practice") -> GradingResult:
    """Scores per student and per test cell, from the course's SQLite gradebook or `db_url`.
    Written answers (graded by a person, so 0 until then) count in neither `cells` nor `max_score`:
    an autograded submission's full marks are `max_score`."""
    from nbgrader.api import Gradebook

    result = GradingResult(course, assignment)
    with Gradebook(db_url or f"sqlite:///{course / 'gradebook.db'}", course_id) as gradebook:
        for student in students:
            submission = gradebook.find_submission(assignment, student)
            result.total[student] = submission.score
            tests = [grade for notebook in submission.notebooks for grade in notebook.grades
                     if grade.name not in {cell.name for cell in notebook.notebook.solution_cells}]
            result.max_score = sum(grade.max_score for grade in tests)
            result.cells[student] = {grade.name: grade.score for grade in tests}
    return result


def exported_scores(course: Path, assignment: str) -> dict[str, float]:
    """Run `nbgrader export` and read back student -> score for the assignment."""
    nbgrader(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)
                if row["assignment"] == assignment}


def run_parallel_autograde(course: Path, assignment: str, *args: str, env: dict[str, str] | None = None,
                           timeout: int = 900) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    """`python -m grader.parallel autograde` in `course`: the process and student -> result."""
    results = course / f"parallel-{assignment}.json"
    results.unlink(missing_ok=True)
    command = [sys.executable, "-m", "grader.parallel", "autograde", assignment,
               "--json", str(results), "--log-dir", str(course / "parallel-logs"), *args]
    env = {**os.environ, **(env or {}),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=timeout)
    by_student = {r["student"]: r for r in json.loads(results.read_text())} if results.exists() else {}
    return proc, by_student



def submit_files(course: Path, student: str, assignment: str, files: dict[str, str | bytes]) -> None:
    """Submit raw files (for broken notebooks: bad JSON, wrong names)."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    (folder / "timestamp.txt").write_text("2026-11-23 12:00:00.000000 UTC")


# --- Shared by the attack tests -------------------------------------------------------

# A real bomb (40 GiB, every page written) where an address-space limit of at most 8 GiB is in
# force. Without one (the control run) filling it would take the machine down, so it only
# reserves the 40 GiB, untouched, which shows that nothing would have refused the bomb.
MEMORY_BOMB = '''import mmap, resource
_soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
if _soft == resource.RLIM_INFINITY or _soft > 8 * 2**30:
    _bomb = mmap.mmap(-1, 40 * 2**30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000))
    print("UNLIMITED: 40 GiB of memory granted")
else:
    _bomb = bytearray(40 * 2**30)'''


# The course's protections switched off, for the control runs of the attack tests: nbgrader's
# stock Execute in the plain python3 kernel (no sandbox, no second kernel, no time limit), none
# of nbgrader's or the course's sanitizing (OverwriteCells, CheckCellMetadata, RestoreNotebook),
# no output limit (LimitOutput, TwoKernelExecute), no intake. What stays only cleans the notebook
# (outputs, duplicate ids, kernel name) and records the grades.
NO_PROTECTIONS = """
c.Autograde.sanitize_preprocessors = ["nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
                                      "nbgrader.preprocessors.OverwriteKernelspec"]
c.Autograde.autograde_preprocessors = ["nbgrader.preprocessors.Execute", "nbgrader.preprocessors.IgnorePattern",
                                       "nbconvert.preprocessors.ClearMetadataPreprocessor",
                                       "nbgrader.preprocessors.SaveAutoGrades",
                                       "nbgrader.preprocessors.AssignLatePenalties"]
c.Execute.timeout = -1
"""


def unprotect(course: Path) -> None:
    """Switch off every protection in `course`'s nbgrader_config.py (NO_PROTECTIONS; no intake)."""
    config = course / "nbgrader_config.py"
    lines = [line for line in config.read_text().splitlines() if "grader.intake" not in line]
    config.write_text("\n".join(lines) + "\n" + NO_PROTECTIONS)
    assert "install()" not in config.read_text()


def add_warnings(source: str, message: str = "harmless warning from the solution") -> str:
    """`source` with `warnings.warn(message, UserWarning)` as the first statement of every function
    (methods, nested functions, async functions), everything else kept as written, comments too."""
    import ast

    inserts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0]
            line = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])])
            if line == node.lineno:  # `def f(): return 1`: no line of its own to go before
                raise ValueError(f"add_warnings: put the body of {node.name} on its own lines")
            inserts.append((line, first.col_offset))
    lines = source.splitlines(keepends=True)
    for lineno, col in sorted(inserts, reverse=True):
        lines.insert(lineno - 1, " " * col + f'__import__("warnings").warn({message!r}, UserWarning, stacklevel=1)\n')
    return "".join(lines)


def require_sandbox() -> None:
    """Skip (CI=true: fail) when the grading sandbox cannot run here."""
    from grader.sandbox import bwrap_problem

    problem = bwrap_problem()
    if problem:
        message = (f"the grading sandbox cannot run here: {problem}. Install it with `sudo apt-get install "
                   "bubblewrap` (./course.sh test does this as root), then run the tests again.")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
