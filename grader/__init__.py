"""Safe autograding: a sandboxed kernel, a tamper guard and honest notebook restoration.

Used only by instructors, from `nbgrader_config.py` (see docs/grading-sandbox.md):

  sandbox    the `course-sandbox` kernel: a launcher (`python -m grader.sandbox`)
             that applies resource limits and runs ipykernel in bubblewrap as an unprivileged
             user with no network and only the student's folder visible; and the kernel
             manager nbgrader uses to start it (ipc transport, limits from the config).
  guard      an IPython extension loaded into the grading kernel before any student code:
             it records the check functions and the library functions they rely on, and
             verifies them before and after every test cell.
  autograde  nbgrader preprocessors: RestoreNotebook (sanitize: instructor's cells, order and
             metadata back) and GuardedExecute (autograde: guard around test cells, output
             limit, a dead kernel costs only the cells it could not run, clear log lines).

Nothing here is imported by student notebooks. (grader.parallel belongs to
another part of the grading tools.)
"""
