"""`python -m grader.parallel autograde`: the same grades as nbgrader's own sequential
autograde, a broken submission reported without stopping the batch, and a shared SQLite
gradebook that survives a writer holding it longer than SQLite's default 5 s busy timeout."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from grading import (REPO, make_course_copy, nbgrader, read_gradebook, replace_cell, run_parallel_autograde, submit,
                     submit_files)

from grader.parallel import StudentResult, summary
from wrong_answers import WRONG_ANSWERS

pytestmark = pytest.mark.xdist_group("test_grading_parallel")

ASSIGNMENT = "01_tensors"
NOTEBOOK = "01_tensors.ipynb"
GRADABLE = ["solution", "blank", "wrong", "exits"]
BROKEN = "broken"
LOCK_SECONDS = 7  # longer than SQLite's default busy timeout (5 s), which plain nbgrader uses


def _wrong(cell: str, loses: str):
    return next(w for w in WRONG_ANSWERS[ASSIGNMENT] if w.cell == cell and w.loses == (loses,))


def _hold_lock_when_grading_starts(course: Path, held: dict) -> None:
    """Once the first student's grading has started, lock the gradebook for LOCK_SECONDS."""
    logs = course / "parallel-logs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (logs.is_dir() and any(logs.glob("*.log"))):
        time.sleep(0.05)
    time.sleep(0.5)
    connection = sqlite3.connect(course / "gradebook.db", isolation_level=None, timeout=60)
    connection.execute("BEGIN EXCLUSIVE")
    held["from"] = time.monotonic()
    time.sleep(LOCK_SECONDS)
    connection.execute("COMMIT")
    connection.close()
    held["to"] = time.monotonic()


@pytest.fixture(scope="module")
def courses(tmp_path_factory):
    """Two identical courses with five submissions; one graded in parallel, one sequentially."""
    base = tmp_path_factory.mktemp("parallel")
    course = make_course_copy(base, ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    source = nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    one_hot, zero_rows = _wrong("one_hot", "test_one_hot"), _wrong("normalize_rows", "test_normalize_rows")
    wrong = replace_cell(replace_cell(source, one_hot.cell, one_hot.code.strip()), zero_rows.cell,
                         zero_rows.code.strip())
    submit(course, "solution", ASSIGNMENT, {NOTEBOOK: source})
    submit(course, "blank", ASSIGNMENT, {NOTEBOOK: release})
    submit(course, "wrong", ASSIGNMENT, {NOTEBOOK: wrong})
    submit(course, "exits", ASSIGNMENT, {NOTEBOOK: replace_cell(source, "batched_matmul", "import sys\nsys.exit(0)")})
    submit_files(course, BROKEN, ASSIGNMENT, {NOTEBOOK: '{"cells": [ this is not JSON'})

    sequential = base / "sequential"
    shutil.copytree(course, sequential)
    return course, sequential


@pytest.fixture(scope="module")
def parallel_run(courses):
    course, _ = courses
    held: dict = {}
    locker = threading.Thread(target=_hold_lock_when_grading_starts, args=(course, held), daemon=True)
    locker.start()
    started = time.monotonic()
    proc, results = run_parallel_autograde(course, ASSIGNMENT, "--jobs", "2")
    locker.join(timeout=60)
    return proc, results, held, time.monotonic() - started


@pytest.fixture(scope="module")
def sequential_run(courses):
    _, course = courses
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)


def test_parallel_grades_equal_sequential_nbgrader(courses, parallel_run, sequential_run, record_property):
    record_property("notebooks_executed", 2 * len(GRADABLE))
    parallel_course, sequential_course = courses
    proc, results, _, _ = parallel_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # nbgrader's own run exits 1 because of the broken submission, after grading all the others.
    assert sequential_run.returncode == 1
    assert f"for student '{BROKEN}'" in sequential_run.stderr + sequential_run.stdout
    parallel = read_gradebook(parallel_course, ASSIGNMENT, GRADABLE)
    sequential = read_gradebook(sequential_course, ASSIGNMENT, GRADABLE)
    assert parallel.cells == sequential.cells
    assert parallel.total == sequential.total
    # and the grades are the expected ones, not merely equal
    assert parallel.total["solution"] == parallel.max_score > 0
    assert parallel.total["blank"] == 0
    assert parallel.cells["wrong"]["test_one_hot"] == parallel.cells["wrong"]["test_normalize_rows"] == 0
    assert parallel.cells["exits"]["test_batched_matmul"] == 0
    for student in ("wrong", "exits"):
        assert 0 < parallel.total[student] < parallel.max_score, student
    for student in GRADABLE:
        assert results[student]["status"] == "ok", results[student]
        assert results[student]["score"] == parallel.total[student]


def test_broken_submission_is_reported_and_does_not_stop_the_batch(parallel_run):
    proc, results, _, _ = parallel_run
    assert results[BROKEN]["status"] == "failed"
    assert results[BROKEN]["score"] is None
    assert results[BROKEN]["message"], results[BROKEN]
    assert set(results) == {*GRADABLE, BROKEN}
    out = proc.stdout
    assert f"[grading] {BROKEN}: failed" in out
    assert f"[{BROKEN}] " in out  # its nbgrader log lines, named
    table = out[out.index("student  "):]
    for student in GRADABLE:
        assert f"\n{student} " in table and " ok " in table.split(f"\n{student} ")[1].splitlines()[0]
    assert "4 of 5 graded" in out


def statuses(course: Path) -> dict[str, tuple[str, float | None]]:
    """student -> (status, score) as grader/export.py reports them for the course."""
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    from grader.export import class_rows

    coursedir = CourseDirectory(root=str(course), course_id="pytorch-in-practice")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", coursedir.course_id) as gradebook:
        return {row.student_id: (row.status, row.score) for row in class_rows(gradebook, coursedir)}


def test_export_marks_the_broken_submission_failed_whichever_command_graded(courses, parallel_run, sequential_run):
    """What nbgrader leaves for a notebook that is not JSON is reported as failed, not as a 0."""
    for course in courses:
        graded = read_gradebook(course, ASSIGNMENT, GRADABLE)
        assert statuses(course) == {BROKEN: ("failed", None),
                                    **{student: ("graded", graded.total[student]) for student in GRADABLE}}


def test_no_database_is_locked_although_a_writer_held_the_gradebook(courses, parallel_run):
    course, _ = courses
    proc, results, held, _ = parallel_run
    assert held.get("to"), "the test could not take the gradebook lock"
    logs = "".join(p.read_text() for p in (course / "parallel-logs").glob("*.log"))
    assert "database is locked" not in logs + proc.stdout + proc.stderr
    assert all(r["attempts"] == 1 for r in results.values()), results


def test_sqlite_default_busy_timeout_fails_where_ours_waits(tmp_path):
    """Why the command sets a busy timeout: nbgrader's default SQLite URL gives up after 5 s."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import OperationalError

    from grader.parallel import with_sqlite_busy_timeout

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url, "course") as gradebook:
        gradebook.add_student("alice")

    def attempt(db_url: str, outcome: dict) -> None:
        try:
            with Gradebook(db_url, "course") as gradebook:
                gradebook.update_or_create_student("bob")
            outcome["ok"] = True
        except OperationalError as error:
            outcome["error"] = str(error)

    default, ours = {}, {}
    connection = sqlite3.connect(tmp_path / "gradebook.db", isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    threads = [threading.Thread(target=attempt, args=(url, default)),
               threading.Thread(target=attempt, args=(with_sqlite_busy_timeout(url, 60), ours))]
    for thread in threads:
        thread.start()
    time.sleep(LOCK_SECONDS)
    connection.execute("COMMIT")
    connection.close()
    for thread in threads:
        thread.join(timeout=60)
    assert "database is locked" in default.get("error", ""), default
    assert ours == {"ok": True}


def test_busy_timeout_url():
    from grader.parallel import with_sqlite_busy_timeout

    assert with_sqlite_busy_timeout("sqlite:////a/gradebook.db", 300) == "sqlite:////a/gradebook.db?timeout=300"
    assert with_sqlite_busy_timeout("sqlite:////a/g.db?timeout=9", 300) == "sqlite:////a/g.db?timeout=9"
    assert with_sqlite_busy_timeout("sqlite:////a/g.db?uri=true", 1.5) == "sqlite:////a/g.db?uri=true&timeout=1.5"
    assert with_sqlite_busy_timeout("postgresql://u@h/db", 300) == "postgresql://u@h/db"


def test_no_matching_submission_is_an_error(courses, parallel_run):
    course, _ = courses
    proc, results = run_parallel_autograde(course, ASSIGNMENT, "--student", "nobody*")
    assert proc.returncode == 1
    assert "no submissions of 01_tensors match 'nobody*'" in proc.stdout


def test_timeout_stops_one_student_and_the_batch_goes_on(courses, parallel_run):
    course, _ = courses
    proc, results = run_parallel_autograde(course, ASSIGNMENT, "--student", "[sw]*", "--force", "--timeout", "2",
                                           "--jobs", "2")
    assert proc.returncode == 1, proc.stdout  # no submission could be graded: a setup problem
    assert {r["status"] for r in results.values()} == {"timeout"}, results
    assert set(results) == {"solution", "wrong"}
    assert "[grading] solution: timeout" in proc.stdout
    assert "none of 2 graded" in proc.stdout and "2 timeout" in proc.stdout
    # the gradebook no longer holds their earlier scores: the export reports them as failed
    after = statuses(course)
    assert {student: after[student] for student in results} == dict.fromkeys(results, ("failed", None))
    from nbgrader.api import Gradebook

    from grader.export import never_scored

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "pytorch-in-practice") as gradebook:
        assert all(never_scored(gradebook.find_submission(ASSIGNMENT, student)) for student in results)
    assert after["blank"] == ("graded", 0)


def _result(status: str) -> StudentResult:
    return StudentResult("s", status=status)


def test_summary_says_what_the_run_did():
    everything_skipped = [_result("skipped")] * 5 + [_result("failed")]
    assert summary(everything_skipped, 3.0, 2) == \
        "none of 6 graded in 3.0 s: 5 already autograded (skipped: --force grades them again), 1 failed"
    assert summary([_result("ok")] * 5 + [_result("failed")], 30.0, 2) == \
        "5 of 6 graded in 30.0 s with 2 job(s) (10.0 submissions per minute); 1 failed"
    assert summary([_result("ok"), _result("skipped"), _result("infra")], 6.0, 1) == \
        ("1 of 3 graded in 6.0 s with 1 job(s) (10.0 submissions per minute); "
         "1 already autograded (skipped: --force grades them again), 1 infra")
