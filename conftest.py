"""Shared pytest set-up for tests/ and course/ (and source/, when named): group notebook cells per notebook
for xdist, and report totals. (At the root so that its hooks see the notebook items too.)"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "tests"))  # lets tests import grading.py and wrong_answers

_started = time.monotonic()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(items):
    # nbval runs the cells of one notebook in one kernel, in order, so each notebook must
    # stay on one xdist worker; the round-trip of one assignment shares one fixture.
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            # Group names must be plain words: xdist appends them to the node id after "@".
            group = re.sub(r"[^A-Za-z0-9_-]", "_", f"{path.parent.name}-{path.stem}")
            item.add_marker(pytest.mark.xdist_group(group))
        elif hasattr(item, "callspec") and "graded" in item.callspec.params:
            item.add_marker(pytest.mark.xdist_group(f"grading-{item.callspec.params['graded']}"))
    # The longest groups first (xdist hands out groups in this order: --no-loadscope-reorder), so
    # that the two CI workers finish together instead of one waiting for a long group started last.
    items.sort(key=_cost_rank)


# Test files whose groups grade notebooks, longest first (docs/authoring.md, "The CI budget").
LONGEST_FIRST = ("test_grading_attacks.py", "test_grading_roundtrip.py", "test_grading_generic_attacks.py",
                 "test_grading_limits.py", "test_grading_parallel.py", "test_grading_hub.py",
                 "test_instructor_guide.py", "test_grading_exchange.py", "test_grading_nonroot.py",
                 "test_grading_postgres.py", "test_browser.py")


def _cost_rank(item) -> int:
    """Where `item` goes: the grading files in LONGEST_FIRST's order, then notebooks, then the rest."""
    path = Path(str(item.fspath))
    if path.name in LONGEST_FIRST:
        return LONGEST_FIRST.index(path.name)
    return len(LONGEST_FIRST) + (0 if path.suffix == ".ipynb" else 1)


def pytest_terminal_summary(terminalreporter):
    reports = [r for key in ("passed", "failed", "error") for r in terminalreporter.stats.get(key, [])]
    notebooks = {r.nodeid.split("::")[0] for r in reports if r.nodeid.split("::")[0].endswith(".ipynb")}
    graded = sum(value for r in reports for name, value in getattr(r, "user_properties", ())
                 if name == "notebooks_executed")
    minutes, seconds = divmod(time.monotonic() - _started, 60)
    terminalreporter.write_sep("=", "course summary")
    terminalreporter.write_line(f"notebooks executed by nbval: {len(notebooks)}")
    terminalreporter.write_line(f"notebooks executed by nbgrader autograde: {graded}")
    screenshots = Path(__file__).resolve().parent / "test-artifacts" / "browser"
    if any(screenshots.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {screenshots}")
    terminalreporter.write_line(f"test suite wall time: {int(minutes)} min {seconds:.0f} s")
