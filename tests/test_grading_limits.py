"""nbgrader_config.py's per-cell time limit: a stuck cell is stopped with a clear message,
loses its points, and the rest of the notebook is still graded."""

from __future__ import annotations

import nbformat
import pytest

from grading import REPO, make_course_copy, nbgrader, read_gradebook, replace_cell, submit

pytestmark = pytest.mark.xdist_group("grading-limits")


def test_infinite_loop_is_stopped_with_a_clear_message(tmp_path):
    course = make_course_copy(tmp_path, "01_tensors")
    nbgrader(course, "generate_assignment", "01_tensors", "--force")
    solution = nbformat.read(REPO / "source" / "01_tensors" / "01_tensors.ipynb", as_version=4)
    stuck = replace_cell(solution, "normalize_rows", "def normalize_rows(x, eps=1e-12):\n    while True:\n        pass")
    submit(course, "stuck", "01_tensors", {"01_tensors.ipynb": stuck})

    # The course's limit is 120 s; a short limit here keeps the test fast, same mechanism.
    nbgrader(course, "autograde", "01_tensors", "--force", "--Execute.timeout=10")

    result = read_gradebook(course, "01_tensors", ["stuck"])
    assert result.cells["stuck"]["test_normalize_rows"] == 0
    others = {cell: score for cell, score in result.cells["stuck"].items() if cell != "test_normalize_rows"}
    assert all(score > 0 for score in others.values()), others
    graded = nbformat.read(course / "autograded" / "stuck" / "01_tensors" / "01_tensors.ipynb", as_version=4)
    errors = [o for c in graded.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert any(o.ename == "CellTimeoutError" and "ran longer than" in "".join(o.traceback) and
               "infinite loop" in "".join(o.traceback) for o in errors), errors
