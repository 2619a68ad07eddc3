"""nbgrader's exchange as docs/instructor.md sets it up, through the whole cycle.

The exchange is created with the guide's own command (section 6, step 3, under a umask of 077)
and configured with the guide's own single-machine `/etc/jupyter/nbgrader_config.py` (section 1,
"Without a hub"), both read from the guide, in a temporary folder. Then nbgrader's real commands
run the cycle, the students' commands as the guide prints them: the instructor
generates and releases 01_tensors; two students fetch it, one puts the reference solution in
place of the fetched notebook, the other leaves it blank, and both submit; the instructor
collects (while the students list the course's assignments), autogrades, generates and
releases feedback; the students fetch their feedback.

As root (CI), each student is a Unix uid of its own (61001, 61002) with a home of its own, and
the instructor is root, as on a shared JupyterHub machine; the students' commands run through
`setpriv` inside bubblewrap, which only adds the students to /etc/passwd (nbgrader takes the
student id from the user name) and, where the course's Python lives in a private folder
(pyenv under /root), makes that Python reachable, as /opt/pytorch-in-practice is on a hub.
Not as root, or without bubblewrap or setpriv, everyone runs as the current user
(`--student` names the students) and only the cross-user checks are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from grading import REPO, grade_cells, guide_block, make_course_copy, nbgrader, read_gradebook

pytestmark = pytest.mark.xdist_group("grading-exchange")

ASSIGNMENT = "01_tensors"
NOTEBOOK = "01_tensors.ipynb"
COURSE_ID = "pytorch-in-practice"

GUIDE_EXCHANGE = "/srv/nbgrader/exchange"
# student id -> (uid, what they submit). The uids have no passwd entry on the host.
STUDENTS = {"student01": (61001, "solution"), "student02": (61002, "blank")}


def _student_commands() -> dict[str, list[str]]:
    """The students' commands of the guide ("Without a hub"), for ASSIGNMENT: command -> nbgrader arguments."""
    commands = {}
    for line in guide_block("bash", "nbgrader fetch_assignment").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == "nbgrader", line
            commands[argv[1]] = [arg.replace("02_autograd", ASSIGNMENT) for arg in argv[1:]]
    assert set(commands) == {"fetch_assignment", "submit", "fetch_feedback"}, commands
    return commands


def _usable_by_others(path: str) -> bool:
    """Whether another uid can enter every folder on the way to `path` and read it."""
    return all(os.stat(p).st_mode & 0o001 for p in Path(path).parents) and bool(os.stat(path).st_mode & 0o005)


def _python_paths() -> list[str]:
    """What a student's `python -m nbgrader` needs: the environment and the Python it comes from."""
    return sorted({sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))})


@dataclass
class Machine:
    """The shared machine of the test: the exchange, the students' homes, how they run commands."""

    world: Path                      # a 0755 folder standing for the machine's /srv and /home
    exchange: Path
    config_dir: Path                 # stands for /etc/jupyter
    multi_user: bool
    skip_reason: str = ""
    wrapper: list[str] = field(default_factory=list)  # bwrap ... (multi-user only)
    accounts_end: int = 0            # wrapper[:accounts_end]: only the students' accounts added

    def home(self, student: str) -> Path:
        return self.world / "home" / student

    def student_env(self, student: str) -> dict[str, str]:
        return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
                "HOME": str(self.home(student)), "USER": student, "LOGNAME": student, "LANG": "C.UTF-8",
                "PYTHONNOUSERSITE": "1", "JUPYTER_CONFIG_PATH": str(self.config_dir)}

    def student_command(self, student: str, *argv: str) -> list[str]:
        if not self.multi_user:
            return list(argv)
        uid = STUDENTS[student][0]
        return [*self.wrapper, "--chdir", str(self.home(student)), "--",
                shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}",
                "--clear-groups", "--", *argv]

    def start_students(self, argv_for: dict[str, list[str]]) -> dict[str, subprocess.Popen]:
        """Start one command per student, the students side by side."""
        return {student: subprocess.Popen(self.student_command(student, *argv), cwd=self.home(student),
                                          env=self.student_env(student), stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True)
                for student, argv in argv_for.items()}

    @staticmethod
    def finish(running: dict[str, subprocess.Popen], timeout: int = 300) -> dict[str, subprocess.CompletedProcess]:
        """Wait for `start_students` (and stop what is left if waiting fails)."""
        done = {}
        try:
            for student, process in running.items():
                output, _ = process.communicate(timeout=timeout)
                done[student] = subprocess.CompletedProcess(process.args, process.returncode, output, "")
        finally:
            for process in running.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
        return done

    def as_students(self, argv_for: dict[str, list[str]]) -> dict[str, subprocess.CompletedProcess]:
        """Run one command per student, side by side; student -> finished process."""
        return self.finish(self.start_students(argv_for))

    def start_nbgrader_as_students(self, *args: str, per_student: bool = False) -> dict[str, subprocess.Popen]:
        """Start `nbgrader ARGS` as each student, in their home. `per_student`: the command takes
        the student id from the user name, which `--student` gives when everyone is one user."""
        explicit = per_student and not self.multi_user
        return self.start_students({student: [sys.executable, "-m", "nbgrader", *args,
                                              *([f"--student={student}"] if explicit else [])]
                                    for student in STUDENTS})

    def finish_nbgrader(self, running: dict[str, subprocess.Popen]) -> dict[str, str]:
        """Wait for `start_nbgrader_as_students`; student -> log. Fails with the log if any failed."""
        results = self.finish(running)
        for student, proc in results.items():
            assert proc.returncode == 0, f"{student}: {' '.join(proc.args)} failed ({proc.returncode}):\n" \
                                         f"{proc.stdout[-4000:]}"
        return {student: proc.stdout for student, proc in results.items()}

    def nbgrader_as_students(self, *args: str, per_student: bool = False) -> dict[str, str]:
        return self.finish_nbgrader(self.start_nbgrader_as_students(*args, per_student=per_student))


def _machine(world: Path) -> Machine:
    config_dir = world / "etc" / "jupyter"
    exchange = world / GUIDE_EXCHANGE.lstrip("/")
    reasons = []
    if os.geteuid() != 0:
        reasons.append("the tests do not run as root, so the students cannot be Unix users of their own")
    for tool in ("setpriv", "bwrap"):
        if shutil.which(tool) is None:
            reasons.append(f"{tool} is missing (apt-get install {'util-linux' if tool == 'setpriv' else 'bubblewrap'})")
    if reasons:
        return Machine(world, exchange, config_dir, multi_user=False, skip_reason="; ".join(reasons))

    # The students' view of the machine: the host, with the students in /etc/passwd (nbgrader
    # names a submission after the user) and the course's Python reachable where it lives in
    # a folder other users cannot enter. Everything else, the exchange included, is the host's.
    etc = world / "students-etc"
    etc.mkdir()
    passwd = Path("/etc/passwd").read_text().rstrip("\n").split("\n")
    group = Path("/etc/group").read_text().rstrip("\n").split("\n")
    for student, (uid, _) in STUDENTS.items():
        assert not any(line.split(":")[2:3] == [str(uid)] for line in passwd), f"uid {uid} is taken on this machine"
        passwd.append(f"{student}:x:{uid}:{uid}::{world / 'home' / student}:/bin/sh")
        group.append(f"{student}:x:{uid}:")
    (etc / "passwd").write_text("\n".join(passwd) + "\n")
    (etc / "group").write_text("\n".join(group) + "\n")
    wrapper = ["bwrap", "--bind", "/", "/", "--ro-bind", str(etc / "passwd"), "/etc/passwd",
               "--ro-bind", str(etc / "group"), "/etc/group"]
    accounts_end = len(wrapper)
    hidden: dict[Path, list[Path]] = {}
    needed = [Path(p) for p in _python_paths()]
    for path in needed:
        if _usable_by_others(str(path)) or any(path.is_relative_to(other) and path != other for other in needed):
            continue
        closed = next(p for p in reversed(path.parents) if not os.stat(p).st_mode & 0o001)
        assert not world.is_relative_to(closed), f"{world} lies in {closed}, which other users cannot enter"
        hidden.setdefault(closed, []).append(path)
    for closed, paths in hidden.items():
        wrapper += ["--perms", "0755", "--tmpfs", str(closed)]  # an empty, open stand-in ...
        for path in paths:
            for parent in reversed(path.parents):
                if parent.is_relative_to(closed) and parent != closed:
                    wrapper += ["--perms", "0755", "--dir", str(parent)]
            wrapper += ["--ro-bind", str(path), str(path)]  # ... holding only the Python
    return Machine(world, exchange, config_dir, multi_user=True, wrapper=wrapper, accounts_end=accounts_end)


@dataclass
class Cycle:
    machine: Machine
    course: Path
    logs: dict[str, str]                       # instructor command -> its log
    student_logs: dict[str, dict[str, str]]    # nbgrader command -> student -> its log
    max_score: float


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    # pytest's tmp_path is 0700 at every level, so other uids could not reach an exchange
    # there: like /srv and /home on a hub, this folder is open to everyone (and removed at the end).
    world = Path(tempfile.mkdtemp(prefix="course-exchange-"))
    world.chmod(0o755)
    assert _usable_by_others(str(world)), f"other users cannot enter {world}: set TMPDIR to an open folder"
    try:
        with pytest.MonkeyPatch.context() as patch:
            machine = _machine(world)
            yield _run_cycle(machine, tmp_path_factory.mktemp("exchange"), patch)
    finally:
        shutil.rmtree(world, ignore_errors=True)


def _run_cycle(machine: Machine, tmp: Path, patch: pytest.MonkeyPatch) -> Cycle:
    world = machine.world
    # --- The guide's step 3, with /srv/nbgrader moved into the test's folder. A restrictive
    # umask shows that the command does not depend on the umask of whoever runs it.
    command = guide_block("bash", f"install -d -m 0777 {GUIDE_EXCHANGE}")
    command = command.replace("sudo ", "").replace("/srv/nbgrader", str(world / "srv" / "nbgrader"))
    proc = subprocess.run(["bash", "-euc", f"umask 077\n{command}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"the guide's exchange command failed:\n{command}\n{proc.stdout}{proc.stderr}"

    # --- The guide's single-machine /etc/jupyter/nbgrader_config.py ("Without a hub"), verbatim
    # but for the exchange root. It differs from the hub's (section 6, step 4) only in the
    # authenticator: nbgrader's NoAuthPlugin, the user name is the student id.
    config = guide_block("python", "NoAuthPlugin")
    assert config.count(f'"{GUIDE_EXCHANGE}"') == 1, "the guide's nbgrader_config.py no longer names the exchange"
    config = config.replace(f'"{GUIDE_EXCHANGE}"', repr(str(machine.exchange)))
    for line in ("c.Exchange.path_includes_course = True", f'c.CourseDirectory.course_id = "{COURSE_ID}"'):
        assert line in config, f"the guide's nbgrader_config.py no longer has {line!r}"
    machine.config_dir.mkdir(parents=True)
    for folder in (world / "etc", machine.config_dir):
        folder.chmod(0o755)
    (machine.config_dir / "nbgrader_config.py").write_text(config)
    (machine.config_dir / "nbgrader_config.py").chmod(0o644)
    patch.setenv("JUPYTER_CONFIG_PATH", str(machine.config_dir))  # the instructor reads it too

    homes = world / "home"
    homes.mkdir()
    homes.chmod(0o755)
    for student, (uid, _) in STUDENTS.items():
        home = machine.home(student)
        home.mkdir(mode=0o700)
        if machine.multi_user:
            os.chown(home, uid, uid)

    logs: dict[str, str] = {}
    student_logs: dict[str, dict[str, str]] = {}

    def instructor(*args: str) -> None:
        proc = nbgrader(course, *args, timeout=600)
        logs[args[0]] = proc.stdout + proc.stderr

    # --- 1. Instructor: generate and release.
    course = make_course_copy(tmp, ASSIGNMENT)
    instructor("generate_assignment", ASSIGNMENT)
    instructor("release_assignment", ASSIGNMENT)

    # --- 2. Students: fetch, work, submit.
    commands = _student_commands()
    student_logs["fetch_assignment"] = machine.nbgrader_as_students(*commands["fetch_assignment"])
    solution = (REPO / "source" / ASSIGNMENT / NOTEBOOK).read_text()
    for student, (uid, work) in STUDENTS.items():
        fetched = machine.home(student) / COURSE_ID / ASSIGNMENT / NOTEBOOK  # path_includes_course
        assert fetched.is_file(), f"{student}: fetch_assignment did not put {NOTEBOOK} in {fetched.parent}"
        assert json.loads(fetched.read_text()) == json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text())
        if work == "solution":  # the same cell ids as the release, so nbgrader accepts it
            fetched.write_text(solution)
            if machine.multi_user:
                os.chown(fetched, uid, uid)
    student_logs["submit"] = machine.nbgrader_as_students(*commands["submit"], per_student=True)

    # --- 3. Instructor: collect, grade, feedback (meanwhile the students list the course).
    listing = machine.start_nbgrader_as_students("list")
    try:
        if machine.multi_user:
            # collect warns of a "cheating attempt" when a submission's owner is not the user it
            # names: it runs, as root, with the students' accounts in /etc/passwd, as on the hub.
            proc = subprocess.run([*machine.wrapper[:machine.accounts_end], "--", sys.executable, "-m", "nbgrader",
                                   "collect", ASSIGNMENT], cwd=course, capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                                             f"{os.environ.get('PATH', '')}"})
            assert proc.returncode == 0, f"nbgrader collect failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            logs["collect"] = proc.stdout + proc.stderr
        else:
            instructor("collect", ASSIGNMENT)
    finally:
        student_logs["list"] = machine.finish_nbgrader(listing)
    instructor("autograde", ASSIGNMENT)
    instructor("generate_feedback", ASSIGNMENT)
    instructor("release_feedback", ASSIGNMENT)

    # --- 4. Students: fetch the feedback.
    student_logs["fetch_feedback"] = machine.nbgrader_as_students(*commands["fetch_feedback"], per_student=True)
    source = nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    return Cycle(machine, course, logs, student_logs, sum(grade_cells(source).values()))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_exchange_is_what_the_guide_and_nbgrader_make(cycle: Cycle):
    exchange = cycle.machine.exchange
    assert _mode(exchange) == 0o777 and _mode(exchange.parent) == 0o755
    # nbgrader's release_assignment wants exactly 0777; run as the grader account, which does
    # not own the exchange, it cannot fix another mode. Root can, so look for the warning.
    assert "Permissions for exchange directory" not in cycle.logs["release_assignment"], \
        "release_assignment had to change the mode the guide's command gave the exchange"
    course = exchange / COURSE_ID
    modes = {name: _mode(course / name) for name in ("outbound", "inbound", "feedback")}
    assert (_mode(course), modes) == (0o755, {"outbound": 0o755, "inbound": 0o2733, "feedback": 0o711}), \
        "nbgrader's exchange folders changed mode: update section 6, step 3 of docs/instructor.md"
    assert (course / "outbound" / ASSIGNMENT / NOTEBOOK).is_file()


def test_students_get_their_own_feedback_and_score(cycle: Cycle):
    machine = cycle.machine
    collected = sorted(p.name for p in (cycle.course / "submitted").iterdir())
    assert collected == sorted(STUDENTS), f"collect found submissions of {collected}"
    graded = read_gradebook(cycle.course, ASSIGNMENT, list(STUDENTS))
    assert cycle.max_score > 0 and graded.max_score == cycle.max_score
    expected = {s: cycle.max_score if work == "solution" else 0.0 for s, (_, work) in STUDENTS.items()}
    assert graded.total == expected

    for student in STUDENTS:
        pages = list((machine.home(student) / COURSE_ID / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK[:-6]}.html"))
        assert len(pages) == 1, f"{student}: fetch_feedback brought {pages}:\n" \
                                f"{cycle.student_logs['fetch_feedback'][student]}"
        score = f"(Score: {expected[student]:.1f} / {cycle.max_score:.1f})"
        assert score in pages[0].read_text(), f"{student}'s feedback page does not show {score}"
        if machine.multi_user:
            assert os.stat(pages[0]).st_uid == STUDENTS[student][0]
        listing = cycle.student_logs["list"][student]
        assert re.search(rf"^\[ListApp \| INFO\] {COURSE_ID} {ASSIGNMENT}$", listing, re.M), listing


def test_students_cannot_see_each_others_work(cycle: Cycle):
    machine = cycle.machine
    if not machine.multi_user:
        message = f"cross-user checks need separate Unix users: {machine.skip_reason}"
        if os.geteuid() == 0 and os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI runs as root and must run the cross-user checks: {message}")
        pytest.skip(message)
    course = machine.exchange / COURSE_ID
    inbound = sorted(course.joinpath("inbound").iterdir())
    # Each submission belongs to the uid that submitted it and is named after its user, and
    # collect's own check of that agreed.
    assert {p.name.split("+")[0]: os.stat(p).st_uid for p in inbound} == {s: u for s, (u, _) in STUDENTS.items()}
    assert "Collecting submission: student01" in cycle.logs["collect"]
    assert "cheating attempt" not in cycle.logs["collect"], cycle.logs["collect"]

    probe = r"""
import glob, json, os, sys
inbound, feedback, release, other = sys.argv[1:]
def attempt(action):
    try:
        action()
        return "allowed"
    except PermissionError:
        return "denied"
print(json.dumps({
    "list inbound": attempt(lambda: os.listdir(inbound)),
    "find other's submission": glob.glob(os.path.join(inbound, other + "+*")) or "nothing found",
    "list feedback": attempt(lambda: os.listdir(feedback)),
    "write into the release": attempt(lambda: open(os.path.join(release, "x.py"), "w").close()),
    "uid": os.getuid(),
}))
"""
    others = dict(zip(STUDENTS, reversed(list(STUDENTS))))
    results = machine.as_students({
        student: [sys.executable, "-c", probe, str(course / "inbound"), str(course / "feedback"),
                  str(course / "outbound" / ASSIGNMENT), others[student]] for student in STUDENTS})
    for student, proc in results.items():
        assert proc.returncode == 0, proc.stdout
        assert json.loads(proc.stdout) == {
            "list inbound": "denied", "find other's submission": "nothing found", "list feedback": "denied",
            "write into the release": "denied", "uid": STUDENTS[student][0]}, f"{student}: {proc.stdout}"
