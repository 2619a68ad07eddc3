"""Grades out of the gradebook with a status for every student, and the list of failed submissions.

    nbgrader export [--to grades.csv]           # StatusExport, the course's default exporter
    python -m grader.export failed [ASSIGNMENT ...]   # submissions without a score; exit 1 if any

Each student of the gradebook gets one row per assignment, with a status:

* `graded`: nbgrader scored every test cell;
* `failed`: the submission is in the gradebook but nbgrader could not grade it (a notebook that
  is not valid JSON, no notebook with the assignment's name, a grading that raised, timed out or
  was killed). Two traces show it, whichever command graded (`nbgrader autograde` or
  `python -m grader.parallel`): a test cell never scored (the state nbgrader leaves when
  grading fails), or a submitted notebook whose autograded copy is missing (nbgrader deletes the
  copy of a submission it fails to grade, also on a `--force` regrade whose old scores stay in
  the gradebook; `python -m grader.parallel` also takes those old scores off). Its score is
  left empty, never 0;
* `not graded`: a folder in submitted/ that nbgrader never autograded (or held no notebook);
* `not submitted`: nothing submitted (score 0, as nbgrader's own export). Only students the
  gradebook knows get this row: import the class list first (`nbgrader db student import`).

Lateness comes from nbgrader: `timestamp.txt` of the submission against the assignment's due
date (plus any extension), with the penalty of nbgrader's late-submission plugin.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin

GRADED, FAILED, NOT_GRADED, NOT_SUBMITTED = "graded", "failed", "not graded", "not submitted"
NEVER_SCORED = "nbgrader could not grade it: a test cell was never scored (see the autograde log)"
COPY_MISSING = "nbgrader could not grade it: autograded/ has no copy of the submitted notebook"


@dataclasses.dataclass
class Row:
    """One student's standing on one assignment."""

    assignment: str
    student_id: str
    status: str
    score: float | None = None          # after the late penalty; None when failed or not graded
    max_score: float = 0.0
    raw_score: float | None = None
    late_submission_penalty: float = 0.0
    seconds_late: int = 0
    timestamp: Any = None
    duedate: Any = None
    needs_manual_grade: bool = False
    last_name: str | None = None
    first_name: str | None = None
    email: str | None = None
    lms_user_id: str | None = None
    reason: str = ""

    @property
    def days_late(self) -> float:
        return round(self.seconds_late / 86400, 2)


CSV_COLUMNS = ["assignment", "student_id", "status", "score", "max_score", "raw_score", "late_submission_penalty",
               "seconds_late", "days_late", "timestamp", "duedate", "needs_manual_grade", "last_name", "first_name",
               "email", "lms_user_id", "reason"]


def test_cell_grades(submission) -> Iterator:
    """The grades of the submission's test cells: graded code cells that are not solutions."""
    for notebook in submission.notebooks:
        solutions = {cell.name for cell in notebook.notebook.solution_cells}
        yield from (grade for grade in notebook.grades
                    if grade.cell.cell_type == "code" and grade.name not in solutions)


def never_scored(submission) -> bool:
    """True when a test cell has no score at all: nbgrader could not grade the submission."""
    return any(grade.auto_score is None and grade.manual_score is None for grade in test_cell_grades(submission))


def forget_scores(submission) -> None:
    """Take the automatic scores off the test cells, as nbgrader leaves them before grading (a grader's
    manual score stays); the caller commits."""
    for grade in test_cell_grades(submission):
        grade.auto_score = None
        grade.needs_manual_grade = grade.manual_score is None


def autograded_copy_missing(coursedir, assignment: str, student: str, notebooks: Iterable[str]) -> bool:
    """True when a notebook of submitted/ has no counterpart in autograded/ (on this machine)."""
    if coursedir is None:
        return False
    submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
    autograded = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    return any((submitted / f"{name}.ipynb").is_file() and not (autograded / f"{name}.ipynb").is_file()
               for name in notebooks)


def submitted_folders(coursedir, assignment: str) -> set[str]:
    """Students with a folder for `assignment` in submitted/."""
    if coursedir is None:
        return set()
    from grader.parallel import submitted_students

    return set(submitted_students(coursedir, assignment, "*"))


def _submission_row(row: Row, submission, coursedir) -> None:
    names = [notebook.name for notebook in submission.assignment.notebooks]
    row.timestamp = submission.timestamp
    row.seconds_late = round(submission.total_seconds_late)
    row.score, row.raw_score = None, submission.score
    row.late_submission_penalty = submission.late_submission_penalty or 0.0
    row.needs_manual_grade = submission.needs_manual_grade
    if never_scored(submission):
        row.status, row.reason, row.raw_score = FAILED, NEVER_SCORED, None
    elif autograded_copy_missing(coursedir, row.assignment, row.student_id, names):
        row.status, row.reason, row.raw_score = FAILED, COPY_MISSING, None
    else:
        row.status = GRADED
        row.score = max(0.0, submission.score - row.late_submission_penalty)


def _extension_only(submission, collected: bool) -> bool:
    """True for the row an extension makes before the student submits (grader/deadlines.py): nothing
    collected, no submission time, no score yet."""
    return submission.extension is not None and submission.timestamp is None and not collected \
        and never_scored(submission)


def class_rows(gradebook: Gradebook, coursedir=None, assignments: Iterable[str] = (),
               students: Iterable[str] = ()) -> list[Row]:
    """A row per student and assignment: every student of the gradebook, and anyone with a folder in
    submitted/ (when `coursedir` is given). Empty `assignments`/`students` mean all of them."""
    wanted_assignments, wanted_students = set(assignments), set(students)
    known = {student.id: student for student in gradebook.students}
    rows = []
    for assignment in gradebook.assignments:
        if wanted_assignments and assignment.name not in wanted_assignments:
            continue
        collected = submitted_folders(coursedir, assignment.name)
        for student_id in sorted(set(known) | collected):
            if wanted_students and student_id not in wanted_students:
                continue
            student = known.get(student_id)
            row = Row(assignment.name, student_id, NOT_SUBMITTED, score=0.0, max_score=assignment.max_score,
                      duedate=assignment.duedate)
            if student is not None:
                row.last_name, row.first_name = student.last_name, student.first_name
                row.email, row.lms_user_id = student.email, student.lms_user_id
            try:
                submission = gradebook.find_submission(assignment.name, student_id)
                if _extension_only(submission, student_id in collected):
                    raise MissingEntry()
                _submission_row(row, submission, coursedir)
            except MissingEntry:
                if student_id in collected:
                    row.status, row.score = NOT_GRADED, None
                    row.reason = "in submitted/ but never autograded (or it holds no notebook)"
            rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def write_csv(rows: list[Row], path: str) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([_cell(getattr(row, column)) for column in CSV_COLUMNS])


def summary(rows: list[Row]) -> str:
    """'12 rows: 9 graded, 1 failed, 2 not submitted'."""
    counts = {status: sum(row.status == status for row in rows)
              for status in (GRADED, FAILED, NOT_GRADED, NOT_SUBMITTED)}
    return f"{len(rows)} rows: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n)


class RowsExport(ExportPlugin):
    """Base of the course's exporters: the rows of `class_rows` for --assignment/--student."""

    default_to = "grades.csv"

    def rows(self, gradebook: Gradebook) -> list[Row]:
        rows = class_rows(gradebook, getattr(self.parent, "coursedir", None),
                          [str(a) for a in self.assignment], [str(s) for s in self.student])
        self.log.info("%s", summary(rows))
        failed = [row for row in rows if row.status == FAILED]
        if failed:
            self.log.warning("FAILED submissions (exported without a score): %s",
                             ", ".join(f"{row.student_id} ({row.assignment})" for row in failed))
        return rows

    @property
    def destination(self) -> str:
        return self.to or self.default_to


class StatusExport(RowsExport):
    """grades.csv with a status, lateness and the LMS id for every student and assignment."""

    def export(self, gradebook: Gradebook) -> None:
        rows = self.rows(gradebook)
        write_csv(rows, self.destination)
        self.log.info("Exported %d rows to %s", len(rows), self.destination)


# --------------------------------------------------------------------------------------
# python -m grader.export failed
# --------------------------------------------------------------------------------------

def load_coursedir():
    """nbgrader's CourseDirectory as `nbgrader export` loads it (nbgrader_config.py, NBGRADER_DB_URL)."""
    from nbgrader.apps.exportapp import ExportApp

    app = ExportApp()
    app.initialize([])
    return app.coursedir


def failed_rows(coursedir, assignments: Iterable[str] = ()) -> list[Row]:
    """The submissions without a score: failed, and collected but not graded."""
    with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
        unknown = set(assignments) - {assignment.name for assignment in gradebook.assignments}
        if unknown:
            raise SystemExit(f"No assignment {', '.join(sorted(unknown))} in the gradebook "
                             "(nbgrader generate_assignment puts it there).")
        return [row for row in class_rows(gradebook, coursedir, assignments) if row.status in (FAILED, NOT_GRADED)]


def main(argv: list[str] | None = None, out=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.export",
                                     description="Lists the submissions nbgrader could not grade (run it "
                                                 "from the course root, before exporting grades).")
    commands = parser.add_subparsers(dest="command", required=True)
    failed = commands.add_parser("failed", help="submissions nbgrader could not grade, and collected ones it "
                                                "never graded; exit status 1 if any")
    failed.add_argument("assignment", nargs="*", help="only these assignments (default: all)")
    args = parser.parse_args(argv)

    out = out or sys.stdout
    rows = failed_rows(load_coursedir(), args.assignment)
    if not rows:
        print("No failed submissions.", file=out)
        return 0
    print(f"{len(rows)} submission(s) without a score: autograde them once fixed "
          "(nbgrader autograde ASSIGNMENT --student ID --force).", file=out)
    for row in rows:
        print(f"{row.assignment}  {row.student_id}  {row.status}: {row.reason}", file=out)
    return 1


if __name__ == "__main__":
    sys.exit(main())
