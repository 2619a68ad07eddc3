"""Due dates, extensions and the late policy (grader/deadlines.py), on a gradebook built with
nbgrader's API (tests/lms_class.py); the whole term with real grading is tests/test_instructor_guide.py."""

from __future__ import annotations

import datetime

import pytest
from nbgrader.api import Gradebook, MissingEntry

from grader.deadlines import DAY, PercentPerDay, extend, report
from grader.export import NOT_SUBMITTED, class_rows
from lms_class import ASSIGNMENT, COURSE_ID, DUE, add_students, db_url, grade, make_course


@pytest.mark.parametrize(("seconds_late", "penalty"), [
    (0, None),                    # on time
    (14 * 60, None),              # within the 15 minutes of grace
    (16 * 60, 2.0),               # one started day: 10 % of 20 points
    (DAY + 15 * 60, 2.0),         # still one day after the grace
    (1.5 * DAY, 4.0),             # two started days
    (7 * DAY + 15 * 60, 14.0),    # seven days: 70 %
    (7 * DAY + 16 * 60, 20.0),    # more than seven days: everything
])
def test_percent_per_day(seconds_late, penalty):
    assert PercentPerDay().late_submission_penalty("s", 20.0, seconds_late) == penalty


def test_the_policy_is_configurable():
    plugin = PercentPerDay(percent_per_day=25, grace_minutes=0, zero_after_days=2)
    assert plugin.late_submission_penalty("s", 8.0, 1) == 2.0
    assert plugin.late_submission_penalty("s", 8.0, 2 * DAY + 1) == 8.0


@pytest.fixture
def course(tmp_path):
    course = make_course(tmp_path)
    add_students(course, {"ada": {}, "ben": {}, "cam": {}})
    return course


def test_an_extension_before_submission_moves_the_due_date_and_is_no_submission(course):
    with Gradebook(db_url(course), COURSE_ID) as gb:
        said = extend(gb, ASSIGNMENT, "ada", days=2)
        assert said == f"ada: {ASSIGNMENT} due {DUE + datetime.timedelta(days=2):%Y-%m-%d %H:%M} UTC"
        assert gb.find_submission(ASSIGNMENT, "ada").duedate == DUE + datetime.timedelta(days=2)
        rows = {row.student_id: row for row in class_rows(gb)}
    assert (rows["ada"].status, rows["ada"].score) == (NOT_SUBMITTED, 0.0), "an extension is not a submission"


def test_an_extension_replaces_the_last_and_none_removes_it(course):
    with Gradebook(db_url(course), COURSE_ID) as gb:
        extend(gb, ASSIGNMENT, "ben", days=3)
        extend(gb, ASSIGNMENT, "ben", hours=5)
        assert gb.find_submission(ASSIGNMENT, "ben").extension == datetime.timedelta(hours=5)
        extend(gb, ASSIGNMENT, "ben")
        assert gb.find_submission(ASSIGNMENT, "ben").duedate == DUE


def test_an_extension_for_graded_work_says_to_grade_again(course):
    grade(course, "cam", {}, late=datetime.timedelta(hours=30))
    with Gradebook(db_url(course), COURSE_ID) as gb:
        said = extend(gb, ASSIGNMENT, "cam", days=2)
    assert f"python -m grader.parallel autograde {ASSIGNMENT} --student cam --force" in said


def test_unknown_students_and_assignments_are_named(course):
    with Gradebook(db_url(course), COURSE_ID) as gb:
        with pytest.raises(MissingEntry, match="zed is not in the gradebook: import the roster"):
            extend(gb, ASSIGNMENT, "zed", days=1)
        with pytest.raises(MissingEntry):
            extend(gb, "99_nothing", "ada", days=1)


def test_report_shows_due_dates_lateness_and_penalty(course):
    grade(course, "ada", {}, late=datetime.timedelta(hours=30), penalty=3.0)
    with Gradebook(db_url(course), COURSE_ID) as gb:
        extend(gb, ASSIGNMENT, "ben", days=1)
        rows = {row["student"]: row for row in report(gb, ASSIGNMENT)}
    assert rows["ada"]["late_hours"] == 30.0 and rows["ada"]["penalty"] == 3.0
    assert rows["ben"]["due"] == DUE + datetime.timedelta(days=1) and rows["ben"]["submitted"] is None
    assert rows["cam"]["due"] == DUE and rows["cam"]["penalty"] is None
