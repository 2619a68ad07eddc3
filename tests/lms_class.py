"""A made-up class for the export and LMS tests: a course folder whose gradebook holds assignment
02_autograd (its real notebook, cells and points), graded through nbgrader's API instead of a
kernel, and nbgrader commands run in a child forked from the test process (nbgrader's import, about
4 s of CPU, is paid once per test process instead of once per command)."""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import subprocess
import warnings
from pathlib import Path
from unittest import mock

import nbformat
from sqlalchemy.exc import SAWarning

from grading import REPO, grade_cells, guide_blocks, run_forked

ASSIGNMENT = "02_autograd"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
COURSE_ID = "pytorch-in-practice"
DUE = datetime.datetime(2026, 11, 20, 12, 0)


def source_notebook() -> nbformat.NotebookNode:
    return nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)


def solution_cells(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.metadata["nbgrader"]["grade_id"] for cell in notebook.cells
            if cell.metadata.get("nbgrader", {}).get("solution")]


TESTS = grade_cells(source_notebook())           # test cell -> points
MAX_SCORE = sum(TESTS.values())
_GRADEBOOK: bytes = b""                          # the gradebook make_course starts from


def make_course(tmp: Path, name: str = "course") -> Path:
    """Course root with the course's nbgrader_config.py, the released 02_autograd and a gradebook that
    knows the assignment (as `nbgrader generate_assignment` leaves it), due on DUE."""
    from nbgrader.api import Gradebook

    global _GRADEBOOK
    course = tmp / name
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "release" / ASSIGNMENT, course / "release" / ASSIGNMENT)
    if _GRADEBOOK:  # a new gradebook costs an `alembic heads` process (seconds): copy the first one
        (course / "gradebook.db").write_bytes(_GRADEBOOK)
        return course
    notebook = source_notebook()
    # nbgrader stamps a new gradebook with the output of an `alembic heads` process; the same
    # revision, read in this process, saves starting one.
    with (mock.patch("nbgrader.api.get_alembic_version", _alembic_head),
          Gradebook(db_url(course), COURSE_ID) as gradebook):
        gradebook.add_assignment(ASSIGNMENT, duedate=DUE)
        gradebook.add_notebook(ASSIGNMENT, ASSIGNMENT)
        for grade_id, points in TESTS.items():
            gradebook.add_grade_cell(grade_id, ASSIGNMENT, ASSIGNMENT, max_score=points, cell_type="code")
        for grade_id in solution_cells(notebook):
            gradebook.add_solution_cell(grade_id, ASSIGNMENT, ASSIGNMENT)
    _GRADEBOOK = (course / "gradebook.db").read_bytes()
    return course


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


def db_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


def add_students(course: Path, students: dict[str, dict]) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course), COURSE_ID) as gradebook:
        for student, fields in students.items():
            gradebook.update_or_create_student(student, **fields)


def hand_in(course: Path, student: str, content: str | None = None) -> Path:
    """submitted/<student>/02_autograd/02_autograd.ipynb (the release unless `content` is given)."""
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NOTEBOOK
    path.write_text(content if content is not None else (course / "release" / ASSIGNMENT / NOTEBOOK).read_text())
    return path


def grade(course: Path, student: str, scores: dict[str, float] | None, *, late: datetime.timedelta | None = None,
          penalty: float = 0.0) -> None:
    """What `nbgrader autograde` leaves for `student`: a submission and, when `scores` (test cell ->
    points; missing cells 0) is given, those scores and the autograded copy; with `scores=None`,
    a failed grading: the submission with no score and no autograded copy."""
    from nbgrader.api import Gradebook

    timestamp = DUE + late if late else DUE - datetime.timedelta(hours=1)
    with Gradebook(db_url(course), COURSE_ID) as gradebook:
        gradebook.update_or_create_student(student)
        with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy's autoflush warnings
            warnings.simplefilter("ignore", SAWarning)
            gradebook.add_submission(ASSIGNMENT, student, timestamp=timestamp)
        if scores is None:
            return
        for grade_id in TESTS:
            cell = gradebook.find_grade(grade_id, ASSIGNMENT, ASSIGNMENT, student)
            cell.auto_score, cell.needs_manual_grade = scores.get(grade_id, 0.0), False
        gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).late_submission_penalty = penalty
        gradebook.db.commit()
    submitted = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
    if submitted.exists():
        autograded = course / "autograded" / student / ASSIGNMENT
        autograded.mkdir(parents=True, exist_ok=True)
        shutil.copy(submitted, autograded / NOTEBOOK)


def run(course: Path, command: str, home: Path | None = None, timeout: float = 120) -> tuple[int, str]:
    """Run one command line of the guide in `course`: `nbgrader ...` and `python -m grader.export ...`
    in a forked child (tests/grading.py, `run_forked`), anything else with bash (HOME=`home`).
    Returns (exit status, output)."""
    argv = shlex.split(command, comments=True)
    if argv[0] != "nbgrader" and argv[:3] != ["python", "-m", "grader.export"]:
        env = {**os.environ, "HOME": str(home or course)}
        proc = subprocess.run(["bash", "-ec", command], cwd=course, env=env, capture_output=True, text=True,
                              timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr
    return run_forked(course, argv, timeout=timeout)


def guide_commands(heading: str) -> list[list[str]]:
    """The command lines of each ```bash block of docs/instructor.md's section `heading`."""
    return [[line.strip() for line in block.splitlines() if line.strip()]
            for block in guide_blocks("bash", heading)]
