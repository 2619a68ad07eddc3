"""The attacks that do not depend on an assignment, against every assignment.

tests/test_grading_attacks.py takes every attack apart on assignment 01 (with a control run
that shows each protection is needed). Here the generic ones are built from each
assignment's own cells, so that every assignment's structure (its cell ids, test cells,
setup cell, the names its tests look up in the student's kernel) is shown to be protected.
One `nbgrader autograde` per assignment grades:

* `hostile_cells`: the reference solution plus the student's own cells after the setup cell:
  os._exit, an infinite loop that ignores SIGINT, a memory bomb, 20 MiB of output and a read
  of the hidden tests. Each costs only its own cell: full marks, a log line for each (the
  kernel replaced twice), a small notebook.
* `emptied_tests`: the blank release with every test cell replaced by `pass` and worth 100
  points: still 0.
* `deleted_moved`: the reference solution with every test cell deleted but the last, which
  is moved to the top: full marks (the tests come back, in place).
* `patched`: a typical wrong answer, and the first answer cell also replaces every check in
  helpers.check and torch.allclose (in the student's kernel, where no test runs): exactly the
  wrong answer's cells score 0, as in an honest grading.
* `warns`: the reference solution with `warnings.warn(...)` as the first statement of every
  function of its answer cells (methods and nested functions included): full marks, the
  warnings shown as plain text.
"""

from __future__ import annotations

import nbformat
import pytest

from grading import (ASSIGNMENTS, MEMORY_BOMB, REPO, add_warnings, grade_cells, make_course_copy, nbgrader,
                     nbgrader_unchecked, notebook_names, read_gradebook, replace_cell, require_sandbox, submit)
from wrong_answers import WRONG_ANSWERS

CELL_TIMEOUT = 20  # s: the course's is 120; long enough for every solution cell, short for the loop

HOSTILE_CELLS = {
    "os._exit": "import os\nos._exit(0)",
    "loop": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    "memory": MEMORY_BOMB,
    "output": "import sys\nfor _ in range(20):\n    sys.stdout.write('x' * 2**20 + '\\n')",
    "read": "from pathlib import Path\n"
            "try:\n    print(len(Path({hidden!r}).read_text()), 'LEAK')\n"
            "except OSError as error:\n    print('blocked', type(error).__name__)",
}
PATCH = """
import helpers.check, torch
for _name in list(helpers.check.__all__):
    if _name.startswith("check_"):
        setattr(helpers.check, _name, lambda *args, **kwargs: None)
        globals()[_name] = getattr(helpers.check, _name)
torch.allclose = lambda *args, **kwargs: True
print("All tests passed")"""
WARNING = "harmless warning from the solution"


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def _copy(notebook):
    return nbformat.from_dict(nbformat.reads(nbformat.writes(notebook), as_version=4))


def _with_hostile_cells(solution, hidden_tests: str):
    notebook = _copy(solution)
    first_code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
    for offset, code in enumerate(HOSTILE_CELLS.values(), start=1):
        notebook.cells.insert(first_code + offset, nbformat.v4.new_code_cell(code.format(hidden=hidden_tests)))
    return notebook


def _with_emptied_tests(release):
    notebook = _copy(release)
    for cell in notebook.cells:
        if _is_test(cell):
            cell.source = "pass"
            cell.metadata["nbgrader"]["points"] = 100
    return notebook


def _with_deleted_and_moved_tests(solution):
    notebook = _copy(solution)
    tests = [c for c in notebook.cells if _is_test(c)]
    notebook.cells = [c for c in notebook.cells if not _is_test(c)]
    notebook.cells.insert(0, tests[-1])
    return notebook


def _patched(solution, wrong):
    """The wrong answer, and the patch appended to the first answer cell."""
    notebook = replace_cell(solution, wrong.cell, wrong.code.strip("\n"))
    first_answer = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")
                        and c.cell_type == "code")
    first_answer.source += "\n" + PATCH
    return notebook


def _with_warnings(solution):
    """Every function of every answer cell warns first (grading.add_warnings); how many functions."""
    notebook = _copy(solution)
    count = 0
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = add_warnings(cell.source, WARNING)
            count += cell.source.count(WARNING)
    return notebook, count


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    """(The parameter is named `graded` so that conftest.py groups it per assignment on one worker.)"""
    require_sandbox()
    assignment = request.param
    (name,) = notebook_names(assignment)  # every assignment is one notebook (test_notebooks checks the layout)
    course = make_course_copy(tmp_path_factory.mktemp(f"generic-{assignment}"), assignment)
    nbgrader(course, "generate_assignment", assignment, "--force")
    solution = nbformat.read(REPO / "source" / assignment / name, as_version=4)
    release = nbformat.read(course / "release" / assignment / name, as_version=4)
    hidden_tests = course / "source" / assignment / name
    wrong = WRONG_ANSWERS[assignment][0]
    warns, functions = _with_warnings(solution)
    students = {"hostile_cells": _with_hostile_cells(solution, str(hidden_tests)),
                "emptied_tests": _with_emptied_tests(release),
                "deleted_moved": _with_deleted_and_moved_tests(solution),
                "patched": _patched(solution, wrong),
                "warns": warns}
    for student, notebook in students.items():
        submit(course, student, assignment, {name: notebook})
    proc = nbgrader_unchecked(course, "autograde", assignment, "--force", f"--Execute.timeout={CELL_TIMEOUT}",
                              timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return {"assignment": assignment, "course": course, "name": name, "log": proc.stdout + proc.stderr,
            "scores": read_gradebook(course, assignment, list(students)), "points": grade_cells(solution),
            "wrong": wrong, "functions": functions, "hidden_tests": hidden_tests}


def _lines(result, student: str) -> str:
    return "\n".join(line for line in result["log"].splitlines() if f"student {student}:" in line)


def _printed(result, student: str) -> str:
    path = result["course"] / "autograded" / student / result["assignment"] / result["name"]
    return "".join(o.get("text", "") for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
                   for o in c.outputs)


def test_hostile_cells_cost_only_themselves(graded, record_property):
    record_property("notebooks_executed", 5)
    scores, points = graded["scores"], graded["points"]
    assert scores.cells["hostile_cells"] == points, _lines(graded, "hostile_cells")
    lines = _lines(graded, "hostile_cells")
    for what in ("the kernel died", "the kernel ignored the interrupt and was replaced",
                 "MemoryError: stopped by the memory limit", "output limit",
                 f"outside the student's folder: read {graded['hidden_tests']}"):
        assert what in lines, f"{graded['assignment']}: {what!r} not logged:\n{lines}"
    path = graded["course"] / "autograded" / "hostile_cells" / graded["assignment"] / graded["name"]
    assert path.stat().st_size < 2_000_000
    printed = _printed(graded, "hostile_cells")
    assert "blocked" in printed and "LEAK" not in printed


def test_emptied_tests_worth_100_points_still_score_zero(graded):
    scores = graded["scores"]
    assert scores.cells["emptied_tests"] == {cell: 0.0 for cell in graded["points"]}
    assert scores.max_score == sum(graded["points"].values())


def test_deleted_and_moved_tests_come_back(graded):
    assert graded["scores"].cells["deleted_moved"] == graded["points"], _lines(graded, "deleted_moved")
    assert "cells were moved" in _lines(graded, "deleted_moved")


def test_patched_checks_change_nothing(graded):
    # The checks run in the tests' kernel: the wrong answer loses exactly its own cells.
    expected = {cell: 0.0 if cell in graded["wrong"].loses else points for cell, points in graded["points"].items()}
    assert graded["scores"].cells["patched"] == expected, _lines(graded, "patched")


def test_a_solution_that_warns_in_every_function_gets_full_marks(graded):
    assert graded["functions"] > 0
    assert graded["scores"].cells["warns"] == graded["points"], _lines(graded, "warns")
    assert WARNING in _printed(graded, "warns")
