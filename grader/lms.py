"""Canvas and Moodle: their submission downloads in (`nbgrader zip_collect`), grades out (`nbgrader export`).

    nbgrader zip_collect 02_autograd --collector=grader.lms.CanvasCollector
    nbgrader zip_collect 02_autograd --collector=grader.lms.MoodleCollector \
        --MoodleCollector.worksheet=downloaded/02_autograd/worksheet.csv
    nbgrader export --exporter=grader.lms.CanvasExport --to canvas-grades.csv
    nbgrader export --exporter=grader.lms.MoodleExport --to moodle-grades.csv

File names in the downloads (each file of a submission is one entry of the zip):

* Canvas, "Download Submissions": `<name>_<user id>_<file id>_<file name>`, with `LATE_` before the
  user id when Canvas counts the submission late; `<name>` is the sortable name ("Lovelace, Ada")
  in lower case without spaces or punctuation, `<file name>` what the student uploaded, where Canvas
  may have added `-1`, `-2` before the extension (a re-upload of the same name). The user id is
  Canvas's, the one the roster holds as `lms_user_id`. Anonymous grading replaces name and id by
  `anon_<code>`: such a zip cannot be mapped to students.
* Moodle, "Download all submissions": `<full name>_<participant id>_assignsubmission_file_` then
  `/<file name>` ("Download submissions in folders", the default) or `<file name>` glued on (that
  option off). The participant id is Moodle's number for the student *in this assignment*, not
  the user: the assignment's grading worksheet ("Download grading worksheet") maps it
  ("Participant 1234567" in its Identifier column) to an identity column, by default "Email
  address", whose value the roster holds as `lms_user_id`.

A file whose LMS id is not in the roster stops zip_collect before anything is copied.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Dict, Unicode

from grader.export import FAILED, NOT_GRADED, NOT_SUBMITTED, Row, RowsExport

CANVAS_NAME = re.compile(r"^(?P<name>.+?)_(?:(?P<late>LATE)_)?(?P<lms_id>\d+)_(?P<file_number>\d+)_(?P<file_id>.+)$")
CANVAS_ANONYMOUS = re.compile(r"^(?:LATE_)?anon_")
CANVAS_RENAMED = re.compile(r"^(?P<stem>.+)-\d+(?P<ext>\.ipynb)$")
MOODLE_PREFIX = re.compile(r"^(?P<name>.*)_(?P<participant>\d+)_assignsubmission_file_(?P<rest>.*)$")
MOODLE_PARTICIPANT = re.compile(r"^\s*\D*?(\d+)\s*$")  # "Participant 1234567" (the word is translated)


class LmsError(Exception):
    """A download that cannot be mapped to the course's students."""


def parse_canvas(filename: str) -> dict[str, str]:
    """`lovelaceada_LATE_1001_5551_02_autograd-1.ipynb` -> name, lms_id, file_id, late ('LATE' or '')."""
    if CANVAS_ANONYMOUS.match(filename):
        raise LmsError(f"{filename}: an anonymous Canvas download (anon_...) names no student; turn anonymous "
                       "grading off for the download, or grade these files by hand")
    match = CANVAS_NAME.match(filename)
    if not match:
        raise LmsError(f"{filename}: not a Canvas submission name (<name>_<user id>_<file id>_<file name>)")
    return {key: value or "" for key, value in match.groupdict().items()}


def parse_moodle(relative_path: str) -> dict[str, str]:
    """`Ada Lovelace_777001_assignsubmission_file_/02_autograd.ipynb` (folders) or
    `Ada Lovelace_777001_assignsubmission_file_02_autograd.ipynb` -> name, participant, file_id."""
    parts = Path(relative_path).parts
    for index, part in enumerate(parts):
        match = MOODLE_PREFIX.match(part)
        if match:
            file_id = "/".join(([match["rest"]] if match["rest"] else []) + list(parts[index + 1:]))
            if file_id:
                return {"name": match["name"], "participant": match["participant"], "file_id": file_id}
    raise LmsError(f"{relative_path}: not a Moodle file submission "
                   "(<full name>_<participant id>_assignsubmission_file_<file name>)")


def roster(coursedir) -> dict[str, str]:
    """lms_user_id -> nbgrader student id, from the gradebook."""
    with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
        return {student.lms_user_id: student.id for student in gradebook.students if student.lms_user_id}


def read_worksheet(path: str, id_column: str) -> dict[str, str]:
    """Moodle grading worksheet: participant number -> the value of `id_column`."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise LmsError(f"{path}: an empty grading worksheet")
    identifier = next(iter(rows[0]))  # "Identifier" in English; the first column in every language
    if id_column not in rows[0]:
        raise LmsError(f"{path}: no column {id_column!r} (it has {', '.join(rows[0])}); set "
                       "MoodleCollector.worksheet_id_column to the column that holds the roster's lms_user_id")
    mapping = {}
    for row in rows:
        match = MOODLE_PARTICIPANT.match(row[identifier] or "")
        if match:
            mapping[match.group(1)] = (row[id_column] or "").strip()
    return mapping


class LmsCollector(FileNameCollectorPlugin):
    """Maps the LMS's file names to nbgrader student ids through the roster; checks every file of
    the extracted download before nbgrader copies any."""

    lms = "LMS"
    _checked = False

    def lms_id(self, relative_path: str) -> tuple[str, str]:
        """(the roster's lms_user_id for this file, its file_id); raises LmsError."""
        raise NotImplementedError

    def extracted_root(self) -> Path:
        app = self.parent
        return Path(app._format_collect_path(app.extracted_directory))

    def check_all(self) -> None:
        """Every notebook of the download has a student in the roster, or zip_collect stops here."""
        root, students = self.extracted_root(), roster(self.parent.coursedir)
        problems = []
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix not in self.valid_ext:
                continue
            try:
                lms_id, _ = self.lms_id(str(path.relative_to(root)))
            except LmsError as error:
                problems.append(str(error))
                continue
            if lms_id not in students:
                problems.append(f"{path.relative_to(root)}: {self.lms} id {lms_id!r} is no student's lms_user_id")
        if problems:
            self.parent.fail(f"{len(problems)} file(s) of the {self.lms} download cannot be given to a student "
                             "(nothing was collected). Add the missing students, with lms_user_id, to the roster "
                             "(nbgrader db student import roster.csv), then run again with --force:\n  "
                             + "\n  ".join(problems))
        self._students = students

    def release_names(self) -> set[str]:
        coursedir = self.parent.coursedir
        release = Path(coursedir.format_path(coursedir.release_directory, ".", coursedir.assignment_id))
        return {path.name for path in release.glob("*.ipynb")}

    def collect(self, submitted_file: str) -> dict | None:
        if os.path.splitext(submitted_file)[1] not in self.valid_ext:
            return None
        if not self._checked:
            self.check_all()
            self._checked = True
        lms_id, file_id = self.lms_id(str(Path(submitted_file).relative_to(self.extracted_root())))
        return {"student_id": self._students[lms_id], "file_id": file_id}


class CanvasCollector(LmsCollector):
    """zip_collect for Canvas's "Download Submissions" zip."""

    lms = "Canvas"

    def lms_id(self, relative_path: str) -> tuple[str, str]:
        info = parse_canvas(Path(relative_path).name)
        file_id = info["file_id"]
        renamed = CANVAS_RENAMED.match(file_id)
        if renamed and file_id not in self.release_names() and renamed["stem"] + ".ipynb" in self.release_names():
            file_id = renamed["stem"] + ".ipynb"  # Canvas's "-1" for a file uploaded again
        return info["lms_id"], file_id

    def collect(self, submitted_file: str) -> dict | None:
        info = super().collect(submitted_file)
        if info and parse_canvas(Path(submitted_file).name)["late"]:
            self.log.warning("Canvas marks %s late: the zip holds no submission time, so nbgrader cannot "
                             "compute its lateness", Path(submitted_file).name)
        return info


class MoodleCollector(LmsCollector):
    """zip_collect for Moodle's "Download all submissions" zip, with or without folders."""

    lms = "Moodle"
    worksheet = Unicode("", help="Path of the assignment's grading worksheet (CSV), which maps Moodle's "
                                 "participant ids to students").tag(config=True)
    worksheet_id_column = Unicode("Email address", help="Worksheet column holding the roster's "
                                                        "lms_user_id").tag(config=True)
    _participants: dict[str, str] = {}

    def lms_id(self, relative_path: str) -> tuple[str, str]:
        info = parse_moodle(relative_path)
        if info["participant"] not in self._participants:
            raise LmsError(f"{relative_path}: participant {info['participant']} is not in {self.worksheet}")
        return self._participants[info["participant"]], info["file_id"]

    def check_all(self) -> None:
        if not self.worksheet:
            self.parent.fail("Moodle names the files by a participant id of the assignment, not by user: download "
                             "the assignment's grading worksheet and pass it with --MoodleCollector.worksheet=PATH")
        try:
            self._participants = read_worksheet(self.worksheet, self.worksheet_id_column)
        except (OSError, LmsError) as error:
            self.parent.fail(str(error))
        super().check_all()


# --------------------------------------------------------------------------------------
# Grades out
# --------------------------------------------------------------------------------------

def lms_score(row: Row) -> str:
    """The cell for one grade: the score; 0 when nothing was submitted; empty when failed or not graded."""
    if row.status in (FAILED, NOT_GRADED):
        return ""
    return f"{row.score:g}" if row.status != NOT_SUBMITTED else "0"


class LmsExport(RowsExport):
    """One row per student, one column per assignment, students named by their lms_user_id."""

    columns = Dict({}, help="Column header for each nbgrader assignment, e.g. {'02_autograd': "
                            "'Autograd (4242)'}; default: the assignment's name").tag(config=True)

    def table(self, gradebook: Gradebook) -> tuple[list[str], list[Row], dict[str, dict[str, str]]]:
        """(assignments, one row per student, student -> assignment -> cell); stops on a missing LMS id."""
        rows = self.rows(gradebook)
        missing = sorted({row.student_id for row in rows if not row.lms_user_id})
        if missing:
            self.log.error("No lms_user_id for %s: the LMS could not tell who they are. Add them to the roster "
                           "(nbgrader db student import roster.csv, with an lms_user_id column) and export again.",
                           ", ".join(missing))
            raise SystemExit(1)
        assignments = list(dict.fromkeys(row.assignment for row in rows))
        cells: dict[str, dict[str, str]] = {}
        students: dict[str, Row] = {}
        for row in rows:
            students.setdefault(row.student_id, row)
            cells.setdefault(row.student_id, {})[row.assignment] = lms_score(row)
        return assignments, list(students.values()), cells

    def header(self, assignment: str) -> str:
        return self.columns.get(assignment, assignment)


class CanvasExport(LmsExport):
    """Canvas gradebook import CSV: Student, ID (Canvas user id), SIS User ID, SIS Login ID, Section, then
    a column per assignment, after a "Points Possible" row."""

    default_to = "canvas-grades.csv"

    def export(self, gradebook: Gradebook) -> None:
        assignments, students, cells = self.table(gradebook)
        maxima = {a.name: a.max_score for a in gradebook.assignments}
        with open(self.destination, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
                            + [self.header(a) for a in assignments])
            writer.writerow(["Points Possible", "", "", "", ""] + [f"{maxima[a]:g}" for a in assignments])
            for row in students:
                name = ", ".join(part for part in (row.last_name, row.first_name) if part) or row.student_id
                writer.writerow([name, row.lms_user_id, "", "", ""] + [cells[row.student_id][a] for a in assignments])
        self.log.info("Exported %d students to %s (Canvas gradebook import)", len(students), self.destination)


class MoodleExport(LmsExport):
    """Moodle grade import CSV (Grades > Import > CSV file): the identity column, names, then a column per
    assignment. Map the identity column to the same Moodle field (e.g. Email address) when importing."""

    default_to = "moodle-grades.csv"
    id_column = Unicode("Email address", help="Header of the column of lms_user_id values").tag(config=True)

    def export(self, gradebook: Gradebook) -> None:
        assignments, students, cells = self.table(gradebook)
        with open(self.destination, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([self.id_column, "First name", "Last name"] + [self.header(a) for a in assignments])
            for row in students:
                writer.writerow([row.lms_user_id, row.first_name or "", row.last_name or ""]
                                + [cells[row.student_id][a] for a in assignments])
        self.log.info("Exported %d students to %s (Moodle grade import)", len(students), self.destination)
