"""Shared pytest set-up: group notebook cells per notebook for xdist, and report totals."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # lets tests import grading.py and wrong_answers.py

_started = time.monotonic()


def pytest_collection_modifyitems(items):
    # nbval runs the cells of one notebook in one kernel, in order, so each notebook must
    # stay on one xdist worker; the round-trip of one assignment shares one fixture.
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group(path.as_posix()))
        elif hasattr(item, "callspec") and "graded" in item.callspec.params:
            item.add_marker(pytest.mark.xdist_group(f"grading-{item.callspec.params['graded']}"))


def pytest_terminal_summary(terminalreporter):
    reports = [r for key in ("passed", "failed", "error") for r in terminalreporter.stats.get(key, [])]
    notebooks = {r.nodeid.split("::")[0] for r in reports if r.nodeid.split("::")[0].endswith(".ipynb")}
    graded = sum(value for r in reports for name, value in getattr(r, "user_properties", ())
                 if name == "notebooks_executed")
    minutes, seconds = divmod(time.monotonic() - _started, 60)
    terminalreporter.write_sep("=", "course summary")
    terminalreporter.write_line(f"notebooks executed by nbval: {len(notebooks)}")
    terminalreporter.write_line(f"notebooks executed by nbgrader autograde: {graded}")
    screenshots = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
    if any(screenshots.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {screenshots}")
    terminalreporter.write_line(f"test suite wall time: {int(minutes)} min {seconds:.0f} s")
