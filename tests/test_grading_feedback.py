"""Feedback pages reveal no hidden test: helpers.check withholds values in hidden tests,
grader.feedback.SafeFeedback strips hidden tests, tracebacks and printed output, and the hidden
tests' own messages follow the authoring rule. The round trip checks every real page
(tests/test_grading_roundtrip.py); here a crafted graded notebook shows what a page would leak
without SafeFeedback."""

from __future__ import annotations

import ast
import itertools
import linecache
import re
from pathlib import Path

import nbformat
import pytest
import torch
from feedback_pages import answer_keys, hidden_regions, page_problems, text_of
from grading import ASSIGNMENTS, REPO, notebook_names

import helpers.check as check
from grader import feedback

_cells = itertools.count()


def run_as_cell(source: str) -> str:
    """Run `source` the way IPython runs a notebook cell (its lines in linecache under a name
    that is no file); the message of the CheckFailed it raises."""
    name = f"/tmp/ipykernel_0/{next(_cells)}.py"
    linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
    try:
        exec(compile(source, name, "exec"), {"torch": torch, **{n: getattr(check, n) for n in check.__all__}})
    except check.CheckFailed as error:
        return str(error)
    finally:
        del linecache.cache[name]
    raise AssertionError("the check passed")


def hidden(code: str) -> str:
    return f"x = 1\n### BEGIN HIDDEN TESTS\n{code}\n### END HIDDEN TESTS\n"


# Each failing check, with the text that shows the expected value (7.25 or 7777 here).
FAILING_CHECKS = {
    "values": ("check_tensor(torch.tensor([1.0, 3.5]), torch.tensor([1.0, 7.25]), name='v')", "7.25"),
    "scalar": ("check_tensor(torch.tensor(3.5), torch.tensor(7.25))", "7.25"),
    "shape": ("check_shape(torch.ones(2, 3), (2, 7777), name='s')", "7777"),
    "dtype": ("check_tensor(torch.ones(2), torch.ones(2, dtype=torch.float64))", "float64"),
    "number": ("check_close(3.5, 7.25, name='n')", "7.25"),
    "function": ("check_function(lambda x: x + 1, lambda x: x * 7777, [(7777,)])", "7777"),
    "gradient": ("check_gradient(torch.zeros(2), lambda v: (7.25 * v).sum(), torch.ones(2))", "7.25"),
}


@pytest.mark.parametrize("kind", FAILING_CHECKS)
def test_checks_withhold_expected_values_in_hidden_tests_only(kind):
    code, secret = FAILING_CHECKS[kind]
    shown = run_as_cell(code + "\n")
    assert secret in shown and check.HIDDEN_NOTE not in shown, "outside hidden tests the message is unchanged"
    withheld = run_as_cell(hidden(code))
    assert secret not in withheld and "expected" not in withheld, withheld
    assert withheld.endswith(check.HIDDEN_NOTE), withheld


def test_a_check_in_a_helper_called_from_hidden_tests_withholds_too():
    helper = "def helper(got):\n    check_close(got, 7.25, name='h')\n"
    assert "7.25" in run_as_cell(helper + "helper(1.0)\n")
    message = run_as_cell(helper + hidden("helper(1.0)"))
    assert "7.25" not in message and message.endswith(check.HIDDEN_NOTE)
    # After the hidden region ends, values are shown again.
    assert "7.25" in run_as_cell(hidden("pass") + helper + "helper(1.0)\n")


def test_any_check_failed_raised_from_hidden_tests_says_so():
    message = run_as_cell(hidden("raise CheckFailed('my_check: wrong')"))
    assert message == f"my_check: wrong\n  {check.HIDDEN_NOTE}"
    assert run_as_cell("raise CheckFailed('my_check: wrong')") == "my_check: wrong"


def test_feedback_knows_the_hidden_note():
    assert feedback.HIDDEN_NOTE == check.HIDDEN_NOTE


def test_feedback_preprocessor_imports_neither_torch_nor_helpers():
    """nbgrader imports it for every generate_feedback (tests/test_config.py has the reasons)."""
    tree = ast.parse(Path(feedback.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "re", "typing", "nbformat", "nbgrader", "traitlets"}, imported


# --- The authoring rule, on every hidden test in source/ ------------------------------------

def _hidden_messages() -> list[tuple[str, ast.AST, ast.AST | None]]:
    """(where, statement, message) of every assert and `raise AssertionError(...)` in hidden tests."""
    found = []
    for assignment in ASSIGNMENTS:
        for name in notebook_names(assignment):
            notebook = nbformat.read(REPO / "source" / assignment / name, as_version=4)
            for cell in notebook.cells:
                for region in hidden_regions(cell.source):
                    where = f"{assignment}/{cell.metadata.get('nbgrader', {}).get('grade_id')}"
                    for node in ast.walk(ast.parse(region)):
                        if isinstance(node, ast.Assert):
                            found.append((where, node, node.msg))
                        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                                getattr(node.exc.func, "id", "") == "AssertionError":
                            found.append((where, node, node.exc.args[0] if node.exc.args else None))
    return found


def test_every_hidden_assert_names_the_mistake_without_the_expected_value():
    """Feedback shows a hidden assert's message (never its line): it must have one, and the
    message must not state what the test expects (docs/authoring.md)."""
    messages = _hidden_messages()
    # Every assignment's hidden tests hold asserts (this test reads them; it must find some).
    assert {where.split("/")[0] for where, _, _ in messages} == set(ASSIGNMENTS)
    problems = []
    for where, node, message in messages:
        if message is None:
            problems.append(f"{where}: `{ast.unparse(node)[:80]}` has no message")
            continue
        text = " ".join(part.value for part in ast.walk(message)
                        if isinstance(part, ast.Constant) and isinstance(part.value, str))
        if re.search(r"\bexpected\b", text):
            problems.append(f"{where}: the message says what is expected: {text[:100]!r}")
    assert not problems, "\n".join(problems)


def test_quiz_messages_do_not_give_the_key_away():
    for assignment in ASSIGNMENTS:
        for name in notebook_names(assignment):
            notebook = nbformat.read(REPO / "source" / assignment / name, as_version=4)
            keys = answer_keys(notebook)
            assert {k for k in keys if k.startswith("test_q")} == {"test_q1", "test_q2"}, (assignment, keys)
            for cell in notebook.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                for region in hidden_regions(cell.source) if grade_id in keys else []:
                    for node in ast.walk(ast.parse(region)):
                        if isinstance(node, ast.Assert) and node.msg is not None:
                            message = ast.literal_eval(node.msg)
                            assert "not the right option" in message and keys[grade_id] not in re.findall(
                                r"\b\w\b", message), (assignment, grade_id, message)


# --- SafeFeedback on a crafted graded notebook ----------------------------------------------

SOURCE_TEST = '''check_close(f(1.0), 2.0, name="f(1)")
print("visible tests passed")
### BEGIN HIDDEN TESTS
_secret_input = torch.tensor([0.123456])
assert f(_secret_input) == 0.246912, "f must double its input"
### END HIDDEN TESTS'''
SOURCE_QUIZ = '''check_choice(q1_answer, ["a", "b", "c", "d"], name="q1_answer")
### BEGIN HIDDEN TESTS
assert q1_answer.strip().lower() == "c", "Q1: not the right option: review the lesson"
### END HIDDEN TESTS'''
SOURCE_CHECK = '''check_close(g(1.0), 1.0, name="g(1)")
### BEGIN HIDDEN TESTS
check_close(g(_hidden_value_of_the_test), 42.0, name="g(hidden case)")
### END HIDDEN TESTS'''


def _ipython_trace(ename: str, evalue: str, source: str, line: int) -> list[str]:
    """An error output's traceback as IPython 9 writes it (ANSI colours, the cell's lines)."""
    lines = source.split("\n")
    context = [f"\x1b[32m{'---> ' if n == line else '     '}{n:>3}\x1b[39m {lines[n - 1]}"
               for n in range(max(1, line - 2), min(len(lines), line + 2) + 1)]
    where = f"\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[3]\x1b[39m\x1b[32m, line {line}\x1b[39m"
    return ["\x1b[31m" + "-" * 75 + "\x1b[39m", f"\x1b[31m{ename}\x1b[39m  Traceback (most recent call last)",
            where + "\n" + "\n".join(context), f"\x1b[31m{ename}\x1b[39m: {evalue}"]


def _cell(kind: str, source: str, grade_id: str, points: float = 0, score: float = 0,
          outputs=()) -> nbformat.NotebookNode:
    meta = {"grade": kind != "solution", "solution": kind == "solution", "grade_id": grade_id, "locked": kind == "test",
            "schema_version": 3}
    if kind == "test":
        meta.update(points=points, score=score)
    cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta}, outputs=list(outputs))
    cell.id = grade_id
    return cell


def graded_notebook() -> nbformat.NotebookNode:
    """A graded notebook (autograded/) whose every output would leak without SafeFeedback."""
    printed = "--- printed by your code during this cell ---\nf called with tensor([0.123456])\n"
    f_error, q_error = "f must double its input", "Q1: not the right option: review the lesson"
    cells = [
        _cell("solution", "def f(x):\n    print('f called with', x)\n    return 2 * x", "f", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="recorded inputs: tensor([0.123456])\n")]),
        _cell("test", SOURCE_TEST, "test_f", points=3, outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="visible tests passed\n"),
            nbformat.v4.new_output("error", ename="AssertionError", evalue=f_error,
                                   traceback=_ipython_trace("AssertionError", f_error, SOURCE_TEST, 5)),
            nbformat.v4.new_output("stream", name="stdout", text=printed)]),
        _cell("solution", 'q1_answer = "a"', "q1"),
        _cell("test", SOURCE_QUIZ, "test_q1", points=2, outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="✔ q1_answer: 'a' is a valid option (graded later)\n"),
            nbformat.v4.new_output("error", ename="AssertionError", evalue=q_error,
                                   traceback=_ipython_trace("AssertionError", q_error, SOURCE_QUIZ, 3))]),
        _cell("solution", "def g(x):\n    raise ValueError(f'no luck with {x}')", "g", outputs=[
            nbformat.v4.new_output("error", ename="ValueError", evalue="student text", traceback=["ValueError: ..."])]),
        _cell("test", SOURCE_CHECK, "test_g", points=2, score=2, outputs=[]),
    ]
    return nbformat.v4.new_notebook(cells=cells)


def render(notebook: nbformat.NotebookNode, safe: bool) -> str:
    """The feedback page nbgrader's template makes of `notebook` (GetGrades' work done by hand)."""
    from nbconvert.exporters import HTMLExporter
    import nbgrader

    templates = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    exporter = HTMLExporter(template_name="feedback", extra_template_basedirs=[str(templates / "templates")],
                            extra_template_paths=[str(templates / "static/node_modules/bootstrap/dist/css")])
    if safe:
        exporter.register_preprocessor(feedback.SafeFeedback, enabled=True)
    resources = {"nbgrader": {"notebook": "crafted", "score": 2.0, "max_score": 7.0, "late_penalty": 0}}
    page, _ = exporter.from_notebook_node(nbformat.from_dict(notebook), resources=resources)
    return page


def _check_page(page: str) -> list[str]:
    source = graded_notebook()
    release = nbformat.from_dict(source)
    for cell in release.cells:
        cell.source = feedback.visible_source(cell.source)
    return page_problems(page, source, release, scores={"test_f": 0.0, "test_q1": 0.0, "test_g": 2.0},
                         errors={"test_f": ("AssertionError", "f must double its input"),
                                 "test_q1": ("AssertionError", "Q1: not the right option: review the lesson")})


def test_without_safe_feedback_the_page_shows_hidden_tests_and_what_the_student_printed():
    """The control: nbgrader's page as it is leaks, and the page check sees it."""
    page = render(graded_notebook(), safe=False)
    problems = _check_page(page)
    assert any("_secret_input = torch.tensor([0.123456])" in p for p in problems), problems
    assert any("the answer key 'c'" in p or "q1_answer.strip().lower() == \"c\"" in p for p in problems), problems
    assert "0.123456" in text_of(page)


def test_safe_feedback_shows_names_points_and_messages_and_nothing_hidden():
    page = render(graded_notebook(), safe=True)
    assert _check_page(page) == []
    text = text_of(page)
    assert "0.123456" not in text and "42.0" not in text and "_hidden_value_of_the_test" not in text
    assert "student text" not in text and feedback.ERROR_NOTE in text
    assert "Failed in its hidden tests" in text and "AssertionError: f must double its input" in text
    assert feedback.PASSED in text and "Traceback" not in text


def test_failures_are_placed_in_the_visible_or_the_hidden_tests():
    visible = {"ename": "CheckFailed", "evalue": "f(1): got 3, expected 2", "traceback": ["CheckFailed: ..."]}
    assert feedback.failed_in_hidden_tests(SOURCE_TEST, visible) is False
    withheld = dict(visible, evalue=f"f(x): got 3, which is wrong\n  {check.HIDDEN_NOTE}")
    assert feedback.failed_in_hidden_tests(SOURCE_TEST, withheld) is True
    for line, hidden_line in ((1, False), (2, False), (5, True)):
        error = {"ename": "ValueError", "evalue": "x",
                 "traceback": _ipython_trace("ValueError", "x", SOURCE_TEST, line)}
        assert feedback.failed_in_hidden_tests(SOURCE_TEST, error) is hidden_line
    chained = _ipython_trace("KeyError", "k", SOURCE_TEST, 5) + ["During handling of the above exception, another "
                                                                 "exception occurred:"] + \
        _ipython_trace("ValueError", "v", SOURCE_TEST, 1)
    assert feedback.failed_in_hidden_tests(SOURCE_TEST, {"ename": "ValueError", "traceback": chained}) is False


def test_messages_raised_by_the_students_code_are_cut_to_a_short_line():
    long = "inputs: " + "0.123456, " * 200
    student = {"ename": "ValueError", "evalue": long + "\nmore lines", "traceback": [feedback.STUDENT_TRACE]}
    assert feedback.safe_message(student) == f"ValueError: {long[:feedback.MAX_OTHER_MESSAGE]} ..."
    tests = {"ename": "CheckFailed", "evalue": "a: wrong\n  Hint: look\n  " + check.HIDDEN_NOTE, "traceback": []}
    assert feedback.safe_message(tests) == "CheckFailed: " + tests["evalue"]
    student_assert = dict(student, ename="AssertionError")
    assert "more lines" not in feedback.safe_message(student_assert)
