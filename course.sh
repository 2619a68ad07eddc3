#!/usr/bin/env bash
# The course's one entry point. Run it from anywhere:
#   ./course.sh lab     create .venv if missing, then start JupyterLab on the course overview
#   ./course.sh test    create .venv if missing, then run the whole test suite (what CI runs)
#   ./course.sh freeze  rewrite constraints.txt from the current .venv (maintainers only)
# Extra arguments after `test` go to pytest, e.g. ./course.sh test tests/test_check.py -x
#
# Written for macOS's bash 3.2 as well as bash 5: no arrays (before bash 4.4, `set -u` calls an
# empty "${array[@]}" unbound), no associative arrays, mapfile or ${var,,}. Sourced (as
# tests/test_course_sh.py does), the file only defines its functions; the tests also run shellcheck.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"
STAMP="$VENV/.course-installed"
# The course's JupyterLab defaults (no "Jupyter news?" pop-up, no update check), copied where
# JupyterLab reads packaged overrides: {sys.prefix}/share/jupyter/lab/settings/overrides.d/.
LAB_SETTINGS="$ROOT/settings/jupyterlab-overrides.json"
LAB_SETTINGS_TARGET="share/jupyter/lab/settings/overrides.d/pytorch-in-practice.json"

# The Pythons the pinned packages install on, in order of preference (3.11 is the tested one),
# each with the oldest release the pins accept: soupsieve (constraints.txt) requires 3.11.5, so
# Debian 12's 3.11.2 cannot install them. helpers/env.py says the same; tests/test_course_sh.py
# checks both against the Requires-Python of every pinned package.
PYTHON_MINIMUMS="3.11.5 3.12.0 3.13.0"

say() { printf '[course] %s\n' "$*"; }
die() { printf '[course] ERROR: %s\n' "$*" >&2; exit 1; }

python_version() {
    # The version (3.11.7) of the Python command $1; nothing when it does not run.
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true
}

python_accepted() {
    # Succeeds when the version $1 (3.11.7) is in a series of PYTHON_MINIMUMS, at or above its minimum.
    local version="$1" minimum
    for minimum in $PYTHON_MINIMUMS; do
        if [ "${version%.*}" = "${minimum%.*}" ] && [ "${version##*.}" -ge "${minimum##*.}" ]; then
            return 0
        fi
    done
    return 1
}

accepted_pythons() {
    # PYTHON_MINIMUMS in words: "3.11 (3.11.5 or newer), 3.12 or 3.13".
    local minimum text="" last=""
    for minimum in $PYTHON_MINIMUMS; do
        if [ -n "$last" ]; then text="${text:+$text, }$last"; fi
        last="${minimum%.*}"
        if [ "${minimum##*.}" != 0 ]; then last="$last ($minimum or newer)"; fi
    done
    if [ -n "$text" ]; then echo "$text or $last"; else echo "$last"; fi
}

python_install_hint() {
    if [ "$(uname -s)" = Darwin ]; then
        echo "Install one (Homebrew: brew install python@3.11, or the installer from python.org),"\
            "then run ./course.sh again, or set PYTHON=/path/to/python3.x"
    else
        echo "Install one (your package manager, python.org, pyenv, or uv: uv python install 3.11;"\
            "conda users: environment.yml), then run ./course.sh again, or set PYTHON=/path/to/python3.x"
    fi
}

find_python() {
    # Prints the Python to create the environment with: $PYTHON when set (it must be accepted),
    # else the first accepted one of python3.11, python3.12, python3.13 and python3 on PATH.
    local candidate version found="" candidates="" minimum
    if [ -n "${PYTHON:-}" ]; then
        version="$(python_version "$PYTHON")"
        if python_accepted "$version"; then
            echo "$PYTHON"
            return 0
        fi
        die "PYTHON=$PYTHON is ${version:+Python }${version:-not a Python that runs}, but the course needs" \
            "Python $(accepted_pythons). $(python_install_hint)"
    fi
    for minimum in $PYTHON_MINIMUMS; do candidates="$candidates python${minimum%.*}"; done
    for candidate in $candidates python3; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        version="$(python_version "$candidate")"
        if python_accepted "$version"; then
            echo "$candidate"
            return 0
        fi
        if [ -n "$version" ]; then found="$found, $candidate is $version"; fi
    done
    die "No suitable Python found${found:+ (${found#, })}. The course needs Python $(accepted_pythons):" \
        "the pinned packages (constraints.txt) do not install on other versions. $(python_install_hint)"
}

install_fingerprint() {
    cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | "$VENV/bin/python" -c \
        'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}

stamp_value() {
    # The value of `$1=...` in the stamp file, which records what was installed:
    #   fingerprint=<sha256 of pyproject.toml and constraints.txt>
    #   extras=grader,test        (empty for the students' base install)
    if [ -f "$STAMP" ]; then sed -n "s/^$1=//p" "$STAMP"; fi
}

extras_include() {
    # Succeeds when the comma-separated extras $1 include every one of $2.
    local extra
    for extra in $(echo "$2" | tr ',' ' '); do
        case ",$1," in
            *",$extra,"*) ;;
            *) return 1 ;;
        esac
    done
}

merge_extras() {
    # The extras of $1 and $2 together, sorted, comma-separated.
    echo "$1,$2" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -s -d , -
}

install_lab_settings() {
    local target="$VENV/$LAB_SETTINGS_TARGET"
    if ! cmp -s "$LAB_SETTINGS" "$target"; then
        mkdir -p "$(dirname "$target")"
        cp "$LAB_SETTINGS" "$target"
    fi
}

ensure_env() {
    # Creates the environment if missing and installs the pinned packages with the extras $1
    # (comma-separated; empty: what a student needs for `lab`). Extras an earlier run installed
    # are kept, and kept up to date, so `lab` after `test` does not reinstall anything.
    local extras="$1" python version fingerprint installed spec
    if [ ! -x "$VENV/bin/python" ]; then
        python="$(find_python)"
        say "Creating the course environment in $VENV with Python $(python_version "$python")" \
            "(first time only: about 2 minutes, 6.5 GB on Linux)"
        "$python" -m venv "$VENV" ||
            die "Could not create $VENV with $python (Debian/Ubuntu: sudo apt-get install python3-venv)." \
                "Remove the folder (rm -rf \"$VENV\") and run ./course.sh again"
    fi
    version="$(python_version "$VENV/bin/python")"
    python_accepted "$version" ||
        die "$VENV uses Python ${version:-(broken)}, but the pinned packages need Python $(accepted_pythons)." \
            "Remove it (rm -rf \"$VENV\") and run ./course.sh again; it is created anew with a suitable Python"
    fingerprint="$(install_fingerprint)"
    installed="$(stamp_value extras)"
    if [ "$(stamp_value fingerprint)" != "$fingerprint" ] || ! extras_include "$installed" "$extras"; then
        extras="$(merge_extras "$installed" "$extras")"
        spec="$ROOT${extras:+[$extras]}"
        say "Installing the pinned packages (constraints.txt) and the course's package${extras:+ with [$extras]}"
        local started=$SECONDS
        # pip compiles every module to bytecode one file at a time (a minute of the install);
        # compileall does the same on every core. Like pip, it leaves alone the few files that
        # do not compile (test data for newer Pythons), hence the `|| true`.
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
            -c "$ROOT/constraints.txt" -e "$spec"
        "$VENV/bin/python" -m compileall -qq -j 0 "$VENV/lib" || true
        printf 'fingerprint=%s\nextras=%s\n' "$fingerprint" "$extras" >"$STAMP"
        say "Installed in $((SECONDS - started)) s"
    fi
    install_lab_settings
    # nbgrader runs `alembic` through PATH, so the environment's bin/ must come first.
    export PATH="$VENV/bin:$PATH"
    export PYTHONNOUSERSITE=1
}

missing_test_tools() {
    # System packages the tests use (never downloaded browsers or services):
    #   chromium     the browser tests, driven by Playwright (Debian's /usr/bin/chromium)
    #   postgresql   the PostgreSQL gradebook test starts its own server on loopback
    #   bubblewrap   the grading sandbox (docs/grading-sandbox.md)
    #   ShellCheck   checks course.sh and .ci/run (tests/test_course_sh.py)
    local missing=""
    [ -x /usr/bin/chromium ] || missing="$missing chromium"
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 ||
        missing="$missing postgresql"
    command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
    command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
    echo "${missing# }"
}

test_tools_hint() {
    # What to tell someone who runs the tests without the tools $1 on the system $2 (uname -s).
    local missing="$1" tool brew="" linux_only="" text
    if [ "$2" = Darwin ]; then
        text="Missing $missing: the tests that need them are skipped."
        for tool in $missing; do
            case "$tool" in
                postgresql) brew="$brew postgresql@17" ;;
                shellcheck) brew="$brew shellcheck" ;;
                *) linux_only="$linux_only $tool" ;;
            esac
        done
        if [ -n "$linux_only" ]; then
            text="$text On macOS, those needing${linux_only} always skip (Debian packages, Linux only)."
        fi
        if [ -n "$brew" ]; then
            if [ -n "$linux_only" ]; then text="$text Homebrew enables the others"; else text="$text Homebrew enables them"; fi
            text="$text: brew install${brew}"
            case "$brew" in *postgresql*) text="$text (then put the bin/ of postgresql@17 on PATH)" ;; esac
        fi
        echo "$text"
    elif command -v apt-get >/dev/null 2>&1; then
        echo "Missing $missing: the tests that need them are skipped (sudo apt-get install $missing enables them)"
    else
        echo "Missing $missing: the tests that need them are skipped (install them with your package manager" \
            "to enable them)"
    fi
}

hub_proxy_problem() {
    # Why JupyterHub's proxy cannot be installed here (nothing when it can): it needs Node.js 20+.
    local major
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "Node.js 20 or newer (node and npm) is not on PATH"
        return 0
    fi
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if [ "${major:-0}" -lt 20 ]; then echo "node $(node --version 2>/dev/null) is older than 20"; fi
}

ensure_hub_proxy() {
    # configurable-http-proxy, JupyterHub's proxy, at the versions of hub/package-lock.json, in
    # hub/node_modules (git-ignored) for tests/test_grading_hub.py; again only when the lock changes.
    local dir="$ROOT/hub" problem
    if cmp -s "$dir/package-lock.json" "$dir/node_modules/.course-installed-lock"; then return 0; fi
    problem="$(hub_proxy_problem)"
    if [ -n "$problem" ]; then
        say "$problem: the JupyterHub test is skipped (install Node.js 20+, then run ./course.sh test again)"
        return 0
    fi
    say "Installing JupyterHub's proxy (hub/package-lock.json) with npm"
    if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
        cp "$dir/package-lock.json" "$dir/node_modules/.course-installed-lock"
    else
        say "npm could not install JupyterHub's proxy; the JupyterHub test will say so"
    fi
}

ensure_test_tools() {
    local missing
    ensure_hub_proxy
    missing="$(missing_test_tools)"
    [ -n "$missing" ] || return 0
    if [ "$(id -u)" = 0 ] && [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null 2>&1; then
        say "Installing $missing from Debian's packages for the tests (about a minute)"
        # shellcheck disable=SC2086  # $missing is a list of package names
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >/dev/null 2>&1 ||
            say "Could not install $missing; the tests that need them will say so"
    else
        say "$(test_tools_hint "$missing" "$(uname -s)")"
    fi
}

cmd_lab() {
    ensure_env ""
    if [ "$(id -u)" = 0 ]; then
        set -- --allow-root "$@"   # JupyterLab refuses root without it
    fi
    cd "$ROOT"
    say "Starting JupyterLab on http://127.0.0.1 (Ctrl-C to stop)"
    exec jupyter lab --ip=127.0.0.1 --ServerApp.root_dir="$ROOT" "$@" course/00_overview.ipynb
}

cmd_test() {
    local started=$SECONDS status=0
    ensure_env grader,test
    ensure_test_tools
    cd "$ROOT"
    # --durations: the slowest tests, printed at the end of every run (the CI budget, docs/authoring.md).
    set -- python -m pytest -n "${COURSE_TEST_WORKERS:-2}" --durations=15 "$@"
    # Two test workers share the cores: one thread per process avoids oversubscription,
    # which slows the course's small models many times over.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    # Prove that nothing downloads at run time: where we may (Linux as root, as in CI),
    # run the suite in a fresh network namespace that has only the loopback interface.
    if [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ] && [ "${COURSE_ALLOW_NETWORK:-0}" != 1 ] &&
        unshare --net true 2>/dev/null; then
        say "Running the tests offline (a network namespace with loopback only)"
        export COURSE_EXPECT_OFFLINE=1
        unshare --net -- bash -c 'ip link set lo up && exec "$@"' _ "$@" || status=$?
    else
        "$@" || status=$?
    fi
    say "The whole command, install included, took $((SECONDS - started)) s"
    return "$status"
}

cmd_freeze() {
    ensure_env grader,test
    {
        echo "# Exact versions of every package the course installs (pip freeze of a working environment)."
        echo "# Used as: pip install -c constraints.txt -e .   (./course.sh lab; ./course.sh test adds [grader,test])."
        echo "# Regenerate after changing pyproject.toml: ./course.sh freeze"
        "$VENV/bin/python" -m pip freeze --all --exclude pip --exclude-editable --disable-pip-version-check
    } >"$ROOT/constraints.txt"
    say "constraints.txt rewritten"
}

main() {
    case "${1:-}" in
        lab) shift; cmd_lab "$@" ;;
        test) shift; cmd_test "$@" ;;
        freeze) shift; cmd_freeze "$@" ;;
        *) echo "usage: ./course.sh lab | ./course.sh test [pytest args] | ./course.sh freeze" >&2; exit 2 ;;
    esac
}

# Sourced (`source course.sh`, as the tests do), the file only defines the functions above.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
