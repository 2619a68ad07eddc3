"""Grading limits and set-up, as configured in nbgrader_config.py: a stuck cell or a huge file is
stopped with a clear message and a log line naming the limit, loses its points, and the rest of
the notebook is still graded; and a set-up that the sandboxed kernels cannot work with stops the
batch with "GRADING STOPPED" instead of scoring every student 0. (Memory and process limits against
attacks: test_grading_attacks.py; the room the memory limit leaves to each assignment's honest
work: test_grading_roundtrip.py.)"""

from __future__ import annotations

import nbformat
import pytest

from grading import (REPO, make_course_copy, nbgrader, nbgrader_unchecked, read_gradebook, replace_cell,
                     require_sandbox, submit)

pytestmark = pytest.mark.xdist_group("grading-limits")

A = "01_tensors"
NB = "01_tensors.ipynb"


def test_infinite_loop_is_stopped_with_a_clear_message(tmp_path):
    require_sandbox()
    course = make_course_copy(tmp_path, A)
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    # The loop runs when the test calls the function: in the student's kernel, while the test
    # cell waits in the tests' kernel.
    stuck = replace_cell(solution, "normalize_rows", "def normalize_rows(x, eps=1e-12):\n    while True:\n        pass")
    submit(course, "stuck", A, {NB: stuck})

    # The course's limits are 120 s and a 10 s grace before the busy kernel is replaced; short
    # ones here keep the test fast (the loop burns CPU until then), same mechanism.
    proc = nbgrader(course, "autograde", A, "--force", "--Execute.timeout=5", "--TwoKernelExecute.serve_grace_s=2")

    result = read_gradebook(course, A, ["stuck"])
    assert result.cells["stuck"]["test_normalize_rows"] == 0
    others = {cell: score for cell, score in result.cells["stuck"].items() if cell != "test_normalize_rows"}
    assert all(score > 0 for score in others.values()), others
    graded = nbformat.read(course / "autograded" / "stuck" / A / NB, as_version=4)
    errors = [o for c in graded.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert any(o.ename == "CellTimeoutError" and "ran longer than" in "".join(o.traceback) and
               "infinite loop" in "".join(o.traceback) for o in errors), errors
    assert ("student stuck: notebook 01_tensors: cell test_normalize_rows: CellTimeoutError: stopped by the time "
            "limit per cell" in proc.stdout + proc.stderr)


def test_file_size_limit_stops_a_huge_file_and_names_the_limit(tmp_path):
    require_sandbox()
    course = make_course_copy(tmp_path, A)
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    # 300 MiB into the student's own folder, past the 256 MiB limit, in 1 MiB writes.
    filler = ('with open("filler.bin", "wb") as _handle:\n    for _ in range(300):\n'
              '        _handle.write(bytes(2**20))\nq1_answer = "b"')
    submit(course, "filler", A, {NB: replace_cell(solution, "q1", filler)})

    proc = nbgrader(course, "autograde", A, "--force")

    log = proc.stdout + proc.stderr
    assert "student filler: notebook 01_tensors: cell q1: OSError: stopped by the file size limit" in log, log[-3000:]
    # The kernels work in a scratch copy of the student's folder: what they write stays there.
    assert not (course / "autograded" / "filler" / A / "filler.bin").exists()
    result = read_gradebook(course, A, ["filler"])
    assert result.cells["filler"]["test_q1"] == 0 and result.total["filler"] == 23.0, result.cells


def _assert_nobody_scored(course, students: list[str]) -> None:
    """No test cell of these students has an automatic score (nbgrader may have registered them)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(A, student)
            except MissingEntry:
                continue
            scores = [g.auto_score for n in submission.notebooks for g in n.grades]
            assert all(score is None for score in scores), (student, scores)


def test_a_memory_limit_too_small_for_torch_stops_the_batch(tmp_path):
    """A memory limit too small for torch (its CUDA build maps ~3.2 GiB): every student would
    score 0. Autograde stops at the first notebook with GRADING STOPPED, the cause (the import
    that failed) and what to read; no notebook is graded."""
    require_sandbox()
    course = make_course_copy(tmp_path, A)
    nbgrader(course, "generate_assignment", A, "--force")
    with open(course / "nbgrader_config.py", "a") as config:
        config.write("\nc.SandboxKernelManager.memory_limit_mib = 1536\n")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    for student in ("first", "second"):
        submit(course, student, A, {NB: solution})

    proc = nbgrader_unchecked(course, "autograde", A, "--force", timeout=600)

    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    message = next((line for line in log.splitlines() if "GRADING STOPPED" in line), "")
    assert "cannot `import torch" in message and "failed to map segment" in message, log[-3000:]
    assert "docs/grading-sandbox.md" in message
    assert "'second'" not in log  # the batch stopped at the first notebook
    _assert_nobody_scored(course, ["first", "second"])


def test_a_setup_cell_that_cannot_import_its_module_in_the_sandbox_stops_the_batch(tmp_path):
    """The setup cell imports a course module that lives in a folder on PYTHONPATH inside the
    course root, which the sandbox hides (the default `hide_paths`): in both kernels the setup
    fails, so every test cell would fail and every student score 0. Autograde must stop with
    GRADING STOPPED, naming the module and the fix, instead."""
    require_sandbox()
    course = make_course_copy(tmp_path, A)
    (course / "lib").mkdir()
    (course / "lib" / "course_extras.py").write_text("GREETING = 'hello'\n")
    source = nbformat.read(course / "source" / A / NB, as_version=4)
    setup = next(c for c in source.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    setup.source = "import course_extras\n" + setup.source
    nbformat.write(source, course / "source" / A / NB)
    env = {"PYTHONPATH": str(course / "lib")}
    nbgrader(course, "generate_assignment", A, "--force", env=env)
    for student in ("first", "second"):
        submit(course, student, A, {NB: nbformat.read(course / "source" / A / NB, as_version=4)})

    proc = nbgrader_unchecked(course, "autograde", A, "--force", timeout=600, env=env)

    log = proc.stdout + proc.stderr
    message = next((line for line in log.splitlines() if "GRADING STOPPED" in line), "")
    assert "course_extras" in message and "hide_paths" in message, log[-3000:]
    assert proc.returncode != 0 and "'second'" not in log
    _assert_nobody_scored(course, ["first", "second"])
