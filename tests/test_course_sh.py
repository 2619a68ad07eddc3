"""course.sh, the course's entry point: its functions, run one by one from a sourced copy under
`set -euo pipefail` with fake Pythons, fake environments and stubbed commands (nothing is
installed or started); shellcheck and a bash 3.2 (macOS) check of its text; and the JupyterLab
settings it installs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from helpers import env

REPO = Path(__file__).resolve().parents[1]
COURSE_SH = REPO / "course.sh"
SCRIPTS = [COURSE_SH, REPO / ".ci" / "run"]
BASH = shutil.which("bash") or "/bin/bash"
# The commands course.sh's functions use besides bash's builtins (linked into isolated PATHs).
TOOLS = ["dirname", "uname", "tr", "sed", "sort", "paste", "cat", "mkdir", "cp", "cmp", "id"]


def _missing_tool(message: str) -> None:
    """Skip, or in CI (CI=true) fail: CI must run every check."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def sh(script: str, *, path: str | None = None, **environ: str) -> subprocess.CompletedProcess:
    """Runs `script` in bash after sourcing course.sh (which only defines its functions then)."""
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "COURSE_VENV")}
    if path is not None:
        run_env["PATH"] = path
    run_env.update(environ)
    return subprocess.run([BASH, "-c", f"source {shlex.quote(str(COURSE_SH))}\n{script}"], capture_output=True,
                          text=True, timeout=30, env=run_env, cwd=REPO)


@pytest.fixture
def tools(tmp_path) -> Path:
    """A folder with the system commands course.sh needs and nothing else (no python3.x)."""
    folder = tmp_path / "tools"
    folder.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is not on PATH"
        (folder / tool).symlink_to(found)
    return folder


def fake_python(folder: Path, name: str, version: str) -> Path:
    """An executable `name` that answers course.sh's version question with `version`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\necho {version}\n")
    script.chmod(0o755)
    return script


# --- The text of the scripts: shellcheck, and nothing bash 3.2 (macOS) lacks -------------

def test_scripts_parse():
    for script in SCRIPTS:
        proc = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True, timeout=10)
        assert proc.returncode == 0, proc.stderr


def test_shellcheck_finds_nothing():
    if not shutil.which("shellcheck"):
        _missing_tool("shellcheck is not installed: sudo apt-get install shellcheck (Debian/Ubuntu; ./course.sh "
                      "test does it as root), brew install shellcheck (macOS)")
    proc = subprocess.run(["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# What bash 3.2 (macOS's /bin/bash) lacks or does differently. Before bash 4.4, `set -u` makes an
# empty "${array[@]}" an unbound-variable error, so array expansions must use the guarded form
# ${name[@]+"${name[@]}"} (or no arrays at all, as course.sh does).
GUARDED_EXPANSION = re.compile(r'\$\{(\w+)\[[@*]\]\+"\$\{\1\[[@*]\]\}"\}')
BASH4_ONLY = {
    r"\$\{#?\w+\[[@*]\]": "array expansion (unbound when empty under set -u before bash 4.4)",
    r"\b(declare|local|typeset)\s+-[a-zA-Z]*[An]": "associative array or name reference (bash 4)",
    r"\b(mapfile|readarray|coproc)\b": "bash 4 builtin",
    r"\$\{\w+(,,?|\^\^?)\}": "case conversion (bash 4)",
    r"\$\{\w+@[QEPAKaUuL]\}": "parameter transformation (bash 4.4)",
    r"&>>|\|&|;;&|;&": "bash 4 redirection or case fall-through",
    r"\[\[\s+-v\b": "[[ -v ]] (bash 4.2)",
    r"\bwait\s+-n\b|\$EPOCH(SECONDS|REALTIME)|\$\{?BASH_ARGV0": "bash 4.3+ feature",
}


def bash32_problems(text: str) -> list[str]:
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        code = GUARDED_EXPANSION.sub("", line)
        problems += [f"line {number}: {why}: {line.strip()}" for pattern, why in BASH4_ONLY.items()
                     if re.search(pattern, code)]
    return problems


def test_the_bash32_check_finds_what_broke_lab_on_macos():
    assert bash32_problems('    exec jupyter lab --ip=127.0.0.1 "${extra[@]}" "$@" \\')
    assert bash32_problems('echo "${#missing[@]}" ${missing[*]}')
    assert bash32_problems("declare -A seen; x=${name,,}")
    assert not bash32_problems('exec jupyter lab ${extra[@]+"${extra[@]}"} "$@"')
    assert not bash32_problems('# a comment about "${array[@]}"\nROOT="$(dirname "${BASH_SOURCE[0]}")"')


def test_scripts_need_nothing_newer_than_bash32():
    for script in SCRIPTS:
        assert bash32_problems(script.read_text()) == [], script.name


# --- Choosing the Python ---------------------------------------------------------------------

@pytest.mark.parametrize("pythons, chosen", [
    ({"python3.11": "3.11.7", "python3.12": "3.12.3", "python3.13": "3.13.1", "python3": "3.13.1"}, "python3.11"),
    ({"python3.11": "3.11.2", "python3.12": "3.12.3", "python3": "3.11.2"}, "python3.12"),  # Debian 12 + 3.12
    ({"python3.13": "3.13.5", "python3": "3.13.5"}, "python3.13"),  # Debian 13, Fedora, Homebrew
    ({"python3": "3.12.8"}, "python3"),
    ({"python3.11": "3.11.5"}, "python3.11"),
])
def test_find_python_prefers_311_and_accepts_312_and_313(tmp_path, tools, pythons, chosen):
    for name, version in pythons.items():
        fake_python(tmp_path / "bin", name, version)
    proc = sh("find_python", path=f"{tmp_path / 'bin'}:{tools}")
    assert (proc.returncode, proc.stdout.strip()) == (0, chosen), proc.stderr


@pytest.mark.parametrize("pythons, found", [
    ({"python3.11": "3.11.2", "python3": "3.11.2"}, "python3.11 is 3.11.2, python3 is 3.11.2"),  # Debian 12
    ({"python3": "3.14.0"}, "python3 is 3.14.0"),
    ({"python3": "3.10.12"}, "python3 is 3.10.12"),
    ({}, None),
])
def test_find_python_says_which_versions_it_accepts(tmp_path, tools, pythons, found):
    for name, version in pythons.items():
        fake_python(tmp_path / "bin", name, version)
    proc = sh("find_python", path=f"{tmp_path / 'bin'}:{tools}")
    assert proc.returncode == 1 and proc.stdout == ""
    message = proc.stderr
    assert "No suitable Python found" in message
    assert "Python 3.11 (3.11.5 or newer), 3.12 or 3.13" in message
    assert (f"({found})" in message) if found else "found (" not in message
    assert "PYTHON=/path/to/python3.x" in message and "uv python install 3.11" in message


def test_find_python_hint_on_macos_names_homebrew(tmp_path, tools):
    (tools / "uname").unlink()
    fake_python(tools, "uname", "Darwin")
    proc = sh("find_python", path=str(tools))
    assert proc.returncode == 1 and "brew install python@3.11" in proc.stderr and "apt-get" not in proc.stderr


def test_find_python_takes_PYTHON_when_accepted_and_refuses_it_otherwise(tmp_path, tools):
    good = fake_python(tmp_path / "elsewhere", "py-good", "3.12.1")
    old = fake_python(tmp_path / "elsewhere", "py-old", "3.11.4")
    fake_python(tmp_path / "bin", "python3.11", "3.11.9")
    path = f"{tmp_path / 'bin'}:{tools}"
    assert sh("find_python", path=path, PYTHON=str(good)).stdout.strip() == str(good)
    proc = sh("find_python", path=path, PYTHON=str(old))
    assert proc.returncode == 1
    assert f"PYTHON={old} is Python 3.11.4, but the course needs Python 3.11 (3.11.5 or newer)" in proc.stderr
    proc = sh("find_python", path=path, PYTHON=str(tmp_path / "nothing-here"))
    assert proc.returncode == 1 and "is not a Python that runs" in proc.stderr


def test_accepted_versions_agree_with_helpers_env():
    proc = sh('echo "$PYTHON_MINIMUMS"; accepted_pythons')
    minimums, words = proc.stdout.splitlines()
    assert [tuple(map(int, v.split("."))) for v in minimums.split()] == list(env.SUPPORTED_PYTHON)
    assert words == env.supported_pythons()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name] = version
    return pins


def test_python_minimums_are_what_the_pins_require():
    """The oldest 3.11, 3.12 and 3.13 release that every pinned package's Requires-Python accepts
    (read from the installed packages' metadata, offline): soupsieve makes it 3.11.5."""
    specifiers = []
    for name, version in _pins().items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not for this platform (nvidia-* on macOS)
        if dist.version == version:
            specifiers.append(SpecifierSet(dist.metadata.get("Requires-Python") or ""))
    assert len(specifiers) > 100, "the environment does not hold the pinned packages"
    minimums = []
    for minimum in env.SUPPORTED_PYTHON:
        oldest = next((micro for micro in range(40)
                       if all(f"{minimum[0]}.{minimum[1]}.{micro}" in spec for spec in specifiers)), None)
        assert oldest is not None, f"the pins install on no Python {minimum[0]}.{minimum[1]}"
        minimums.append((*minimum[:2], oldest))
    assert minimums == list(env.SUPPORTED_PYTHON)


# --- The environment: what lab and test install, the stamp, an unusable old environment ------

@pytest.fixture
def venv(tmp_path) -> Path:
    """A fake environment: bin/python is this Python, except that `-m pip` and `-m compileall`
    only log their arguments."""
    folder = tmp_path / "venv"
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.write_text(f'#!/bin/sh\ncase "$1 $2" in "-m pip"|"-m compileall") echo "$@" >>"{tmp_path}/pip.log"; '
                      f'exit 0;; esac\n'
                      f'exec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    return folder


def _ensure(venv: Path, extras: str) -> str:
    """Runs ensure_env with `extras`; returns the pip command it ran ('' when none)."""
    log = venv.parent / "pip.log"
    log.unlink(missing_ok=True)
    proc = sh(f"ensure_env {shlex.quote(extras)}", COURSE_VENV=str(venv))
    assert proc.returncode == 0, proc.stderr
    return log.read_text().strip() if log.exists() else ""


def _installed(extras: str, venv: Path) -> str:
    """What ensure_env runs to install: pip without bytecode, then compileall on every core."""
    spec = f"{REPO}[{extras}]" if extras else str(REPO)
    return (f"-m pip install --quiet --disable-pip-version-check --no-compile -c {REPO}/constraints.txt -e {spec}\n"
            f"-m compileall -qq -j 0 {venv}/lib")


def test_lab_installs_the_base_and_test_adds_the_extras(venv):
    assert _ensure(venv, "") == _installed("", venv)  # ./course.sh lab: what a student needs
    assert "extras=\n" in (venv / ".course-installed").read_text()
    assert _ensure(venv, "") == ""
    assert _ensure(venv, "grader,test") == _installed("grader,test", venv)  # ./course.sh test after lab
    assert "extras=grader,test\n" in (venv / ".course-installed").read_text()
    assert _ensure(venv, "grader,test") == ""
    assert _ensure(venv, "") == ""  # lab after test: nothing to do


def test_a_changed_pin_reinstalls_with_the_extras_installed_before(venv):
    (venv / ".course-installed").write_text("fingerprint=from-an-older-pyproject\nextras=grader,test\n")
    assert _ensure(venv, "") == _installed("grader,test", venv)  # lab keeps test's packages at their pins
    (venv / ".course-installed").write_text("0123abcd\n")  # the stamp of an older course.sh
    assert _ensure(venv, "") == _installed("", venv)


def test_an_environment_with_an_unusable_python_is_named(tmp_path):
    old = tmp_path / "venv"
    fake_python(old / "bin", "python", "3.11.2")
    proc = sh("ensure_env ''", COURSE_VENV=str(old))
    assert proc.returncode == 1 and "pip" not in proc.stdout
    assert f"{old} uses Python 3.11.2, but the pinned packages need Python 3.11 (3.11.5 or newer)" in proc.stderr
    assert f'rm -rf "{old}"' in proc.stderr


# --- lab and test themselves, with stubs, under set -u ----------------------------------------

@pytest.fixture
def fake_bin(tmp_path) -> Path:
    """`jupyter` and `python` that print their arguments."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    for name in ("jupyter", "python"):
        (folder / name).write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
        (folder / name).chmod(0o755)
    return folder


@pytest.mark.parametrize("uid, args, expected", [
    ("1000", "", []),  # what died on macOS's bash 3.2: no extra arguments at all
    ("0", "", ["--allow-root"]),
    ("1000", "--port 9999", ["--port", "9999"]),
])
def test_lab_starts_jupyterlab_on_the_overview(fake_bin, uid, args, expected):
    proc = sh(f"ensure_env() {{ :; }}\nid() {{ echo {uid}; }}\ncmd_lab {args}",
              path=f"{fake_bin}:{os.environ['PATH']}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == ["lab", "--ip=127.0.0.1", f"--ServerApp.root_dir={REPO}", *expected,
                                            "course/00_overview.ipynb"]


@pytest.mark.parametrize("args, expected", [("", []), ("tests/test_env.py -x", ["tests/test_env.py", "-x"])])
def test_test_runs_pytest_with_the_arguments(fake_bin, args, expected):
    script = (f"ensure_env() {{ echo \"extras: $1\"; }}\nensure_test_tools() {{ :; }}\nuname() {{ echo Darwin; }}\n"
              f"cmd_test {args}")
    proc = sh(script, path=f"{fake_bin}:{os.environ['PATH']}", COURSE_TEST_WORKERS="2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "extras: grader,test"
    assert lines[1:-1] == ["-m", "pytest", "-n", "2", "--durations=15", *expected]


# --- The tools the tests use: what to do when they are missing -----------------------------

def test_missing_tools_on_macos_point_to_homebrew_not_apt():
    proc = sh("test_tools_hint 'chromium postgresql bubblewrap shellcheck' Darwin")
    assert proc.returncode == 0
    hint = proc.stdout
    assert "apt-get" not in hint and "skipped" in hint
    assert "brew install postgresql@17 shellcheck" in hint
    assert "chromium bubblewrap always skip" in hint


def test_missing_tools_on_linux(tmp_path, tools):
    proc = sh("test_tools_hint 'chromium shellcheck' Linux", path=str(tools))
    assert "package manager" in proc.stdout and "apt-get" not in proc.stdout  # e.g. Fedora
    fake_python(tools, "apt-get", "")
    proc = sh("test_tools_hint 'chromium shellcheck' Linux", path=str(tools))
    assert "sudo apt-get install chromium shellcheck" in proc.stdout


def test_ensure_test_tools_looks_for_shellcheck(tmp_path, tools):
    proc = sh("missing_test_tools", path=str(tools))
    assert "shellcheck" in proc.stdout.split() and "bubblewrap" in proc.stdout.split()


# --- JupyterLab settings: no "get notified about Jupyter news?" pop-up ------------------------

NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def test_course_settings_switch_off_the_news_pop_up(tmp_path):
    """course.sh copies settings/jupyterlab-overrides.json where JupyterLab reads packaged defaults
    ({sys.prefix}/share/jupyter/lab/settings/overrides.d/); JupyterLab then defaults fetchNews to
    "false", a value its own schema accepts."""
    jsonschema = pytest.importorskip("jsonschema")
    from jupyterlab.commands import get_app_dir
    from jupyterlab_server.settings_utils import _get_overrides, get_settings

    proc = sh("install_lab_settings", COURSE_VENV=str(tmp_path / "venv"))
    assert proc.returncode == 0, proc.stderr
    proc = sh('echo "$LAB_SETTINGS_TARGET"')
    target = proc.stdout.strip()
    installed = tmp_path / "venv" / target
    assert installed.read_bytes() == (REPO / "settings" / "jupyterlab-overrides.json").read_bytes()

    # The place: this environment's app directory (sys.prefix/share/jupyter/lab) + settings/.
    app_dir = Path(get_app_dir())
    if "JUPYTERLAB_DIR" not in os.environ:
        assert app_dir == Path(sys.prefix) / "share" / "jupyter" / "lab"
    assert target.startswith("share/jupyter/lab/settings/overrides.d/") and target.endswith(".json")

    # The key and value: valid for the installed JupyterLab's schema, and taken as the default.
    overrides, error = _get_overrides(str(installed.parent.parent))
    assert not error
    schema = json.loads((app_dir / "schemas" / "@jupyterlab" / "apputils-extension" / "notification.json")
                        .read_text())
    jsonschema.validate(overrides[NOTIFICATION], schema)  # additionalProperties: false catches a wrong key
    settings, _ = get_settings(str(installed.parent.parent), str(app_dir / "schemas"), str(tmp_path / "user"),
                               schema_name=NOTIFICATION, overrides=overrides)
    assert settings["schema"]["properties"]["fetchNews"]["default"] == "false"
    assert settings["schema"]["properties"]["checkForUpdates"]["default"] is False


def test_ensure_env_installs_the_lab_settings(venv):
    _ensure(venv, "")
    assert (venv / "share/jupyter/lab/settings/overrides.d/pytorch-in-practice.json").is_file()


# --- JupyterHub's proxy (tests/test_grading_hub.py): npm, Node.js 20+ ------------------------

def _fake_node_and_npm(folder: Path, major: int) -> Path:
    """`node` of version `major`, and an `npm` that logs its arguments and makes node_modules/."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "node").write_text(f'#!/bin/sh\nif [ "$1" = -p ]; then echo {major}; else echo v{major}.1.0; fi\n')
    (folder / "npm").write_text('#!/bin/sh\necho "$*" >> "$NPM_LOG"\nmkdir -p node_modules\n')
    for name in ("node", "npm"):
        (folder / name).chmod(0o755)
    return folder


@pytest.fixture
def hub_root(tmp_path) -> Path:
    """A course root with the repository's hub/package-lock.json and nothing installed."""
    (tmp_path / "root" / "hub").mkdir(parents=True)
    shutil.copy(REPO / "hub" / "package-lock.json", tmp_path / "root" / "hub")
    return tmp_path / "root"


@pytest.mark.parametrize("major, said", [(None, "Node.js 20 or newer (node and npm) is not on PATH"),
                                         (18, "node v18.1.0 is older than 20")])
def test_hub_proxy_is_skipped_without_node_20(tmp_path, tools, hub_root, major, said):
    path = str(tools) if major is None else f"{_fake_node_and_npm(tmp_path / 'node', major)}:{tools}"
    proc = sh(f"ROOT={shlex.quote(str(hub_root))}\nensure_hub_proxy", path=path, NPM_LOG=str(tmp_path / "npm.log"))
    assert proc.returncode == 0, proc.stderr
    assert f"{said}: the JupyterHub test is skipped" in proc.stdout
    assert not (tmp_path / "npm.log").exists() and not (hub_root / "hub" / "node_modules").exists()


def test_hub_proxy_installs_the_lock_once(tmp_path, tools, hub_root):
    path = f"{_fake_node_and_npm(tmp_path / 'node', 20)}:{tools}"
    for _ in range(2):
        proc = sh(f"ROOT={shlex.quote(str(hub_root))}\nensure_hub_proxy", path=path, NPM_LOG=str(tmp_path / "npm.log"))
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "npm.log").read_text().splitlines() == ["ci --no-audit --no-fund --loglevel=error"]
    assert (hub_root / "hub" / "node_modules" / ".course-installed-lock").read_bytes() == \
        (REPO / "hub" / "package-lock.json").read_bytes()


def test_hub_proxy_is_pinned():
    lock = json.loads((REPO / "hub" / "package-lock.json").read_text())
    wanted = json.loads((REPO / "hub" / "package.json").read_text())["dependencies"]["configurable-http-proxy"]
    assert lock["packages"]["node_modules/configurable-http-proxy"]["version"] == wanted
    assert re.fullmatch(r"\d+\.\d+\.\d+", wanted), "an exact version, as constraints.txt pins Python packages"
