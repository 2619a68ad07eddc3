"""Read feedback pages (nbgrader generate_feedback's HTML) and list what they must not show.

Used by the round trip (every page of every assignment) and by test_grading_feedback.py.
"""

from __future__ import annotations

import ast
import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import nbformat

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
MIN_LINE = 10  # shorter hidden lines (`pass`, `else:`, `try:`) say nothing about the tests
_TRACEBACK_LINE = re.compile(r"^(?:-*>\s*)?\d+\s(.*)$")
# How messages state an expected value: "got 3, expected 4", "expected: 4" (not "Linear expected 64 input features").
_EXPECTED_VALUE = re.compile(r",\s+expected\b|\bexpected\s*[:=]")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag) -> None:
        self._skip -= tag in ("style", "script") and self._skip > 0

    def handle_data(self, data) -> None:
        if not self._skip:
            self.parts.append(data)


def text_of(page_html: str) -> str:
    """The text a reader sees (highlighted code comes back as its source lines)."""
    parser = _Text()
    parser.feed(page_html)
    return html.unescape("".join(parser.parts))


@dataclass
class PageCell:
    cell_id: str
    source: str   # the cell's input as the page shows it
    output: str   # its outputs as text


def page_cells(page_html: str) -> list[PageCell]:
    """The page's notebook cells, in order (nbconvert's classic template: one div.cell each)."""
    cells = []
    for chunk in re.split(r'(?=<div class="cell border-box-sizing)', page_html)[1:]:
        cell_id = re.match(r'<div class="cell[^"]*"(?: id="cell-id=([^"]*)")?', chunk)
        before, _, after = chunk.partition('<div class="output_wrapper">')
        cells.append(PageCell(cell_id.group(1) or "" if cell_id else "", text_of(before), text_of(after)))
    return cells


def hidden_regions(source: str) -> list[str]:
    """The text between the hidden-test markers of a cell, one string per region."""
    regions, current = [], None
    for line in source.split("\n"):
        if BEGIN in line:
            current = []
        elif END in line and current is not None:
            regions.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return regions


def secret_lines(source: nbformat.NotebookNode, release: nbformat.NotebookNode) -> set[str]:
    """Every non-trivial line of the hidden tests (stripped) that the release does not show anyway."""
    shown = {line.strip() for cell in release.cells for line in cell.source.split("\n")}
    return {line.strip() for cell in source.cells for region in hidden_regions(cell.source)
            for line in region.split("\n") if len(line.strip()) >= MIN_LINE and line.strip() not in shown}


def answer_keys(source: nbformat.NotebookNode) -> dict[str, str]:
    """grade id -> the string a hidden test compares a quiz answer with (`q1_answer.strip().lower() == "b"`)."""
    keys = {}
    for cell in source.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        for region in hidden_regions(cell.source):
            for node in ast.walk(ast.parse(region)):
                if isinstance(node, ast.Compare) and "_answer" in ast.unparse(node.left):
                    for side in node.comparators:
                        if isinstance(side, ast.Constant) and isinstance(side.value, str):
                            keys[grade_id] = side.value
    return keys


def key_shown(text: str, key: str) -> bool:
    """Whether `text` gives the answer key away: quoted, or as "answer/option (is) b"."""
    quoted = any(q + key + q in text for q in ("'", '"', "`"))
    named = re.search(rf"\b(answer|option|choice)\s+(is\s+)?\(?{re.escape(key)}\)?(\W|$)", text, re.IGNORECASE)
    return quoted or bool(named)


def page_problems(page_html: str, source: nbformat.NotebookNode, release: nbformat.NotebookNode,
                  scores: dict[str, float], errors: dict[str, tuple[str, str]]) -> list[str]:
    """What is wrong with one feedback page. `scores`: grade id -> score of each test cell;
    `errors`: grade id -> (ename, evalue) of each failing test cell, from the graded notebook.
    Hidden lines are looked for everywhere but in the student's answers."""
    problems = []
    cells = {cell.cell_id: cell for cell in page_cells(page_html)}
    # Everything but the student's answers (their code may well repeat a line of the tests).
    text = "\n".join(part for cell in cells.values()
                     for part in ([cell.output] if "Student's answer" in cell.source else [cell.source, cell.output]))
    shown = set()
    for line in text.split("\n"):
        shown.add(line.strip())
        numbered = _TRACEBACK_LINE.match(line.strip())  # IPython's "---> 12     assert ..." context lines
        if numbered:
            shown.add(numbered.group(1).strip())
    for line in sorted(secret_lines(source, release) & shown):
        problems.append(f"hidden test line shown: {line!r}")
    keys = answer_keys(source)
    points = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in source.cells
              if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}
    for grade_id, maximum in points.items():
        cell = cells.get(grade_id)
        if cell is None or f"Grade cell: {grade_id}" not in cell.source:
            problems.append(f"{grade_id}: the test's name is not shown")
            continue
        if f"Score: {scores[grade_id]:.1f} / {maximum:.1f}" not in cell.source:
            problems.append(f"{grade_id}: its points ({scores[grade_id]:.1f} / {maximum:.1f}) are not shown")
        if grade_id in keys and key_shown(cell.output, keys[grade_id]):
            problems.append(f"{grade_id}: the answer key {keys[grade_id]!r} is shown: {cell.output!r}")
        if grade_id in errors:
            ename, evalue = errors[grade_id]
            first = (evalue.strip().splitlines() or [""])[0][:80]
            if f"{ename}: {first}" not in cell.output:
                problems.append(f"{grade_id}: the failure message {ename}: {first!r} is not shown")
            if "hidden tests" in cell.output and _EXPECTED_VALUE.search(cell.output):
                problems.append(f"{grade_id}: a hidden test's message says what it expected: {cell.output!r}")
    return problems
