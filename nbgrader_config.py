"""nbgrader configuration for the course (instructors: see docs/instructor.md).

Paths are relative to this file, so the course works wherever it is cloned, and the
tests can grade a temporary copy of it.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

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
