#!/usr/bin/env bash
# The course's one entry point. Run it from anywhere:
#   ./course.sh lab     create .venv if missing, then start JupyterLab on the course overview
#   ./course.sh test    create .venv if missing, then run the whole test suite (what CI runs)
#   ./course.sh freeze  rewrite constraints.txt from the current .venv (maintainers only)
# Extra arguments after `test` go to pytest, e.g. ./course.sh test tests/test_check.py -x
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"
STAMP="$VENV/.course-installed"

say() { printf '[course] %s\n' "$*"; }
die() { printf '[course] ERROR: %s\n' "$*" >&2; exit 1; }

find_python() {
    # Python 3.11 is the tested version; 3.12 works too.
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    die "Python 3.11 not found. Install it (python.org, pyenv or your package manager) or set PYTHON=/path/to/python3.11"
}

install_fingerprint() {
    cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | "$VENV/bin/python" -c \
        'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}

ensure_env() {
    if [ ! -x "$VENV/bin/python" ]; then
        local python
        python="$(find_python)"
        say "Creating the course environment in $VENV (first time only: about 2 minutes, 6.5 GB on Linux)"
        "$python" -m venv "$VENV"
    fi
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(install_fingerprint)" ]; then
        say "Installing the pinned packages (constraints.txt) and the helpers package"
        local started=$SECONDS
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c "$ROOT/constraints.txt" -e "$ROOT[test,grader]"
        install_fingerprint >"$STAMP"
        say "Installed in $((SECONDS - started)) s"
    fi
    # nbgrader runs `alembic` through PATH, so the environment's bin/ must come first.
    export PATH="$VENV/bin:$PATH"
    export PYTHONNOUSERSITE=1
}

ensure_test_tools() {
    # Debian packages the tests use (never downloaded browsers or services):
    #   chromium     the browser tests, driven by Playwright
    #   postgresql   the PostgreSQL gradebook test starts its own server on loopback
    #   bubblewrap   the grading sandbox (docs/grading-sandbox.md)
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
    command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
    [ "${#missing[@]}" = 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "Installing ${missing[*]} from Debian's packages for the tests (about a minute)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 ||
            say "Could not install ${missing[*]}; the tests that need them will say so"
    else
        say "Missing ${missing[*]}: the tests that need them are skipped (sudo apt-get install ${missing[*]} enables them)"
    fi
}

cmd_lab() {
    ensure_env
    local extra=()
    [ "$(id -u)" = 0 ] && extra+=(--allow-root)   # JupyterLab refuses root without it
    cd "$ROOT"
    say "Starting JupyterLab on http://127.0.0.1 (Ctrl-C to stop)"
    exec jupyter lab --ip=127.0.0.1 --ServerApp.root_dir="$ROOT" "${extra[@]}" "$@" \
        course/00_overview.ipynb
}

cmd_test() {
    local started=$SECONDS status=0
    ensure_env
    ensure_test_tools
    cd "$ROOT"
    local pytest=(python -m pytest -n "${COURSE_TEST_WORKERS:-2}" "$@")
    # Two test workers share the cores: one thread per process avoids oversubscription,
    # which slows the course's small models many times over.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    # Prove that nothing downloads at run time: where we may (Linux as root, as in CI),
    # run the suite in a fresh network namespace that has only the loopback interface.
    if [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ] && [ "${COURSE_ALLOW_NETWORK:-0}" != 1 ] &&
        unshare --net true 2>/dev/null; then
        say "Running the tests offline (a network namespace with loopback only)"
        export COURSE_EXPECT_OFFLINE=1
        unshare --net -- bash -c 'ip link set lo up && exec "$@"' _ "${pytest[@]}" || status=$?
    else
        "${pytest[@]}" || status=$?
    fi
    say "The whole command, install included, took $((SECONDS - started)) s"
    return "$status"
}

cmd_freeze() {
    ensure_env
    {
        echo "# Exact versions of every package the course installs (pip freeze of a working environment)."
        echo "# Used as: pip install -c constraints.txt -e '.[test]'   (./course.sh does this)."
        echo "# Regenerate after changing pyproject.toml: ./course.sh freeze"
        "$VENV/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check
    } >"$ROOT/constraints.txt"
    say "constraints.txt rewritten"
}

case "${1:-}" in
    lab) shift; cmd_lab "$@" ;;
    test) shift; cmd_test "$@" ;;
    freeze) shift; cmd_freeze "$@" ;;
    *) echo "usage: ./course.sh lab | ./course.sh test [pytest args] | ./course.sh freeze" >&2; exit 2 ;;
esac
