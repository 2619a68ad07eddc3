"""nbgrader's exchange, with two refusals the course needs (docs/instructor.md, sections 1 and 6).

* `nbgrader release_assignment` never creates the exchange folder. nbgrader's own command makes
  a missing `Exchange.root` (by default /usr/local/share/nbgrader/exchange) world-writable on the
  spot, so a forgotten configuration silently puts students' work in a folder nobody chose.
  `ReleaseAssignment` stops instead and says how to create and configure the exchange.
* `nbgrader release_feedback` never releases a page older than the grades it shows. Every
  feedback page carries a fingerprint of its notebook's grades, comments and late penalty
  (`StampGrades`, the last preprocessor of `generate_feedback`); `ReleaseFeedback` recomputes the
  fingerprint from the gradebook and keeps back every page that no longer matches (a score
  overridden or a comment written after the page was made), with a line naming the student and
  the command that fixes it. The other students' pages are released; the command then fails.

`nbgrader_config.py` selects these classes (`c.ExchangeFactory...`) and the preprocessor.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from pathlib import Path

from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default import ExchangeReleaseAssignment, ExchangeReleaseFeedback
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import List

STAMP = re.compile(r"<!-- course-grades: ([0-9a-f]{64}) -->")


def grades_fingerprint(gradebook: Gradebook, assignment: str, notebook: str, student: str) -> str:
    """A digest of everything a feedback page shows from the gradebook for one notebook."""
    submitted = gradebook.find_submission_notebook(notebook, assignment, student)
    shown = {
        "grades": sorted((g.name, g.auto_score, g.manual_score, g.extra_credit) for g in submitted.grades),
        "comments": sorted((c.name, c.auto_comment, c.manual_comment) for c in submitted.comments),
        "late_penalty": submitted.late_submission_penalty,
    }
    return hashlib.sha256(json.dumps(shown, default=str).encode()).hexdigest()


class StampGrades(NbGraderPreprocessor):
    """Appends the grades' fingerprint to the page, as an HTML comment students never see."""

    # Configurable, as in nbgrader's GetGrades: the HTML exporter configures it for every preprocessor.
    display_data_priority = List(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            digest = grades_fingerprint(gradebook, info["assignment"], info["notebook"], info["student"])
        nb.cells.append(new_markdown_cell(f"<!-- course-grades: {digest} -->"))
        return nb, resources


class ReleaseAssignment(ExchangeReleaseAssignment):
    """`release_assignment` that refuses to create a missing exchange folder."""

    def ensure_root(self) -> None:
        if not os.path.isdir(self.root):
            self.fail(
                f"The exchange folder {self.root} does not exist, and the course does not create it: a "
                "folder made here would be world-writable wherever nbgrader's default points. Create it "
                "where you want it (e.g. `sudo install -d -m 0777 /srv/nbgrader/exchange`) and name it "
                "in c.Exchange.root (docs/instructor.md, section 6), or, without an exchange, give "
                "students release/ directly (section 1).")
        super().ensure_root()


class ReleaseFeedback(ExchangeReleaseFeedback):
    """`release_feedback` that keeps back pages made before the latest change to their grades."""

    def copy_files(self) -> None:
        stale = self._stale_pages()
        for page in stale:
            self.log.error(
                "Not releasing %s: the gradebook changed after this page was made (a regrade or a "
                "comment). Run `nbgrader generate_feedback %s --student %s --force`, then release again.",
                page, self.coursedir.assignment_id, page.parent.parent.name)
        excluded = {p.parent.parent.name for p in stale}
        if excluded:
            earlier = self.coursedir.student_id_exclude
            self.coursedir.student_id_exclude = ",".join(filter(None, [earlier, *sorted(excluded)]))
        super().copy_files()
        if stale:
            self.fail(f"{len(stale)} feedback page(s) not released because they are out of date: see above.")

    def _stale_pages(self) -> list[Path]:
        """Pages of this assignment whose fingerprint is missing or differs from the gradebook's."""
        stale = []
        pages = sorted(Path(p) for p in glob.glob(os.path.join(self.src_path, "*.html")))
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            for page in pages:
                student, notebook = page.parent.parent.name, page.stem
                found = STAMP.search(page.read_text(errors="replace"))
                try:
                    current = grades_fingerprint(gradebook, self.coursedir.assignment_id, notebook, student)
                except MissingEntry:
                    current = None
                if found is None or found.group(1) != current:
                    stale.append(page)
        return stale
