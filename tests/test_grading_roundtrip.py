"""The grading round-trip for every assignment, in a temporary copy of the course.

For each assignment, in one grading run shared with the generic attacks
(tests/graded_assignments.py): `nbgrader generate_assignment` reproduces the committed
release/; the reference solution (built on the release, as a student's notebook is) runs
without an error in any cell and scores full marks; every typical wrong answer fails exactly
the test cells it breaks, in the tests students can see (in forked runs, checked against the
grader on the first pack); both kernels keep 2 GiB below the memory limit; generate_feedback and
export run and the CSV holds the scores; every feedback page shows each test's name, points and
failure message, and no hidden test; and the release submitted unchanged fails every test cell
(a forked run).

The assignments' source notebooks are not run again by nbval: grading the solution runs every
cell of it, hidden tests included, in the grading sandbox.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from feedback_pages import page_problems
from graded_assignments import BLANK, AssignmentRun, graded_assignment, pack_wrong_answers, wrong_student
from grading import (ASSIGNMENTS, REPO, GradingResult, WrongAnswer, assignment_points, exported_scores,
                     notebook_names)
from wrong_answers import WRONG_ANSWERS


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory) -> GradingResult:
    """The honest submissions of the assignment's one grading run (tests/graded_assignments.py):
    the solution and the first pack of wrong answers, autograded, with feedback."""
    return graded_assignment(request.param, tmp_path_factory).honest


@pytest.fixture
def run(graded: GradingResult, tmp_path_factory) -> AssignmentRun:
    """The whole grading run `graded` comes from, forked runs included."""
    return graded_assignment(graded.assignment, tmp_path_factory)


def test_release_matches_generated(graded: GradingResult):
    """release/ is what `nbgrader generate_assignment` makes from source/ (never stale)."""
    committed = REPO / "release" / graded.assignment
    generated = graded.course / "release" / graded.assignment
    committed_files = sorted(p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file())
    generated_files = sorted(p.relative_to(generated).as_posix() for p in generated.rglob("*") if p.is_file())
    assert committed_files == generated_files
    for name in generated_files:
        if name.endswith(".ipynb"):
            assert json.loads((committed / name).read_text()) == json.loads((generated / name).read_text()), (
                f"release/{graded.assignment}/{name} is stale: run "
                f"`nbgrader generate_assignment {graded.assignment} --force` and commit the result")
        else:
            assert (committed / name).read_bytes() == (generated / name).read_bytes(), name


def test_solution_scores_full_marks(graded: GradingResult, record_property):
    record_property("notebooks_executed", graded.notebooks_executed)
    assert graded.max_score > 0
    tested, scores = assignment_points(graded.assignment), graded.cells["solution"]
    failing = {cell: scores.get(cell) for cell, points in tested.items() if scores.get(cell) != points}
    assert not failing, f"reference solution lost points in {failing}"
    # Written answers wait for a person (docs/instructor.md): the solution's total is every test's points.
    assert graded.total["solution"] == sum(tested.values()) == graded.max_score


def test_solution_runs_without_an_error_in_any_cell(graded: GradingResult):
    """The reference solution's every cell (examples and answers in the student's kernel, tests
    with their hidden part in the tests' kernel) runs without an error, as nbval would demand."""
    errors = []
    for name in notebook_names(graded.assignment):
        path = graded.course / "autograded" / "solution" / graded.assignment / name
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
                    errors.append(f"{name}: {label}: {output.get('ename')}: {output.get('evalue')}")
    assert not errors, "\n".join(errors)


def test_the_memory_limit_leaves_room_for_the_solution_in_both_kernels(graded: GradingResult, record_property):
    """RLIMIT_AS counts address space (torch's CUDA build maps ~3.2 GiB at import), and each of a
    notebook's two kernels has the limit to itself: both must keep 2 GiB beyond their peak in the
    reference solution, or honest cells fail with MemoryError now and then under load. The grader
    logs each notebook's peaks (grader.autograde.TwoKernelExecute, read from /proc)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    limit = config.SandboxKernelManager.memory_limit_mib
    lines = [line for line in graded.log.splitlines()
             if "student solution: notebook" in line and "peak address space" in line]
    assert len(lines) == len(notebook_names(graded.assignment)), f"no peak logged:\n{graded.log[-2000:]}"
    for line in lines:
        peaks = {role: float(mib) for role, mib in re.findall(r"the (student's|tests') kernel (\d+) MiB", line)}
        assert set(peaks) == {"student's", "tests'"} and f"(limit {limit} MiB)" in line, line
        record_property("peak_address_space_mib", max(peaks.values()))
        assert all(limit - peak >= 2048 for peak in peaks.values()), f"{line}: less than 2 GiB below the limit"


def test_honest_work_raises_no_alarm_in_the_grading_log(graded: GradingResult):
    """The solution and the wrong answers are honest work: the grading log
    must not report tampering, access outside the student's folder, limits or dead kernels
    (a false alarm would teach instructors to ignore the real ones)."""
    alarms = ("tampering detected", "outside the student's folder", "stopped by the", "the kernel died",
              "output limit", "restored")
    flagged = [line for line in graded.log.splitlines() if any(alarm in line for alarm in alarms)]
    assert not flagged, "\n".join(flagged)


def test_every_grade_cell_has_a_typical_wrong_answer(graded: GradingResult):
    all_cells = set(assignment_points(graded.assignment))
    covered = {cell for wrong in WRONG_ANSWERS.get(graded.assignment, []) for cell in wrong.loses}
    assert all_cells <= covered, f"grade cells without a wrong-answer case: {sorted(all_cells - covered)}"


def _written(assignment: str) -> dict[str, float]:
    """grade_id -> points of the answers graded by a person (grade and solution cells)."""
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
            for n in notebook_names(assignment) for c in nbformat.read(REPO / "source" / assignment / n, 4).cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.metadata.nbgrader.get("solution")}


def _forked_errors(run: AssignmentRun, student: str) -> dict[str, dict | None]:
    """grade_id -> the error of that test cell (None: it passed) in `student`'s forked run."""
    tested = assignment_points(run.assignment)
    return {cell["grade_id"]: cell["error"] for notebook in run.forked[student].values() for cell in notebook
            if cell["grade_id"] in tested}


def _source_cells(assignment: str) -> dict[str, str]:
    """grade_id -> the source notebook's cell (hidden tests included)."""
    return {c.metadata.nbgrader["grade_id"]: c.source for n in notebook_names(assignment)
            for c in nbformat.read(REPO / "source" / assignment / n, 4).cells if c.metadata.get("nbgrader")}


def test_forked_runs_give_the_graders_verdict(graded: GradingResult, run: AssignmentRun):
    """The wrong answers' packs run in forks of one warm interpreter (tests/forked_runs.py), not
    through the grader; for the two submissions that went both ways (the solution and the first
    pack) every test cell must pass or fail alike, and fail in the same part (visible or hidden)."""
    from grader.feedback import failed_in_hidden_tests

    full, sources = assignment_points(graded.assignment), _source_cells(graded.assignment)
    problems = []
    for student in graded.total:
        errors = _forked_errors(run, student)
        assert set(errors) == set(full), f"{student}: forked run lacks cells {sorted(set(full) - set(errors))}"
        autograded = {c.metadata.nbgrader["grade_id"]: c for n in notebook_names(graded.assignment)
                      for c in nbformat.read(graded.course / "autograded" / student / graded.assignment / n, 4).cells
                      if c.metadata.get("nbgrader", {}).get("grade_id") in full}
        for cell, points in full.items():
            graded_error = next((o for o in autograded[cell].outputs if o.get("output_type") == "error"), None)
            forked_error = errors[cell]
            if (graded.cells[student][cell] == points) != (forked_error is None) or \
                    (graded_error is None) != (forked_error is None):
                problems.append(f"{student}: {cell}: graded {graded.cells[student][cell]} of {points} "
                                f"({graded_error and graded_error.get('ename')}), forked run: "
                                f"{forked_error and forked_error['ename'] + ': ' + forked_error['evalue'][:300]}")
            elif forked_error is not None and failed_in_hidden_tests(sources[cell], forked_error) != \
                    failed_in_hidden_tests(autograded[cell].source, graded_error):
                problems.append(f"{student}: {cell}: fails in a different part of the test cell")
    assert len(graded.total) == min(2, 1 + len(run.packs)), f"graded: {sorted(graded.total)}"
    assert not problems, "\n".join(problems)


def test_wrong_answers_lose_exactly_their_points(run: AssignmentRun):
    """Each pack of wrong answers (its forked run, hidden tests included) fails exactly the test
    cells its wrong answers name, and every other test cell passes."""
    problems = []
    for index, group in enumerate(run.packs):
        for cell, error in _forked_errors(run, wrong_student(index)).items():
            breakers = [w for w in group if cell in w.loses]
            if bool(breakers) != (error is not None):
                cause = "; ".join(f"{w.cell}: {w.why}" for w in breakers) or \
                    "no wrong answer targets it (hidden dependency on: " + ", ".join(w.cell for w in group) + ")"
                got = "passed" if error is None else f"failed ({error['ename']}: {error['evalue'][:300]})"
                problems.append(f"{wrong_student(index)}: {cell} {got}, expected it to "
                                f"{'fail' if breakers else 'pass'} ({cause})")
    assert run.forked.keys() == {"solution", BLANK, *(wrong_student(i) for i in range(len(run.packs)))}
    assert not problems, "\n".join(problems)


def test_the_release_submitted_unchanged_fails_every_test(run: AssignmentRun):
    """A test that passes on the blank release gives points for nothing (forked run, hidden
    tests included; blank submissions through the grader: the exchange, JupyterHub, parallel and
    PostgreSQL tests)."""
    errors = _forked_errors(run, BLANK)
    assert set(errors) == set(assignment_points(run.assignment))
    passing = [cell for cell, error in errors.items() if error is None]
    assert not passing, f"test cells that pass on the release as it is handed out: {passing}"


def test_wrong_answers_name_existing_cells():
    for assignment, wrong_answers in WRONG_ANSWERS.items():
        notebooks = [nbformat.read(REPO / "source" / assignment / n, as_version=4) for n in notebook_names(assignment)]
        ids = {c.metadata.get("nbgrader", {}).get("grade_id") for nb in notebooks for c in nb.cells}
        for wrong in wrong_answers:
            assert wrong.cell in ids and set(wrong.loses) <= ids, f"{assignment}: {wrong} names unknown cells"


MAX_PACKS = 6  # submissions of wrong answers per assignment (docs/authoring.md, "The CI budget")


def test_wrong_answers_fit_the_ci_budget():
    """Each pack of wrong answers runs the whole notebook once more (in a fork: about the
    solution's own time, tests/forked_runs.py) in every CI run, and there are as many packs as
    wrong answers aimed at the busiest cell."""
    over = {assignment: len(pack_wrong_answers(wrongs)) for assignment, wrongs in WRONG_ANSWERS.items()
            if len(pack_wrong_answers(wrongs)) > MAX_PACKS}
    assert not over, f"more than {MAX_PACKS} packs of wrong answers: {over}: spread the cases over the cells " \
                     "or drop one that shows nothing another does not"


def test_packing_keeps_conflicting_wrong_answers_apart():
    a1 = WrongAnswer("a", "", ("test_a",), "")
    a2 = WrongAnswer("a", "", ("test_a",), "")
    b = WrongAnswer("b", "", ("test_b",), "")
    c = WrongAnswer("c", "", ("test_b", "test_c"), "")
    assert pack_wrong_answers([a1, a2, b, c]) == [[a1, b], [a2, c]]


def test_feedback_and_export(graded: GradingResult):
    feedback = graded.course / "feedback"
    for student in graded.total:
        pages = list((feedback / student / graded.assignment).glob("*.html"))
        assert pages, f"no feedback page for {student}"
        if student == "solution":
            tested = sum(assignment_points(graded.assignment).values())
            page_max = graded.max_score + sum(_written(graded.assignment).values())
            assert f"(Score: {tested:.1f} / {page_max:.1f})" in pages[0].read_text(), \
                "the solution's feedback page does not show every test's points"
    exported = exported_scores(graded.course, graded.assignment)
    assert {student: exported.get(student) for student in graded.total} == graded.total


def test_feedback_pages_reveal_no_hidden_test(graded: GradingResult):
    """Every page (the solution, each wrong answer) names each test, shows its points and, when
    it failed, its message; it shows no line of the hidden tests and no quiz key, and a hidden
    test's message says nothing of what it expected (grader/feedback.py, docs/grading-sandbox.md)."""
    problems = []
    for student in graded.total:
        for name in notebook_names(graded.assignment):
            source = nbformat.read(REPO / "source" / graded.assignment / name, as_version=4)
            release = nbformat.read(graded.course / "release" / graded.assignment / name, as_version=4)
            autograded = nbformat.read(graded.course / "autograded" / student / graded.assignment / name, as_version=4)
            errors = {}
            for cell in autograded.cells:
                failed = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if failed and cell.metadata.get("nbgrader", {}).get("grade"):
                    errors[cell.metadata["nbgrader"]["grade_id"]] = (failed[0].ename, failed[0].evalue)
            page = (graded.course / "feedback" / student / graded.assignment / name).with_suffix(".html").read_text()
            problems += [f"{student}: {problem}" for problem in
                         page_problems(page, source, release, graded.cells[student], errors)]
    assert not problems, "\n".join(problems)


def test_visible_tests_catch_the_typical_wrong_answers(run: AssignmentRun, record_property):
    """Each typical wrong answer loses its cells in the tests students can see and run (the
    release's part of the test cell), not only in the hidden ones, unless it is marked
    `hidden_only` with a reason (docs/authoring.md)."""
    from grader.feedback import failed_in_hidden_tests

    sources = _source_cells(run.assignment)
    problems, caught, marked = [], 0, 0
    for index, group in enumerate(run.packs):
        errors = _forked_errors(run, wrong_student(index))
        for wrong in group:
            hidden = [cell for cell in wrong.loses
                      if failed_in_hidden_tests(sources[cell], errors[cell] or {}) is not False]
            if wrong.hidden_only:
                marked += 1
                if not hidden:
                    problems.append(f"{wrong.cell}: {wrong.why}: now caught by the visible tests: drop hidden_only")
            elif hidden:
                problems.append(f"{wrong.cell}: {wrong.why}: only hidden tests catch it in {hidden}")
            else:
                caught += 1
    record_property("wrong_answers_caught_visibly", f"{caught} of {caught + marked}")
    assert not problems, "\n".join(problems)


def test_only_quiz_keys_are_left_to_the_hidden_tests():
    """A wrong answer may be caught by the hidden tests alone only when it is a quiz's wrong
    option (the visible test cannot know the key); every other one is caught visibly."""
    from wrong_answers.reasons import QUIZ_KEY

    others = [f"{assignment}: {wrong.cell}: {wrong.why} ({wrong.hidden_only})"
              for assignment, wrongs in WRONG_ANSWERS.items() for wrong in wrongs
              if wrong.hidden_only and wrong.hidden_only != QUIZ_KEY]
    assert not others, "\n".join(others)
