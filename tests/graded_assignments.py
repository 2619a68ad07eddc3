"""One grading run per assignment, shared by the round trip and the generic attacks.

Grading a notebook costs a few seconds (two kernels start and import torch: about 5.5 s of the
7.5 s of CPU a submission takes), and every assignment pays it once per submission, so the tests
of one assignment share a single `python -m grader.parallel autograde` run (the course's own
parallel grader, three students at a time: a grading spends half its time waiting for kernels)
and a single `generate_feedback`. Every submission is built on the release, as a student's is
(test cells without the hidden tests). The run grades only submissions that show something
about the grader:

* `solution`: the reference solution (the release with the source's answers, `answered`);
* `wrong00`: the solution with the first pack of typical wrong answers of tests/wrong_answers/
  (`pack_wrong_answers`: one wrong answer for as many cells as possible), whose feedback page
  shows a failure in nearly every test cell, hidden tests included;
* the generic attack `hostile` (tests/test_grading_generic_attacks.py), built from the
  assignment's own cells: the solution with a typical wrong answer, whose test cells are
  emptied and made worth 100 points, one other test cell moved to the top and the rest deleted;
  every function of its answers warns first; the first answer cell replaces every check of
  helpers.check and torch.allclose; after the setup cell, cells that kill the kernel, print
  20 MiB and read the hidden tests.

What the other packs of wrong answers show is about the tests, not the grader: that each wrong
answer fails its own test cells, in the part students see, and no other cell; likewise that the
release submitted unchanged (`blank`) fails every test cell. They run with the hidden tests put
back, as the grader restores them, in forks of one warm interpreter (tests/forked_runs.py) while
the grading runs; the solution and `wrong00` run there too, and the round trip checks that both
ways give the same verdict for every cell of those two.

The conftest groups every test that takes a `graded` parameter by assignment on one xdist
worker, so the run below happens once per assignment per test session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from forked_runs import finish_runs, start_runs
from grading import (REPO, GradingResult, WrongAnswer, add_warnings, copy_notebook, grade_cells, make_course_copy,
                     nbgrader, notebook_names, read_gradebook, replace_cell, run_forked, submit)
from wrong_answers import WRONG_ANSWERS

JOBS = 3  # students graded at once: more than the 2 cores, since each grading waits for its kernels

HOSTILE_CELLS = {
    "os._exit": "import os\nos._exit(0)",
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
GENERIC = ("hostile",)
BLANK = "blank"  # the release unchanged: a forked run only


def pack_wrong_answers(wrong_answers: list[WrongAnswer]) -> list[list[WrongAnswer]]:
    """Group wrong answers into as few submissions as possible.

    Two wrong answers can share a submission when they replace different solution cells and
    break disjoint sets of grade cells: each then still has to lose exactly its own cells'
    points, and a hidden dependency between cells shows up as an unexpected loss.
    """
    rounds: list[list[WrongAnswer]] = []
    for wrong in wrong_answers:
        for group in rounds:
            if all(wrong.cell != other.cell and not set(wrong.loses) & set(other.loses) for other in group):
                group.append(wrong)
                break
        else:
            rounds.append([wrong])
    return rounds


def answered(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The release with every answer cell (code or written) as the source has it: what a student
    who solved everything submits (test cells as released, without the hidden tests)."""
    answers = {_grade_id(c): c.source for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    notebook = copy_notebook(release)
    for cell in notebook.cells:
        if _grade_id(cell) in answers:
            cell.source = answers[_grade_id(cell)]
    missing = set(answers) - {_grade_id(c) for c in notebook.cells}
    assert not missing, f"answer cells missing from the release: {sorted(missing)}"
    return notebook


def wrong_student(index: int) -> str:
    return f"wrong{index:02d}"


@dataclass
class AssignmentRun:
    """Everything one grading run of an assignment produced."""

    assignment: str
    course: Path
    honest: GradingResult          # solution, wrong00: the round trip's
    packs: list[list[WrongAnswer]]  # pack_wrong_answers of the assignment's typical wrong answers
    forked: dict[str, dict[str, list[dict]]]  # student -> notebook -> its code cells' results (forked_runs)
    generic: GradingResult         # GENERIC: the attacks'
    logs: dict[str, str]           # student -> that student's grading log
    wrong: WrongAnswer             # the wrong answer `hostile` carries
    warned_functions: int          # functions of `hostile` that warn
    hidden_tests: Path             # the hidden tests' file, which `hostile` tries to read
    statuses: dict[str, str] = field(default_factory=dict)   # student -> grader.parallel's status


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _hostile(solution, wrong: WrongAnswer, hidden_tests: Path) -> tuple[nbformat.NotebookNode, int]:
    """The solution with the wrong answer `wrong`, warning functions, the checks patched in the
    first answer cell, the test cells of the wrong answer emptied (`pass`) and worth 100 points
    each, one other test cell (the last) moved to the top, every other test cell deleted, and the
    hostile cells after the first code cell; and how many functions warn."""
    notebook = replace_cell(solution, wrong.cell, wrong.code.strip("\n"))
    answers = [c for c in notebook.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    warned = 0
    for cell in answers:
        cell.source = add_warnings(cell.source, WARNING)
        warned += cell.source.count(WARNING)
    answers[0].source += "\n" + PATCH
    tested = list(grade_cells(notebook))  # the autograded test cells' ids, in order
    last_kept = [cell for cell in tested if cell not in wrong.loses][-1]  # a test the wrong answer passes
    moved = next(c for c in notebook.cells if _grade_id(c) == last_kept)
    for cell in notebook.cells:
        if _grade_id(cell) in wrong.loses:
            cell.source = "pass"
            cell.metadata["nbgrader"]["points"] = 100
    notebook.cells = [c for c in notebook.cells if _grade_id(c) not in tested or _grade_id(c) in wrong.loses]
    notebook.cells.insert(0, moved)
    first_code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and _grade_id(c) not in tested)
    for offset, code in enumerate(HOSTILE_CELLS.values(), start=1):
        notebook.cells.insert(first_code + offset, nbformat.v4.new_code_cell(code.format(hidden=str(hidden_tests))))
    return notebook, warned


def with_hidden_tests(notebook: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`notebook` with every test cell as the source has it, hidden tests included: what the
    grader runs once it has restored the notebook (grader.autograde.RestoreNotebook)."""
    tested = grade_cells(source)
    tests = {_grade_id(c): c.source for c in source.cells if _grade_id(c) in tested}
    restored = copy_notebook(notebook)
    for cell in restored.cells:
        if _grade_id(cell) in tests:
            cell.source = tests[_grade_id(cell)]
    return restored


_RUNS: dict[str, AssignmentRun] = {}


def graded_assignment(assignment: str, tmp_path_factory) -> AssignmentRun:
    """Grade `assignment`'s honest and generic submissions once per test session (per worker)."""
    if assignment not in _RUNS:
        _RUNS[assignment] = _grade(assignment, tmp_path_factory.mktemp(f"graded-{assignment}"))
    return _RUNS[assignment]


def _grade(assignment: str, base: Path) -> AssignmentRun:
    course = make_course_copy(base, assignment)
    nbgrader(course, "generate_assignment", assignment, "--force")
    names = notebook_names(assignment)
    source = {n: nbformat.read(REPO / "source" / assignment / n, as_version=4) for n in names}
    release = {n: nbformat.read(course / "release" / assignment / n, as_version=4) for n in names}

    solution = {n: answered(release[n], source[n]) for n in names}
    packs = pack_wrong_answers(WRONG_ANSWERS.get(assignment, []))
    submissions = {"solution": solution}
    for index, group in enumerate(packs):
        changed = dict(solution)
        for wrong in group:
            cells = {name: {_grade_id(c) for c in nb.cells} for name, nb in changed.items()}
            name = next(n for n, ids in cells.items() if wrong.cell in ids)  # test_wrong_answers_name_existing_cells
            changed[name] = replace_cell(changed[name], wrong.cell, wrong.code.strip("\n"))
        submissions[wrong_student(index)] = changed
    honest = {student: submissions[student] for student in ("solution", wrong_student(0)) if student in submissions}
    forked = {**submissions, BLANK: release}
    labels = {f"{student}-{Path(name).stem}": (student, name) for student in forked for name in forked[student]}
    job = start_runs(course / "release" / assignment, {label: with_hidden_tests(forked[student][name], source[name])
                                                       for label, (student, name) in labels.items()}, base / "forked")

    (name,) = names  # the generic attacks assume one notebook (test_notebooks checks the layout)
    hidden_tests = course / "source" / assignment / name
    wrong = WRONG_ANSWERS[assignment][0]
    hostile, warned = _hostile(solution[name], wrong, hidden_tests)
    generic = {"hostile": {name: hostile}}

    for student, notebooks in {**honest, **generic}.items():
        submit(course, student, assignment, notebooks)
    logs_dir, results = base / "logs", base / "results.json"
    status, output = run_forked(course, ["python", "-m", "grader.parallel", "autograde", assignment, "--force",
                                         "--jobs", str(JOBS), "--log-dir", str(logs_dir), "--json", str(results)],
                                timeout=1800)
    assert status == 0, output[-4000:]
    statuses = {r["student"]: r["status"] for r in json.loads(results.read_text())}
    logs = {student: (logs_dir / f"{student}.log").read_text() for student in statuses}
    nbgrader(course, "generate_feedback", assignment, "--force")
    ran = finish_runs(job)
    forked_results: dict[str, dict[str, list[dict]]] = {}
    for label, (student, name) in labels.items():
        forked_results.setdefault(student, {})[name] = ran[label]

    honest_result = read_gradebook(course, assignment, list(honest))
    honest_result.notebooks_executed = len(honest) * len(names)
    honest_result.log = "\n".join(logs[student] for student in honest)
    generic_result = read_gradebook(course, assignment, list(generic))
    generic_result.notebooks_executed = len(generic)
    generic_result.log = "\n".join(logs[student] for student in generic)
    return AssignmentRun(assignment, course, honest_result, packs, forked_results, generic_result, logs, wrong,
                         warned, hidden_tests, statuses)
