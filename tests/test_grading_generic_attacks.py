"""The attacks that do not depend on an assignment, against every assignment.

tests/test_grading_attacks.py takes every attack apart on assignment 01 (with a control run
that shows each protection is needed), and tests/test_grading_limits.py the time and memory
limits. Here the generic attacks are built from each assignment's own cells, so that every
assignment's structure (its cell ids, test cells, setup cell, the names its tests look up in
the student's kernel) is shown to be protected. They are graded in the assignment's one
grading run, beside the round trip's submissions (tests/graded_assignments.py):

* `hostile`: the reference solution with one typical wrong answer. The test cells that answer
  fails are emptied (`pass`) and made worth 100 points each, the last other test cell is moved
  to the top and the others are deleted; every function of its answer cells (methods and
  nested functions included) calls `warnings.warn(...)` first; its first answer cell replaces
  every check in helpers.check and torch.allclose (in the student's kernel, where no test
  runs); and after the setup cell, the student's own cells: os._exit, 20 MiB of output and a
  read of the hidden tests. Every point but the wrong answer's, as in an honest grading, out of
  the assignment's real total: the tests come back in place with their points, the warnings
  are shown as plain text, the patched checks change nothing, and each hostile cell costs only
  itself (a log line for each: the kernel replaced, the output cut, the read refused; a small
  notebook).

(The release submitted unchanged fails every test cell: tests/test_grading_roundtrip.py, in a
forked run, as the typical wrong answers do.)
"""

from __future__ import annotations

import nbformat
import pytest

from graded_assignments import GENERIC, WARNING, AssignmentRun, graded_assignment
from grading import ASSIGNMENTS, assignment_points, notebook_names, require_sandbox


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory) -> AssignmentRun:
    """(The parameter is named `graded` so that conftest.py groups it per assignment on one worker.)"""
    require_sandbox()
    return graded_assignment(request.param, tmp_path_factory)


def _printed(run: AssignmentRun, student: str) -> str:
    (name,) = notebook_names(run.assignment)
    path = run.course / "autograded" / student / run.assignment / name
    return "".join(o.get("text", "") for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
                   for o in c.outputs)


def test_every_generic_attack_was_graded(graded: AssignmentRun, record_property):
    record_property("notebooks_executed", graded.generic.notebooks_executed)
    assert {s: graded.statuses.get(s) for s in GENERIC} == dict.fromkeys(GENERIC, "ok")


def _honest_scores(run: AssignmentRun) -> dict[str, float]:
    """What `hostile` deserves: every point but those of the wrong answer it carries."""
    points = assignment_points(run.assignment)
    return {cell: 0.0 if cell in run.wrong.loses else value for cell, value in points.items()}


def test_hostile_cells_and_moved_tests_cost_only_themselves(graded: AssignmentRun):
    cells, log = graded.generic.cells["hostile"], graded.logs["hostile"]
    assert cells == _honest_scores(graded), log[-3000:]
    for what in ("the kernel died", "output limit", f"outside the student's folder: read {graded.hidden_tests}",
                 "cells were moved", "missing from the submission; restored from the gradebook"):
        assert what in log, f"{graded.assignment}: {what!r} not logged:\n{log[-3000:]}"
    (name,) = notebook_names(graded.assignment)
    assert (graded.course / "autograded" / "hostile" / graded.assignment / name).stat().st_size < 2_000_000
    printed = _printed(graded, "hostile")
    assert "blocked" in printed and "LEAK" not in printed


def test_answers_that_warn_in_every_function_keep_their_points(graded: AssignmentRun):
    assert graded.warned_functions > 0
    assert graded.generic.cells["hostile"] == _honest_scores(graded)
    assert WARNING in _printed(graded, "hostile")


def test_patched_checks_change_nothing(graded: AssignmentRun):
    # The checks run in the tests' kernel: the wrong answer loses exactly its own cells.
    assert graded.generic.cells["hostile"] == _honest_scores(graded), graded.logs["hostile"][-3000:]
    assert "All tests passed" in _printed(graded, "hostile")  # the patch ran


def test_emptied_tests_worth_100_points_come_back_with_their_points(graded: AssignmentRun):
    """The wrong answer's test cells were emptied and made worth 100 points: restored, they fail
    it, and the total is the assignment's."""
    assert set(graded.wrong.loses) <= {cell for cell, score in graded.generic.cells["hostile"].items() if score == 0}
    assert graded.generic.max_score == sum(assignment_points(graded.assignment).values())
    assert graded.generic.total["hostile"] == sum(_honest_scores(graded).values())
    for cell in graded.wrong.loses:
        assert f"cell {cell}: nbgrader metadata edited" in graded.logs["hostile"], graded.logs["hostile"][-3000:]
