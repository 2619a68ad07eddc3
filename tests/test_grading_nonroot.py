"""Autograde and generate_feedback as a non-root grader account (the recommended set-up,
docs/grading-sandbox.md section 4): the kernels then run in a user namespace of that account.

As root (CI), the grader is uid 61100 with a course folder it owns; its commands run through
`setpriv`, inside a bubblewrap that only makes a Python kept in a private folder (pyenv under
/root) reachable, as /opt/pytorch-in-practice is on a grading server. Not as root, the tests run
as the current (non-root) user directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from grading import REPO, make_course_copy, read_gradebook, require_sandbox, submit

pytestmark = pytest.mark.xdist_group("grading-nonroot")

A = "01_tensors"
GRADER_UID = 61100


def _reachable_python() -> list[str]:
    """bwrap arguments that let another uid reach this Python when a folder on the way to it is
    private (pyenv under /root, mode 700): an empty folder in its place, with the one subfolder
    that leads to Python bound back."""
    python = Path(os.path.realpath(sys.executable))
    for folder in reversed(python.parents):
        if folder != Path("/") and not os.stat(folder).st_mode & 0o001:
            inner = folder / python.relative_to(folder).parts[0]
            return ["--tmpfs", str(folder), "--ro-bind", str(inner), str(inner)]
    return []


def _as_grader(argv: list[str], course: Path) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["bwrap", "--dev-bind", "/", "/", *_reachable_python(), "--chdir", str(course), "--",
            shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={GRADER_UID}", f"--regid={GRADER_UID}",
            "--clear-groups", "--", *argv]


def _run(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
           "HOME": str(course.parent / "home"), "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1"}
    return subprocess.run(_as_grader([sys.executable, "-m", "nbgrader", *args], course), cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def course():
    require_sandbox()
    if os.geteuid() == 0:
        probe = subprocess.run(["bwrap", "--dev-bind", "/", "/", *_reachable_python(), "--",
                                shutil.which("setpriv") or "/usr/bin/setpriv",
                                f"--reuid={GRADER_UID}", f"--regid={GRADER_UID}", "--clear-groups", "--",
                                "bwrap", "--unshare-user", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                "--unshare-pid", "--", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            message = f"an unprivileged account cannot run bubblewrap here: {probe.stderr.strip()[:200]}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    world = Path(tempfile.mkdtemp(prefix="course-nonroot-"))
    os.chmod(world, 0o755)
    course = make_course_copy(world, A)
    (world / "home").mkdir()
    names = sorted(p.name for p in (REPO / "source" / A).glob("*.ipynb"))
    source = {n: nbformat.read(REPO / "source" / A / n, as_version=4) for n in names}
    if os.geteuid() == 0:
        for folder, dirs, files in os.walk(world):
            for name in [folder, *(os.path.join(folder, f) for f in dirs + files)]:
                os.lchown(name, GRADER_UID, GRADER_UID)
    generated = _run(course, "generate_assignment", A, "--force")
    assert generated.returncode == 0, generated.stdout[-3000:] + generated.stderr[-3000:]
    release = {n: nbformat.read(course / "release" / A / n, as_version=4) for n in names}
    submit(course, "solution", A, source)
    submit(course, "blank", A, release)
    if os.geteuid() == 0:
        for folder, dirs, files in os.walk(course / "submitted"):
            for name in [folder, *(os.path.join(folder, f) for f in dirs + files)]:
                os.lchown(name, GRADER_UID, GRADER_UID)
    graded = _run(course, "autograde", A, "--force")
    feedback = _run(course, "generate_feedback", A, "--force")
    yield course, graded, feedback
    shutil.rmtree(world, ignore_errors=True)


def test_autograde_as_a_non_root_grader_scores_exactly(course):
    folder, graded, _ = course
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
    assert "REDUCED SANDBOX" not in graded.stderr, "the non-root grader must still get the bubblewrap sandbox"
    result = read_gradebook(folder, A, ["solution", "blank"])
    assert result.total == {"solution": result.max_score, "blank": 0.0} and result.max_score == 25.0
    if os.geteuid() == 0:
        notebook = folder / "autograded" / "solution" / A / f"{A}.ipynb"
        assert notebook.stat().st_uid == GRADER_UID, "the graded notebook belongs to the grader account"


def test_generate_feedback_as_a_non_root_grader(course):
    folder, _, feedback = course
    assert feedback.returncode == 0, feedback.stdout[-3000:] + feedback.stderr[-3000:]
    page = (folder / "feedback" / "solution" / A / f"{A}.html").read_text()
    assert "25.0" in page and "test_one_hot" in page
