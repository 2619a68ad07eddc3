"""Feedback pages that reveal no hidden test (nbgrader's GenerateFeedback; docs/grading-sandbox.md).

`SafeFeedback` runs after nbgrader's GetGrades, on the copy of the graded notebook that becomes
the student's feedback page. The graded notebook itself (autograded/, the formgrader) keeps
everything.

* A test cell keeps its grade id and score (the template's heading) and the source the release
  shows: the hidden tests are cut out. Its outputs become one line, "passed" or "failed", and
  for a failure the error's type and message; the traceback goes (it prints source lines,
  hidden ones included), and so does everything the cell printed: the tests' own prints may
  come from the hidden tests, and the student's code prints while a test calls it, so it
  could print the hidden inputs it receives.
* Every other code cell loses its outputs: the student's kernel has seen the hidden tests'
  inputs once the first test cell ran, so anything a later cell shows could carry them. A cell
  that stopped with an error gets a fixed note (no text of the student's).

Failure messages are kept because they are written to be safe: hidden asserts carry messages
that name the mistake, never the expected value (docs/authoring.md), and helpers.check
withholds values in hidden tests (HIDDEN_NOTE). A message raised by the student's code is cut to
one short line: it is the student's text, and it costs the cell's points to send.
"""

from __future__ import annotations

import re
from typing import Any

import nbformat
from traitlets import List
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
#: The last line of a helpers.check message from hidden tests (helpers.check.HIDDEN_NOTE; no torch here).
HIDDEN_NOTE = "(a hidden test: the right values are not shown)"
#: Where grader.tests_side appends the student's traceback to an error raised in the student's code.
STUDENT_TRACE = "--- raised in your code (the student's kernel) ---"
#: Errors whose message the tests wrote (assert messages, helpers.check); the rest is cut to a line.
TEST_ERRORS = ("AssertionError", "CheckFailed", "NotAttempted")
MAX_TEST_MESSAGE = 1500   # characters of a tests' message (10 lines at most)
MAX_OTHER_MESSAGE = 300   # characters of any other error's first line
PASSED = "Passed: every test in this cell ran without error."
ERROR_NOTE = ("This cell stopped with an error when it was graded. Run your notebook from the top "
              "(Restart & Run All) to see it.")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"Cell In\[\d+\], line (\d+)")


def is_test_cell(cell: NotebookNode) -> bool:
    """An autograded test cell (nbgrader: grade, not solution)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def visible_source(source: str) -> str:
    """`source` without its hidden-test regions (as nbgrader's ClearHiddenTests releases it);
    nothing when the markers do not pair up."""
    kept, inside = [], False
    for line in source.split("\n"):
        if BEGIN in line:
            if inside:
                return ""
            inside = True
        elif END in line:
            if not inside:
                return ""
            inside = False
        elif not inside:
            kept.append(line)
    return "" if inside else "\n".join(kept).rstrip()


def hidden_lines(source: str) -> set[int]:
    """Line numbers (1-based) of `source` inside hidden-test regions, markers included."""
    hidden, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        if BEGIN in line:
            inside = True
        if inside:
            hidden.add(number)
        if END in line:
            inside = False
    return hidden


def failed_in_hidden_tests(source: str, error: dict[str, Any]) -> bool | None:
    """Whether `error` (an error output of the test cell `source`) came from its hidden tests;
    None when the output does not say. IPython's traceback of the error (the last one of a
    chain) names first the line of the cell that was running ("Cell In[7], line 12");
    helpers.check's CheckFailed has no traceback, and its message ends with HIDDEN_NOTE when
    raised from hidden tests."""
    trace = _ANSI.sub("", "\n".join(str(line) for line in error.get("traceback") or []))
    trace = re.split(r"During handling of the above exception|The above exception was the direct cause", trace)[-1]
    frame = _CELL_FRAME.search(trace)
    if frame:
        return int(frame.group(1)) in hidden_lines(source)
    if not hidden_lines(source):
        return False
    if str(error.get("ename")) in ("CheckFailed", "NotAttempted"):
        return HIDDEN_NOTE in str(error.get("evalue", ""))
    return None


def safe_message(error: dict[str, Any]) -> str:
    """The error's message as feedback shows it: a tests' message up to 10 lines, anything else
    (Python's, torch's, the student's own exceptions) its first line, both cut to a length."""
    ename, evalue = str(error.get("ename", "Error")), _ANSI.sub("", str(error.get("evalue", "")))
    trace = _ANSI.sub("", "\n".join(str(line) for line in error.get("traceback") or []))
    if ename in TEST_ERRORS and STUDENT_TRACE not in trace:
        text = "\n".join(evalue.strip().splitlines()[:10])
        limit = MAX_TEST_MESSAGE
    else:
        text = (evalue.strip().splitlines() or [""])[0]
        limit = MAX_OTHER_MESSAGE
    if len(text) > limit:
        text = text[:limit] + " ..."
    return f"{ename}: {text}" if text else ename


def _summary(cell: NotebookNode) -> list[NotebookNode]:
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return [nbformat.v4.new_output("stream", name="stdout", text=PASSED + "\n")]
    hidden = failed_in_hidden_tests(cell.get("source", ""), errors[0])
    where = {True: " in its hidden tests (not shown in your notebook)",
             False: " in the tests shown in your notebook", None: ""}[hidden]
    message = safe_message(errors[0])
    ename = str(errors[0].get("ename", "Error"))
    return [nbformat.v4.new_output("stream", name="stdout", text=f"Failed{where}:\n"),
            nbformat.v4.new_output("error", ename=ename, evalue=message.removeprefix(ename).removeprefix(": "),
                                   traceback=[message])]


class SafeFeedback(NbGraderPreprocessor):
    """Strip hidden tests, tracebacks and printed output from feedback (see the module docstring)."""

    # Configurable, as in nbgrader's GetGrades: the HTML exporter configures it for every preprocessor.
    display_data_priority = List(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if cell.get("cell_type") != "code":
            return cell, resources
        if is_test_cell(cell):
            cell.outputs = _summary(cell)
            cell.source = visible_source(cell.get("source", ""))
        else:
            failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=ERROR_NOTE + "\n")] if failed else []
        return cell, resources
