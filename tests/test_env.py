"""helpers.env: a missing or wrong package is named, with the command that fixes it."""

from __future__ import annotations

from importlib import metadata
from types import SimpleNamespace

import pytest

from helpers import env


def test_installed_environment_is_ok(capsys):
    assert env.find_problems() == []
    assert env.check_environment() is True
    assert "Environment OK" in capsys.readouterr().out


def test_wrong_version_is_named_with_the_fix(capsys, monkeypatch):
    real_version = metadata.version
    monkeypatch.setattr(env.metadata, "version",
                        lambda name: "2.13.0+cpu" if name == "torch" else real_version(name))
    pinned = env.REQUIRED_VERSIONS["torch"]
    assert env.find_problems() == [f"torch 2.13.0+cpu is installed, but the course needs torch=={pinned}"]
    assert env.check_environment() is False
    out = capsys.readouterr().out
    assert "PROBLEMS FOUND" in out and "./course.sh lab" in out and "constraints.txt" in out


def test_missing_package_stops_the_first_cell_with_a_clear_error(monkeypatch):
    monkeypatch.setitem(env.REQUIRED_VERSIONS, "surely-not-installed-pkg", "1.0")
    with pytest.raises(env.EnvironmentProblem) as info:
        env.check_environment()
    message = str(info.value)
    assert "surely-not-installed-pkg is not installed (the course needs surely-not-installed-pkg==1.0)" in message
    assert "./course.sh lab" in message


def test_local_build_tags_count_as_the_same_release(monkeypatch):
    monkeypatch.setattr(env.metadata, "version", lambda name: "2.14.1+cu130")
    assert env.find_problems({"torch": "2.14.1"}) == []


@pytest.mark.parametrize("version, supported", [
    ((3, 11, 5), True), ((3, 11, 9), True), ((3, 12, 0), True), ((3, 13, 2), True),
    ((3, 11, 2), False),  # Debian 12's: soupsieve (pinned) requires 3.11.5
    ((3, 10, 12), False), ((3, 14, 0), False),
])
def test_supported_pythons(version, supported):
    problem = env.python_problem(version)
    if supported:
        assert problem is None
    else:
        assert problem == (f"Python {'.'.join(map(str, version))} is not supported: "
                           "use Python 3.11 (3.11.5 or newer), 3.12 or 3.13")


def test_unsupported_python_is_named(monkeypatch):
    monkeypatch.setattr(env, "sys", SimpleNamespace(version_info=(3, 11, 2, "final", 0)))
    assert env.find_problems() == [
        "Python 3.11.2 is not supported: use Python 3.11 (3.11.5 or newer), 3.12 or 3.13"]


def test_pins_come_from_pyproject_or_from_the_installed_metadata(monkeypatch, tmp_path):
    from_pyproject = env.pinned_versions()
    assert from_pyproject["torch"] and from_pyproject == env.REQUIRED_VERSIONS
    monkeypatch.setattr(env, "PYPROJECT", tmp_path / "absent.toml")  # an installed copy, no checkout
    assert env.pinned_versions() == from_pyproject
