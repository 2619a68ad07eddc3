"""Grading limits set in nbgrader_config.py: a stuck cell or a huge file is stopped with a
clear message and a log line naming the limit, loses its points, and the rest of the
notebook is still graded. (Memory and process limits: test_grading_attacks.py.)"""

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
    proc = nbgrader(course, "autograde", "01_tensors", "--force", "--Execute.timeout=10")

    result = read_gradebook(course, "01_tensors", ["stuck"])
    assert result.cells["stuck"]["test_normalize_rows"] == 0
    others = {cell: score for cell, score in result.cells["stuck"].items() if cell != "test_normalize_rows"}
    assert all(score > 0 for score in others.values()), others
    graded = nbformat.read(course / "autograded" / "stuck" / "01_tensors" / "01_tensors.ipynb", as_version=4)
    errors = [o for c in graded.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert any(o.ename == "CellTimeoutError" and "ran longer than" in "".join(o.traceback) and
               "infinite loop" in "".join(o.traceback) for o in errors), errors
    assert ("student stuck: notebook 01_tensors: cell test_normalize_rows: CellTimeoutError: stopped by the time "
            "limit per cell" in proc.stdout + proc.stderr)


def test_file_size_limit_stops_a_huge_file_and_names_the_limit(tmp_path):
    course = make_course_copy(tmp_path, "01_tensors")
    nbgrader(course, "generate_assignment", "01_tensors", "--force")
    solution = nbformat.read(REPO / "source" / "01_tensors" / "01_tensors.ipynb", as_version=4)
    # 300 MiB into the student's own folder, past the 256 MiB limit, in 1 MiB writes.
    filler = ('with open("filler.bin", "wb") as _handle:\n    for _ in range(300):\n'
              '        _handle.write(bytes(2**20))\nq1_answer = "b"')
    submit(course, "filler", "01_tensors", {"01_tensors.ipynb": replace_cell(solution, "q1", filler)})

    proc = nbgrader(course, "autograde", "01_tensors", "--force")

    log = proc.stdout + proc.stderr
    assert "student filler: notebook 01_tensors: cell q1: OSError: stopped by the file size limit" in log, log[-3000:]
    written = course / "autograded" / "filler" / "01_tensors" / "filler.bin"
    assert written.stat().st_size <= 256 * 2**20
    result = read_gradebook(course, "01_tensors", ["filler"])
    assert result.cells["filler"]["test_q1"] == 0 and result.total["filler"] == 23.0, result.cells


def test_memory_limit_leaves_room_for_torch_and_honest_work():
    """RLIMIT_AS counts address space, and torch's CUDA build maps ~3.2 GiB at import: the
    configured limit must leave 2 GiB beyond the peak of honest work (importing what the
    notebooks import and training a small network), or honest cells fail with MemoryError
    now and then under load."""
    import subprocess
    import sys

    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    limit_mib = config.SandboxKernelManager.memory_limit_mib
    work = ("import torch, numpy, matplotlib.pyplot, ipywidgets, helpers, helpers.check, helpers.plots\n"
            "from helpers import Trainer, SmallCNN, digits_tensors\n"
            "from helpers.data import TensorBatchLoader\n"
            "x, y = digits_tensors()['train']\n"
            "model = SmallCNN(in_channels=1, num_classes=10)\n"
            "loader = TensorBatchLoader(x, y, batch_size=64, shuffle=True)\n"
            "Trainer(model, torch.optim.Adam(model.parameters()), torch.nn.CrossEntropyLoss(),"
            " progress=False).fit(loader, epochs=1)\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmPeak')][0])")
    proc = subprocess.run([sys.executable, "-c", work], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    peak_mib = int(proc.stdout.split()[-1]) / 1024
    assert limit_mib - peak_mib >= 2048, f"peak address space {peak_mib:.0f} MiB, limit {limit_mib} MiB"
