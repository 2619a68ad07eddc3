"""JupyterHub as docs/instructor.md section 6 sets it up, through the whole cycle, over HTTP.

The hub runs, as root, with the guide's own `jupyterhub_config.py` (step 5), the guide's
`/etc/jupyter/nbgrader_config.py` (step 4), the exchange made by the guide's command (step 3)
and the extensions switched by the guide's commands (step 6), all read from the guide. Only
what a test must change is changed: free loopback ports instead of the guide's, the course
environment (`/opt/pytorch-in-practice/.venv`) is this test's Python environment, and a
test-only admin service (`test-driver`) hands out API tokens, which stand in for the users'
logins (the guide's authenticator is left as it is: nobody logs in with a password).

Everything runs in one bubblewrap mount namespace that stands for the hub machine: its own
/etc/passwd with the accounts of step 2 (uids 61200-61204), its own /home, /srv and
/etc/jupyter (folders of a temporary directory), the course environment's etc/jupyter a copy
(step 6 writes there), and the Python reachable where it lives in a folder other users cannot
enter (pyenv under /root), as /opt/pytorch-in-practice is on a hub. JupyterHub's local process
spawner really switches to those users (pwd lookups, setuid, their homes); configurable-http-proxy
comes from hub/node_modules (`./course.sh test` installs it with npm). The namespace has its own
processes: when the test ends, everything the hub started ends with it.

Through the proxy, with the users' tokens: the instructor has the formgrader service generate
and release 01_tensors; two students fetch it through their single-user servers' nbgrader
endpoints (what the Assignments tab calls), one puts the reference solution in place (through
the contents API), both submit; the formgrader collects, autogrades (the course's sandbox, as
the grader account), generates and releases feedback; the students fetch their feedback.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from grading import REPO, guide_block, make_course_copy, read_gradebook

pytestmark = [pytest.mark.xdist_group("grading-hub"), pytest.mark.slow]

ASSIGNMENT = "01_tensors"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
COURSE = "pytorch-in-practice"
GUIDE_ENV = "/opt/pytorch-in-practice/.venv"
GRADER = "grader-pytorch"
USERS = {GRADER: 61200, "alice": 61201, "bob": 61202, "student01": 61203, "student02": 61204}
STUDENTS = {"student01": "solution", "student02": "blank"}
PROXY = REPO / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
STUDENT_HIDDEN = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                  "@jupyter/nbgrader:course-list"]
HTTP_TIMEOUT = 60      # one request (autograde: GRADE_TIMEOUT)
GRADE_TIMEOUT = 240
START_TIMEOUT = 90     # the hub, a single-user server, the formgrader


HUB_SECTION = "## 6. Running the course for a class on JupyterHub"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _prerequisites() -> str:
    """Why the hub cannot run here ("" when it can)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "JupyterHub's local spawner switches users, which needs root (the test runs as root in CI)"
    for tool, package in (("bwrap", "bubblewrap"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install {package})"
    node = subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True,
                          timeout=30) if shutil.which("node") else None
    if node is None or node.returncode != 0 or int(node.stdout.strip() or 0) < 20:
        return "configurable-http-proxy needs Node.js 20 or newer on PATH"
    if not PROXY.exists():
        return (f"configurable-http-proxy is not installed in {PROXY.parent.parent}: ./course.sh test installs it "
                "with npm (hub/package-lock.json)")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed (./course.sh test installs the test extra)"
    taken = [str(uid) for uid in USERS.values() if any(
        line.split(":")[2:3] == [str(uid)] for line in Path("/etc/passwd").read_text().splitlines())]
    if taken:
        return f"uids {', '.join(taken)} are taken on this machine"
    return ""


def _python_binds() -> list[str]:
    """bwrap arguments that make the course's Python (and this checkout) reachable for every user
    where a folder on the way is private (pyenv under /root, mode 700): an empty folder in its
    place, with the folders that lead to them bound back."""
    args: list[str] = []
    covered: set[Path] = set()
    for path in sorted({Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)), REPO}):
        for folder in reversed(path.parents):
            if folder != Path("/") and not os.stat(folder).st_mode & 0o001:
                inner = folder / path.relative_to(folder).parts[0]
                if folder not in covered:
                    args += ["--tmpfs", str(folder)]
                    covered.add(folder)
                if inner not in covered:
                    args += ["--ro-bind", str(inner), str(inner)]
                    covered.add(inner)
                break
    return args


@dataclass
class Machine:
    """The hub machine: a mount namespace over a temporary folder `world`."""

    world: Path
    mounts: list[str]

    def home(self, user: str) -> Path:
        return self.world / "home" / user

    def command(self, argv: list[str], user: str | None = None, *, own_processes: bool = False) -> list[str]:
        wrapper = ["bwrap", *self.mounts]
        if own_processes:
            wrapper += ["--unshare-pid", "--proc", "/proc", "--die-with-parent"]
        if user is None:
            return [*wrapper, "--", *argv]
        return [*wrapper, "--chdir", f"/home/{user}", "--", shutil.which("setpriv") or "/usr/bin/setpriv",
                f"--reuid={USERS[user]}", f"--regid={USERS[user]}", "--clear-groups", "--", *argv]

    def env(self, user: str | None = None) -> dict[str, str]:
        home = f"/home/{user}" if user else "/root"
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": home, "USER": user or "root", "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1"}

    def run(self, script: str, user: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(["bash", "-euc", script], user), env=self.env(user),
                              capture_output=True, text=True, timeout=timeout)


def _make_machine(world: Path) -> Machine:
    etc = world / "etc"
    etc.mkdir()
    passwd = Path("/etc/passwd").read_text().rstrip("\n").split("\n")
    group = Path("/etc/group").read_text().rstrip("\n").split("\n")
    for user, uid in USERS.items():
        passwd.append(f"{user}:x:{uid}:{uid}::/home/{user}:/bin/bash")
        group.append(f"{user}:x:{uid}:")
    (etc / "passwd").write_text("\n".join(passwd) + "\n")
    (etc / "group").write_text("\n".join(group) + "\n")
    for folder in ("home", "srv", "jupyter", "jupyterhub", "venv-jupyter"):
        (world / folder).mkdir(mode=0o755)
        (world / folder).chmod(0o755)
    shutil.copytree(Path(sys.prefix) / "etc" / "jupyter", world / "venv-jupyter", dirs_exist_ok=True)
    # /etc: an empty folder with the host's entries bound back, but for the accounts, and
    # /etc/jupyter and /etc/jupyterhub (which the host need not have, and must not get).
    mounts = ["--dev-bind", "/", "/", "--tmpfs", "/etc"]
    for entry in sorted(Path("/etc").iterdir()):
        if entry.name in ("passwd", "group", "jupyter", "jupyterhub"):
            continue
        if entry.is_symlink():
            mounts += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.exists():
            mounts += ["--dev-bind" if entry.is_dir() else "--bind", str(entry), str(entry)]
    mounts += ["--ro-bind", str(etc / "passwd"), "/etc/passwd", "--ro-bind", str(etc / "group"), "/etc/group",
               "--bind", str(world / "jupyter"), "/etc/jupyter", "--bind", str(world / "jupyterhub"), "/etc/jupyterhub",
               "--bind", str(world / "home"), "/home", "--bind", str(world / "srv"), "/srv",
               *_python_binds(), "--bind", str(world / "venv-jupyter"), str(Path(sys.prefix) / "etc" / "jupyter")]
    for user, uid in USERS.items():
        home = world / "home" / user
        home.mkdir(mode=0o700)
        os.chown(home, uid, uid)
    return Machine(world, mounts)


def _chown_tree(top: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(top):
        for name in [folder, *(os.path.join(folder, f) for f in dirs + files)]:
            os.lchown(name, uid, uid)


def _hub_config(ports: dict[str, int], driver_token: str) -> str:
    """The guide's jupyterhub_config.py with the test's paths and ports, plus the test's driver."""
    config = guide_block("python", "c.JupyterHub.services", HUB_SECTION)
    for old, new in [(GUIDE_ENV, sys.prefix), ("http://127.0.0.1:9999", f"http://127.0.0.1:{ports['formgrader']}")]:
        assert old in config, f"the guide's jupyterhub_config.py no longer has {old!r}"
        config = config.replace(old, new)
    return config + f"""
# --- test only: loopback ports, and an admin service that hands out the users' tokens
c.JupyterHub.bind_url = "http://127.0.0.1:{ports['public']}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{ports['hub']}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports['proxy_api']}"
c.ConfigurableHTTPProxy.debug = False
c.JupyterHub.services.append({{"name": "test-driver", "api_token": {driver_token!r}}})
c.JupyterHub.load_roles.append({{"name": "admin", "services": ["test-driver"]}})
"""


class Hub:
    """A running hub, reached through its proxy."""

    def __init__(self, machine: Machine, process: subprocess.Popen, url: str, log: Path, driver_token: str):
        self.machine, self.process, self.url, self.log = machine, process, url, log
        self.driver = requests.Session()
        self.driver.headers["Authorization"] = f"token {driver_token}"
        self.sessions: dict[str, requests.Session] = {}
        self.environment_check: tuple[str, int, str] = ("", -1, "")  # step 1's check: command, status, output

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def session(self, user: str) -> requests.Session:
        if user not in self.sessions:
            reply = self.driver.post(f"{self.url}/hub/api/users/{user}/tokens", json={"note": "test"},
                                     timeout=HTTP_TIMEOUT)
            assert reply.status_code == 201, f"{user}'s token: {reply.status_code} {reply.text}"
            session = requests.Session()
            session.headers["Authorization"] = f"token {reply.json()['token']}"
            self.sessions[user] = session
        return self.sessions[user]

    def call(self, user: str, method: str, path: str, expect: int = 200, timeout: int = HTTP_TIMEOUT, **kwargs):
        reply = self.session(user).request(method, f"{self.url}{path}", timeout=timeout, allow_redirects=False,
                                           **kwargs)
        assert reply.status_code == expect, \
            f"{user}: {method} {path}: {reply.status_code}, not {expect}:\n{reply.text[-2000:]}\n{self.log_tail()}"
        return reply

    def wait(self, what: str, ready) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the hub exited ({self.process.returncode}):\n{self.log_tail()}"
            try:
                if ready():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{what} not ready after {START_TIMEOUT} s:\n{self.log_tail()}")

    def start_server(self, user: str) -> None:
        reply = self.session(user).post(f"{self.url}/hub/api/users/{user}/server", timeout=HTTP_TIMEOUT)
        assert reply.status_code in (201, 202), f"{user}'s server: {reply.status_code} {reply.text}"

    def server_ready(self, user: str) -> bool:
        model = self.call(user, "GET", f"/hub/api/users/{user}").json()
        return bool(model["servers"].get("", {}).get("ready"))

    def page_config(self, user: str, path: str) -> dict:
        page = self.call(user, "GET", path).text
        found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
        assert found, f"{path} has no page config"
        return json.loads(found.group(1))


@dataclass
class Cycle:
    hub: Hub
    course: Path
    replies: dict[str, object]


@pytest.fixture(scope="module")
def machine() -> Iterator[Machine]:
    reason = _prerequisites()
    if reason:
        pytest.skip(f"JupyterHub end to end: {reason}")
    world = Path(tempfile.mkdtemp(prefix="course-hub-"))
    world.chmod(0o755)
    try:
        yield _make_machine(world)
    finally:
        shutil.rmtree(world, ignore_errors=True)


def _set_up(machine: Machine, tmp: Path) -> None:
    """Steps 2 (the course root), 3 (the exchange), 4 (nbgrader_config.py) and 6 (extensions)."""
    staged = make_course_copy(tmp, ASSIGNMENT)
    course = machine.home(GRADER) / COURSE
    shutil.copytree(staged, course)
    _chown_tree(course, USERS[GRADER])

    exchange = guide_block("bash", "/srv/nbgrader/exchange", HUB_SECTION).replace("sudo ", "")
    proc = machine.run(f"umask 077\n{exchange}")
    assert proc.returncode == 0, f"the guide's exchange command failed:\n{exchange}\n{proc.stdout}{proc.stderr}"

    (machine.world / "jupyter" / "nbgrader_config.py").write_text(guide_block("python", "c.Exchange.root", HUB_SECTION))

    for marker, user in (("--level=sys_prefix", None), ("--level=user", GRADER)):
        script = guide_block("bash", marker, HUB_SECTION).replace(GUIDE_ENV, sys.prefix).replace("sudo ", "")
        proc = machine.run(script, user)
        assert proc.returncode == 0, f"step 6 ({marker}) failed:\n{script}\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def hub(machine: Machine, tmp_path_factory) -> Iterator[Hub]:
    _set_up(machine, tmp_path_factory.mktemp("hub"))
    ports = dict(zip(("public", "hub", "proxy_api", "formgrader"), _free_ports(4)))
    driver_token = secrets.token_hex(32)
    (machine.world / "jupyterhub" / "jupyterhub_config.py").write_text(_hub_config(ports, driver_token))
    start = guide_block("bash", "jupyterhub -f", HUB_SECTION).replace(GUIDE_ENV, sys.prefix)
    start = start.replace("/opt/pytorch-in-practice/hub", str(REPO / "hub"))
    # Step 1's last line, the check that a user without privileges can use the environment,
    # run by a student (meanwhile the hub starts).
    step_1 = guide_block("bash", "uv python install", HUB_SECTION)
    check = next(line for line in step_1.splitlines() if "sudo -u nobody" in line)
    check = check.replace("sudo -u nobody ", "").replace(GUIDE_ENV, sys.prefix)
    checking = subprocess.Popen(machine.command(["bash", "-euc", check], "student01"), env=machine.env("student01"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = machine.world / "hub.log"
    with log.open("w") as out:
        process = subprocess.Popen(machine.command(["bash", "-euc", start], own_processes=True), env=machine.env(),
                                   stdout=out, stderr=subprocess.STDOUT)
    running = Hub(machine, process, f"http://127.0.0.1:{ports['public']}", log, driver_token)
    try:
        running.wait("the hub", lambda: running.driver.get(f"{running.url}/hub/api/", timeout=5).ok)
        output, _ = checking.communicate(timeout=START_TIMEOUT)
        running.environment_check = (check, checking.returncode, output)
        yield running
    finally:
        checking.kill()
        checking.wait(timeout=30)
        process.kill()  # bubblewrap's first process: every process of the namespace ends with it
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def cycle(hub: Hub) -> Cycle:
    replies: dict[str, object] = {}
    service = f"/services/{COURSE}"
    api = f"{service}/formgrader/api/assignment/{ASSIGNMENT}"

    def release() -> None:
        """The instructor, through the formgrader: generate and release."""
        for action in ("assign", "release"):
            replies[action] = hub.call("alice", "POST", f"{api}/{action}", timeout=GRADE_TIMEOUT).json()
            assert replies[action]["success"], replies[action]

    # The students' servers start (the hub waits for each) while the formgrader generates.
    for user in ("alice", *STUDENTS):
        hub.session(user)
    with ThreadPoolExecutor(len(STUDENTS) + 1) as pool:
        started = [pool.submit(hub.start_server, student) for student in STUDENTS] + [pool.submit(release)]
        for future in started:
            future.result()
    for student in STUDENTS:
        hub.wait(f"{student}'s server", lambda s=student: hub.server_ready(s))

    # --- The students, through their own servers: fetch, work, submit.
    form = {"course_id": COURSE, "assignment_id": ASSIGNMENT}
    solution = json.loads((REPO / "source" / ASSIGNMENT / NOTEBOOK).read_text())
    for student, work in STUDENTS.items():
        replies[f"fetch {student}"] = hub.call(student, "POST", f"/user/{student}/assignments/fetch", data=form).json()
        if work == "solution":
            hub.call(student, "PUT", f"/user/{student}/api/contents/{COURSE}/{ASSIGNMENT}/{NOTEBOOK}",
                     json={"type": "notebook", "format": "json", "content": solution})
        replies[f"submit {student}"] = hub.call(student, "POST", f"/user/{student}/assignments/submit",
                                                data=form).json()

    # --- The instructor: collect, autograde, feedback.
    replies["collect"] = hub.call("alice", "POST", f"{api}/collect", timeout=GRADE_TIMEOUT).json()
    for student in STUDENTS:
        replies[f"autograde {student}"] = hub.call(
            "alice", "POST", f"{service}/formgrader/api/submission/{ASSIGNMENT}/{student}/autograde",
            timeout=GRADE_TIMEOUT).json()
    for action in ("generate_feedback", "release_feedback"):
        replies[action] = hub.call("alice", "POST", f"{api}/{action}", timeout=GRADE_TIMEOUT).json()

    # --- The students: fetch their feedback.
    for student in STUDENTS:
        replies[f"fetch_feedback {student}"] = hub.call(student, "POST", f"/user/{student}/assignments/fetch_feedback",
                                                        data=form).json()
    return Cycle(hub, hub.machine.home(GRADER) / COURSE, replies)


def test_formgrader_runs_the_cycle_and_grades_in_the_sandbox(cycle: Cycle):
    for action in ("assign", "release", "collect", "generate_feedback", "release_feedback"):
        assert cycle.replies[action]["success"], f"{action}: {cycle.replies[action]}"
    for student in STUDENTS:
        reply = cycle.replies[f"autograde {student}"]
        assert reply["success"], f"autograde {student}: {reply}"
        assert not re.search(r"tamper|cheating", reply.get("log", ""), re.I), reply["log"]
    graded = read_gradebook(cycle.course, ASSIGNMENT, list(STUDENTS))
    assert graded.max_score > 0
    assert graded.total == {"student01": graded.max_score, "student02": 0.0}
    notebook = cycle.course / "autograded" / "student01" / ASSIGNMENT / NOTEBOOK
    assert notebook.stat().st_uid == USERS[GRADER], "the formgrader runs as the grader account"


def test_students_fetch_submit_and_see_only_their_own_feedback(cycle: Cycle):
    hub = cycle.hub
    graded = read_gradebook(cycle.course, ASSIGNMENT, list(STUDENTS))
    for student in STUDENTS:
        for action in ("fetch", "submit", "fetch_feedback"):
            assert cycle.replies[f"{action} {student}"]["success"], cycle.replies[f"{action} {student}"]
        fetched = hub.machine.home(student) / COURSE / ASSIGNMENT / NOTEBOOK
        assert fetched.stat().st_uid == USERS[student], "the student's server runs as the student"
        listing = cycle.replies[f"fetch_feedback {student}"]["value"]
        submitted = [a for a in listing if a["assignment_id"] == ASSIGNMENT and a["status"] == "submitted"]
        assert len(submitted) == 1 and submitted[0]["student_id"] == student, listing
        submissions = submitted[0]["submissions"]
        assert len(submissions) == 1 and submissions[0]["student_id"] == student, submissions
        assert submissions[0]["has_local_feedback"], submissions
        folder = quote(submissions[0]["local_feedback_path"])
        page = hub.call(student, "GET", f"/user/{student}/api/contents/{folder}/{ASSIGNMENT}.html",
                        params={"type": "file", "format": "text"}).json()["content"]
        score = f"(Score: {graded.total[student]:.1f} / {graded.max_score:.1f})"
        assert score in page, f"{student}'s feedback page does not show {score}"
        folders = hub.call(student, "GET", f"/user/{student}/api/contents/{COURSE}/{ASSIGNMENT}/feedback").json()
        assert len(folders["content"]) == 1, f"{student} got feedback folders {folders['content']}"


def test_students_cannot_use_the_formgrader_nor_see_its_extensions(cycle: Cycle):
    hub = cycle.hub
    formgrader = f"/services/{COURSE}/formgrader/manage_assignments"
    for student in STUDENTS:
        hub.call(student, "GET", formgrader, expect=403)
        hub.call(student, "GET", f"/user/{student}/formgrader/manage_assignments", expect=404)
        disabled = hub.page_config(student, f"/user/{student}/lab")["disabledExtensions"]
        assert set(STUDENT_HIDDEN) <= set(disabled), f"{student} sees {set(STUDENT_HIDDEN) - set(disabled)}"
    hub.call("alice", "GET", formgrader)
    grader_disabled = hub.page_config("alice", f"/services/{COURSE}/lab")["disabledExtensions"]
    assert not set(STUDENT_HIDDEN) & set(grader_disabled), "the formgrader service must keep the extensions"
    # The instructor's course list (Nbgrader > Courses) finds the service through the hub's API.
    courses = hub.call("alice", "GET", f"/services/{COURSE}/formgraders").json()
    assert courses["success"], courses["value"]
    on_hub = [c["url"] for c in courses["value"] if c["kind"] == "jupyterhub" and c["course_id"] == COURSE]
    assert len(on_hub) == 1 and on_hub[0].endswith(f"/services/{COURSE}/lab?formgrader=true"), courses


def test_every_user_can_use_the_course_environment(cycle: Cycle):
    command, status, output = cycle.hub.environment_check
    assert (status, output) == (0, ""), f"step 1's check, as student01: {command}\n{output}"


def _server_environment(uid: int) -> dict[str, str]:
    """The environment of the single-user server (or formgrader) running as `uid`."""
    for process in Path("/proc").iterdir():
        try:
            if not process.name.isdigit() or process.stat().st_uid != uid or \
                    b"jupyterhub-singleuser" not in (process / "cmdline").read_bytes():
                continue
            pairs = (process / "environ").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)
    raise AssertionError(f"no jupyterhub-singleuser runs as uid {uid}")


def test_servers_run_as_their_users_with_the_course_environment_first(cycle: Cycle):
    """The formgrader finds `nbgrader` and `alembic`, a student's terminal the course's python."""
    for user in (GRADER, *STUDENTS):
        env = _server_environment(USERS[user])
        assert (env["USER"], env["HOME"]) == (user, f"/home/{user}")
        assert env["PATH"].split(":")[0] == str(Path(sys.prefix) / "bin"), f"{user}'s PATH: {env['PATH']}"


def test_students_homes_are_private(cycle: Cycle):
    machine = cycle.hub.machine
    probe = "ls /home/{other} 2>&1 && echo READABLE || echo DENIED; id -un"
    for student, other in zip(STUDENTS, reversed(list(STUDENTS))):
        proc = machine.run(probe.format(other=other), student)
        assert proc.stdout.split()[-2:] == ["DENIED", student], proc.stdout + proc.stderr
