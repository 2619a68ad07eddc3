"""Grading that is never fooled: attacks on autograding, all graded in ONE nbgrader run.

Each student below is the reference solution of assignment 01 with one attack (plus, where
it matters, wrong answers that the attack tries to hide). One `nbgrader autograde` grades
them all; for each we assert the score the honest work deserves, that the batch went on,
and the log line naming the student and what happened.

The control group: the same attacks graded with every protection off (the course's and
nbgrader's own). For each attack, the very check that passes above must fail there, and the
damage its protection prevents must be visible (a wrong answer credited, a leaked file, a
40 GiB allocation granted, 200 processes forked, ...). Attacks that could harm the machine
are bounded in the control: the loop ends after 20 s, the memory bomb only reserves its
40 GiB without touching it, the fork bomb forks 200 sleeping children, the output is 6 MiB.

The sandbox needs Debian's bubblewrap: missing, these tests skip (CI=true: fail), like the
browser tests do for Chromium.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket

import nbformat
import pytest

from grading import (MEMORY_BOMB, REPO, make_course_copy, nbgrader, nbgrader_unchecked, read_gradebook, replace_cell,
                     require_sandbox, submit, submit_files)

pytestmark = pytest.mark.xdist_group("grading-attacks")

A = "01_tensors"
NB = "01_tensors.ipynb"
FULL = {"test_one_hot": 3.0, "test_normalize_rows": 4.0, "test_pairwise_distances": 6.0,
        "test_batched_matmul": 4.0, "test_to_model_input": 4.0, "test_q1": 2.0, "test_q2": 2.0}

# Wrong only in its dtype (int64, not float32): check_tensor is what catches it.
WRONG_ONE_HOT = """def one_hot(labels, num_classes):
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError("label out of range")
    return torch.nn.functional.one_hot(labels, num_classes)"""
WRONG_NORMALIZE = "def normalize_rows(x, eps=1e-12):\n    return x / x.norm(dim=0, keepdim=True).clamp_min(eps)"

PATCH_CHECKS = WRONG_ONE_HOT + """
import helpers.check, numpy.testing
helpers.check.check_tensor = lambda *args, **kwargs: True      # the module's function
check_tensor = lambda *args, **kwargs: True                    # the notebook's name
helpers.check.check_shape.__code__ = (lambda *args, **kwargs: True).__code__   # re-coded in place
numpy.testing.assert_allclose = lambda *args, **kwargs: None
print("All tests passed")"""
# Appended to the correct one_hot; wrong normalize_rows and a pairwise_distances that calls the
# forbidden torch.cdist follow: the patched torch.isclose passes the values, the blinded
# isinstance passes the hidden AST check.
PATCH_LIBS = """
import builtins
torch.isclose = lambda a, b, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *args: True
torch.allclose = lambda *args, **kwargs: True
_isinstance = isinstance  # blind the hidden tests' AST checks only (the kernel itself keeps working)
builtins.isinstance = lambda obj, cls: False if type(obj).__module__ == "ast" else _isinstance(obj, cls)
get_ipython().input_transformers_cleanup.append(lambda lines: lines)
print("All tests passed")"""
CDIST = "def pairwise_distances(a, b):\n    return torch.cdist(a, b)"
FAKE_PRINT = WRONG_ONE_HOT + '\nprint("✔ one_hot: visible tests passed\\nAll tests passed: 25/25")'
# Reads the hidden tests, the gradebook and another student's work; opens the gradebook and
# source/ for writing (writing nothing: opening proves the access and keeps the control run's
# gradebook intact); writes files in the course, in another student's folder and outside the
# course; connects to a server the test runs on loopback (outside the kernel's network namespace).
FILES = '''q1_answer = "b"
import os, pathlib
_course = pathlib.Path(os.getcwd()).parents[2]
_report = []
for _path in [_course / "source" / "01_tensors" / "01_tensors.ipynb", _course / "gradebook.db",
              _course / "submitted" / "honest" / "01_tensors" / "01_tensors.ipynb",
              pathlib.Path("{repo}") / "source" / "01_tensors" / "01_tensors.ipynb"]:
    try:
        _path.read_bytes()
        _report.append(f"LEAK read {{_path}}")
    except OSError as error:
        _report.append(f"blocked read {{type(error).__name__}}")
for _path, _text in [(_course / "gradebook.db", ""), (_course / "source" / "01_tensors" / "01_tensors.ipynb", ""),
                     (_course / "pwned.txt", "pwned"), (_course / "submitted" / "honest" / "pwned.txt", "pwned"),
                     (pathlib.Path("{outside}"), "pwned")]:
    try:
        with open(_path, "a") as _handle:
            _handle.write(_text)
        _report.append(f"LEAK write {{_path}}")
    except OSError as error:
        _report.append(f"blocked write {{type(error).__name__}}")
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    _report.append("LEAK network")
except OSError as error:
    _report.append(f"blocked network {{type(error).__name__}}")
print("\\n".join(_report))'''
CRASH = 'import ctypes\nctypes.string_at(0)\nq2_answer = "a"'
OS_EXIT = 'import os\nos._exit(3)\nq1_answer = "b"'
SYSTEM_EXIT = 'raise SystemExit(0)\nq2_answer = "a"'
KEYBOARD = "def to_model_input(images):\n    raise KeyboardInterrupt\nraise KeyboardInterrupt"
LOOP = "def normalize_rows(x, eps=1e-12):\n    return x\nwhile True:\n    pass"
# The control run has no time limit, so its loop must end: 20 s, far past the 8 s limit used here.
LOOP_20_S = ("def normalize_rows(x, eps=1e-12):\n    return x\nimport time\n_end = time.monotonic() + 20\n"
             "while time.monotonic() < _end:\n    pass")
# After the memory bomb (grading.MEMORY_BOMB), in the same cell: a correct answer it stops.
BATCHED_MATMUL = "\ndef batched_matmul(a, b):\n    return (a[:, :, :, None] * b[:, None, :, :]).sum(dim=2)"
# At most 200 processes (harmless even without a sandbox); each sleeps 20 s then exits.
FORK_BOMB = '''import os, time
_children = 0
for _ in range(200):
    _pid = os.fork()
    if _pid == 0:
        time.sleep(20)
        os._exit(0)
    _children += 1
print("forked", _children)
def pairwise_distances(a, b):
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(dim=-1).sqrt()'''
HUGE_OUTPUT = '''import sys
for _ in range({mib}):
    sys.stdout.write("x" * 2**20 + "\\n")
q2_answer = "a"'''


def _source(notebook, grade_id: str) -> str:
    return next(c.source for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _cells(notebook, replacements: dict[str, str]):
    for grade_id, code in replacements.items():
        notebook = replace_cell(notebook, grade_id, code)
    return notebook


def _edited_structure(solution):
    """Visible tests emptied (with wrong answers), a test deleted, one moved, one made markdown."""
    nb = _cells(solution, {"one_hot": WRONG_ONE_HOT, "test_one_hot": "pass",
                           "normalize_rows": WRONG_NORMALIZE, "test_normalize_rows": "assert True"})
    cells = nb.cells
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in cells]
    cells[ids.index("test_batched_matmul")].cell_type = "markdown"
    cells[ids.index("test_batched_matmul")].pop("outputs", None)
    cells[ids.index("test_batched_matmul")].pop("execution_count", None)
    moved = cells.pop(ids.index("test_q1"))
    cells.insert(0, moved)
    del cells[[c.metadata.get("nbgrader", {}).get("grade_id") for c in cells].index("test_pairwise_distances")]
    return nb


def _edited_metadata(solution):
    """Points of a passing test raised to 100; the test of a wrong answer unlocked and rewritten;
    the test of another wrong answer renamed and emptied."""
    nb = _cells(solution, {"to_model_input": "def to_model_input(images):\n    return torch.tensor(images)",
                           "q2": 'q2_answer = "c"'})
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "test_one_hot":
            meta["points"] = 100
        if meta.get("grade_id") == "test_to_model_input":
            meta.update(locked=False, checksum="0" * 32)
            cell.source = "print('ok')"
        if meta.get("grade_id") == "test_q2":
            meta["grade_id"] = "test_q2_renamed"
            cell.source = "pass"
    return nb


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The control group: every protection off. nbgrader's own sanitizing of cells (OverwriteCells,
# CheckCellMetadata), output limit (LimitOutput) and time limit go, and so do the course's
# (RestoreNotebook, GuardedExecute: sandbox kernel, tamper guard, output cap, dead-kernel
# recovery). What stays only cleans the notebook (outputs, duplicate ids, kernel name).
NO_PROTECTIONS = """
c.Autograde.sanitize_preprocessors = ["nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
                                      "nbgrader.preprocessors.OverwriteKernelspec"]
c.Autograde.autograde_preprocessors = ["nbgrader.preprocessors.Execute", "nbgrader.preprocessors.IgnorePattern",
                                       "nbconvert.preprocessors.ClearMetadataPreprocessor",
                                       "nbgrader.preprocessors.SaveAutoGrades",
                                       "nbgrader.preprocessors.AssignLatePenalties"]
c.Execute.timeout = -1
"""


def _students(solution, port: int, outside, protected: bool) -> dict:
    """One submission per attack (the control run gets the bounded loop and less output)."""
    files = FILES.format(repo=REPO, port=port, outside=outside)
    return {
        "honest": solution,
        "edit_tests": _edited_structure(solution),
        "edit_meta": _edited_metadata(solution),
        "patch_checks": _cells(solution, {"one_hot": PATCH_CHECKS}),
        "patch_libs": _cells(solution, {"one_hot": _source(solution, "one_hot") + PATCH_LIBS,
                                        "normalize_rows": WRONG_NORMALIZE, "pairwise_distances": CDIST}),
        "fake_print": _cells(solution, {"one_hot": FAKE_PRINT}),
        "files": _cells(solution, {"q1": files}),
        "crash": _cells(solution, {"q2": CRASH}),
        "exits": _cells(solution, {"q1": OS_EXIT, "q2": SYSTEM_EXIT, "to_model_input": KEYBOARD}),
        "loop": _cells(solution, {"normalize_rows": LOOP if protected else LOOP_20_S}),
        "bombs": _cells(solution, {"batched_matmul": MEMORY_BOMB + BATCHED_MATMUL, "pairwise_distances": FORK_BOMB}),
        "output": _cells(solution, {"q2": HUGE_OUTPUT.format(mib=200 if protected else 6)}),
    }


def _grade_attacks(tmp_path_factory, protected: bool) -> dict:
    require_sandbox()
    course = make_course_copy(tmp_path_factory.mktemp("attacks" if protected else "control"), A)
    if not protected:
        with open(course / "nbgrader_config.py", "a") as config:
            config.write(NO_PROTECTIONS)
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    outside = course.parent / "pwned-outside.txt"
    # A server the kernel could reach only from the grader's network namespace (the test itself
    # runs offline). Listening is enough: the kernel's connect completes from the backlog.
    with socket.create_server(("127.0.0.1", 0)) as server:
        students = _students(solution, server.getsockname()[1], outside, protected)
        for student, notebook in students.items():
            submit(course, student, A, {NB: notebook})
        broken = {}
        if protected:  # nbgrader itself fails these alone (there is no protection to switch off)
            broken = {"bad_json": {NB: "{ this is not json"},
                      "bad_format": {NB: json.dumps({"nbformat": 99, "cells": "nope"})},
                      "missing": {}, "renamed": {"my_work.ipynb": nbformat.writes(solution)}}
        for student, files in broken.items():
            submit_files(course, student, A, files)
        before = {"source": _digest(course / "source" / A / NB), "repo_source": _digest(REPO / "source" / A / NB)}
        # A short cell time limit for the infinite loop (the course's is 120 s; same mechanism).
        timeout = ["--Execute.timeout=8"] if protected else []
        proc = nbgrader_unchecked(course, "autograde", A, "--force", *timeout, timeout=600)
    graded = {}
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in [*students, *broken]:
            try:
                submission = gradebook.find_submission(A, student)
                graded[student] = (submission.score, {g.name: g.score for n in submission.notebooks for g in n.grades})
            except MissingEntry:
                graded[student] = (None, {})
    return {"course": course, "log": proc.stdout + proc.stderr, "graded": graded, "before": before,
            "returncode": proc.returncode, "outside": outside, "notebooks": len(students) + len(broken)}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """All attacks, graded in one run with the course's protections."""
    return _grade_attacks(tmp_path_factory, protected=True)


@pytest.fixture(scope="module")
def unprotected(tmp_path_factory):
    """The same attacks (bounded where they would harm the machine), graded with none."""
    return _grade_attacks(tmp_path_factory, protected=False)


def _expect(result, student: str, zero: set[str]) -> None:
    score, cells = result["graded"][student]
    expected = {cell: (0.0 if cell in zero else points) for cell, points in FULL.items()}
    assert cells == expected, f"{student}: {cells} != {expected}\n{_log_lines(result, student)}"
    assert score == sum(expected.values())


def _log_lines(result, student: str) -> str:
    return "\n".join(line for line in result["log"].splitlines() if f"student {student}:" in line or
                     f"'{student}'" in line)


def _graded_notebook(result, student: str) -> nbformat.NotebookNode:
    return nbformat.read(result["course"] / "autograded" / student / A / NB, as_version=4)


def _printed(result, student: str) -> str:
    return "".join(o.get("text", "") for c in _graded_notebook(result, student).cells if c.cell_type == "code"
                   for o in c.outputs)


def _errors(result, student: str) -> list[str]:
    return [o.ename for c in _graded_notebook(result, student).cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "error"]


# --------------------------------------------------------------------------------------
# What a defeated attack looks like. Each check passes on the protected run (the tests just
# below) and fails on the unprotected one (test_without_its_protection_the_attack_succeeds).
# --------------------------------------------------------------------------------------

def check_edited_test_cells(result) -> None:
    # Emptied visible tests do not hide the wrong answers; deleted/moved/markdown tests run again.
    _expect(result, "edit_tests", {"test_one_hot", "test_normalize_rows"})
    lines = _log_lines(result, "edit_tests")
    assert "cell test_pairwise_distances: missing from the submission; restored" in lines
    assert "cells were moved" in lines
    assert "cell test_batched_matmul: type changed to markdown; restored" in lines


def check_edited_metadata(result) -> None:
    _expect(result, "edit_meta", {"test_to_model_input", "test_q2"})
    assert result["graded"]["edit_meta"][0] == 19.0
    assert "cell test_one_hot: nbgrader metadata edited (points)" in _log_lines(result, "edit_meta")
    assert "cell test_to_model_input: nbgrader metadata edited (locked)" in _log_lines(result, "edit_meta")
    assert "cell test_to_model_input: locked cell edited; restored" in _log_lines(result, "edit_meta")
    assert "cell test_q2: missing from the submission; restored" in _log_lines(result, "edit_meta")


def check_patched_checks(result) -> None:
    # The patch runs in the first answer cell: every test cell after it is void.
    _expect(result, "patch_checks", set(FULL))
    lines = _log_lines(result, "patch_checks")
    assert "student patch_checks: notebook 01_tensors: cell test_one_hot: tampering detected (" in lines
    for what in ["helpers.check.check_tensor replaced", "check_shape re-coded",
                 "numpy.testing.assert_allclose replaced", "check_tensor rebound in the notebook"]:
        assert what in lines, f"{what!r} not named in:\n{lines}"


def check_patched_libraries(result) -> None:
    _expect(result, "patch_libs", set(FULL))
    lines = _log_lines(result, "patch_libs")
    for what in ["torch.isclose replaced", "torch.equal replaced", "torch.allclose replaced",
                 "builtins.isinstance replaced", "input_transformers_cleanup changed"]:
        assert what in lines, f"{what!r} not named in:\n{lines}"


def check_files_and_network(result) -> None:
    _expect(result, "files", set())
    printed = _printed(result, "files")
    assert "LEAK" not in printed, printed
    assert printed.count("blocked read") == 4 and printed.count("blocked write") == 5, printed
    assert "blocked network" in printed, printed
    course = result["course"]
    assert _digest(course / "source" / A / NB) == result["before"]["source"]
    assert _digest(REPO / "source" / A / NB) == result["before"]["repo_source"]
    assert not (course / "pwned.txt").exists() and not (course / "submitted" / "honest" / "pwned.txt").exists()
    assert not result["outside"].exists()
    # The log names what was tried (not the write under /tmp: the kernel's /tmp is its own scratch space).
    lines = _log_lines(result, "files")
    for what in ["read " + str(course / "source" / A / NB), "read " + str(course / "gradebook.db"),
                 "read " + str(course / "submitted" / "honest" / A / NB), "read " + str(REPO / "source" / A / NB),
                 "write " + str(course / "gradebook.db"), "write " + str(course / "submitted" / "honest" / "pwned.txt"),
                 "connect to ('127.0.0.1'"]:
        assert f"student files: notebook 01_tensors: cell q1: outside the student's folder: {what}" in lines, lines


def check_crash(result) -> None:
    _expect(result, "crash", {"test_q2"})
    assert "cell q2: the kernel died" in _log_lines(result, "crash")


def check_exits(result) -> None:
    _expect(result, "exits", {"test_q1", "test_q2", "test_to_model_input"})
    assert "cell q1: the kernel died" in _log_lines(result, "exits")


def check_infinite_loop(result) -> None:
    _expect(result, "loop", {"test_normalize_rows"})
    assert "CellTimeoutError" in _errors(result, "loop")
    assert "cell normalize_rows: CellTimeoutError: stopped by the time limit per cell" in _log_lines(result, "loop")


def check_memory_bomb(result) -> None:
    _expect(result, "bombs", {"test_batched_matmul", "test_pairwise_distances"})
    assert "MemoryError" in _errors(result, "bombs")
    assert "cell batched_matmul: MemoryError: stopped by the memory limit" in _log_lines(result, "bombs")


def check_fork_bomb(result) -> None:
    _expect(result, "bombs", {"test_batched_matmul", "test_pairwise_distances"})
    assert "BlockingIOError" in _errors(result, "bombs")
    assert "cell pairwise_distances: BlockingIOError: stopped by the process limit" in _log_lines(result, "bombs")


def check_huge_output(result) -> None:
    _expect(result, "output", set())
    path = result["course"] / "autograded" / "output" / A / NB
    assert path.stat().st_size < 1_000_000, path.stat().st_size
    assert "cell q2: output limit" in _log_lines(result, "output")


# --------------------------------------------------------------------------------------
# With the protections: every attack is defeated
# --------------------------------------------------------------------------------------

def test_honest_work_scores_full_marks(attacked, record_property):
    record_property("notebooks_executed", attacked["notebooks"])
    _expect(attacked, "honest", set())
    assert "tampering" not in _log_lines(attacked, "honest")
    assert "outside the student's folder" not in _log_lines(attacked, "honest")


def test_edited_deleted_moved_and_markdown_test_cells_are_restored(attacked):
    check_edited_test_cells(attacked)


def test_edited_metadata_is_restored(attacked):
    check_edited_metadata(attacked)


def test_monkeypatched_checks_are_detected_and_score_zero(attacked):
    check_patched_checks(attacked)


def test_monkeypatched_libraries_are_detected_and_score_zero(attacked):
    check_patched_libraries(attacked)


def test_hidden_files_gradebook_other_students_and_network_are_out_of_reach(attacked):
    check_files_and_network(attacked)


def test_a_crashed_kernel_costs_only_its_cell(attacked):
    check_crash(attacked)


def test_exits_cost_only_their_cells(attacked):
    check_exits(attacked)


def test_infinite_loop_is_stopped(attacked):
    check_infinite_loop(attacked)


def test_memory_bomb_is_stopped_by_the_limit(attacked):
    check_memory_bomb(attacked)


def test_fork_bomb_is_bounded_by_the_process_limit(attacked):
    check_fork_bomb(attacked)


def test_huge_output_is_cut_and_the_notebook_stays_small(attacked):
    check_huge_output(attacked)


def test_printing_all_tests_passed_changes_nothing(attacked):
    _expect(attacked, "fake_print", {"test_one_hot"})


def test_invalid_notebooks_fail_alone_with_a_clear_log_line(attacked):
    graded, log = attacked["graded"], attacked["log"]
    assert attacked["returncode"] != 0  # nbgrader reports the failed students at the end
    for student in ("bad_json", "bad_format", "renamed"):
        assert f"There was an error processing assignment '01_tensors' for student '{student}'" in log
        assert not graded[student][0]
    assert not graded["missing"][0]  # no notebook: nbgrader skips the student, with a warning
    assert "No notebooks were matched by" in log and "missing/01_tensors/*.ipynb" in log


def test_the_batch_went_on(attacked):
    # Every attacked student was graded, in one run, despite crashes, bombs and broken notebooks.
    for student in ("honest", "edit_tests", "crash", "exits", "bombs", "output", "files", "loop"):
        assert attacked["graded"][student][0] is not None, student


# --------------------------------------------------------------------------------------
# Without them: each check above fails, for the reason its protection exists
# --------------------------------------------------------------------------------------

def _score(result, student: str) -> float | None:
    return result["graded"][student][0]


def harm_edited_test_cells(result) -> None:
    # The emptied visible test credits the wrong one_hot (3 points it does not deserve).
    assert result["graded"]["edit_tests"][1].get("test_one_hot") == 3.0, result["graded"]["edit_tests"]


def harm_edited_metadata(result) -> None:
    # 100 points for a 3-point test, and the rewritten test credits the wrong to_model_input.
    cells = result["graded"]["edit_meta"][1]
    assert cells["test_one_hot"] == 100.0 and cells["test_to_model_input"] == 4.0, cells


def harm_patched_checks(result) -> None:
    assert _score(result, "patch_checks") == 25.0, "the patched checks pass a wrong one_hot"


def harm_patched_libraries(result) -> None:
    # Wrong normalize_rows and the forbidden torch.cdist, credited in full.
    assert _score(result, "patch_libs") == 25.0, result["graded"]["patch_libs"]


def harm_files_and_network(result) -> None:
    printed = _printed(result, "files")
    assert printed.count("LEAK read") == 4, printed     # hidden tests, gradebook, another student, repo
    assert printed.count("LEAK write") == 5, printed    # gradebook, source/, course, another student, outside
    assert "LEAK network" in printed, printed
    assert (result["course"] / "pwned.txt").exists() and result["outside"].exists()


def harm_crash(result) -> None:
    # The dead kernel ends the whole notebook: 23 honest points are lost, not 2.
    assert not _score(result, "crash"), result["graded"]["crash"]
    assert "There was an error processing assignment '01_tensors' for student 'crash'" in result["log"]


def harm_exits(result) -> None:
    assert not _score(result, "exits"), result["graded"]["exits"]


def harm_infinite_loop(result) -> None:
    # Nothing stopped the loop: with a real infinite loop, grading would never end.
    assert "CellTimeoutError" not in _errors(result, "loop")
    assert _score(result, "loop") is not None


def harm_memory_bomb(result) -> None:
    assert "UNLIMITED: 40 GiB of memory granted" in _printed(result, "bombs")


def harm_fork_bomb(result) -> None:
    assert "forked 200" in _printed(result, "bombs")


def harm_huge_output(result) -> None:
    assert (result["course"] / "autograded" / "output" / A / NB).stat().st_size > 6_000_000


CONTROLS = {
    "edited test cells (RestoreNotebook, OverwriteCells)": (check_edited_test_cells, harm_edited_test_cells),
    "edited metadata (RestoreNotebook, OverwriteCells)": (check_edited_metadata, harm_edited_metadata),
    "patched checks (tamper guard)": (check_patched_checks, harm_patched_checks),
    "patched libraries (tamper guard)": (check_patched_libraries, harm_patched_libraries),
    "files and network (sandbox)": (check_files_and_network, harm_files_and_network),
    "crash (dead-kernel recovery)": (check_crash, harm_crash),
    "exits (dead-kernel recovery)": (check_exits, harm_exits),
    "infinite loop (cell time limit)": (check_infinite_loop, harm_infinite_loop),
    "memory bomb (address-space limit)": (check_memory_bomb, harm_memory_bomb),
    "fork bomb (process limit)": (check_fork_bomb, harm_fork_bomb),
    "huge output (output limit)": (check_huge_output, harm_huge_output),
}


@pytest.mark.xdist_group("grading-attacks-control")  # its own worker: runs beside the protected batch
@pytest.mark.parametrize("attack", list(CONTROLS))
def test_without_its_protection_the_attack_succeeds(unprotected, attack, record_property):
    check, harm = CONTROLS[attack]
    if attack == next(iter(CONTROLS)):
        record_property("notebooks_executed", unprotected["notebooks"])
    harm(unprotected)  # the damage the protection prevents is visible ...
    with pytest.raises(AssertionError):
        check(unprotected)  # ... and the test that passes with the protection fails


@pytest.mark.xdist_group("grading-attacks-control")
def test_without_protections_honest_work_and_a_printed_claim_grade_the_same(unprotected):
    # The control run grades honestly: differences above come from the attacks alone. And a
    # printed "All tests passed" fooled nothing even there (nbgrader scores errors, not text).
    _expect(unprotected, "honest", set())
    _expect(unprotected, "fake_print", {"test_one_hot"})


def test_without_bubblewrap_grading_works_with_a_reduced_sandbox(tmp_path):
    """No bwrap on PATH (a laptop, macOS): rlimits only, a clear warning, scores still exact."""
    import subprocess
    import sys

    course = make_course_copy(tmp_path, A)
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    submit(course, "honest", A, {NB: solution})
    submit(course, "bombs", A, {NB: _cells(solution, {"batched_matmul": MEMORY_BOMB + BATCHED_MATMUL})})
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no /usr/bin: no bwrap
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", A, "--force"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "course-sandbox: REDUCED SANDBOX (rlimits only): bwrap is not installed" in log
    result = read_gradebook(course, A, ["honest", "bombs"])
    assert result.total == {"honest": 25.0, "bombs": 21.0}, result.cells
    graded = nbformat.read(course / "autograded" / "bombs" / A / NB, as_version=4)
    assert any(o.get("ename") == "MemoryError" for c in graded.cells if c.cell_type == "code" for o in c.outputs)
