"""Intake and output (grader/intake.py): submissions holding symbolic links, hard links, devices,
FIFOs or sockets are refused with a log line naming the student and the file, the batch goes
on, and nbgrader's own copies, writes and chmods never follow a link.

Unit tests of `problems` and of the no-follow file operations, then one `nbgrader autograde`
of a batch with an honest student and one attacker per kind of link, and one `nbgrader collect`
from a single-user exchange holding linked submissions.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.intake import IntakeError, chmod_file, copy_tree, open_dir, problems, write_file
from grading import REPO, make_course_copy, nbgrader, nbgrader_unchecked, read_gradebook, submit, submit_files

pytestmark = pytest.mark.xdist_group("grading-intake")

A = "01_tensors"
NB = "01_tensors.ipynb"
TIMESTAMP = "2026-11-23 12:00:00.000000 UTC"


# --- problems() ---------------------------------------------------------------------------------

@pytest.fixture
def submission(tmp_path: Path) -> Path:
    """An honest submission with subfolders: submitted/alice/01_tensors/."""
    folder = tmp_path / "submitted" / "alice" / A
    (folder / "data" / "deeper").mkdir(parents=True)
    (folder / NB).write_text("{}")
    (folder / "data" / "x.csv").write_text("1,2\n")
    (folder / "data" / "deeper" / "y.txt").write_text("y")
    (folder / "empty").mkdir()
    return folder


def test_honest_folder_with_subfolders_has_no_problems(submission: Path):
    assert problems(submission) == []


def test_symlink_to_a_file(submission: Path):
    (submission / "data" / "leak.txt").symlink_to(REPO / "nbgrader_config.py")
    assert problems(submission) == ["data/leak.txt is a symbolic link"]


def test_symlink_to_a_folder_is_named_not_entered(submission: Path):
    (submission / "src").symlink_to(REPO / "source")
    assert problems(submission) == ["src is a symbolic link"]


def test_dangling_symlink(submission: Path):
    (submission / "data" / "deeper" / "gone").symlink_to(submission / "no-such-file")
    assert problems(submission) == ["data/deeper/gone is a symbolic link"]


def test_hard_link(submission: Path, tmp_path: Path):
    outside = tmp_path / "instructor-secret.txt"
    outside.write_text("secret")
    os.link(outside, submission / "copy.txt")
    assert problems(submission) == ["copy.txt is a hard link (2 names for one file)"]


def test_fifo(submission: Path):
    os.mkfifo(submission / "data" / "pipe")
    assert problems(submission) == ["data/pipe is a FIFO"]


def test_every_problem_is_listed(submission: Path):
    (submission / "a").symlink_to("/etc/passwd")
    os.mkfifo(submission / "b")
    assert problems(submission) == ["a is a symbolic link", "b is a FIFO"]


def test_linked_submission_or_student_folder(tmp_path: Path, submission: Path):
    other = tmp_path / "submitted" / "mallory"
    other.mkdir()
    (other / A).symlink_to(submission)
    assert problems(other / A) == ["the submission folder itself is a symbolic link"]
    (tmp_path / "submitted" / "eve").symlink_to(submission.parent)
    assert problems(tmp_path / "submitted" / "eve" / A) == ["the folder holding it (eve) is a symbolic link"]


# --- the no-follow file operations ---------------------------------------------------------------------

def _fds(*paths: Path) -> list[int]:
    return [os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in paths]


@pytest.mark.parametrize("plant", ["symlink", "hard link", "fifo"])
def test_copy_refuses_what_the_check_would_have_refused(tmp_path: Path, submission: Path, plant: str):
    """The copy itself refuses (a submission changed after the check, as in the exchange's inbound)."""
    target = tmp_path / "secret.txt"
    target.write_text("secret")
    {"symlink": lambda p: p.symlink_to(target), "hard link": lambda p: os.link(target, p),
     "fifo": lambda p: os.mkfifo(p)}[plant](submission / "data" / "zz")
    dest = tmp_path / "dest"
    dest.mkdir()
    src_fd, dst_fd = _fds(submission, dest)
    try:
        with pytest.raises(IntakeError, match=r"^data/zz is a"):
            copy_tree(src_fd, dst_fd, skip=lambda name, rel, st: False)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert not any(p.is_file() and p.read_bytes() == b"secret" for p in dest.rglob("*"))


def test_copy_keeps_honest_files_and_skips_ignored(tmp_path: Path, submission: Path):
    (submission / "mode.sh").write_text("#!/bin/sh\n")
    (submission / "mode.sh").chmod(0o4755)  # setuid is dropped
    dest = tmp_path / "dest"
    dest.mkdir()
    src_fd, dst_fd = _fds(submission, dest)
    try:
        copy_tree(src_fd, dst_fd, skip=lambda name, rel, st: name.endswith(".ipynb"))
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "data", "data/deeper", "data/deeper/y.txt", "data/x.csv", "empty", "mode.sh"]
    assert (dest / "data" / "x.csv").read_text() == "1,2\n"
    assert stat.S_IMODE((dest / "mode.sh").stat().st_mode) == 0o755


def test_write_replaces_a_link_instead_of_writing_through_it(tmp_path: Path):
    target = tmp_path / "gradebook.db"
    target.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / NB).symlink_to(target)
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        write_file(fd, NB, b"graded")
    finally:
        os.close(fd)
    assert target.read_text() == "precious"
    assert not (out / NB).is_symlink() and (out / NB).read_text() == "graded"


def test_chmod_never_goes_through_a_link(tmp_path: Path):
    target = tmp_path / "gradebook.db"
    target.write_text("precious")
    target.chmod(0o600)
    (tmp_path / "link").symlink_to(target)
    os.link(target, tmp_path / "hard")
    (tmp_path / "plain").write_text("x")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert chmod_file(fd, "link", 0o444) == "a symbolic link"
        assert chmod_file(fd, "hard", 0o444).startswith("a hard link")
        assert chmod_file(fd, "plain", 0o444) is None
    finally:
        os.close(fd)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o444


def test_open_dir_does_not_follow_links_below_the_trusted_folder(tmp_path: Path):
    (tmp_path / "autograded" / "alice").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "autograded" / "bob").symlink_to(tmp_path / "elsewhere")
    os.close(open_dir(str(tmp_path / "autograded" / "alice" / A), str(tmp_path / "autograded"), create=True))
    assert (tmp_path / "autograded" / "alice" / A).is_dir()
    with pytest.raises(IntakeError, match="is a symbolic link"):
        open_dir(str(tmp_path / "autograded" / "bob" / A), str(tmp_path / "autograded"), create=True)
    with pytest.raises(IntakeError, match="is not inside"):
        open_dir(str(tmp_path / "autograded" / ".." / A), str(tmp_path / "autograded"), create=True)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_instructor_files_are_copied_into_autograded_without_following_links(tmp_path: Path):
    """The shutil.copy of Autograde.init_assignment (the instructor's files into the student's folder)."""
    from types import SimpleNamespace

    from nbgrader.coursedir import CourseDirectory

    from grader import intake

    (tmp_path / "source" / A).mkdir(parents=True)
    (tmp_path / "source" / A / "data.csv").write_text("instructor's data")
    folder = tmp_path / "autograded" / "alice" / A
    folder.mkdir(parents=True)
    target = tmp_path / "gradebook.db"
    target.write_text("precious")
    (folder / "data.csv").symlink_to(target)
    intake._grading.converter = SimpleNamespace(coursedir=CourseDirectory(root=str(tmp_path)))
    try:
        intake._NoFollowShutil().copy(str(tmp_path / "source" / A / "data.csv"), str(folder / "data.csv"))
    finally:
        intake._grading.converter = None
    assert target.read_text() == "precious"
    assert not (folder / "data.csv").is_symlink() and (folder / "data.csv").read_text() == "instructor's data"


def test_the_course_config_installs_it_without_torch_or_helpers():
    code = ("import sys\nfrom traitlets.config import Config\nimport nbgrader.apps\n"
            f"path = {str(REPO / 'nbgrader_config.py')!r}\n"
            "for _ in range(2):\n"
            "    exec(compile(open(path).read(), path, 'exec'), {'get_config': Config, '__file__': path})\n"
            "from nbgrader.converters import Autograde\n"
            "from nbgrader.exchange.default.collect import ExchangeCollect\n"
            "assert Autograde._course_intake and ExchangeCollect.do_copy.__module__ == 'grader.intake'\n"
            "assert Autograde.write_single_notebook.__module__ == 'grader.intake'\n"
            "assert 'torch' not in sys.modules and 'helpers' not in sys.modules, 'imported torch or helpers'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --- nbgrader autograde: one batch, one run ---------------------------------------------------------

def _fingerprints(*roots: Path) -> dict[str, tuple[str, int]]:
    """path -> (sha256, mode) of every file below `roots` (files themselves too)."""
    found = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(path.stat().st_mode))
    return found


def _copies_of(folder: Path, targets: list[Path]) -> list[str]:
    """Files below `folder` whose bytes are those of a target (a followed link)."""
    contents = {t.read_bytes() for t in targets}
    return [str(p) for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() in contents]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    course = make_course_copy(tmp_path_factory.mktemp("intake"), A)
    nbgrader(course, "generate_assignment", A, "--force")
    source_nb = course / "source" / A / NB
    release = (course / "release" / A / NB).read_text()
    submitted = course / "submitted"
    submit(course, "honest", A, {NB: nbformat.read(source_nb, as_version=4)})
    # (a) the notebook is a link to the instructor's (its solutions would score full marks),
    #     and another file links to the gradebook
    linker = submitted / "linker" / A
    linker.mkdir(parents=True)
    (linker / NB).symlink_to(source_nb)
    (linker / "notes.txt").symlink_to(course / "gradebook.db")
    (linker / "timestamp.txt").write_text(TIMESTAMP)
    # (b) a hard link to a file outside the submission
    submit_files(course, "hardlinker", A, {NB: release})
    os.link(course / "nbgrader_config.py", submitted / "hardlinker" / A / "config.txt")
    # (c) a FIFO
    submit_files(course, "piper", A, {NB: release})
    os.mkfifo(submitted / "piper" / A / "pipe")
    # (d) the student folder is a link to a classmate's
    (submitted / "copycat").symlink_to(submitted / "honest")

    protected = [course / "nbgrader_config.py", course / "source", submitted / "honest"]
    before = _fingerprints(*protected)
    gradebook_mode = stat.S_IMODE((course / "gradebook.db").stat().st_mode)
    proc = nbgrader_unchecked(course, "autograde", A, "--force")
    return {"course": course, "proc": proc, "log": proc.stdout + proc.stderr, "before": before,
            "after": _fingerprints(*protected), "gradebook_mode": gradebook_mode,
            "targets": [source_nb, course / "gradebook.db", course / "nbgrader_config.py", submitted / "honest" / NB]}


ATTACKERS = {
    "linker": [f"{NB} is a symbolic link", "notes.txt is a symbolic link"],
    "hardlinker": ["config.txt is a hard link (2 names for one file)"],
    "piper": ["pipe is a FIFO"],
    "copycat": ["the folder holding it (copycat) is a symbolic link"],
}


@pytest.mark.parametrize("student", sorted(ATTACKERS))
def test_each_attacker_is_refused_with_a_log_line(batch, student: str):
    log = batch["log"]
    for problem in ATTACKERS[student]:
        line = f"student {student}: assignment {A}: submission refused: {problem}"
        assert re.search(rf"^\[AutogradeApp \| ERROR\] {re.escape(line)}$", log, re.M), f"no line {line!r}:\n{log[-6000:]}"
    assert f"There was an error processing assignment '{A}' for student '{student}'" in log
    copies = _copies_of(batch["course"] / "autograded" / student, batch["targets"]) \
        if (batch["course"] / "autograded" / student).exists() else []
    assert copies == [], f"{student}: the grader copied a link's target into {copies}"
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{batch['course'] / 'gradebook.db'}", "pytorch-in-practice") as gradebook:
        with pytest.raises(MissingEntry):
            gradebook.find_submission(A, student)


def test_the_batch_goes_on_and_the_honest_student_is_graded(batch):
    assert batch["proc"].returncode == 1, batch["log"][-4000:]  # nbgrader's status when some students failed
    assert "for student 'honest'" not in batch["log"]
    assert (batch["course"] / "autograded" / "honest" / A / NB).is_file()
    result = read_gradebook(batch["course"], A, ["honest"])  # the reference solution: full marks
    assert result.max_score > 0 and result.total["honest"] == result.max_score, result.cells


def test_config_source_gradebook_and_classmates_work_are_untouched(batch):
    assert batch["after"] == batch["before"]
    assert stat.S_IMODE((batch["course"] / "gradebook.db").stat().st_mode) == batch["gradebook_mode"]
    for student in ATTACKERS:
        assert not (batch["course"] / "feedback" / student).exists()


# --- nbgrader collect from an exchange (single user) --------------------------------------------------

def test_collect_does_not_follow_links(tmp_path: Path):
    course = make_course_copy(tmp_path, A)
    inbound = tmp_path / "exchange" / "pytorch-in-practice" / "inbound"
    inbound.mkdir(parents=True)
    secret_nb = course / "source" / A / NB

    def inbox(student: str) -> Path:
        folder = inbound / f"{student}+{A}+{TIMESTAMP}"
        folder.mkdir()
        (folder / "timestamp.txt").write_text(TIMESTAMP)
        return folder

    (inbox("honest") / NB).write_text('{"honest": "work"}')
    (inbox("linker") / NB).symlink_to(secret_nb)
    folder = inbox("dirlinker")
    (folder / NB).write_text('{"also": "work"}')
    (folder / "data").symlink_to(course / "source" / A)
    (inbound / f"wholelinker+{A}+{TIMESTAMP}").symlink_to(course / "source" / A)
    folder = inbox("piper")
    (folder / NB).write_text('{"pipe": "below"}')
    os.mkfifo(folder / "pipe")
    os.link(course / "nbgrader_config.py", inbox("hardlinker") / "config.txt")
    before = _fingerprints(course / "nbgrader_config.py", course / "source")

    proc = nbgrader_unchecked(course, "collect", A, f"--Exchange.root={tmp_path / 'exchange'}",
                              "--ExchangeCollect.check_owner=False", timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    refused = {"linker": f"{NB} is a symbolic link", "dirlinker": "data is a symbolic link",
               "wholelinker": "the submission folder itself is a symbolic link", "piper": "pipe is a FIFO",
               "hardlinker": "config.txt is a hard link (2 names for one file)"}
    for student, problem in refused.items():
        line = f"student {student}: assignment {A}: submission refused: {problem}"
        assert line in log, f"no line {line!r}:\n{log[-4000:]}"
        assert not (course / "submitted" / student).exists(), f"{student} was collected"
    assert (course / "submitted" / "honest" / A / NB).read_text() == '{"honest": "work"}'
    targets = [secret_nb, course / "nbgrader_config.py", course / "gradebook.db"]
    assert _copies_of(course / "submitted", targets) == []
    assert _fingerprints(course / "nbgrader_config.py", course / "source") == before
