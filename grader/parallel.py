"""Autograde one assignment for every submitted student, several students at a time.

Run from the course root (the folder with nbgrader_config.py), with the course environment:

    python -m grader.parallel autograde 01_tensors [--jobs N] [--student GLOB] [--force]
        [--timeout SECONDS] [--log-dir DIR] [--json FILE] [--verbose] [-- EXTRA NBGRADER ARGS]

Each student is graded by nbgrader itself: a child process runs exactly what
`nbgrader autograde ASSIGNMENT --student ID` runs (nbgrader's own application, with the
course's nbgrader_config.py and so whatever kernel, preprocessors and limits it configures).
The children are forked from this process after it has imported nbgrader once, so a student
costs only the grading, not nbgrader's start-up (about 2.5 s of CPU each). At most `--jobs`
children (default: the number of usable cores) run at once.

The gradebook is shared, and SQLite allows one writer at a time. This command makes that safe:

* before any child starts, this process opens the gradebook once: it creates the database if
  there is none (two processes creating it at once would race), checks that the assignment
  is in it (`nbgrader generate_assignment` puts it there) and creates every student;
* the children use the same SQLite file with a busy timeout of `--busy-timeout` seconds
  (default 300) instead of SQLite's 5 s, so a writer waits for another one's short
  transaction instead of failing with "database is locked" on a loaded or slow (network)
  disk. nbgrader's writes are a few milliseconds each, so waits are short;
* a student whose grading still fails with a database error is graded again, up to
  `--retries` times with exponential backoff, and is reported as an infrastructure failure
  if it never succeeds.

With PostgreSQL (`NBGRADER_DB_URL=postgresql://...`, see docs/instructor.md) concurrent
writers are normal and none of this is needed; the same steps are harmless there.

One failing student never stops the batch. The command prints a line per student as it
finishes, then a table (student, status, score, seconds) and where each student's full
nbgrader log is. Statuses: `ok`; `skipped` (already autograded; `--force` grades again, as
with nbgrader); `failed` (nbgrader could not grade this submission, e.g. a notebook file
that is not valid JSON: the student's problem, the log says why); `timeout` (over
`--timeout`, the child and its kernel are killed); `infra` (the gradebook could not be
written, or the grading process itself crashed). A failed or timed-out submission keeps no
score in the gradebook, even one from an earlier grading, so that `nbgrader export` and
`python -m grader.export failed` report it as failed (grader/export.py). The summary line
says how many were graded, skipped, failed. The exit status is 0 unless there was an
infrastructure failure, or every submission failed (which points at the setup, e.g. a
missing kernel, rather than at the students); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import glob
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

# Lines in a child's log that mean the gradebook, not the student's work, was the problem.
DB_ERROR_MARKERS = (
    "database is locked",
    "There was an error accessing the nbgrader database",
    "sqlalchemy.exc.OperationalError",
    "sqlite3.OperationalError",
    "psycopg2.OperationalError",
)
SKIPPED_MARKER = "Skipping existing assignment"


@dataclasses.dataclass
class StudentResult:
    student: str
    status: str = "pending"        # ok | skipped | failed | timeout | infra
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    attempts: int = 0
    log: str = ""                  # path of the student's nbgrader log
    message: str = ""              # why, for anything but ok


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


# --------------------------------------------------------------------------------------
# nbgrader's configuration, exactly as `nbgrader autograde` loads it
# --------------------------------------------------------------------------------------

def load_coursedir(assignment: str, nbgrader_args: list[str]):
    """nbgrader's CourseDirectory for this command line: nbgrader_config.py (in the current
    folder and Jupyter's config paths), NBGRADER_DB_URL through it, and any extra flags."""
    from nbgrader.apps.autogradeapp import AutogradeApp

    app = AutogradeApp()
    app.initialize([assignment, *nbgrader_args])
    return app.coursedir


def with_sqlite_busy_timeout(db_url: str, seconds: float) -> str:
    """`db_url` with SQLite's busy timeout set (SQLAlchemy passes `timeout` to sqlite3.connect);
    other databases' URLs, and SQLite URLs that already set one, are returned unchanged."""
    if not db_url.startswith("sqlite"):
        return db_url
    base, _, query = db_url.partition("?")
    if "timeout" in dict(parse_qsl(query)):
        return db_url
    return f"{base}?{query + '&' if query else ''}timeout={seconds:g}"


def submitted_students(coursedir, assignment: str, pattern: str) -> list[str]:
    """Students with a submission of `assignment` (nbgrader's directory structure), matching
    the glob `pattern`."""
    regexp = re.compile(coursedir.format_path(coursedir.submitted_directory, "(?P<student_id>[^/]+)",
                                              re.escape(assignment), escape=True) + "$")
    found = set()
    for path in glob.glob(coursedir.format_path(coursedir.submitted_directory, "*", assignment)):
        match = regexp.match(path)
        if match and os.path.isdir(path) and not match.group("student_id").startswith("."):
            found.add(match.group("student_id"))
    return sorted(s for s in found if fnmatch.fnmatchcase(s, pattern))


def prepare_gradebook(db_url: str, course_id: str, assignment: str, students: list[str]) -> None:
    """Create the database if needed, check the assignment, create the students: all the
    one-off writes, done once here before the children start."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course_id) as gradebook:
        try:
            gradebook.find_assignment(assignment)
        except MissingEntry:
            raise SystemExit(f"[grading] ERROR: assignment {assignment!r} is not in the gradebook: "
                             f"run `nbgrader generate_assignment {assignment}` first") from None
        for student in students:
            gradebook.update_or_create_student(student)


def read_scores(db_url: str, course_id: str, assignment: str, results: list[StudentResult]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course_id) as gradebook:
        for result in results:
            if result.status not in ("ok", "skipped"):
                continue
            try:
                submission = gradebook.find_submission(assignment, result.student)
            except MissingEntry:
                result.status, result.message = "infra", "graded, but no submission in the gradebook"
                continue
            result.score, result.max_score = submission.score, submission.max_score


# --------------------------------------------------------------------------------------
# One child per student
# --------------------------------------------------------------------------------------

def _grade_in_child(root: str, argv: list[str], log_path: str) -> None:
    """Child process: `nbgrader autograde ...` in-process, output to the student's log."""
    os.setsid()  # a session of its own: a Ctrl-C meant for the batch is handled by the batch
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.chdir(root)
    from nbgrader.apps.nbgraderapp import NbGraderApp

    NbGraderApp.launch_instance(argv=argv)  # exits 1 when nbgrader reports an error


def _kill_tree(pid: int) -> None:
    """Kill a child and everything it started (its kernel lives in a session of its own)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        processes = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=10)


def _classify(exitcode: int | None, log_text: str) -> tuple[str, str]:
    if exitcode == 0:
        return ("skipped", "already autograded (use --force to grade again)") if SKIPPED_MARKER in log_text \
            else ("ok", "")
    if any(marker in log_text for marker in DB_ERROR_MARKERS):
        return "infra", "gradebook error: " + _first_line_with(log_text, DB_ERROR_MARKERS)
    if exitcode is not None and exitcode < 0:
        return "infra", f"the grading process was killed by signal {-exitcode}"
    return "failed", _error_summary(log_text)


def _first_line_with(text: str, markers: tuple[str, ...]) -> str:
    for line in text.splitlines():
        if any(marker in line for marker in markers):
            return line.strip()[:200]
    return ""


def _error_summary(log_text: str) -> str:
    """The most telling line of a failed nbgrader run: the last exception, else the first ERROR."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    exceptions = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", line)]
    if exceptions:
        return exceptions[-1][:200]
    errors = [line for line in lines if "ERROR" in line]
    return (errors[0] if errors else (lines[-1] if lines else "no output"))[:200]


def autograde(assignment: str, *, jobs: int | None = None, student_glob: str = "*", force: bool = False,
              timeout: float | None = None, busy_timeout: float = 300.0, retries: int = 3,
              log_dir: str | None = None, verbose: bool = False, nbgrader_args: list[str] | None = None,
              out=sys.stdout) -> tuple[list[StudentResult], int]:
    """Grade every matching submission; return the per-student results and the exit status."""
    nbgrader_args = list(nbgrader_args or [])
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[grading] {message}", file=out, flush=True)

    coursedir = load_coursedir(assignment, nbgrader_args)
    root = os.path.abspath(coursedir.root)
    students = submitted_students(coursedir, assignment, student_glob)
    if not students:
        say(f"ERROR: no submissions of {assignment} match {student_glob!r} under "
            f"{coursedir.format_path(coursedir.submitted_directory, '*', assignment)}")
        return [], 1
    db_url = with_sqlite_busy_timeout(coursedir.db_url, busy_timeout)
    prepare_gradebook(db_url, coursedir.course_id, assignment, students)

    jobs = max(1, min(jobs or usable_cores(), len(students)))
    # Each grading kernel gets its share of the cores: a BLAS/OpenMP pool per kernel the size
    # of the machine would oversubscribe the CPU many times over. An explicit setting wins.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // jobs)))
    # nbgrader calls `alembic` through PATH: the environment's bin/ first, as course.sh does.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    logs = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix=f"autograde-{assignment}-"))
    logs.mkdir(parents=True, exist_ok=True)
    say(f"{assignment}: {len(students)} submission(s), {jobs} at a time; gradebook {_redact(coursedir.db_url)}")

    # Import nbgrader's application here, once: every forked child starts with it loaded.
    import nbgrader.apps.nbgraderapp  # noqa: F401
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")

    results = {s: StudentResult(s, log=str(logs / f"{s}.log")) for s in students}
    queue: list[tuple[float, str]] = [(0.0, s) for s in students]   # (not before, student)
    running: dict[Any, tuple[str, Any, float]] = {}                  # sentinel -> (student, process, start)

    def launch(student: str) -> None:
        result = results[student]
        result.attempts += 1
        argv = ["autograde", assignment, "--student", student]
        if db_url != coursedir.db_url:
            argv.append(f"--CourseDirectory.db_url={db_url}")
        if force or result.attempts > 1:
            argv.append("--force")
        argv += nbgrader_args
        with open(result.log, "a") as handle:
            handle.write(f"\n===== attempt {result.attempts}: nbgrader {' '.join(argv)}\n")
        process = context.Process(target=_grade_in_child, args=(root, argv, result.log), name=f"grade-{student}")
        process.start()
        running[process.sentinel] = (student, process, time.monotonic())

    def finish(student: str, process, began: float, timed_out: bool) -> None:
        result = results[student]
        result.seconds += time.monotonic() - began
        log_text = Path(result.log).read_text(errors="replace")
        if timed_out:
            result.status, result.message = "timeout", f"still grading after {timeout:g} s: stopped"
        else:
            result.status, result.message = _classify(process.exitcode, log_text)
        if result.status == "infra" and result.attempts <= retries and "gradebook" in result.message:
            delay = min(60.0, 2.0 ** result.attempts) * (0.5 + random.random())
            say(f"{student}: {result.message}; grading again in {delay:.0f} s "
                f"(attempt {result.attempts + 1} of {retries + 1})")
            queue.append((time.monotonic() + delay, student))
            return
        line = f"{student}: {result.status} in {result.seconds:.1f} s"
        if result.message:
            line += f" - {result.message}"
        say(line)
        if verbose or result.status not in ("ok", "skipped"):
            shown = log_text.splitlines() if verbose else log_text.splitlines()[-15:]
            for text in shown:
                print(f"[{student}] {text}", file=out, flush=True)

    def stop(signum, frame):  # a `kill` of the batch stops the graders too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while queue or running:
            now = time.monotonic()
            ready = sorted((t, s) for t, s in queue if t <= now)
            while ready and len(running) < jobs:
                item = ready.pop(0)
                queue.remove(item)
                launch(item[1])
            waits = [t - now for t, _ in queue] if len(running) < jobs else []
            if timeout:
                waits += [began + timeout - now for _, _, began in running.values()]
            wait_for = max(0.05, min(waits)) if waits else None
            if not running:
                time.sleep(wait_for or 0.05)
                continue
            done = multiprocessing.connection.wait(list(running), timeout=wait_for)
            for sentinel in done:
                student, process, began = running.pop(sentinel)
                process.join()
                finish(student, process, began, timed_out=False)
            if timeout:
                for sentinel, (student, process, began) in list(running.items()):
                    if time.monotonic() - began > timeout:
                        _kill_tree(process.pid)
                        process.join()
                        del running[sentinel]
                        finish(student, process, began, timed_out=True)
    except KeyboardInterrupt:
        say("interrupted: stopping the graders")
        for _student, process, _ in running.values():
            _kill_tree(process.pid)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)

    ordered = [results[s] for s in students]
    read_scores(db_url, coursedir.course_id, assignment, ordered)
    unscored = [r.student for r in ordered if r.status in ("failed", "timeout")]
    try:
        mark_not_graded(db_url, coursedir.course_id, assignment, unscored)
    except Exception as error:  # the gradebook, again: report it, keep the summary
        say(f"ERROR: could not take the old scores of {', '.join(unscored)} off the gradebook: {error}")
    wall = time.monotonic() - started
    print_table(ordered, out)
    graded = sum(r.status in ("ok", "skipped") for r in ordered)
    say(f"{summary(ordered, wall, jobs)}; nbgrader logs: {logs}")
    infra = [r.student for r in ordered if r.status == "infra"]
    status = 0
    if infra:
        say(f"ERROR: infrastructure failure for {', '.join(infra)} (see their logs)")
        status = 1
    elif graded == 0 and len(ordered) > 1:
        say("ERROR: no submission could be graded: check the setup (kernel, nbgrader_config.py) in the logs")
        status = 1
    return ordered, status


def summary(results: list[StudentResult], wall: float, jobs: int) -> str:
    """What the run did: '5 of 6 graded in 30.0 s with 2 job(s) (10.0 submissions per minute); 1 failed',
    or 'none of 3 graded: 3 already autograded (skipped: --force grades them again)'."""
    counts = {status: sum(r.status == status for r in results)
              for status in ("ok", "skipped", "failed", "timeout", "infra")}
    others = [f"{counts['skipped']} already autograded (skipped: --force grades them again)"] * bool(counts["skipped"])
    others += [f"{counts[status]} {status}" for status in ("failed", "timeout", "infra") if counts[status]]
    if not counts["ok"]:
        return f"none of {len(results)} graded in {wall:.1f} s: " + ", ".join(others)
    line = (f"{counts['ok']} of {len(results)} graded in {wall:.1f} s with {jobs} job(s) "
            f"({counts['ok'] / wall * 60:.1f} submissions per minute)")
    return "; ".join([line, ", ".join(others)]) if others else line


def mark_not_graded(db_url: str, course_id: str, assignment: str, students: list[str]) -> None:
    """Leave the gradebook saying "not graded" for submissions whose grading failed or timed out, as
    nbgrader does when it fails on a first grading: a failed regrade must not keep the old scores
    (grader/export.py reports these submissions as failed, whichever command graded them)."""
    if not students:
        return
    from nbgrader.api import Gradebook, MissingEntry

    from grader.export import forget_scores

    with Gradebook(db_url, course_id) as gradebook:
        for student in students:
            try:
                forget_scores(gradebook.find_submission(assignment, student))
            except MissingEntry:  # nbgrader stopped before creating it (no notebook)
                continue
        gradebook.db.commit()


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def print_table(results: list[StudentResult], out=sys.stdout) -> None:
    width = max([len("student")] + [len(r.student) for r in results])
    print(f"\n{'student':<{width}}  {'status':<8} {'score':>13} {'seconds':>8}", file=out)
    for r in results:
        score = f"{r.score:g} / {r.max_score:g}" if r.score is not None else "-"
        print(f"{r.student:<{width}}  {r.status:<8} {score:>13} {r.seconds:>8.1f}", file=out)
    print(file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.parallel",
        description="Autograde every submission of an assignment with nbgrader, several at a time.",
        epilog="Arguments after `--` go to nbgrader autograde, e.g. -- --Execute.timeout=60")
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("autograde", help="nbgrader autograde ASSIGNMENT, one process per student")
    grade.add_argument("assignment")
    grade.add_argument("--jobs", "-j", type=int, default=None,
                       help=f"students graded at once (default: the usable cores, here {usable_cores()})")
    grade.add_argument("--student", default="*", help="only students whose id matches this glob (default: all)")
    grade.add_argument("--force", action="store_true", help="grade again submissions already autograded")
    grade.add_argument("--timeout", type=float, default=None,
                       help="stop a student's grading after this many seconds (default: no limit beyond "
                            "nbgrader's per-cell timeout)")
    grade.add_argument("--busy-timeout", type=float, default=300.0,
                       help="SQLite gradebook: seconds a writer waits for another (default 300)")
    grade.add_argument("--retries", type=int, default=3, help="re-grades after a gradebook error (default 3)")
    grade.add_argument("--log-dir", help="where each student's nbgrader log goes (default: a new temporary folder)")
    grade.add_argument("--json", help="also write the results to this JSON file")
    grade.add_argument("--verbose", "-v", action="store_true", help="print every student's whole nbgrader log")
    argv = list(sys.argv[1:] if argv is None else argv)
    nbgrader_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, nbgrader_args = argv[:split], argv[split + 1:]
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")

    results, status = autograde(args.assignment, jobs=args.jobs, student_glob=args.student, force=args.force,
                                timeout=args.timeout, busy_timeout=args.busy_timeout, retries=args.retries,
                                log_dir=args.log_dir, verbose=args.verbose, nbgrader_args=nbgrader_args)
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
