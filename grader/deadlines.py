"""Due dates, extensions and the late penalty (docs/instructor.md, "Deadlines").

Due dates live in the gradebook (`nbgrader db assignment add NN --duedate=...`), extensions too
(nbgrader's `SubmittedAssignment.extension`, which has no command of its own), and the penalty is
computed by `nbgrader autograde` from the submission's `timestamp.txt`:

  python -m grader.deadlines extend 02_autograd alice --days 2   # replaces alice's extension
  python -m grader.deadlines extend 02_autograd alice            # removes it
  python -m grader.deadlines report 02_autograd                  # due, submitted, late, penalty

`PercentPerDay` is the course's late policy, selected in nbgrader_config.py: every started day
late (after a grace period) costs a percentage of the notebook's score, and work more than
`zero_after_days` late scores 0. nbgrader applies it when it autogrades, to the score the
notebook has then (manual grades included): after an extension or a manual grade of late work,
autograde that student again with `--force` (manual grades survive it).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

DAY = 24 * 3600


class PercentPerDay(LateSubmissionPlugin):
    """Late penalty: `percent_per_day` of the score per started day late, 0 after `zero_after_days`."""

    percent_per_day = Float(10.0, help="Share of the notebook's score lost per started day late.").tag(config=True)
    grace_minutes = Float(15.0, help="Minutes after the due date that still count as on time.").tag(config=True)
    zero_after_days = Float(7.0, help="Work later than this many days scores 0.").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        seconds = total_seconds_late - 60 * self.grace_minutes
        if seconds <= 0:
            return None
        if seconds > self.zero_after_days * DAY:
            return score
        days = math.ceil(seconds / DAY)
        return round(score * min(1.0, days * self.percent_per_day / 100), 4)


def extend(gradebook: Gradebook, assignment: str, student: str, days: float = 0, hours: float = 0) -> str:
    """Give `student` an extension on `assignment` (none if both are 0); returns what was done."""
    gradebook.find_assignment(assignment)  # MissingEntry names the problem
    try:
        gradebook.find_student(student)
    except MissingEntry:
        raise MissingEntry(f"{student} is not in the gradebook: import the roster first "
                           "(nbgrader db student import roster.csv)") from None
    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:  # not submitted yet: nbgrader keeps extensions on the submission's row
        with gradebook.db.no_autoflush:
            submission = gradebook.add_submission(assignment, student)
    graded = submission.timestamp is not None
    gradebook.grant_extension(assignment, student, days=days, hours=hours)
    due = submission.duedate
    what = f"{student}: {assignment} " + (f"due {due:%Y-%m-%d %H:%M} UTC" if due else "has no due date")
    if graded:
        what += (f"; already graded, so grade again to apply it: python -m grader.parallel autograde {assignment} "
                 f"--student {student} --force")
    return what


def report(gradebook: Gradebook, assignment: str) -> list[dict[str, object]]:
    """One row per student: due date with extension, submission time, lateness and penalty."""
    due = gradebook.find_assignment(assignment).duedate
    rows = []
    for student in sorted(gradebook.students, key=lambda s: s.id):
        try:
            sub = gradebook.find_submission(assignment, student.id)
        except MissingEntry:
            rows.append({"student": student.id, "due": due, "extension": None, "submitted": None,
                         "late_hours": None, "penalty": None})
            continue
        late = sub.total_seconds_late if sub.timestamp else None
        rows.append({"student": student.id, "due": sub.duedate, "extension": sub.extension,
                     "submitted": sub.timestamp, "late_hours": None if late is None else round(late / 3600, 2),
                     "penalty": sub.late_submission_penalty if sub.timestamp else None})
    return rows


def _format(rows: list[dict[str, object]]) -> str:
    def cell(value: object) -> str:
        if value is None:
            return "-"
        return f"{value:%Y-%m-%d %H:%M}" if hasattr(value, "strftime") else str(value)
    header = ["student", "due", "extension", "submitted", "late_hours", "penalty"]
    table = [header] + [[cell(row[k]) for k in header] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.deadlines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="gradebook URL (default: the course's, from nbgrader_config.py)")
    commands = parser.add_subparsers(dest="command", required=True)
    ext = commands.add_parser("extend", help="give (or, without --days/--hours, remove) an extension")
    ext.add_argument("assignment")
    ext.add_argument("student")
    ext.add_argument("--days", type=float, default=0)
    ext.add_argument("--hours", type=float, default=0)
    rep = commands.add_parser("report", help="due dates, submission times, lateness and penalties")
    rep.add_argument("assignment")
    args = parser.parse_args(argv)
    with Gradebook(args.db or _course_db_url()) as gradebook:
        try:
            if args.command == "extend":
                print(extend(gradebook, args.assignment, args.student, args.days, args.hours))
            else:
                print(_format(report(gradebook, args.assignment)))
        except MissingEntry as error:
            print(f"error: {error or 'no such assignment in the gradebook'}", file=sys.stderr)
            return 1
    return 0


def _course_db_url() -> str:
    """The gradebook URL nbgrader would use here (nbgrader_config.py in the current folder)."""
    from nbgrader.apps import NbGrader

    app = NbGrader()
    app.initialize([])
    return app.coursedir.db_url


if __name__ == "__main__":
    sys.exit(main())
