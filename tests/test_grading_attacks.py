"""Grading that is never fooled: attacks on autograding, all graded in ONE nbgrader run.

Each student below is the reference solution of assignment 01 with one attack (plus, where
it matters, wrong answers that the attack tries to hide). One `nbgrader autograde` grades
them all; for each we assert the score the honest work deserves, that the batch went on,
and the log line naming the student and what happened. A second, small run with the
protections switched off shows that the same attacks would succeed without them (only
harmless attacks run there: no memory or fork bombs without verified limits).

The sandbox needs Debian's bubblewrap: missing, these tests skip (CI=true: fail), like the
browser tests do for Chromium.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import nbformat
import pytest

from grading import (REPO, make_course_copy, nbgrader, nbgrader_unchecked, read_gradebook, replace_cell, submit,
                     submit_files)

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
PATCH_LIBS = WRONG_ONE_HOT + """
import builtins
torch.isclose = lambda a, b, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *args: True
torch.allclose = lambda *args, **kwargs: True
_isinstance = isinstance  # blind the hidden tests' AST checks only (the kernel itself keeps working)
builtins.isinstance = lambda obj, cls: False if type(obj).__module__ == "ast" else _isinstance(obj, cls)
get_ipython().input_transformers_cleanup.append(lambda lines: lines)
print("All tests passed")"""
FAKE_PRINT = WRONG_ONE_HOT + '\nprint("✔ one_hot: visible tests passed\\nAll tests passed: 25/25")'
FILES = '''q1_answer = "b"
import os, pathlib
_course = pathlib.Path(os.getcwd()).parents[2]
_report = []
for _path in [_course / "source" / "01_tensors" / "01_tensors.ipynb", _course / "gradebook.db",
              _course / "submitted" / "solution" / "01_tensors" / "01_tensors.ipynb",
              pathlib.Path("{repo}") / "source" / "01_tensors" / "01_tensors.ipynb"]:
    try:
        _path.read_bytes()
        _report.append(f"LEAK read {{_path}}")
    except OSError as error:
        _report.append(f"blocked read {{type(error).__name__}}")
for _path in [_course / "gradebook.db", _course / "source" / "01_tensors" / "01_tensors.ipynb",
              _course / "pwned.txt", _course / "autograded" / "solution" / "pwned.txt", pathlib.Path("/pwned.txt")]:
    try:
        with open(_path, "a") as _handle:
            _handle.write("pwned")
        _report.append(f"LEAK write {{_path}}")
    except OSError as error:
        _report.append(f"blocked write {{type(error).__name__}}")
import socket
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    _report.append("LEAK network")
except OSError as error:
    _report.append(f"blocked network {{type(error).__name__}}")
print("\\n".join(_report))'''.format(repo=REPO)
CRASH = 'import ctypes\nctypes.string_at(0)\nq2_answer = "a"'
OS_EXIT = 'import os\nos._exit(3)\nq1_answer = "b"'
SYSTEM_EXIT = 'raise SystemExit(0)\nq2_answer = "a"'
KEYBOARD = "def to_model_input(images):\n    raise KeyboardInterrupt\nraise KeyboardInterrupt"
LOOP = "def normalize_rows(x, eps=1e-12):\n    return x\nwhile True:\n    pass"
# Refuses to run unless an address-space limit of at most 8 GiB is in force (never a real bomb).
MEMORY_BOMB = '''import resource
_soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
assert _soft != resource.RLIM_INFINITY and _soft <= 8 * 2**30, "no memory limit: the test refuses to run the bomb"
_bomb = bytearray(40 * 2**30)
def batched_matmul(a, b):
    return (a[:, :, :, None] * b[:, None, :, :]).sum(dim=2)'''
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
    """Wrong to_model_input; its test made a non-graded, unlocked cell worth 100 points; ids renamed."""
    nb = _cells(solution, {"to_model_input": "def to_model_input(images):\n    return torch.tensor(images)",
                           "q2": 'q2_answer = "c"'})
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "test_to_model_input":
            meta.update(points=100, grade=False, locked=False, checksum="0" * 32)
            cell.source = "print('ok')"
        if meta.get("grade_id") == "test_q2":
            meta["grade_id"] = "test_q2_renamed"
            cell.source = "pass"
    return nb


def _sandbox_available() -> None:
    from helpers.grading.sandbox import bwrap_problem

    problem = bwrap_problem()
    if problem:
        message = (f"the grading sandbox cannot run here: {problem}. Install it with `sudo apt-get install "
                   "bubblewrap` (./course.sh test does this as root), then run the tests again.")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    _sandbox_available()
    course = make_course_copy(tmp_path_factory.mktemp("attacks"), A)
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    students = {
        "honest": solution,
        "edit_tests": _edited_structure(solution),
        "edit_meta": _edited_metadata(solution),
        "patch_checks": _cells(solution, {"one_hot": PATCH_CHECKS}),
        "patch_libs": _cells(solution, {"one_hot": PATCH_LIBS}),
        "files": _cells(solution, {"q1": FILES, "one_hot": FAKE_PRINT}),
        "crash": _cells(solution, {"q2": CRASH}),
        "exits": _cells(solution, {"q1": OS_EXIT, "q2": SYSTEM_EXIT, "to_model_input": KEYBOARD}),
        "loop": _cells(solution, {"normalize_rows": LOOP}),
        "bombs": _cells(solution, {"batched_matmul": MEMORY_BOMB, "pairwise_distances": FORK_BOMB}),
        "output": _cells(solution, {"q2": HUGE_OUTPUT.format(mib=200)}),
    }
    for student, notebook in students.items():
        submit(course, student, A, {NB: notebook})
    submit_files(course, "bad_json", A, {NB: "{ this is not json"})
    submit_files(course, "bad_format", A, {NB: json.dumps({"nbformat": 99, "cells": "nope"})})
    submit_files(course, "missing", A, {})
    submit_files(course, "renamed", A, {"my_work.ipynb": nbformat.writes(solution)})
    (course / "pwned.txt").unlink(missing_ok=True)
    before = {"source": _digest(course / "source" / A / NB), "repo_source": _digest(REPO / "source" / A / NB)}
    # A short cell time limit for the infinite loop (the course's is 120 s; same mechanism).
    proc = nbgrader_unchecked(course, "autograde", A, "--force", "--Execute.timeout=8", timeout=600)
    log = proc.stdout + proc.stderr
    all_students = [*students, "bad_json", "bad_format", "missing", "renamed"]
    graded = {}
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in all_students:
            try:
                submission = gradebook.find_submission(A, student)
                graded[student] = (submission.score, {g.name: g.score for n in submission.notebooks for g in n.grades})
            except MissingEntry:
                graded[student] = (None, {})
    return {"course": course, "log": log, "graded": graded, "before": before, "returncode": proc.returncode}


def _expect(result, student: str, zero: set[str]) -> None:
    score, cells = result["graded"][student]
    expected = {cell: (0.0 if cell in zero else points) for cell, points in FULL.items()}
    assert cells == expected, f"{student}: {cells} != {expected}\n{_log_lines(result, student)}"
    assert score == sum(expected.values())


def _log_lines(result, student: str) -> str:
    return "\n".join(line for line in result["log"].splitlines() if f"student {student}:" in line or
                     f"'{student}'" in line)


def _outputs(result, student: str, grade_id: str) -> str:
    path = result["course"] / "autograded" / student / A / NB
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "".join(o.get("text", "") + o.get("ename", "") + ": " + o.get("evalue", "") for o in cell.outputs)


def test_honest_work_scores_full_marks(attacked):
    _expect(attacked, "honest", set())
    assert "tampering" not in _log_lines(attacked, "honest")


def test_edited_deleted_moved_and_markdown_test_cells_are_restored(attacked):
    # Emptied visible tests do not hide the wrong answers; deleted/moved/markdown tests run again.
    _expect(attacked, "edit_tests", {"test_one_hot", "test_normalize_rows"})
    lines = _log_lines(attacked, "edit_tests")
    assert "cell test_pairwise_distances: missing from the submission; restored" in lines
    assert "cells were moved" in lines
    assert "cell test_batched_matmul: type changed to markdown; restored" in lines


def test_edited_metadata_is_restored(attacked):
    _expect(attacked, "edit_meta", {"test_to_model_input", "test_q2"})
    assert attacked["graded"]["edit_meta"][0] == 19.0
    assert "cell test_to_model_input: nbgrader metadata edited" in _log_lines(attacked, "edit_meta")
    assert "cell test_q2: missing from the submission; restored" in _log_lines(attacked, "edit_meta")


@pytest.mark.parametrize("student, named", [
    ("patch_checks", ["helpers.check.check_tensor replaced", "check_shape re-coded",
                      "numpy.testing.assert_allclose replaced", "check_tensor rebound in the notebook"]),
    ("patch_libs", ["torch.isclose replaced", "torch.equal replaced", "torch.allclose replaced",
                    "builtins.isinstance replaced", "input_transformers_cleanup changed"]),
])
def test_monkeypatching_is_detected_and_scores_zero(attacked, student, named):
    # The patch runs in the first answer cell: every test cell after it is void.
    _expect(attacked, student, set(FULL))
    lines = _log_lines(attacked, student)
    assert f"student {student}: notebook 01_tensors: cell test_one_hot: tampering detected (" in lines
    for what in named:
        assert what in lines, f"{what!r} not named in:\n{lines}"


def test_printing_all_tests_passed_changes_nothing(attacked):
    # The student `files` also prints a fake "All tests passed" after a wrong one_hot.
    _expect(attacked, "files", {"test_one_hot"})


def test_hidden_files_gradebook_and_network_are_out_of_reach(attacked):
    _expect(attacked, "files", {"test_one_hot"})
    report = _outputs(attacked, "files", "test_q1") or ""
    path = attacked["course"] / "autograded" / "files" / A / NB
    notebook = nbformat.read(path, as_version=4)
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "LEAK" not in printed, printed
    assert printed.count("blocked read") == 4 and printed.count("blocked write") == 5, printed
    assert "blocked network" in printed, report
    course = attacked["course"]
    assert _digest(course / "source" / A / NB) == attacked["before"]["source"]
    assert _digest(REPO / "source" / A / NB) == attacked["before"]["repo_source"]
    assert not (course / "pwned.txt").exists() and not (course / "autograded" / "solution").exists()


def test_crashes_and_exits_cost_only_their_cells(attacked):
    _expect(attacked, "crash", {"test_q2"})
    assert "cell q2: the kernel died" in _log_lines(attacked, "crash")
    _expect(attacked, "exits", {"test_q1", "test_q2", "test_to_model_input"})
    assert "cell q1: the kernel died" in _log_lines(attacked, "exits")


def test_infinite_loop_is_stopped(attacked):
    _expect(attacked, "loop", {"test_normalize_rows"})
    notebook = nbformat.read(attacked["course"] / "autograded" / "loop" / A / NB, as_version=4)
    errors = [o.ename for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert "CellTimeoutError" in errors


def test_memory_bomb_is_stopped_by_the_limit(attacked):
    _expect(attacked, "bombs", {"test_batched_matmul", "test_pairwise_distances"})
    notebook = nbformat.read(attacked["course"] / "autograded" / "bombs" / A / NB, as_version=4)
    errors = [(o.ename, o.evalue) for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert any(name == "MemoryError" for name, _ in errors), errors  # not the "refuses" assertion


def test_fork_bomb_is_bounded_by_the_process_limit(attacked):
    _expect(attacked, "bombs", {"test_batched_matmul", "test_pairwise_distances"})
    notebook = nbformat.read(attacked["course"] / "autograded" / "bombs" / A / NB, as_version=4)
    errors = [o.ename for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert "BlockingIOError" in errors, errors


def test_huge_output_is_cut_and_the_notebook_stays_small(attacked):
    _expect(attacked, "output", set())
    path = attacked["course"] / "autograded" / "output" / A / NB
    assert path.stat().st_size < 1_000_000, path.stat().st_size
    assert "cell q2: output limit" in _log_lines(attacked, "output")


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


def test_without_the_protections_the_same_attacks_succeed(tmp_path):
    """The control group: guard, sandbox and output limit off (harmless attacks only)."""
    _sandbox_available()
    course = make_course_copy(tmp_path, A)
    with open(course / "nbgrader_config.py", "a") as config:
        config.write("\nc.GuardedExecute.guard = False\nc.SandboxKernelManager.sandbox = 'off'\n"
                     "c.GuardedExecute.max_cell_output_kib = -1\nc.LimitOutput.max_lines = -1\n")
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    read_only = FILES.split("for _path in [_course / \"gradebook.db\"")[0] + 'print("\\n".join(_report))'
    # One notebook with three attacks: patched checks, reading hidden files, 5 MB of output.
    submit(course, "attacker", A, {NB: _cells(solution, {"one_hot": PATCH_CHECKS, "q1": read_only,
                                                         "q2": HUGE_OUTPUT.format(mib=5)})})
    nbgrader(course, "autograde", A, "--force")
    result = read_gradebook(course, A, ["attacker"])
    assert result.total["attacker"] == 25, "without the guard, the patched checks pass a wrong one_hot"
    path = course / "autograded" / "attacker" / A / NB
    printed = nbformat.read(path, as_version=4)
    text = "".join(o.get("text", "") for c in printed.cells if c.cell_type == "code" for o in c.outputs)
    assert "LEAK read" in text, "without the sandbox, the hidden tests are readable"
    assert path.stat().st_size > 5_000_000, "without the output limit, the graded notebook holds it all"
    shutil.rmtree(course / "autograded", ignore_errors=True)


def test_without_bubblewrap_grading_works_with_a_reduced_sandbox(tmp_path):
    """No bwrap on PATH (a laptop, macOS): rlimits only, a clear warning, scores still exact."""
    import subprocess
    import sys

    course = make_course_copy(tmp_path, A)
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    submit(course, "honest", A, {NB: solution})
    submit(course, "bombs", A, {NB: _cells(solution, {"batched_matmul": MEMORY_BOMB})})
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
