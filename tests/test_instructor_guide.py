"""A term of assignment 02, run with the instructor guide's own commands (docs/instructor.md).

Every shell block of the guide names the test that runs it (`<!-- tested by tests/...: name -->`
on the line above it). The blocks named for this file run here, line by line as printed, in a
temporary copy of the course, on one machine with the single-machine exchange of the guide
(a temporary folder stands for /srv/nbgrader/exchange):

  roster     the class list: six students, imported from the guide's roster.csv plus four rows
  release    generate, due date, release_assignment (first without an exchange: refused)
  extension  dee gets two days; the report
  grade      collect (ada submitted through the exchange), parallel autograde, the status list
  feedback   generate_feedback, release_feedback, export

Between the blocks the test plays the students and the TA: ada fetches and submits the
reference solution through the exchange with the guide's student commands, ben submits the
blank notebook, cam a file that is not a notebook, dee and eve the solution 1.5 days late (dee
with her extension), fay nothing. In the formgrader (a Jupyter server with nbgrader's formgrader,
driven through the HTTP API its pages use) the TA grades ada's written answer and overrides one
of ben's test scores; then the regrade rules: a page made before an override is not released,
and overrides survive grading again.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from grading import GUIDE, REPO, free_port, guide_block, make_course_copy, run_forked, stop_server, submit, submit_files

pytestmark = pytest.mark.xdist_group("instructor-guide")

ASSIGNMENT = "02_autograd"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
COURSE_ID = "pytorch-in-practice"
WRITTEN = "explain_accumulation"          # the written answer of assignment 02 (graded by hand)
COMMENT = "Both points: old gradients add up, and micro-batches are the use."
BLOCKS = ("roster", "release", "extension", "grade", "feedback")
FAILED_LIST = "python -m grader.export failed 02_autograd"
ON_TIME, LATE = "2026-12-03 10:00:00.000000 UTC", "2026-12-06 11:59:00.000000 UTC"  # due 2026-12-04 23:59
EXTRA_STUDENTS = "cam,Cam,Reyes,cam@example.org,1003\ndee,Dee,Sato,dee@example.org,1004\n" \
                 "eve,Eve,Ito,eve@example.org,1005\nfay,Fay,Berg,fay@example.org,1006\n"
MARKER = re.compile(r"[ \t]*<!-- tested by (\S+?)(?:: (\w+))? -->\n[ \t]*```(\w+)\n(.*?)```", re.S)


def guide_blocks() -> dict[str, str]:
    """name -> text of the guide's shell blocks that name this file."""
    return {name: text for test, name, lang, text in MARKER.findall(GUIDE.read_text())
            if test == "tests/test_instructor_guide.py"}


def written_answer_of(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN)


@dataclass
class Term:
    course: Path
    exchange: Path
    env: dict[str, str]
    logs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    # What the tests below read, recorded while the term runs (the `term` fixture).
    refused: subprocess.CompletedProcess | None = None          # release_assignment without an exchange
    default_exchange_appeared: bool = False
    written_before: dict = field(default_factory=dict)          # ada's written answer before grading
    released_before_stale: set[str] = field(default_factory=set)
    released_after_stale: set[str] = field(default_factory=set)
    stale_release: subprocess.CompletedProcess | None = None
    fresh_release: subprocess.CompletedProcess | None = None

    def run(self, command: str, check: bool = True, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """One command line of the guide, as printed: `nbgrader ...` and `python -m grader...` in a
        child forked from the test process (`run_forked`), the parallel grading in a process of its own."""
        argv = shlex.split(command, comments=True)
        assert argv[0] == "nbgrader" or argv[:2] == ["python", "-m"], command
        cwd, env = cwd or self.course, env or self.env
        if argv[:3] == ["python", "-m", "grader.parallel"]:
            done = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=600)
            status, output = done.returncode, done.stdout + done.stderr
        else:
            status, output = run_forked(cwd, argv, env)
        proc = subprocess.CompletedProcess(argv, status, output, "")
        self.logs[command] = proc
        if check and status != 0:
            raise AssertionError(f"`{command}` failed ({status}):\n{output[-4000:]}")
        return proc

    def log(self, command: str) -> subprocess.CompletedProcess:
        """The last run of `command` (as the guide prints it, comments aside)."""
        wanted = shlex.split(command, comments=True)
        return [proc for line, proc in self.logs.items() if shlex.split(line, comments=True) == wanted][-1]

    def run_block(self, name: str) -> None:
        """Every command of the guide's block `name`; each must succeed, but for the failed list
        (exit status 1 while a submission has no score: cam's)."""
        for line in guide_blocks()[name].splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                proc = self.run(line, check=argv[:4] != ["python", "-m", "grader.export", "failed"])
                assert proc.returncode in (0, 1), f"`{line}` failed ({proc.returncode}):\n{proc.stdout[-3000:]}"

    def student(self, student: str, command: str) -> subprocess.CompletedProcess:
        """A command of the guide's student block, as `student` in their home folder. Everyone is one
        Unix user here, so `--student` gives the id the user name gives on a shared machine (the
        exchange test runs these commands as Unix users of their own)."""
        home = self.course.parent / "home" / student
        home.mkdir(parents=True, exist_ok=True)
        command = shlex.join([*shlex.split(command, comments=True), f"--student={student}"])
        return self.run(command, cwd=home, env={**self.env, "HOME": str(home)})

    def gradebook(self):
        from nbgrader.api import Gradebook

        return Gradebook(f"sqlite:///{self.course / 'gradebook.db'}", COURSE_ID)


def _guide_text_block(starts: str) -> str:
    """The guide's ```text block that starts with `starts` (the roster's example)."""
    blocks = [b for b in re.findall(r"```text\n(.*?)```", GUIDE.read_text(), re.S) if b.startswith(starts)]
    assert len(blocks) == 1, blocks
    return blocks[0]


def _student_block() -> list[str]:
    block = guide_block("bash", "fetch_assignment")
    return [line for line in block.splitlines() if shlex.split(line, comments=True)]


def _single_machine_config(exchange: Path) -> str:
    block = guide_block("python", "NoAuthPlugin")
    assert '"/srv/nbgrader/exchange"' in block
    return block.replace('"/srv/nbgrader/exchange"', repr(str(exchange)))


@contextlib.contextmanager
def formgrader(term: Term) -> Iterator[callable]:
    """A Jupyter server with nbgrader's formgrader in the course root; yields api(method, path, body)."""
    port, token = free_port(), "instructor-guide-test"
    log = open(term.course.parent / "formgrader.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={term.course}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=term.course, env=term.env, stdout=log, stderr=subprocess.STDOUT)

    def api(method: str, path: str, body: dict | None = None):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/formgrader/api/{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                api("GET", "status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the formgrader did not start:\n" +
                                       (term.course.parent / "formgrader.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield api
    finally:
        stop_server(server)
        log.close()


def _record(api, kind: str, student: str, name: str) -> dict:
    """The formgrader's record (kind: grades or comments) of one cell of `student`'s notebook."""
    notebooks = api("GET", f"submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")
    notebook_id = next(n["id"] for n in notebooks if n["student"] == student)
    return next(r for r in api("GET", f"{kind}?submission_id={notebook_id}") if r["name"] == name)


@pytest.fixture(scope="module")
def term(tmp_path_factory) -> Term:
    tmp = tmp_path_factory.mktemp("term")
    course = make_course_copy(tmp, ASSIGNMENT)
    exchange = tmp / "srv-nbgrader-exchange"
    no_config = tmp / "no-config"  # nothing of the machine's own Jupyter configuration
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(no_config), "JUPYTER_CONFIG_PATH": str(no_config)}
    term = Term(course, exchange, env)
    solution = nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)

    # Before the term: the guide's roster (ada, ben) and four more students.
    (course / "roster.csv").write_text(_guide_text_block("id,") + EXTRA_STUDENTS)
    term.run_block("roster")

    # No exchange configured: release_assignment refuses instead of creating nbgrader's default.
    default_exchange = Path("/usr/local/share/nbgrader/exchange")
    existed = default_exchange.exists()
    release_line = next(line for line in guide_blocks()["release"].splitlines() if "release_assignment" in line)
    term.run("nbgrader generate_assignment 02_autograd --force")
    term.refused = term.run(release_line + (f" --Exchange.root={tmp / 'missing'}" if existed else ""), check=False)
    term.default_exchange_appeared = not existed and default_exchange.exists()

    # The single-machine exchange of the guide, in a temporary folder.
    exchange.mkdir()
    exchange.chmod(0o777)
    config_dir = tmp / "etc-jupyter"
    config_dir.mkdir()
    (config_dir / "nbgrader_config.py").write_text(_single_machine_config(exchange))
    env.update(JUPYTER_CONFIG_DIR=str(config_dir), JUPYTER_CONFIG_PATH=str(config_dir))
    term.run_block("release")

    # The students. ada works through the exchange with the guide's student commands.
    fetch, submit_line, fetch_feedback = _student_block()
    term.student("ada", fetch)
    nbformat.write(solution, course.parent / "home" / "ada" / COURSE_ID / ASSIGNMENT / NOTEBOOK)
    term.student("ada", submit_line)
    inbound = list((exchange / COURSE_ID / "inbound").glob(f"ada+{ASSIGNMENT}+*"))
    assert len(inbound) == 1, (sorted(p.name for p in (exchange / COURSE_ID / "inbound").iterdir()),
                               list(term.logs.values())[-1].stdout[-2000:])
    (inbound[0] / "timestamp.txt").write_text(ON_TIME)  # the test's calendar, not today's
    submit(course, "ben", ASSIGNMENT, {NOTEBOOK: nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, 4)})
    submit_files(course, "cam", ASSIGNMENT, {NOTEBOOK: "this is not a notebook {"})
    for student in ("dee", "eve"):
        submit(course, student, ASSIGNMENT, {NOTEBOOK: solution})
    for student, when in (("ben", ON_TIME), ("cam", ON_TIME), ("dee", LATE), ("eve", LATE)):
        (course / "submitted" / student / ASSIGNMENT / "timestamp.txt").write_text(when)
        (course / "submitted" / student / ASSIGNMENT / "submission_secret.txt").write_text(f"secret-{student}")

    term.run_block("extension")
    term.run_block("grade")

    # The TA in the formgrader: ada's written answer with a comment, an override for ben.
    with formgrader(term) as api:
        term.written_before = _record(api, "grades", "ada", WRITTEN)
        api("PUT", f"grade/{term.written_before['id']}", {"manual_score": 2})
        comment = _record(api, "comments", "ada", WRITTEN)
        api("PUT", f"comment/{comment['id']}", {"manual_comment": COMMENT})
        override = _record(api, "grades", "ben", "test_mse_gradients")
        api("PUT", f"grade/{override['id']}", {"manual_score": 1})

    term.run_block("feedback")
    term.student("ada", fetch_feedback)

    # A regrade after the pages were made: release_feedback holds ben's page back ...
    with term.gradebook() as gb:
        gb.find_grade("test_q1", ASSIGNMENT, ASSIGNMENT, "ben").manual_score = 2
        gb.db.commit()
    released = exchange / COURSE_ID / "feedback"
    term.released_before_stale = {p.name for p in released.glob("*.html")}
    term.stale_release = term.run("nbgrader release_feedback 02_autograd", check=False)
    term.released_after_stale = {p.name for p in released.glob("*.html")}
    # ... until the pages are made again; and grading again keeps the overrides.
    term.run("nbgrader generate_feedback 02_autograd")
    term.fresh_release = term.run("nbgrader release_feedback 02_autograd", check=False)
    term.run("python -m grader.parallel autograde 02_autograd --student ben --force")
    return term


def _score(term: Term, student: str) -> tuple[float, float, float]:
    """(score before the penalty, late penalty, max score) of `student` in the gradebook."""
    with term.gradebook() as gb:
        sub = gb.find_submission(ASSIGNMENT, student)
        return sub.score, sub.late_submission_penalty, sub.max_score


def test_every_shell_block_of_the_guide_names_the_test_that_runs_it():
    text = GUIDE.read_text()
    blocks = re.findall(r"(?:^|\n)([^\n]*)\n[ \t]*```(?:bash|sh|shell)\n", text)
    assert blocks, "no shell blocks found in the guide"
    untested = [line for line in blocks if not line.strip().startswith("<!-- tested by ")]
    assert not untested, f"shell blocks without a `<!-- tested by tests/...py -->` line above: {untested}"
    for test, _, _, _ in MARKER.findall(text):
        assert (REPO / test).is_file(), f"the guide names {test}, which does not exist"
    assert set(guide_blocks()) == set(BLOCKS), "this file runs exactly the blocks named for it"


def test_release_without_an_exchange_is_refused_and_creates_nothing(term: Term):
    log = term.refused.stdout
    assert term.refused.returncode != 0, log
    assert "does not exist" in log and "c.Exchange.root" in log, log
    assert not term.default_exchange_appeared, "release_assignment created /usr/local/share/nbgrader/exchange"


def test_the_roster_names_every_student(term: Term):
    listing = term.log("nbgrader db student list")
    out = listing.stdout
    for line in ("ada (Lovelace, Ada)", "fay (Berg, Fay)"):
        assert line in out, out
    assert "None, None" not in out


def test_written_answer_needs_a_person_then_counts(term: Term):
    assert term.written_before["needs_manual_grade"] and term.written_before["auto_score"] is None
    score, penalty, max_score = _score(term, "ada")
    assert (score, penalty) == (max_score, 0.0), "ada: the solution plus the written answer is full marks"
    page = (term.course / "feedback" / "ada" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert COMMENT in page and f"(Score: {max_score:.1f} / {max_score:.1f})" in page
    fetched = list((term.course.parent / "home" / "ada").rglob(f"feedback/*/{ASSIGNMENT}.html"))
    assert len(fetched) == 1 and COMMENT in fetched[0].read_text(), "ada did not fetch her own feedback"


def test_late_work_is_penalised_unless_extended(term: Term):
    dee, eve = _score(term, "dee"), _score(term, "eve")
    assert dee[1] == 0.0, "dee had a two-day extension"
    assert eve[1] == pytest.approx(0.2 * eve[0]), "1.5 days late: two started days at 10 %"
    report = term.log("python -m grader.deadlines report 02_autograd").stdout
    assert re.search(r"^dee .*2 days.*2026-12-06 11:59\s+0\.0\s+0\.0$", report, re.M), report
    assert re.search(r"^eve .*2026-12-06 11:59\s+36\.0\s+\S+$", report, re.M), report


def test_a_page_older_than_a_regrade_is_held_back(term: Term):
    log = term.stale_release.stdout
    assert term.stale_release.returncode == 1, log
    assert "Not releasing" in log and "ben" in log and "generate_feedback 02_autograd --student ben" in log, log
    assert "Releasing feedback for student 'ben'" not in log and "Releasing feedback for student 'ada'" in log, log
    assert term.released_after_stale == term.released_before_stale, "a released page was lost"
    fresh = term.fresh_release.stdout
    assert term.fresh_release.returncode == 0 and "Releasing feedback for student 'ben'" in fresh, fresh


def test_overrides_survive_grading_again(term: Term):
    with term.gradebook() as gb:
        grade = gb.find_grade("test_mse_gradients", ASSIGNMENT, ASSIGNMENT, "ben")
        assert (grade.manual_score, grade.auto_score) == (1, 0), "the override was lost"
        assert grade.needs_manual_grade, "an override graded again is flagged for a second look"
        assert gb.find_grade("test_q1", ASSIGNMENT, ASSIGNMENT, "ben").manual_score == 2


def test_a_failed_submission_is_listed_and_never_exported_as_zero(term: Term):
    listed = term.log(FAILED_LIST)
    assert listed.returncode == 1 and "cam" in listed.stdout, listed.stdout
    assert not re.search(r"\b(ada|ben|dee|eve|fay)\b", listed.stdout), listed.stdout
    with open(term.course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle) if row["assignment"] == ASSIGNMENT}
    assert set(rows) == {"ada", "ben", "cam", "dee", "eve", "fay"}, "every student of the roster has a row"
    assert (rows["cam"]["status"], rows["cam"]["score"]) == ("failed", ""), rows["cam"]
    assert (rows["fay"]["status"], float(rows["fay"]["score"])) == ("not submitted", 0.0), rows["fay"]
    assert rows["ben"]["status"] == "graded" and float(rows["ben"]["score"]) == 1.0, rows["ben"]
    eve = rows["eve"]
    assert float(eve["late_submission_penalty"]) > 0 and float(eve["score"]) == pytest.approx(
        float(eve["raw_score"]) - float(eve["late_submission_penalty"])) and float(eve["days_late"]) == 1.5, eve
    assert float(rows["ada"]["score"]) == float(rows["ada"]["max_score"]) == 24.0, rows["ada"]
