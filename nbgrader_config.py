"""nbgrader configuration for the course (instructors: see docs/instructor.md).

Paths are relative to this file, so the course works wherever it is cloned, and the
tests can grade a temporary copy of it.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)
# Refuse submissions holding links or special files; nbgrader never follows links (grader/intake.py).
__import__("grader.intake", fromlist=["install"]).install()

COURSE_ROOT = Path(__file__).resolve().parent

# --- Course and folders -------------------------------------------------------------
c.CourseDirectory.course_id = "pytorch-in-practice"
c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.source_directory = "source"          # instructor versions, with solutions
c.CourseDirectory.release_directory = "release"        # student versions (committed)
c.CourseDirectory.submitted_directory = "submitted"    # collected work (never committed)
c.CourseDirectory.autograded_directory = "autograded"  # nbgrader's output (never committed)
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.db"]

# --- What students see ----------------------------------------------------------------
# Every solution region becomes a stub that fails loudly and says what to do.
c.ClearSolutions.code_stub = {
    "python": (
        "# YOUR CODE HERE\n"
        'raise NotImplementedError("Write your solution here, replacing this line '
        '(the exercise text above says what to return).")'
    )
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.enforce_metadata = True

# --- Executing notebooks (validate and autograde) -------------------------------------
# Always grade with the course environment's Python kernel, whatever kernel name the
# submitted notebook claims.
c.Execute.kernel_name = "python3"
# CPU training in the assignments takes seconds; a cell that runs 2 minutes is stuck
# (an infinite loop, or far too many epochs). It is interrupted and marked with this error.
CELL_TIMEOUT_SECONDS = 120
c.Execute.timeout = CELL_TIMEOUT_SECONDS
c.Execute.interrupt_on_timeout = True
c.Execute.error_on_timeout = {
    "ename": "CellTimeoutError",
    "evalue": f"this cell ran longer than {CELL_TIMEOUT_SECONDS} s and was stopped",
    "traceback": [
        f"CellTimeoutError: this cell ran longer than {CELL_TIMEOUT_SECONDS} s and was stopped. "
        "Look for an infinite loop or a training run with far too many steps; "
        "every exercise here finishes in a few seconds on a laptop CPU."
    ],
}

# --- Grading limits (autograde only; docs/grading-sandbox.md) ---------------------------
# `nbgrader autograde` runs each notebook in two `course-sandbox` kernels: the student's code
# in one, the test cells in the other, which reaches the student's names only through a
# channel that carries data (grader/autograde.py). Both run in bubblewrap with no network, in
# a private scratch copy of the student's folder (source/, release/, the gradebook and other
# students' folders are hidden), as a uid of their own, under the limits below. Without
# bubblewrap (macOS, a laptop without it) they fall back to the limits alone and log
# "REDUCED SANDBOX". `nbgrader validate` (students) keeps the normal kernel. The submitted
# notebook is rebuilt around the instructor's cells first.
# Preprocessors are named as strings so that other nbgrader commands do not import them.
_NB = "nbgrader.preprocessors."
_OURS = "grader.autograde."
c.SandboxKernelManager.sandbox = "auto"          # auto | bwrap (fail without it) | rlimits | off
c.SandboxKernelManager.memory_limit_mib = 8192   # address space of the kernel (RLIMIT_AS); torch maps 3.2 GiB
c.SandboxKernelManager.max_processes = 128       # processes + threads of the kernels' uid (RLIMIT_NPROC)
c.SandboxKernelManager.max_file_size_mib = 256   # largest file the kernel may write (RLIMIT_FSIZE)
c.SandboxKernelManager.tmp_size_mib = 512        # the kernel's private /tmp
c.SandboxKernelManager.hide_paths = [str(COURSE_ROOT)]  # the student's folder is bound back
c.TwoKernelExecute.kernel_name = "course-sandbox"  # validate keeps Execute.kernel_name above
c.TwoKernelExecute.max_cell_output_kib = 100       # output a graded cell may keep; the rest is dropped
c.RestoreNotebook.course_root = str(COURSE_ROOT)   # where source/ holds the instructor notebooks
c.TwoKernelExecute.course_root = str(COURSE_ROOT)  # (the names its solution cells define: see docs)
c.Autograde.sanitize_preprocessors = [_NB + "ClearOutput", _NB + "DeduplicateIds", _NB + "OverwriteKernelspec",
                                      _OURS + "RestoreNotebook", _NB + "OverwriteCells", _NB + "CheckCellMetadata"]
c.Autograde.autograde_preprocessors = [_OURS + "TwoKernelExecute", _NB + "IgnorePattern",
                                       "nbconvert.preprocessors.ClearMetadataPreprocessor", _NB + "LimitOutput",
                                       _NB + "SaveAutoGrades", _NB + "AssignLatePenalties", _NB + "CheckCellMetadata"]

# --- Exchange, deadlines, feedback (docs/instructor.md) ------------------------------------
# release_assignment never creates a missing exchange folder (nbgrader would make its default,
# /usr/local/share/nbgrader/exchange, world-writable); release_feedback never releases a page made
# before its student's latest regrade or comment (grader/exchange.py).
c.ExchangeFactory.release_assignment = "grader.exchange.ReleaseAssignment"
c.ExchangeFactory.release_feedback = "grader.exchange.ReleaseFeedback"
# Late work: 10 % of the score per started day after a 15-minute grace period, 0 after 7 days
# (grader/deadlines.py); due dates and extensions are in the gradebook.
c.AssignLatePenalties.plugin_class = "grader.deadlines.PercentPerDay"
c.PercentPerDay.percent_per_day = 10
c.PercentPerDay.grace_minutes = 15
c.PercentPerDay.zero_after_days = 7
# Feedback pages are cheap: always make them again, so a regrade is never missing from a page.
c.GenerateFeedback.force = True
c.GenerateFeedback.preprocessors = ["nbgrader.preprocessors.GetGrades",
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
                                    # no hidden test, traceback or printed output (grader/feedback.py)
                                    "grader.feedback.SafeFeedback",
                                    "grader.exchange.StampGrades"]  # last: the grades' fingerprint

# --- Exporting grades (docs/instructor.md) -------------------------------------------------
# `nbgrader export` writes grades.csv with a status for every student and assignment (graded,
# failed, not graded, not submitted) and the lateness (grader/export.py); Canvas and Moodle
# formats: --exporter=grader.lms.CanvasExport or grader.lms.MoodleExport (grader/lms.py).
c.ExportApp.plugin_class = "grader.export.StatusExport"

# --- Gradebook database ------------------------------------------------------------------
# gradebook.db (SQLite) in this folder, unless the environment variable NBGRADER_DB_URL names
# another database, e.g. postgresql+psycopg2://grader@dbhost/pytorch_course for a class
# graded by several processes or machines at once (docs/instructor.md, "PostgreSQL").
import os  # noqa: E402

if os.environ.get("NBGRADER_DB_URL"):
    c.CourseDirectory.db_url = os.environ["NBGRADER_DB_URL"]
