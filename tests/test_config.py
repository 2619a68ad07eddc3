"""The three package lists (pyproject.toml, constraints.txt, environment.yml) and the
environment check must agree, or students and CI would install different things."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from helpers.env import REQUIRED_VERSIONS, installed_pins

REPO = Path(__file__).resolve().parents[1]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+?)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return _pins(lines)


def _direct() -> dict[str, str]:
    """The dependencies a student installs (no extras)."""
    return _pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])


def _environment_yml() -> dict[str, str]:
    spec = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml needs exactly one pip: section"
    return _pins(pip_lists[0])


def _constraints() -> dict[str, str]:
    return _pins((REPO / "constraints.txt").read_text().splitlines())


def test_pyproject_and_environment_yml_name_the_same_packages_and_versions():
    assert _pyproject() == _environment_yml()


def test_every_direct_dependency_is_pinned_identically_in_constraints():
    constraints = _constraints()
    mismatched = {name: (version, constraints.get(name)) for name, version in _pyproject().items()
                  if constraints.get(name) != version}
    assert not mismatched, f"pyproject version vs constraints.txt: {mismatched}"


def test_environment_check_expects_the_pinned_versions():
    """helpers.env reads its pins from pyproject.toml, or from the installed metadata: the same."""
    assert {_normalise(n): v for n, v in REQUIRED_VERSIONS.items()} == _direct()
    installed = {_normalise(n): v for n, v in installed_pins().items()}
    assert installed == _direct(), "the installed course is stale: run ./course.sh test (it reinstalls)"


_TORCH_MENTION = re.compile(r"torch (\d+\.\d+\.\d+)")


def test_files_that_name_the_torch_version_name_the_pinned_one():
    """Quiz headers and the benchmark notes say which torch they were checked with: the pinned one."""
    files = [*(REPO / "helpers" / "lessons").glob("*/quiz.yaml"), REPO / "benchmarks" / "README.md"]
    wrong = {f.relative_to(REPO).as_posix(): found for f in files
             for found in _TORCH_MENTION.findall(f.read_text(encoding="utf-8")) if found != REQUIRED_VERSIONS["torch"]}
    assert not wrong, f"these name another torch than the pinned {REQUIRED_VERSIONS['torch']}: {wrong}"


def test_environment_yml_uses_the_tested_python_and_installs_the_course():
    spec = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in spec["dependencies"]
    pip_list = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_list


def test_grading_tools_import_neither_torch_nor_the_student_library():
    """nbgrader imports the grading preprocessors (and nbgrader_config.py the intake) in every
    command: they must not import torch (~2 s a command) nor `helpers`, the students' package.
    `import helpers` is plain: it imports the environment check only (standard library), so the
    check can run before torch; it exports exactly that."""
    code = ("import sys, grader.autograde, grader.parallel, grader.intake, grader.sandbox\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert not any(m == 'helpers' or m.startswith('helpers.') for m in sys.modules), 'helpers was imported'\n"
            "import helpers, helpers.quiz_data\n"
            "assert 'torch' not in sys.modules, 'torch was imported by helpers'\n"
            "assert helpers.__all__ == ['check_environment'] and callable(helpers.check_environment)\n"
            "assert not hasattr(helpers, '__getattr__'), 'helpers has lazy exports'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]


def _missing_tool(message: str) -> None:
    """Skip, or in CI (CI=true) fail: CI must run every check."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_ruff_finds_nothing():
    """ruff (pinned in the test extra, configured in pyproject.toml) on the Python code."""
    try:
        version = metadata.version("ruff")
    except metadata.PackageNotFoundError:
        _missing_tool("ruff is not installed: pip install -c constraints.txt ruff (./course.sh test installs it)")
    assert version == _constraints()["ruff"], f"ruff {version} installed, constraints.txt pins another"
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "helpers", "grader", "tests",
                           "benchmarks"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_finds_nothing_in_helpers(tmp_path):
    """mypy (pinned in the test extra, [tool.mypy] in pyproject.toml) on the students' package.
    A fresh cache each run: about 40 s on 2 cores, most of it reading torch's type information."""
    try:
        version = metadata.version("mypy")
    except metadata.PackageNotFoundError:
        _missing_tool("mypy is not installed: pip install -c constraints.txt mypy (./course.sh test installs it)")
    assert version == _constraints()["mypy"], f"mypy {version} installed, constraints.txt pins another"
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_package_data_is_there():
    """Every file pattern of [tool.setuptools.package-data] matches a file (py.typed was once missing)."""
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = [f"{package}/{pattern}" for package, patterns in package_data.items() for pattern in patterns
               if not list((REPO / package).glob(pattern))]
    assert not missing, f"package-data names files that do not exist: {missing}"


# Imported by grader/ and helpers/ without being declared: the Jupyter stack that nbgrader and
# JupyterLab (declared) are built on, whose APIs grader/ plugs into, and torchvision's image type.
PROVIDED_BY_DECLARED = {"ipython", "jupyter-client", "jupyter-core", "nbclient", "nbformat", "traitlets", "pillow"}


def test_third_party_imports_are_declared():
    """Each distribution that the course's packages import is in pyproject.toml (psutil once was not)."""
    declared = set(_pyproject())
    distributions = metadata.packages_distributions()
    undeclared = {}
    for path in sorted([*(REPO / "helpers").rglob("*.py"), *(REPO / "grader").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in ("helpers", "grader", "__future__"):
                    continue
                names = {_normalise(name) for name in distributions.get(top, [top])}
                if not names & (declared | PROVIDED_BY_DECLARED):
                    undeclared.setdefault(", ".join(sorted(names)), []).append(str(path.relative_to(REPO)))
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
