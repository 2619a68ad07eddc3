"""Canvas and Moodle round trips (grader/lms.py): every command of the guide's section "LMS: Canvas and
Moodle", run in order on made-up downloads named as each LMS names them, through the real `nbgrader
zip_collect` and `nbgrader export`; unknown LMS ids; the file-name rules; the import CSV columns."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest
from lms_class import (ASSIGNMENT, COURSE_ID, MAX_SCORE, NOTEBOOK, TESTS, db_url, grade, guide_commands, make_course,
                       run)

from grader.lms import LmsError, parse_canvas, parse_moodle, read_worksheet

pytestmark = pytest.mark.xdist_group("lms")

SECTION = "## LMS: Canvas and Moodle"
FIRST, SECOND, *_ = TESTS
PARTIAL = TESTS[FIRST] + TESTS[SECOND]
# nbgrader id -> (first name, last name, Canvas user id, Moodle email, Moodle participant id in 02_autograd)
CLASS = {
    "full": ("Ada", "Lovelace", "1001", "ada@uni.example", "777001"),
    "partial": ("Grace", "Hopper", "1002", "grace@uni.example", "777002"),
    "late": ("Alan", "Turing", "1003", "alan@uni.example", "777003"),
    "corrupt": ("Edsger", "Dijkstra", "1004", "edsger@uni.example", "777004"),
    "absent": ("Barbara", "Liskov", "1005", "barbara@uni.example", "777005"),
}


def notebook_text(course: Path, marker: str) -> str:
    """The released notebook with `marker` in its metadata, so that each student's copy is recognisable."""
    notebook = json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text())
    notebook["metadata"]["handed_in_by"] = marker
    return json.dumps(notebook)


def write_roster(course: Path, lms: str) -> None:
    with open(course / "roster.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "first_name", "last_name", "email", "lms_user_id"])
        for student, (first, last, canvas_id, email, _) in CLASS.items():
            writer.writerow([student, first, last, email, canvas_id if lms == "canvas" else email])


def fake_grading(course: Path) -> None:
    """What grading the collected class gives: full, partial and late scored, corrupt failed."""
    grade(course, "full", dict(TESTS))
    grade(course, "partial", {FIRST: TESTS[FIRST], SECOND: TESTS[SECOND]})
    grade(course, "late", dict(TESTS))
    grade(course, "corrupt", None)


def run_block(course: Path, lines: list[str], home: Path, expect: dict[str, int] | None = None) -> dict[str, str]:
    """Run the guide's lines in order; each must exit 0 unless `expect` (a line's start -> status) says."""
    outputs = {}
    for line in lines:
        wanted = next((status for start, status in (expect or {}).items() if line.startswith(start)), 0)
        status, output = run(course, line, home)
        assert status == wanted, f"{line}\nexit status {status}, expected {wanted}:\n{output[-3000:]}"
        outputs[line] = output
    return outputs


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def collected(course: Path) -> dict[str, str]:
    """nbgrader id -> the marker in the notebook zip_collect put in submitted/ ("?": not JSON)."""
    found = {}
    for path in (course / "submitted").glob(f"*/{ASSIGNMENT}/*.ipynb"):
        try:
            found[path.parts[-3]] = json.loads(path.read_text())["metadata"]["handed_in_by"]
        except json.JSONDecodeError:
            found[path.parts[-3]] = "?"
    return found


def test_the_guide_has_a_roster_block_and_two_per_lms():
    assert [len(block) for block in guide_commands(SECTION)][:1] == [1]
    assert len(guide_commands("### Canvas")) == len(guide_commands("### Moodle")) == 2


def test_canvas_round_trip_as_in_the_guide(tmp_path):
    course, home = make_course(tmp_path), tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    write_roster(course, "canvas")
    with zipfile.ZipFile(home / "Downloads" / "submissions.zip", "w") as archive:
        archive.writestr("lovelaceada_1001_5551_02_autograd.ipynb", notebook_text(course, "full"))
        archive.writestr("lovelaceada_1001_5552_notes.txt", "my notes")
        archive.writestr("hoppergrace_1002_5553_02_autograd.ipynb", notebook_text(course, "partial"))
        archive.writestr("turingalan_LATE_1003_5554_02_autograd-1.ipynb", notebook_text(course, "late"))
        archive.writestr("dijkstraedsger_1004_5555_02_autograd.ipynb", '{"cells": [ not JSON')
    roster, (collect, export) = guide_commands(SECTION)[0], guide_commands("### Canvas")
    run_block(course, roster, home)
    outputs = run_block(course, collect, home)
    assert collected(course) == {"full": "full", "partial": "partial", "late": "late", "corrupt": "?"}
    assert (course / "submitted" / "corrupt" / ASSIGNMENT / NOTEBOOK).read_text() == '{"cells": [ not JSON'
    assert "Canvas marks turingalan_LATE_1003_5554_02_autograd-1.ipynb late" in outputs[collect[-1]]

    fake_grading(course)
    outputs = run_block(course, export, home, expect={"python -m grader.export failed": 1})
    assert "02_autograd  corrupt  failed" in outputs[export[0]]
    rows = read_csv(course / "canvas-grades.csv")
    assert rows[:2] == [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ASSIGNMENT],
                        ["Points Possible", "", "", "", "", f"{MAX_SCORE:g}"]]
    assert {row[1]: (row[0], row[5]) for row in rows[2:]} == {
        "1001": ("Lovelace, Ada", f"{MAX_SCORE:g}"), "1002": ("Hopper, Grace", f"{PARTIAL:g}"),
        "1003": ("Turing, Alan", f"{MAX_SCORE:g}"), "1004": ("Dijkstra, Edsger", ""),
        "1005": ("Liskov, Barbara", "0")}


def test_moodle_round_trip_as_in_the_guide(tmp_path):
    course, home = make_course(tmp_path), tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    write_roster(course, "moodle")
    with zipfile.ZipFile(home / "Downloads" / "PYT-02 Autograd-42.zip", "w") as archive:
        for student in ("full", "partial", "late"):
            first, last, _, _, participant = CLASS[student]
            folder = f"{first} {last}_{participant}_assignsubmission_file_"
            archive.writestr(f"{folder}/{NOTEBOOK}", notebook_text(course, student))
        archive.writestr("Grace Hopper_777002_assignsubmission_onlinetext_/onlinetext.html", "<p>see the notebook</p>")
        archive.writestr(f"Edsger Dijkstra_777004_assignsubmission_file_/{NOTEBOOK}", '{"cells": [ not JSON')
    with open(home / "Downloads" / "Grades-PYT-02 Autograd-42.csv", "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                         "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
                         "Feedback comments"])
        for first, last, _, email, participant in CLASS.values():
            writer.writerow([f"Participant {participant}", f"{first} {last}", email, "Submitted for grading", "",
                             f"{MAX_SCORE:.2f}", "Yes", "Friday, 20 November 2026, 11:00 AM", "-", ""])
    roster, (collect, export) = guide_commands(SECTION)[0], guide_commands("### Moodle")
    run_block(course, roster, home)
    run_block(course, collect, home)
    assert collected(course) == {"full": "full", "partial": "partial", "late": "late", "corrupt": "?"}

    fake_grading(course)
    run_block(course, export, home, expect={"python -m grader.export failed": 1})
    rows = read_csv(course / "moodle-grades.csv")
    assert rows[0] == ["Email address", "First name", "Last name", ASSIGNMENT]
    assert {row[0]: row[1:] for row in rows[1:]} == {
        "ada@uni.example": ["Ada", "Lovelace", f"{MAX_SCORE:g}"],
        "grace@uni.example": ["Grace", "Hopper", f"{PARTIAL:g}"],
        "alan@uni.example": ["Alan", "Turing", f"{MAX_SCORE:g}"],
        "edsger@uni.example": ["Edsger", "Dijkstra", ""],
        "barbara@uni.example": ["Barbara", "Liskov", "0"]}


def archive_dir(course: Path) -> Path:
    folder = course / "downloaded" / ASSIGNMENT / "archive"
    folder.mkdir(parents=True)
    return folder


def test_unknown_lms_ids_stop_zip_collect_before_anything_is_copied(tmp_path):
    course = make_course(tmp_path)
    write_roster(course, "canvas")
    assert run(course, "nbgrader db student import roster.csv")[0] == 0
    with zipfile.ZipFile(archive_dir(course) / "submissions.zip", "w") as archive:
        archive.writestr("lovelaceada_1001_5551_02_autograd.ipynb", notebook_text(course, "full"))
        archive.writestr("knuthdonald_2001_5552_02_autograd.ipynb", notebook_text(course, "knuth"))
        archive.writestr("LATE_anon_x7Gq2_5553_02_autograd.ipynb", notebook_text(course, "anonymous"))
    status, output = run(course, f"nbgrader zip_collect {ASSIGNMENT} --collector=grader.lms.CanvasCollector")
    assert status == 1
    assert "2 file(s) of the Canvas download cannot be given to a student (nothing was collected)" in output
    assert "knuthdonald_2001_5552_02_autograd.ipynb: Canvas id '2001' is no student's lms_user_id" in output
    assert "LATE_anon_x7Gq2_5553_02_autograd.ipynb: an anonymous Canvas download" in output
    assert not (course / "submitted").exists()


def test_moodle_without_folders_and_without_worksheet(tmp_path):
    course = make_course(tmp_path)
    write_roster(course, "moodle")
    assert run(course, "nbgrader db student import roster.csv")[0] == 0
    with zipfile.ZipFile(archive_dir(course) / "PYT-02 Autograd-42.zip", "w") as archive:
        archive.writestr(f"Ada Lovelace_777001_assignsubmission_file_{NOTEBOOK}", notebook_text(course, "full"))
    (course / "worksheet.csv").write_text("Identifier,Full name,Email address\nParticipant 777001,Ada Lovelace,"
                                          "ada@uni.example\n")
    command = f"nbgrader zip_collect {ASSIGNMENT} --collector=grader.lms.MoodleCollector"
    status, output = run(course, command)
    assert status == 1 and "--MoodleCollector.worksheet=PATH" in output
    status, output = run(course, command + " --force --MoodleCollector.worksheet=worksheet.csv")
    assert status == 0, output
    assert collected(course) == {"full": "full"}


def test_canvas_file_names():
    assert parse_canvas("lovelaceada_1001_5551_02_autograd.ipynb") == {
        "name": "lovelaceada", "late": "", "lms_id": "1001", "file_number": "5551", "file_id": "02_autograd.ipynb"}
    late = parse_canvas("vanrossumguido_LATE_42_7_my_02_autograd (final).ipynb")
    assert (late["name"], late["late"], late["lms_id"], late["file_id"]) == \
        ("vanrossumguido", "LATE", "42", "my_02_autograd (final).ipynb")
    for name in ("anon_x7Gq2_5551_02_autograd.ipynb", "02_autograd.ipynb", "lovelaceada_02_autograd.ipynb"):
        with pytest.raises(LmsError):
            parse_canvas(name)


def test_moodle_file_names():
    folder = parse_moodle("PYT-02 Autograd-42/Ada Lovelace_777001_assignsubmission_file_/02_autograd.ipynb")
    flat = parse_moodle("PYT-02 Autograd-42/Ada Lovelace_777001_assignsubmission_file_02_autograd.ipynb")
    assert folder == flat == {"name": "Ada Lovelace", "participant": "777001", "file_id": "02_autograd.ipynb"}
    assert parse_moodle("Group A-Ada Lovelace_777001_assignsubmission_file_/work/02_autograd.ipynb")["file_id"] == \
        "work/02_autograd.ipynb"
    with pytest.raises(LmsError):
        parse_moodle("Ada Lovelace_777001_assignsubmission_onlinetext_/onlinetext.html")


def test_moodle_worksheet_in_another_language_and_column(tmp_path):
    path = tmp_path / "worksheet.csv"
    path.write_text("Identifiant,Nom complet,Numéro d'identification\nParticipant 12,Ada Lovelace,S-001\n"
                    "Teilnehmer/in 13,Alan Turing,S-002\n", encoding="utf-8-sig")
    assert read_worksheet(str(path), "Numéro d'identification") == {"12": "S-001", "13": "S-002"}
    with pytest.raises(LmsError, match="no column 'Email address'"):
        read_worksheet(str(path), "Email address")


def test_lms_exports_refuse_students_without_an_lms_id_and_rename_columns(tmp_path):
    from nbgrader.api import Gradebook

    from grader.lms import CanvasExport, MoodleExport

    course = make_course(tmp_path)
    grade(course, "ada", dict(TESTS))
    with Gradebook(db_url(course), COURSE_ID) as gradebook:
        with pytest.raises(SystemExit):
            CanvasExport(to=str(tmp_path / "canvas.csv")).export(gradebook)
        gradebook.update_or_create_student("ada", lms_user_id="S-001")
        CanvasExport(to=str(tmp_path / "canvas.csv"), columns={ASSIGNMENT: "Autograd (4242)"}).export(gradebook)
        MoodleExport(to=str(tmp_path / "moodle.csv"), id_column="ID number").export(gradebook)
    assert read_csv(tmp_path / "canvas.csv")[0][-1] == "Autograd (4242)"
    assert read_csv(tmp_path / "canvas.csv")[2] == ["ada", "S-001", "", "", "", f"{MAX_SCORE:g}"]
    assert read_csv(tmp_path / "moodle.csv") == [["ID number", "First name", "Last name", ASSIGNMENT],
                                                 ["S-001", "", "", f"{MAX_SCORE:g}"]]
