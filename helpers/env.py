"""Environment check: the first cell of every notebook calls `check_environment()`.

Version drift is the most common problem in a course like this, so we name exactly what
is missing or wrong and the command that fixes it. This module imports nothing outside
the standard library, so it works even when torch is missing.
"""

from __future__ import annotations

import platform
import sys
import tomllib
from importlib import metadata
from pathlib import Path

PROJECT = "pytorch-in-practice"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def pinned_versions() -> dict[str, str]:
    """The course's direct dependencies and their pinned versions: {"torch": "2.14.1", ...}.

    pyproject.toml is the one place versions are written by hand (constraints.txt and
    environment.yml are checked against it by tests/test_config.py). In a checkout it is read
    directly; an installed copy of the course reads the same list from its package metadata.
    """
    if PYPROJECT.is_file():
        return pins_of(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"])
    return installed_pins()


def installed_pins() -> dict[str, str]:
    """The pins the installed course declares (its package metadata, extras left out)."""
    return pins_of([r for r in metadata.requires(PROJECT) or [] if "extra ==" not in r])


def pins_of(requirements: list[str]) -> dict[str, str]:
    """{"torch": "2.14.1"} from requirement lines such as "torch==2.14.1"."""
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        pins[name.strip()] = version.split(";")[0].strip()
    return pins


REQUIRED_VERSIONS: dict[str, str] = pinned_versions()
# The Pythons the pinned packages install on, each as its oldest accepted release (soupsieve in
# constraints.txt requires 3.11.5). course.sh's PYTHON_MINIMUMS names the same ones
# (tests/test_course_sh.py checks both against the pins' Requires-Python).
SUPPORTED_PYTHON: tuple[tuple[int, int, int], ...] = ((3, 11, 5), (3, 12, 0), (3, 13, 0))
FIX_COMMAND = "./course.sh lab   (from the course folder; it reinstalls the pinned versions)"
FIX_COMMAND_PIP = "pip install -c constraints.txt -e ."


class EnvironmentProblem(RuntimeError):
    """Raised when a required package is missing or has the wrong version."""


def supported_pythons() -> str:
    """SUPPORTED_PYTHON in words: '3.11 (3.11.5 or newer), 3.12 or 3.13'."""
    names = [f"{major}.{minor}" + (f" ({major}.{minor}.{micro} or newer)" if micro else "")
             for major, minor, micro in SUPPORTED_PYTHON]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def python_problem(version: tuple[int, ...] | None = None) -> str | None:
    """None when this Python (or `version`) is one the pinned packages support, else why not."""
    major, minor, micro = (version or tuple(sys.version_info[:3]))[:3]
    for minimum in SUPPORTED_PYTHON:
        if (major, minor) == minimum[:2] and micro >= minimum[2]:
            return None
    return f"Python {major}.{minor}.{micro} is not supported: use Python {supported_pythons()}"


def find_problems(required: dict[str, str] | None = None) -> list[str]:
    """Return one readable line per missing or mismatched package (empty list: all good)."""
    problems = []
    python = python_problem()
    if python:
        problems.append(python)
    for package, wanted in (required or REQUIRED_VERSIONS).items():
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            problems.append(f"{package} is not installed (the course needs {package}=={wanted})")
            continue
        # Local build tags such as 2.14.1+cpu or +cu130 are the same release.
        if installed.split("+")[0] != wanted:
            problems.append(f"{package} {installed} is installed, but the course needs {package}=={wanted}")
    return problems


def _fix_hint() -> str:
    return f"Fix: run {FIX_COMMAND}\n  or, in your own environment: {FIX_COMMAND_PIP}"


def check_environment(verbose: bool = True) -> bool:
    """Print Python/torch/device facts and any version problems; return True when all is well.

    A missing package raises EnvironmentProblem naming every missing one and the fix, so a
    notebook stops at its first cell instead of at an ImportError deep inside a later one.
    A wrong version only warns: most lessons still run.
    """
    problems = find_problems()
    missing = [p for p in problems if "not installed" in p]
    if missing:
        raise EnvironmentProblem("\n".join(["The course environment is incomplete:", *missing, _fix_hint()]))
    if verbose:
        import torch

        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
        print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}\n"
              f"torch {torch.__version__}, running on: {device}")
        if problems:
            print("\nPROBLEMS FOUND:\n  " + "\n  ".join(problems) + "\n" + _fix_hint())
        else:
            print("Environment OK: all course packages have the pinned versions.")
    return not problems
