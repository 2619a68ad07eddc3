"""The gradebook on PostgreSQL (NBGRADER_DB_URL, see nbgrader_config.py): a real server from
Debian's packages, started here on loopback in a temporary folder and stopped at the end;
assignment 01 generated and autograded in parallel into it; the scores read back through
nbgrader's Gradebook API and `nbgrader export`.

Needs the server binaries (`apt-get install postgresql`; ./course.sh test installs them when
run as root). Without them the test is skipped, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from grading import (REPO, exported_scores, free_port, grade_cells, make_course_copy, nbgrader, read_gradebook,
                     replace_cell, run_parallel_autograde, submit)
from wrong_answers import WRONG_ANSWERS

pytestmark = pytest.mark.xdist_group("test_grading_postgres")

ASSIGNMENT = "01_tensors"
NOTEBOOK = "01_tensors.ipynb"


def _server_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and postgres, else initdb on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class Server:
    """A throw-away PostgreSQL cluster: initdb in a temporary folder, `postgres` in the foreground
    (a child of this process, so it cannot be left behind by a daemonising pg_ctl), loopback only."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="course-pg-"))
        self.password = secrets.token_hex(16)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.prefix: list[str] = []
        self.owner: tuple[int, int] | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                user = pwd.getpwnam("nobody")
            self.owner = (user.pw_uid, user.pw_gid)
            os.chown(self.folder, *self.owner)
            self.prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
        self.folder.chmod(0o700)
        self.log = self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres:{self.password}@127.0.0.1:{self.port}/gradebook"

    def _run(self, *command: str) -> None:
        proc = subprocess.run([*self.prefix, *command], capture_output=True, text=True, timeout=120,
                              cwd=self.folder, env={**os.environ, "LC_ALL": "C"})
        assert proc.returncode == 0, f"{command[0]} failed:\n{proc.stdout}\n{proc.stderr}"

    def start(self) -> None:
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n")
        if self.owner:
            os.chown(pwfile, *self.owner)
        # Password (SCRAM) on TCP; the unix socket lives in this private folder only.
        self._run(str(self.bindir / "initdb"), "-D", str(self.folder / "data"), "-U", "postgres",
                  f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        pwfile.unlink()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [*self.prefix, str(self.bindir / "postgres"), "-D", str(self.folder / "data"),
                 "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
                 "-c", f"unix_socket_directories={self.folder}", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.folder,
                env={**os.environ, "LC_ALL": "C"})
        import psycopg2

        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"postgres exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                              password=self.password, dbname="postgres", connect_timeout=2)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"postgres did not accept connections:\n{self.log.read_text()}") from None
                time.sleep(0.2)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE gradebook")
        connection.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: ends sessions, stops cleanly
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    bindir = _server_bin()
    if bindir is None or not (bindir / "postgres").exists():
        message = ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
                   "`sudo apt-get install postgresql` (./course.sh test does it when run as root)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the PostgreSQL gradebook test: {message}")
        pytest.skip(message)
    server = Server(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
    assert server.process is None or server.process.poll() is not None, "postgres is still running"


def test_parallel_autograde_into_postgresql(postgres, tmp_path, monkeypatch, record_property):
    monkeypatch.setenv("NBGRADER_DB_URL", postgres.url)  # nbgrader_config.py reads it
    course = make_course_copy(tmp_path, ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")

    source = nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    wrong = next(w for w in WRONG_ANSWERS[ASSIGNMENT] if w.loses == ("test_pairwise_distances",))
    submit(course, "solution", ASSIGNMENT, {NOTEBOOK: source})
    submit(course, "blank", ASSIGNMENT, {NOTEBOOK: release})
    submit(course, "wrong", ASSIGNMENT, {NOTEBOOK: replace_cell(source, wrong.cell, wrong.code.strip())})
    students = ["blank", "solution", "wrong"]

    proc, results = run_parallel_autograde(course, ASSIGNMENT, "--jobs", "3")
    record_property("notebooks_executed", len(students))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "gradebook postgresql+psycopg2://postgres:***@127.0.0.1" in proc.stdout  # the password is not printed
    assert {s: r["status"] for s, r in results.items()} == dict.fromkeys(students, "ok")
    assert not (course / "gradebook.db").exists(), "graded into SQLite, not PostgreSQL"

    points = grade_cells(source)
    graded = read_gradebook(course, ASSIGNMENT, students, db_url=postgres.url)
    assert graded.max_score == sum(points.values())
    assert graded.cells["solution"] == points
    assert graded.total["blank"] == 0
    assert graded.cells["wrong"] == {**points, "test_pairwise_distances": 0}
    assert {s: r["score"] for s, r in results.items()} == graded.total

    assert exported_scores(course, ASSIGNMENT) == graded.total
