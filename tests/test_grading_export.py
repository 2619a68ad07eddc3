"""grades.csv with a status for every student (grader/export.py) and the list of submissions without a
score, on the class of the outside review: full, blank, partial, wrong, a corrupt notebook, a late
submission, a non-submitter; plus a failed regrade and a collected submission never graded. The
gradebook is filled through nbgrader's API as autograde leaves it (test_grading_parallel.py checks
the same statuses after real `nbgrader autograde` and `python -m grader.parallel` runs)."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from lms_class import ASSIGNMENT, COURSE_ID, MAX_SCORE, TESTS, add_students, db_url, grade, hand_in, make_course, run

pytestmark = pytest.mark.xdist_group("lms")

FIRST, SECOND, *_ = TESTS
ALL = dict(TESTS)
EXPECTED = {  # student -> (status, score)
    "full": ("graded", MAX_SCORE),
    "blank": ("graded", 0.0),
    "partial": ("graded", TESTS[FIRST] + TESTS[SECOND]),
    "wrong": ("graded", MAX_SCORE - TESTS[SECOND]),
    "corrupt": ("failed", None),
    "late": ("graded", MAX_SCORE - 3.0),
    "absent": ("not submitted", 0.0),
    "regraded": ("failed", None),
    "collected": ("not graded", None),
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("export"))
    add_students(course, {s: {"first_name": s.title(), "last_name": "Student", "lms_user_id": f"10{i}"}
                          for i, s in enumerate(EXPECTED) if s != "collected"})
    for student in ("full", "blank", "partial", "wrong", "corrupt", "late", "regraded", "collected"):
        hand_in(course, student, '{"cells": [ not JSON' if student == "corrupt" else None)
    grade(course, "full", ALL)
    grade(course, "blank", {})
    grade(course, "partial", {FIRST: TESTS[FIRST], SECOND: TESTS[SECOND]})
    grade(course, "wrong", {**ALL, SECOND: 0.0})
    grade(course, "corrupt", None)
    grade(course, "late", ALL, late=datetime.timedelta(days=2), penalty=3.0)
    grade(course, "regraded", ALL)  # graded once; a --force regrade then failed and nbgrader deleted the copy
    (course / "autograded" / "regraded" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").unlink()
    return course


def coursedir(course):
    from nbgrader.coursedir import CourseDirectory

    return CourseDirectory(root=str(course), course_id=COURSE_ID)


def test_every_student_gets_a_status_and_lateness(course):
    from nbgrader.api import Gradebook

    from grader.export import class_rows

    with Gradebook(db_url(course), COURSE_ID) as gradebook:
        rows = {row.student_id: row for row in class_rows(gradebook, coursedir(course))}
    assert {s: (r.status, r.score) for s, r in rows.items()} == EXPECTED
    late = rows["late"]
    assert (late.seconds_late, late.days_late, late.late_submission_penalty, late.raw_score) == \
        (2 * 86400, 2.0, 3.0, MAX_SCORE)
    assert rows["full"].seconds_late == 0
    assert "never scored" in rows["corrupt"].reason
    assert "autograded/ has no copy" in rows["regraded"].reason
    assert rows["absent"].lms_user_id == "106" and rows["collected"].lms_user_id is None


def test_export_and_failed_list_on_the_command_line(course):
    """`nbgrader export` (the course's default exporter) and `python -m grader.export failed`."""
    status, log = run(course, "python -m grader.export failed")
    assert status == 1, log
    listed = {line.split()[1] for line in log.splitlines() if line.startswith(ASSIGNMENT)}
    assert listed == {"corrupt", "regraded", "collected"}, log

    status, log = run(course, "nbgrader export")
    assert status == 0, log
    assert "FAILED submissions (exported without a score): corrupt (02_autograd), regraded (02_autograd)" in log
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert {s: (r["status"], float(r["score"]) if r["score"] else None) for s, r in rows.items()} == EXPECTED
    assert rows["corrupt"]["raw_score"] == "" and rows["absent"]["timestamp"] == ""
    assert (rows["late"]["seconds_late"], rows["late"]["days_late"], rows["late"]["late_submission_penalty"]) == \
        ("172800", "2.0", "3.0")
    assert rows["late"]["duedate"] == "2026-11-20 12:00:00"


def test_failed_list_is_empty_and_exits_0_for_a_clean_class(tmp_path, monkeypatch):
    import grader.export

    course = make_course(tmp_path)
    hand_in(course, "ada")
    grade(course, "ada", ALL)
    monkeypatch.setattr(grader.export, "load_coursedir", lambda: coursedir(course))
    out = io.StringIO()
    assert grader.export.main(["failed"], out=out) == 0
    assert out.getvalue() == "No failed submissions.\n"
    with pytest.raises(SystemExit, match="No assignment 02_autgrad in the gradebook"):
        grader.export.main(["failed", "02_autgrad"])


def test_forgetting_scores_makes_a_submission_failed_but_keeps_a_graders_score(tmp_path):
    from nbgrader.api import Gradebook

    from grader.export import forget_scores, never_scored

    course = make_course(tmp_path)
    grade(course, "ada", ALL)
    with Gradebook(db_url(course), COURSE_ID) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, "ada")
        assert not never_scored(submission)
        forget_scores(submission)
        gradebook.db.commit()
        assert never_scored(gradebook.find_submission(ASSIGNMENT, "ada"))
        for grade_id in TESTS:  # a grader's manual score counts as a score, and survives
            gradebook.find_grade(grade_id, ASSIGNMENT, ASSIGNMENT, "ada").manual_score = 1.0
        forget_scores(submission)
        gradebook.db.commit()
        submission = gradebook.find_submission(ASSIGNMENT, "ada")
        assert not never_scored(submission) and submission.score == len(TESTS)
