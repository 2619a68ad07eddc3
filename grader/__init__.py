"""The instructor's grading tools (students never import this package; see docs/grading-sandbox.md).

Used from `nbgrader_config.py` and the command line:

  autograde     nbgrader preprocessors: RestoreNotebook (sanitize: the instructor's cells, order
                and metadata back) and TwoKernelExecute (autograde: the student's code in one
                sandboxed kernel, the test cells in another, output limit, dead or stuck
                kernels cost only their cell, clear log lines)
  student_side  the student's kernel's extension: answers the tests' requests, access log
  tests_side    the tests' kernel's extension: proxies for the student's objects, name binding
  wire, link    the channel: data-only replies (never unpickled), copy-back of arguments
  sandbox       the `course-sandbox` kernels: a launcher (rlimits, bubblewrap, an unprivileged
                uid, `python -P`) and the kernel manager nbgrader uses to start them
  intake        submissions holding links or special files are refused; nbgrader's own file
                operations never follow links
  parallel      `python -m grader.parallel autograde ASSIGNMENT`: one process per core
  feedback      SafeFeedback: feedback pages without hidden tests, tracebacks or printed output
  exchange      release_assignment never creates the exchange; release_feedback never releases
                a page older than its grades (StampGrades)
  deadlines     the late policy (PercentPerDay); `python -m grader.deadlines extend | report`
  export        grades.csv with a status per student; `python -m grader.export failed`
  lms           Canvas and Moodle: zip_collect collectors and grade-import exporters
"""
