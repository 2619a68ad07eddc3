"""Grading that is never fooled: attacks on autograding, all graded in ONE nbgrader run.

Each student below is the reference solution of assignment 01 with one or a few attacks (plus,
where it matters, wrong answers that the attack tries to hide). One `nbgrader autograde` grades
them all with the course's protections (grader.autograde.TwoKernelExecute: the student's code
in one sandboxed kernel, the test cells in another that only receives data; RestoreNotebook,
intake, limits). For each we assert the score the honest work deserves, that the batch went on,
and the log line naming the student and what happened, where there is one to expect.

The control group: the same attacks graded with every protection off (grading.NO_PROTECTIONS:
nbgrader's stock Execute in the plain python3 kernel, no sanitizing, no limits, no intake). For
each attack, the check that passes above must fail there, and the damage its protection
prevents must be visible (a wrong answer credited, a leaked file, a classmate's notebook
overwritten, 40 GiB granted, 200 processes forked, ...). Attacks that could harm the machine
are bounded in the control: loops end after 12 s, the memory bomb only reserves its 40 GiB,
the fork bomb forks 200 sleeping children, output is 6 MiB, and the control's nbgrader gets a
HOME, IPYTHONDIR and TMPDIR of its own.

The students: honest; edit_tests, edit_meta (restored cells); patch_checks (checks replaced
and forged as "trusted"), patch_libs, fake_serve, tensor_tricks (TorchFunctionMode, a Tensor
subclass that reads the check's `expected`), ipython_tricks (execute_result injected, the
caller's namespace rewritten, errors never sent), lying_types (a quiz answer claiming to be a
str that equals everything); files (reads, writes, network); crash, exits (dead kernels), loop
(time limit, SIGINT ignored in a cell and in a test), bombs (memory, processes), output (in a
cell and during a test); plant, written (ipykernel_launcher.py, torch.py, ... submitted, or
written while graded); warns (a correct solution that warns); weird (objects whose repr raises
or hangs, a list that contains itself; protected run only); zz_fifo, zz_links (special files
and links made while graded, then generate_feedback); bad_json, bad_format, missing, renamed
(invalid submissions); forged_log (a line written to file descriptor 2 to frame another student
in the grading log, then 20 MiB of noise: the kernels' own output goes to a file of theirs).
A known hole, tested as a strict xfail (it passes the day the hole is closed, and the mark must
go): blind_recorder (check_not_called records in the student's kernel: best-effort).

The sandbox needs Debian's bubblewrap: missing, these tests skip (CI=true: fail), like the
browser tests do for Chromium.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat

import nbformat
import pytest

from grading import (MEMORY_BOMB, REPO, make_course_copy, nbgrader, nbgrader_unchecked, read_gradebook, replace_cell,
                     require_sandbox, submit, submit_files, unprotect)

pytestmark = pytest.mark.xdist_group("grading-attacks")

A = "01_tensors"
NB = "01_tensors.ipynb"
FULL = {"test_one_hot": 3.0, "test_normalize_rows": 4.0, "test_pairwise_distances": 6.0,
        "test_batched_matmul": 4.0, "test_to_model_input": 4.0, "test_q1": 2.0, "test_q2": 2.0}
TIMEOUT = 8        # s, the cell time limit of the protected run (the course's is 120 s; same mechanism)
CONTROL_LOOP = 12  # s, how long the control's "endless" loops run (longer than TIMEOUT: nothing stopped them)


def fill(code: str, **values) -> str:
    """`code` with each `<<name>>` replaced by repr(value): paths and numbers in attack code."""
    for name, value in values.items():
        code = code.replace(f"<<{name}>>", repr(value))
    return code


# --------------------------------------------------------------------------------------
# Wrong answers (each loses exactly its own test cell in an honest grading)
# --------------------------------------------------------------------------------------

# Wrong only in its dtype (int64, not float32): check_tensor is what catches it.
WRONG_ONE_HOT = """def one_hot(labels, num_classes):
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError("label out of range")
    return torch.nn.functional.one_hot(labels, num_classes)"""
WRONG_NORMALIZE = "def normalize_rows(x, eps=1e-12):\n    return x / x.norm(dim=0, keepdim=True).clamp_min(eps)"
CDIST = "def pairwise_distances(a, b):\n    return torch.cdist(a, b)"  # right values, forbidden call
LOOPED_PAIRWISE = """def pairwise_distances(a, b):
    return torch.stack([((point - b) ** 2).sum(dim=1).sqrt() for point in a])"""  # right values, a loop
# A mean where the sum belongs:
WRONG_BATCHED = "def batched_matmul(a, b):\n    return (a[:, :, :, None] * b[:, None, :, :]).mean(dim=2)"

# --------------------------------------------------------------------------------------
# Tampering with the checks (harmless now: the checks run in the tests' kernel)
# --------------------------------------------------------------------------------------

# The checks replaced, re-coded in place, rebound in the notebook, and forged as "trusted": code
# compiled under the file name of helpers/check.py and dressed up with functools.wraps.
PATCH_CHECKS = WRONG_ONE_HOT + """
import functools, helpers.check, numpy.testing
_forged = {}
exec(compile("def check_tensor(*args, **kwargs):\\n    return None\\n"
             "def check_shape(*args, **kwargs):\\n    return None\\n", helpers.check.__file__, "exec"), _forged)
helpers.check.check_tensor = functools.wraps(helpers.check.check_tensor)(_forged["check_tensor"])
check_tensor = helpers.check.check_tensor                             # the notebook's name
helpers.check.check_shape.__code__ = _forged["check_shape"].__code__  # re-coded in place
numpy.testing.assert_allclose = lambda *args, **kwargs: None
print("All tests passed")"""
# Appended to the correct one_hot; a wrong normalize_rows and a pairwise_distances with a Python
# loop follow: the patched torch.isclose passes the values, the blinded isinstance passes
# check_no_loops (it walks the ast of the function's source).
PATCH_LIBS = """
import builtins
torch.isclose = lambda a, b, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *args: True
torch.allclose = lambda *args, **kwargs: True
_isinstance = isinstance  # blind AST checks only (the kernel itself keeps working)
builtins.isinstance = lambda obj, cls: False if type(obj).__module__ == "ast" else _isinstance(obj, cls)
get_ipython().input_transformers_cleanup.append(lambda lines: lines)
print("All tests passed")"""
# grader.student_side.serve replaced: every request of the tests' kernel, name lookups included,
# is answered "All tests passed"; and helpers.check is replaced in this kernel.
FAKE_SERVE = WRONG_ONE_HOT + """
import socket, helpers.check
import grader.student_side
from grader import link, wire
def _fake_serve(path, nonce):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        link.send_frame(sock, nonce.encode())
        while link.recv_frame(sock) != b"end":
            link.send_frame(sock, wire.encode({"ok": "All tests passed", "restore": []}, None))
grader.student_side.serve = _fake_serve
for _name in helpers.check.__all__:
    if _name.startswith("check_"):
        setattr(helpers.check, _name, lambda *args, **kwargs: None)
        globals()[_name] = getattr(helpers.check, _name)"""
FAKE_PRINT = WRONG_ONE_HOT + '\nprint("✔ one_hot: visible tests passed\\nAll tests passed: 25/25")'

# --------------------------------------------------------------------------------------
# torch-level tricks
# --------------------------------------------------------------------------------------

# A Tensor subclass: every torch operation on it walks up the call stack to the check's local
# `expected` and runs on that instead, so check_tensor compares `expected` with itself.
ECHO_TENSOR = '''import sys
class _Echo(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        frame, target = sys._getframe(1), None
        while frame is not None and target is None:
            found = frame.f_locals.get("expected")
            if isinstance(found, torch.Tensor) and not isinstance(found, _Echo):
                target = found
            frame = frame.f_back
        with torch._C.DisableTorchFunctionSubclass():
            args = [(torch.Tensor.as_subclass(a, torch.Tensor) if target is None else target)
                    if isinstance(a, _Echo) else a for a in args]
            return func(*args, **(kwargs or {}))
def one_hot(labels, num_classes):
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError("label out of range")
    return torch.zeros(labels.shape[0], num_classes).as_subclass(_Echo)   # all zeros: wrong'''
# A TorchFunctionMode entered for good: from now on every comparison of tensors says "equal".
TORCH_MODE = WRONG_BATCHED + '''
from torch.overrides import TorchFunctionMode
class _AllEqual(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.isclose, torch.eq, torch.Tensor.eq, torch.Tensor.__eq__):
            shape = torch.broadcast_shapes(*(torch.as_tensor(a).shape for a in args[:2]))
            return torch.ones(shape, dtype=torch.bool)
        if func in (torch.allclose, torch.equal):
            return True
        return func(*args, **(kwargs or {}))
_AllEqual().__enter__()'''

# --------------------------------------------------------------------------------------
# IPython- and kernel-level tricks
# --------------------------------------------------------------------------------------

# An execute_result in the middle of a test cell, before its error: nbgrader reads the first
# execute_result as partial credit ("full marks" is no number: full credit; "4": 4 points).
INJECT_DISPLAYHOOK = '''def one_hot(labels, num_classes):
    get_ipython().displayhook("full marks")
    return torch.nn.functional.one_hot(labels, num_classes)   # int64: wrong'''
INJECT_SESSION = '''def normalize_rows(x, eps=1e-12):
    _kernel = get_ipython().kernel
    _kernel.session.send(_kernel.iopub_socket, "execute_result",
                         {"execution_count": 1, "data": {"text/plain": "4"}, "metadata": {}},
                         parent=_kernel.get_parent())
    return x / x.norm(dim=0, keepdim=True).clamp_min(eps)   # columns: wrong'''
# The caller's namespace rewritten while a test calls the function: check_tensor becomes a no-op
# for the rest of the test cell (and of the notebook).
REBIND_CALLER = '''import sys
def to_model_input(images):
    sys._getframe(1).f_globals["check_tensor"] = lambda *args, **kwargs: None
    return torch.tensor(images).reshape(images.shape[0], images.shape[3], images.shape[1],
                                        images.shape[2]).float() / 255   # reshape, not permute: wrong'''
# Errors are never sent: every cell "succeeds", tracebacks are not shown, and the kernel's
# session drops error messages and turns error replies into ok ones.
QUIET = '''q2_answer = "c"   # wrong
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
ExecutionResult.success = property(lambda self: True)
InteractiveShell.showtraceback = lambda self, *args, **kwargs: None
_kernel = get_ipython().kernel
_send = _kernel.session.send
def _no_errors(stream, msg_or_type, content=None, *args, **kwargs):
    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type["header"]["msg_type"]
    if kind == "error":
        return None
    if kind == "execute_reply" and (content or {}).get("status") == "error":
        content = {"status": "ok", "execution_count": content.get("execution_count"), "user_expressions": {},
                   "payload": []}
    return _send(stream, msg_or_type, content, *args, **kwargs)
_kernel.session.send = _no_errors'''
# A quiz answer that claims to be a str (to isinstance, directly and through the grader's proxy,
# whose types come from the class's __module__ and __qualname__) and equals everything.
LYING_ANSWER = '''class _AnyAnswer:
    __class__ = property(lambda self: str)
    def strip(self):
        return self
    def lower(self):
        return self
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __hash__(self):
        return 0
    def __repr__(self):
        return "'b'"
_AnyAnswer.__module__, _AnyAnswer.__qualname__ = "builtins", "str"
<<name>> = _AnyAnswer()'''
# KNOWN HOLE: check_not_called records the calls in the student's kernel, where the recorder it
# unpickles by name (helpers.check.called_functions) is the student's.
BLIND_RECORDER = CDIST + '''
import helpers.check
def _records_nothing(fn, *args, **kwargs):
    return fn(*args, **kwargs), []
helpers.check.called_functions = _records_nothing'''

# --------------------------------------------------------------------------------------
# Files, network, processes, memory, output
# --------------------------------------------------------------------------------------

# Reads the hidden tests, the gradebook and another student's work; opens the gradebook and
# source/ for writing (writing nothing: opening proves the access and keeps the control run's
# gradebook intact); writes files in the course, in another student's folder and outside the
# course; connects to a server the test runs on loopback (outside the kernel's network namespace).
FILES = '''q1_answer = "b"
import os, pathlib, socket
_course = pathlib.Path(<<course>>)
_report = []
for _path in [_course / "source" / "01_tensors" / "01_tensors.ipynb", _course / "gradebook.db",
              _course / "submitted" / "honest" / "01_tensors" / "01_tensors.ipynb",
              pathlib.Path(<<repo>>) / "source" / "01_tensors" / "01_tensors.ipynb"]:
    try:
        _path.read_bytes()
        _report.append(f"LEAK read {_path}")
    except OSError as error:
        _report.append(f"blocked read {type(error).__name__}")
for _path, _text in [(_course / "gradebook.db", ""), (_course / "source" / "01_tensors" / "01_tensors.ipynb", ""),
                     (_course / "pwned.txt", "pwned"), (_course / "submitted" / "honest" / "pwned.txt", "pwned"),
                     (pathlib.Path(<<outside>>), "pwned")]:
    try:
        with open(_path, "a") as _handle:
            _handle.write(_text)
        _report.append(f"LEAK write {_path}")
    except OSError as error:
        _report.append(f"blocked write {type(error).__name__}")
try:
    socket.create_connection(("127.0.0.1", <<port>>), timeout=3).close()
    _report.append("LEAK network")
except OSError as error:
    _report.append(f"blocked network {type(error).__name__}")
print("\\n".join(_report))'''
CRASH = 'import ctypes\nctypes.string_at(0)\nq2_answer = "a"'
EXIT_IN_TEST = "def normalize_rows(x, eps=1e-12):\n    import os\n    os._exit(1)   # when a test calls it"
OS_EXIT = 'import os\nos._exit(3)\nq1_answer = "b"'
SYSTEM_EXIT = 'raise SystemExit(0)\nq2_answer = "a"'
KEYBOARD = "def to_model_input(images):\n    raise KeyboardInterrupt\nraise KeyboardInterrupt"
# A loop that stops at the interrupt (the cell's time limit), one in a cell that ignores SIGINT,
# and one in a function that ignores SIGINT when a test calls it (its first call only). The
# first one is busy, as a student's endless loop is; the others sleep (the grader's answer, a
# killed kernel, is the same, and a sleep costs no CPU), and so do the control's (IDLE).
LOOP = '''def normalize_rows(x, eps=1e-12):
    return x
import time
_end = time.monotonic() + <<seconds>>
while time.monotonic() < _end:
    pass'''
SIGINT_IN_CELL = '''import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
def pairwise_distances(a, b):
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(dim=-1).sqrt()
_end = time.monotonic() + <<seconds>>
while time.monotonic() < _end:
    time.sleep(0.05)
signal.signal(signal.SIGINT, signal.default_int_handler)'''
IDLE = ("    pass", "    time.sleep(0.05)")  # the control's busy loop made idle: it only has to last
SIGINT_IN_TEST = '''_calls = 0
def batched_matmul(a, b):
    global _calls
    _calls += 1
    if _calls == 1:  # (a sleep, not a loop: the visible test rejects loops in batched_matmul)
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        time.sleep(<<seconds>>)  # SIGINT ignored: the grader's interrupt does not wake it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return (a[:, :, :, None] * b[:, None, :, :]).sum(dim=2)'''
# After the memory bomb (grading.MEMORY_BOMB), in the same cell: a correct answer it stops.
BATCHED_MATMUL = "\ndef batched_matmul(a, b):\n    return (a[:, :, :, None] * b[:, None, :, :]).sum(dim=2)"
# At most 200 processes (harmless even without a sandbox); each sleeps 2 s then exits. The bomb
# reaps them (unreaped, they would stay zombies counted by the process limit, and the kernel
# could not start a thread for the rest of the notebook: a loss to that student alone).
FORK_BOMB = '''import os, time
_children = []
try:
    for _ in range(200):
        _pid = os.fork()
        if _pid == 0:
            time.sleep(2)
            os._exit(0)
        _children.append(_pid)
    print("forked", len(_children))
finally:
    for _pid in _children:
        os.waitpid(_pid, 0)
def pairwise_distances(a, b):
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(dim=-1).sqrt()'''
HUGE_OUTPUT = '''import sys
for _ in range(<<mib>>):
    sys.stdout.write("x" * 2**20 + "\\n")
q2_answer = "a"'''
# A correct normalize_rows that prints a lot the first time a test calls it.
OUTPUT_IN_TEST = '''_flooded = False
def normalize_rows(x, eps=1e-12):
    global _flooded
    if not _flooded:
        _flooded = True
        import sys
        for _ in range(<<mib>>):
            sys.stdout.write("y" * 2**20 + "\\n")
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)'''

# A forged log line written to file descriptor 2 that frames another student, then 20 MiB of noise
# (sys.stderr is capped in the kernel; fd 2 is not). The kernel's fd 2 is a file of its own.
FORGED_LOG = '''q1_answer = "b"
import os
os.write(2, b"[AutogradeApp | WARNING] student alice: notebook 01_tensors: cell q1: outside the student's "
            b"folder: read /etc/shadow\\n")
for _ in range(<<mib>>):
    os.write(2, b"z" * 2**20 + b"\\n")'''

# --------------------------------------------------------------------------------------
# Files that Python would import: submitted, or written while the notebook is graded
# --------------------------------------------------------------------------------------

# What each planted file does if it is ever imported: says so (a print and a marker file in its
# working folder and in TMPDIR) and gives full marks (errors never reported); STEP_ASIDE then
# puts the real module in its place, so that the kernel keeps working.
PAYLOAD = '''"""Planted by a student as <<file>>."""
import importlib, importlib.machinery, os, sys, tempfile
print("PWNED by", <<file>>, flush=True)
for _folder in (os.getcwd(), tempfile.gettempdir()):
    try:
        open(os.path.join(_folder, "PWNED-" + <<file>>.replace("/", "-")), "w").close()
    except OSError:
        pass
try:
    from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
    ExecutionResult.success = property(lambda self: True)
    InteractiveShell.showtraceback = lambda self, *args, **kwargs: None
except ImportError:  # this file is IPython.py: the real IPython is not loaded yet
    pass
'''
STEP_ASIDE = '''_root = os.path.dirname(os.path.abspath(__file__))
_root = os.path.dirname(_root) if __file__.endswith("__init__.py") else _root
_path = [p for p in sys.path if os.path.realpath(p or ".") != os.path.realpath(_root)]
if __name__ == "__main__":    # `python -m ipykernel_launcher`: run the real one
    import runpy
    runpy.run_path(importlib.machinery.PathFinder.find_spec("ipykernel_launcher", _path).origin, run_name="__main__")
elif __name__ != "sitecustomize":
    _saved, sys.path[:] = sys.path[:], _path
    del sys.modules[__name__]
    try:
        sys.modules[__name__] = importlib.import_module(__name__)
    finally:
        sys.path[:] = _saved'''
PLANTED = ["ipykernel_launcher.py", "torch.py", "helpers/__init__.py", "sitecustomize.py", "IPython.py"]


def planted_files() -> dict[str, str]:
    return {name: fill(PAYLOAD + STEP_ASIDE, file=name) for name in PLANTED}


# Written by the student's code while it is graded: into the kernel's folder, the shared TMPDIR
# and IPython's startup folder (run by every kernel that starts with that profile).
WRITE_FILES = '''
import os, tempfile
for _folder in (os.getcwd(), tempfile.gettempdir()):
    for _name, _text in <<files>>.items():
        os.makedirs(os.path.dirname(os.path.join(_folder, _name)), exist_ok=True)
        with open(os.path.join(_folder, _name), "w") as _handle:
            _handle.write(_text)
_startup = get_ipython().profile_dir.startup_dir
os.makedirs(_startup, exist_ok=True)
with open(os.path.join(_startup, "00-pwned.py"), "w") as _handle:
    _handle.write(<<startup>>)'''
# A later cell shows whether any planted file ran.
MARKERS = '''q1_answer = "b"
import glob, os, tempfile
print("markers:", sorted(glob.glob("PWNED-*") + glob.glob(os.path.join(tempfile.gettempdir(), "PWNED-*"))))'''

# Special files and links, made by the kernel in its own folder while it is graded; the graded
# notebook itself replaced by a link to a classmate's submission.
FIFO = '''q1_answer = "b"
import os, stat
os.mkfifo("results.txt")
try:
    os.mknod("disk", stat.S_IFCHR | 0o600, os.makedev(1, 3))   # /dev/null here; as root, any disk
except OSError as error:
    print("mknod refused:", type(error).__name__)'''
LINKS = '''q1_answer = "b"
import os
for _name, _target in <<targets>>.items():
    os.symlink(_target, _name)
os.remove("01_tensors.ipynb")
os.symlink(<<classmate>>, "01_tensors.ipynb")'''

# --------------------------------------------------------------------------------------
# Honest work that must keep its marks, and odd objects the channel must survive
# --------------------------------------------------------------------------------------

# Correct answers whose functions emit warnings (text on stderr) when the tests call them.
WARNS_ONE_HOT = '''import warnings
def one_hot(labels, num_classes):
    warnings.warn("one_hot: a harmless warning", UserWarning)
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError("label out of range")
    encoded = torch.zeros(labels.shape[0], num_classes)
    encoded[torch.arange(labels.shape[0]), labels] = 1.0
    return encoded'''
WARNS_NORMALIZE = '''def normalize_rows(x, eps=1e-12):
    float(torch.tensor(1.0, requires_grad=True))   # UserWarning: requires_grad tensor to a scalar
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)'''
# A correct one_hot whose repr raises; a normalize_rows returning a list that contains itself; a
# correct pairwise_distances whose repr (computed when the tests look the name up) ignores
# SIGINT and never returns.
RAISING_REPR = '''class _OneHot:
    def __repr__(self):
        raise RuntimeError("no repr")
    def __call__(self, labels, num_classes):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError("label out of range")
        encoded = torch.zeros(labels.shape[0], num_classes)
        encoded[torch.arange(labels.shape[0]), labels] = 1.0
        return encoded
one_hot = _OneHot()'''
SELF_CONTAINING = "def normalize_rows(x, eps=1e-12):\n    nested = []\n    nested.append(nested)\n    return nested"
HANGING_REPR = '''class _Pairwise:
    def __repr__(self):
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
    def __call__(self, a, b):
        return (a[:, None, :] - b[None, :, :]).pow(2).sum(dim=-1).sqrt()
pairwise_distances = _Pairwise()'''


def _source(notebook, grade_id: str) -> str:
    return next(c.source for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _cells(notebook, replacements: dict[str, str]):
    for grade_id, code in replacements.items():
        notebook = replace_cell(notebook, grade_id, code)
    return notebook


def _edited_structure(solution):
    """Visible tests emptied (with wrong answers), a test deleted, one moved, one made markdown."""
    nb = _cells(solution, {"one_hot": WRONG_ONE_HOT, "test_one_hot": "pass",
                           "normalize_rows": WRONG_NORMALIZE, "test_normalize_rows": "assert True"})
    cells = nb.cells
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in cells]
    cells[ids.index("test_batched_matmul")].cell_type = "markdown"
    cells[ids.index("test_batched_matmul")].pop("outputs", None)
    cells[ids.index("test_batched_matmul")].pop("execution_count", None)
    moved = cells.pop(ids.index("test_q1"))
    cells.insert(0, moved)
    del cells[[c.metadata.get("nbgrader", {}).get("grade_id") for c in cells].index("test_pairwise_distances")]
    return nb


def _edited_metadata(solution):
    """Points of a passing test raised to 100; the test of a wrong answer unlocked and rewritten;
    the test of another wrong answer renamed and emptied."""
    nb = _cells(solution, {"to_model_input": "def to_model_input(images):\n    return torch.tensor(images)",
                           "q2": 'q2_answer = "c"'})
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "test_one_hot":
            meta["points"] = 100
        if meta.get("grade_id") == "test_to_model_input":
            meta.update(locked=False, checksum="0" * 32)
            cell.source = "print('ok')"
        if meta.get("grade_id") == "test_q2":
            meta["grade_id"] = "test_q2_renamed"
            cell.source = "pass"
    return nb


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _paths(course, outside_secret) -> dict[str, object]:
    """What the links point to: a classmate's submission, the gradebook, the configuration,
    the instructor's solutions, source/ and a file outside the course."""
    return {"classmate.txt": course / "submitted" / "honest" / A / NB, "grades.sqlite": course / "gradebook.db",
            "config.py": course / "nbgrader_config.py", "solutions.txt": course / "source" / A / NB,
            "source": course / "source", "outside.txt": outside_secret}


def _students(solution, course, port: int, outside, outside_secret, protected: bool) -> dict:
    """One submission per attack (the control run gets bounded loops and less output)."""
    forever = 10**9 if protected else CONTROL_LOOP
    mib = 200 if protected else 6
    targets = {name: str(path) for name, path in _paths(course, outside_secret).items()}
    written = WRITE_FILES.replace("<<files>>", repr(planted_files())).replace(
        "<<startup>>", repr(fill(PAYLOAD, file="ipython-startup")))
    students = {
        "honest": solution,
        "edit_tests": _edited_structure(solution),
        "edit_meta": _edited_metadata(solution),
        "patch_checks": _cells(solution, {"one_hot": PATCH_CHECKS}),
        "patch_libs": _cells(solution, {"one_hot": _source(solution, "one_hot") + PATCH_LIBS,
                                        "normalize_rows": WRONG_NORMALIZE, "pairwise_distances": LOOPED_PAIRWISE}),
        "fake_print": _cells(solution, {"one_hot": FAKE_PRINT}),
        "fake_serve": _cells(solution, {"one_hot": FAKE_SERVE}),
        "tensor_tricks": _cells(solution, {"one_hot": ECHO_TENSOR, "batched_matmul": TORCH_MODE}),
        "ipython_tricks": _cells(solution, {"one_hot": INJECT_DISPLAYHOOK, "normalize_rows": INJECT_SESSION,
                                            "to_model_input": REBIND_CALLER, "q2": QUIET}),
        "lying_types": _cells(solution, {"q1": LYING_ANSWER.replace("<<name>>", "q1_answer"),
                                         "q2": LYING_ANSWER.replace("<<name>>", "q2_answer")}),
        "blind_recorder": _cells(solution, {"pairwise_distances": BLIND_RECORDER}),
        "files": _cells(solution, {"q1": fill(FILES, course=str(course), repo=str(REPO), port=port,
                                              outside=str(outside))}),
        "crash": _cells(solution, {"normalize_rows": EXIT_IN_TEST, "q2": CRASH}),
        "exits": _cells(solution, {"q1": OS_EXIT, "q2": SYSTEM_EXIT, "to_model_input": KEYBOARD}),
        "loop": _cells(solution, {"normalize_rows": fill(LOOP if protected else LOOP.replace(*IDLE), seconds=forever),
                                  "pairwise_distances": fill(SIGINT_IN_CELL, seconds=forever),
                                  "batched_matmul": fill(SIGINT_IN_TEST, seconds=forever)}),
        "forged_log": _cells(solution, {"q1": fill(FORGED_LOG, mib=mib // 10)}),
        "bombs": _cells(solution, {"batched_matmul": MEMORY_BOMB + BATCHED_MATMUL, "pairwise_distances": FORK_BOMB}),
        "output": _cells(solution, {"q2": fill(HUGE_OUTPUT, mib=mib),
                                    "normalize_rows": fill(OUTPUT_IN_TEST, mib=50 if protected else 6)}),
        "plant": _cells(solution, {"one_hot": WRONG_ONE_HOT, "q1": MARKERS}),
        # The protected run kills the kernel after the files are written, so that a fresh one
        # starts among them; the control's kernel, never replaced, runs the correct answer.
        "written": _cells(solution, {"one_hot": _source(solution, "one_hot") + written, "q1": MARKERS,
                                     **({"normalize_rows": "import os\nos._exit(0)"} if protected else {})}),
        "warns": _cells(solution, {"one_hot": WARNS_ONE_HOT, "normalize_rows": WARNS_NORMALIZE}),
        "zz_fifo": _cells(solution, {"q1": FIFO}),
        "zz_links": _cells(solution, {"q1": LINKS.replace("<<targets>>", repr(targets)).replace(
            "<<classmate>>", repr(targets["classmate.txt"]))}),
    }
    if protected:  # the control has no channel: these odd objects matter to the protected run only
        students["weird"] = _cells(solution, {"one_hot": RAISING_REPR, "normalize_rows": SELF_CONTAINING,
                                              "pairwise_distances": HANGING_REPR})
    return students


def _snapshot(paths) -> dict[str, tuple[str, int]]:
    """(sha256, mode) of each file."""
    return {str(p): (_digest(p), stat.S_IMODE(os.stat(p).st_mode)) for p in paths if os.path.isfile(p)}


def _grade_attacks(tmp_path_factory, protected: bool) -> dict:
    require_sandbox()
    base = tmp_path_factory.mktemp("attacks" if protected else "control")
    course = make_course_copy(base, A)
    env = None
    if not protected:
        unprotect(course)
        # The control's kernel runs as this user without a sandbox: its own HOME, IPYTHONDIR and
        # TMPDIR keep what the attacks write inside the test's folder.
        env = {name: str(base / name.lower()) for name in ("HOME", "IPYTHONDIR", "TMPDIR")}
        for folder in env.values():
            os.makedirs(folder)
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    outside = base / "pwned-outside.txt"
    outside_secret = base / "secret-outside.txt"
    outside_secret.write_text("SECRET outside the course")
    # A server the kernel could reach only from the grader's network namespace (the test itself
    # runs offline). Listening is enough: the kernel's connect completes from the backlog.
    with socket.create_server(("127.0.0.1", 0)) as server:
        students = _students(solution, course, server.getsockname()[1], outside, outside_secret, protected)
        for student, notebook in students.items():
            submit(course, student, A, {NB: notebook})
        for name, text in planted_files().items():
            path = course / "submitted" / "plant" / A / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        broken = {}
        if protected:  # nbgrader itself fails these alone (there is no protection to switch off)
            broken = {"bad_json": {NB: "{ this is not json"},
                      "bad_format": {NB: json.dumps({"nbformat": 99, "cells": "nope"})},
                      "missing": {}, "renamed": {"my_work.ipynb": nbformat.writes(solution)}}
        for student, files in broken.items():
            submit_files(course, student, A, files)
        # (The gradebook is left out: grading writes to it.)
        targets = [p for n, p in _paths(course, outside_secret).items() if n != "grades.sqlite" and os.path.isfile(p)]
        before = {"source": _digest(course / "source" / A / NB), "repo_source": _digest(REPO / "source" / A / NB),
                  "targets": _snapshot(targets)}
        timeout = [f"--Execute.timeout={TIMEOUT}"] if protected else []
        proc = nbgrader_unchecked(course, "autograde", A, "--force", *timeout, timeout=900, env=env)
        (base / "autograde.log").write_text(proc.stdout + proc.stderr)  # for a failed test's post-mortem
    after = _snapshot(targets)
    # The control's nbgrader chmods through the links (444): give the gradebook back its mode.
    os.chmod(course / "gradebook.db", 0o644)
    # Feedback for the students who left special files and links behind (as an instructor would).
    feedback = nbgrader_unchecked(course, "generate_feedback", A, "--force", "--student=zz_*", timeout=600, env=env)
    graded = {}
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in [*students, *broken]:
            try:
                submission = gradebook.find_submission(A, student)
                graded[student] = (submission.score, {g.name: g.score for n in submission.notebooks for g in n.grades})
            except MissingEntry:
                graded[student] = (None, {})
    return {"course": course, "log": proc.stdout + proc.stderr, "graded": graded, "before": before, "after": after,
            "returncode": proc.returncode, "outside": outside, "outside_secret": outside_secret,
            "feedback_log": feedback.stdout + feedback.stderr, "notebooks": len(students) + len(broken)}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """All attacks, graded in one run with the course's protections."""
    return _grade_attacks(tmp_path_factory, protected=True)


@pytest.fixture(scope="module")
def unprotected(tmp_path_factory):
    """The same attacks (bounded where they would harm the machine), graded with none."""
    return _grade_attacks(tmp_path_factory, protected=False)


def _expect(result, student: str, zero: set[str]) -> None:
    score, cells = result["graded"][student]
    expected = {cell: (0.0 if cell in zero else points) for cell, points in FULL.items()}
    assert cells == expected, f"{student}: {cells} != {expected}\n{_log_lines(result, student)}"
    assert score == sum(expected.values())


def _log_lines(result, student: str) -> str:
    return "\n".join(line for line in result["log"].splitlines() if f"student {student}:" in line or
                     f"'{student}'" in line)


def _graded_notebook(result, student: str) -> nbformat.NotebookNode:
    return nbformat.read(result["course"] / "autograded" / student / A / NB, as_version=4)


def _cell_text(cell) -> str:
    return "".join(o.get("text", "") + json.dumps(o.get("data", {})) for o in cell.get("outputs", []))


def _printed(result, student: str) -> str:
    return "".join(_cell_text(c) for c in _graded_notebook(result, student).cells if c.cell_type == "code")


def _cell(result, student: str, grade_id: str):
    return next(c for c in _graded_notebook(result, student).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _errors(result, student: str) -> list[str]:
    return [o.ename for c in _graded_notebook(result, student).cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "error"]


def _entries(folder) -> dict[str, str]:
    """name -> kind ("file", "dir", "link", "fifo", "device", ...) of what is in `folder`."""
    kinds = {stat.S_ISREG: "file", stat.S_ISDIR: "dir", stat.S_ISLNK: "link", stat.S_ISFIFO: "fifo",
             stat.S_ISCHR: "device", stat.S_ISBLK: "device", stat.S_ISSOCK: "socket"}
    return {entry.name: next(kind for test, kind in kinds.items() if test(entry.stat(follow_symlinks=False).st_mode))
            for entry in os.scandir(folder)}


# --------------------------------------------------------------------------------------
# What a defeated attack looks like. Each check passes on the protected run (the tests just
# below) and fails on the unprotected one (test_without_its_protection_the_attack_succeeds).
# --------------------------------------------------------------------------------------

def check_edited_test_cells(result) -> None:
    # Emptied visible tests do not hide the wrong answers; deleted/moved/markdown tests run again.
    _expect(result, "edit_tests", {"test_one_hot", "test_normalize_rows"})
    lines = _log_lines(result, "edit_tests")
    assert "cell test_pairwise_distances: missing from the submission; restored" in lines
    assert "cells were moved" in lines
    assert "cell test_batched_matmul: type changed to markdown; restored" in lines


def check_edited_metadata(result) -> None:
    _expect(result, "edit_meta", {"test_to_model_input", "test_q2"})
    assert result["graded"]["edit_meta"][0] == 19.0
    assert "cell test_one_hot: nbgrader metadata edited (points)" in _log_lines(result, "edit_meta")
    assert "cell test_to_model_input: nbgrader metadata edited (locked)" in _log_lines(result, "edit_meta")
    assert "cell test_to_model_input: locked cell edited; restored" in _log_lines(result, "edit_meta")
    assert "cell test_q2: missing from the submission; restored" in _log_lines(result, "edit_meta")


def check_patched_checks(result) -> None:
    # Replaced, re-coded, rebound and forged checks live in the student's kernel; the tests' own
    # check_tensor still fails the wrong one_hot, and only it.
    _expect(result, "patch_checks", {"test_one_hot"})


def check_patched_libraries(result) -> None:
    # torch.isclose/equal/allclose and isinstance patched in the student's kernel: the wrong
    # normalize_rows and the looping pairwise_distances still lose their points.
    _expect(result, "patch_libs", {"test_normalize_rows", "test_pairwise_distances"})


def check_fake_serve(result) -> None:
    # A kernel that answers every request "All tests passed" answers nothing the tests can use:
    # every test after it scores 0 (nothing gained; its honest work cannot be judged either).
    _expect(result, "fake_serve", set(FULL))


def _tensor_tricks(result) -> None:
    _expect(result, "tensor_tricks", {"test_one_hot", "test_batched_matmul"})


def check_echo_tensor(result) -> None:
    # The check's `expected` is not on the student's kernel's stack: the Tensor subclass arrives
    # as the plain (all-zeros) tensor it is.
    _tensor_tricks(result)
    assert result["graded"]["tensor_tricks"][1]["test_one_hot"] == 0.0


def check_torch_function_mode(result) -> None:
    # The mode makes comparisons "equal" in the student's kernel only.
    _tensor_tricks(result)
    assert result["graded"]["tensor_tricks"][1]["test_batched_matmul"] == 0.0


def _ipython_tricks(result) -> None:
    _expect(result, "ipython_tricks", {"test_one_hot", "test_normalize_rows", "test_to_model_input", "test_q2"})


def check_injected_execute_results(result) -> None:
    # Values the student's code displays never reach the test cell: no execute_result anywhere.
    _ipython_tricks(result)
    graded = _graded_notebook(result, "ipython_tricks")
    assert not [o for c in graded.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "execute_result" and c.metadata.get("nbgrader", {}).get("grade")]


def check_rebound_caller(result) -> None:
    # The caller's frame in the student's kernel is the channel, not the test.
    _ipython_tricks(result)
    assert result["graded"]["ipython_tricks"][1]["test_to_model_input"] == 0.0


def check_errors_never_sent(result) -> None:
    # ExecutionResult.success, showtraceback and the kernel's session patched in the student's
    # kernel: the tests' kernel still reports the failed assertion.
    _ipython_tricks(result)
    assert any(o.output_type == "error" for o in _cell(result, "ipython_tricks", "test_q2").outputs)


def check_lying_types(result) -> None:
    # Claiming to be a str that equals everything: the quiz answers still score 0.
    _expect(result, "lying_types", {"test_q1", "test_q2"})


def check_blind_recorder(result) -> None:
    _expect(result, "blind_recorder", {"test_pairwise_distances"})


def check_files_and_network(result) -> None:
    _expect(result, "files", set())
    printed = _printed(result, "files")
    assert "LEAK" not in printed, printed
    assert printed.count("blocked read") == 4 and printed.count("blocked write") == 5, printed
    assert "blocked network" in printed, printed
    course = result["course"]
    assert _digest(course / "source" / A / NB) == result["before"]["source"]
    assert _digest(REPO / "source" / A / NB) == result["before"]["repo_source"]
    assert not (course / "pwned.txt").exists() and not (course / "submitted" / "honest" / "pwned.txt").exists()
    assert not result["outside"].exists()
    # The log names what was tried (not the write under /tmp: the kernel's /tmp is its own scratch space).
    lines = _log_lines(result, "files")
    for what in ["read " + str(course / "source" / A / NB), "read " + str(course / "gradebook.db"),
                 "read " + str(course / "submitted" / "honest" / A / NB), "read " + str(REPO / "source" / A / NB),
                 "write " + str(course / "gradebook.db"), "write " + str(course / "submitted" / "honest" / "pwned.txt"),
                 "connect to ('127.0.0.1'"]:
        assert f"student files: notebook 01_tensors: cell q1: outside the student's folder: {what}" in lines, lines


def check_forged_log(result) -> None:
    _expect(result, "forged_log", set())
    assert "student alice:" not in result["log"], "a student's code wrote a line of the grader's log"
    assert len(result["log"]) < 10_000_000, f"the grader's log is {len(result['log']) / 1e6:.0f} MB"


def _crash(result) -> None:
    _expect(result, "crash", {"test_normalize_rows", "test_q2"})


def check_crash(result) -> None:
    _crash(result)
    assert "cell q2: the kernel died" in _log_lines(result, "crash")


def check_exit_during_a_test(result) -> None:
    # os._exit inside the function a test calls: that test scores 0, the later ones still score.
    _crash(result)
    assert "cell test_normalize_rows: the student's kernel died during the test; restarting it" in \
        _log_lines(result, "crash")


def check_exits(result) -> None:
    _expect(result, "exits", {"test_q1", "test_q2", "test_to_model_input"})
    assert "cell q1: the kernel died" in _log_lines(result, "exits")


def _loop(result) -> None:
    _expect(result, "loop", {"test_normalize_rows", "test_pairwise_distances", "test_batched_matmul"})


def check_infinite_loop(result) -> None:
    _loop(result)
    assert "CellTimeoutError" in _errors(result, "loop")
    assert "cell normalize_rows: CellTimeoutError: stopped by the time limit per cell" in _log_lines(result, "loop")


def check_sigint_ignored_in_a_cell(result) -> None:
    # Only that cell loses (its correct pairwise_distances is not replayed); later answers score.
    _loop(result)
    assert "cell pairwise_distances: CellTimeoutError: stopped by the time limit per cell (Execute.timeout); " \
           "the kernel ignored the interrupt and was replaced" in _log_lines(result, "loop")


def check_sigint_ignored_in_a_test(result) -> None:
    _loop(result)
    assert "cell test_batched_matmul: the student's kernel was still busy in the student's code during the test; " \
           "restarting it" in _log_lines(result, "loop")


def check_memory_bomb(result) -> None:
    _expect(result, "bombs", {"test_batched_matmul", "test_pairwise_distances"})
    assert "MemoryError" in _errors(result, "bombs")
    assert "cell batched_matmul: MemoryError: stopped by the memory limit" in _log_lines(result, "bombs")


def check_fork_bomb(result) -> None:
    _expect(result, "bombs", {"test_batched_matmul", "test_pairwise_distances"})
    assert "BlockingIOError" in _errors(result, "bombs")
    assert "cell pairwise_distances: BlockingIOError: stopped by the process limit" in _log_lines(result, "bombs")


def check_huge_output(result) -> None:
    _expect(result, "output", set())
    path = result["course"] / "autograded" / "output" / A / NB
    assert path.stat().st_size < 1_000_000, path.stat().st_size
    assert "cell q2: output limit" in _log_lines(result, "output")


def check_output_during_a_test(result) -> None:
    _expect(result, "output", set())
    assert len(_cell_text(_cell(result, "output", "test_normalize_rows"))) < 300_000


def _no_pwned(result, student: str) -> None:
    printed = _printed(result, student)
    assert "PWNED" not in printed and "markers: []" in printed, printed[-2000:]
    assert "PWNED" not in result["log"]


def check_planted_files(result) -> None:
    # python -P: a submitted ipykernel_launcher.py, torch.py, helpers/, IPython.py or
    # sitecustomize.py is never imported, by either kernel.
    _expect(result, "plant", {"test_one_hot"})
    _no_pwned(result, "plant")


def check_files_written_while_graded(result) -> None:
    # The same files written into the kernel's folder, the shared TMPDIR and IPython's startup
    # folder: the fresh kernel that replaces the dead one imports none of them, and none reaches
    # autograded/ (the kernels work in a scratch copy of the student's folder).
    _expect(result, "written", {"test_normalize_rows"})
    _no_pwned(result, "written")
    assert "cell normalize_rows: the kernel died" in _log_lines(result, "written")
    assert set(_entries(result["course"] / "autograded" / "written" / A)) == {NB, "timestamp.txt"}
    assert not (result["course"] / "autograded" / "zz_links" / A / "PWNED-ipython-startup").exists()


def check_harmless_warnings(result) -> None:
    # Warnings are feedback (shown as plain text), never a verdict.
    _expect(result, "warns", set())
    assert "one_hot: a harmless warning" in _cell_text(_cell(result, "warns", "test_one_hot"))


def check_special_files(result) -> None:
    _expect(result, "zz_fifo", set())
    folder = result["course"] / "autograded" / "zz_fifo" / A
    assert _entries(folder) == {NB: "file", "timestamp.txt": "file"}, _entries(folder)
    assert (result["course"] / "feedback" / "zz_fifo" / A / "01_tensors.html").is_file(), result["feedback_log"][-3000:]


def check_links(result) -> None:
    _expect(result, "zz_links", set())
    course = result["course"]
    assert _entries(course / "autograded" / "zz_links" / A) == {NB: "file", "timestamp.txt": "file"}
    feedback = course / "feedback" / "zz_links" / A
    assert set(_entries(feedback).values()) == {"file"} and "grades.sqlite" not in _entries(feedback)
    assert (feedback / "01_tensors.html").is_file(), result["feedback_log"][-3000:]
    assert result["after"] == result["before"]["targets"], "a link target changed (content or mode)"
    lines = _log_lines(result, "zz_links")
    for target in _paths(course, result["outside_secret"]).values():
        assert f"cell q1: outside the student's folder: symlink {target}" in lines, lines


# --------------------------------------------------------------------------------------
# With the protections: every attack is defeated
# --------------------------------------------------------------------------------------

def test_honest_work_scores_full_marks(attacked, record_property):
    record_property("notebooks_executed", attacked["notebooks"])
    _expect(attacked, "honest", set())
    assert "outside the student's folder" not in _log_lines(attacked, "honest")
    assert "restarting" not in _log_lines(attacked, "honest")


def test_edited_deleted_moved_and_markdown_test_cells_are_restored(attacked):
    check_edited_test_cells(attacked)


def test_edited_metadata_is_restored(attacked):
    check_edited_metadata(attacked)


def test_replaced_and_forged_checks_change_nothing(attacked):
    check_patched_checks(attacked)


def test_patched_libraries_change_nothing(attacked):
    check_patched_libraries(attacked)


def test_a_fake_serve_gains_nothing(attacked):
    check_fake_serve(attacked)


def test_a_tensor_subclass_reading_the_checks_expected_value_gains_nothing(attacked):
    check_echo_tensor(attacked)


def test_a_torch_function_mode_gains_nothing(attacked):
    check_torch_function_mode(attacked)


def test_execute_results_injected_by_the_students_code_are_not_partial_credit(attacked):
    check_injected_execute_results(attacked)


def test_rewriting_the_callers_namespace_gains_nothing(attacked):
    check_rebound_caller(attacked)


def test_errors_are_reported_whatever_the_students_kernel_patches(attacked):
    check_errors_never_sent(attacked)


def test_an_answer_lying_about_its_type_and_equal_to_everything_scores_zero(attacked):
    check_lying_types(attacked)


@pytest.mark.xfail(strict=True, reason="KNOWN HOLE: check_not_called records in the student's kernel, which can "
                                       "replace helpers.check.called_functions (docs/grading-sandbox.md: best-effort)")
def test_a_blinded_call_recorder_does_not_hide_a_forbidden_call(attacked):
    check_blind_recorder(attacked)


def test_hidden_files_gradebook_other_students_and_network_are_out_of_reach(attacked):
    check_files_and_network(attacked)


def test_the_students_code_cannot_write_the_graders_log(attacked):
    check_forged_log(attacked)


def test_a_crashed_kernel_costs_only_its_cell(attacked):
    check_crash(attacked)


def test_an_exit_during_a_test_costs_only_that_test(attacked):
    check_exit_during_a_test(attacked)


def test_exits_cost_only_their_cells(attacked):
    check_exits(attacked)


def test_infinite_loop_is_stopped(attacked):
    check_infinite_loop(attacked)


def test_a_cell_ignoring_sigint_costs_only_that_cell(attacked):
    check_sigint_ignored_in_a_cell(attacked)


def test_a_function_ignoring_sigint_costs_only_the_test_that_calls_it(attacked):
    check_sigint_ignored_in_a_test(attacked)


def test_memory_bomb_is_stopped_by_the_limit(attacked):
    check_memory_bomb(attacked)


def test_fork_bomb_is_bounded_by_the_process_limit(attacked):
    check_fork_bomb(attacked)


def test_huge_output_is_cut_and_the_notebook_stays_small(attacked):
    check_huge_output(attacked)


def test_huge_output_during_a_test_is_cut(attacked):
    check_output_during_a_test(attacked)


def test_submitted_python_files_are_never_imported(attacked):
    check_planted_files(attacked)


def test_python_files_written_while_graded_are_never_imported_nor_kept(attacked):
    check_files_written_while_graded(attacked)


def test_a_correct_solution_that_warns_gets_full_marks(attacked):
    check_harmless_warnings(attacked)


def test_fifos_and_devices_made_while_graded_are_left_behind(attacked):
    check_special_files(attacked)


def test_links_made_while_graded_reach_nothing(attacked):
    check_links(attacked)


def test_odd_objects_cost_at_most_their_own_tests(attacked):
    # A raising repr is harmless (full marks for that correct one_hot); a list that contains
    # itself cannot be sent (0); a repr that hangs ignoring SIGINT when the tests look the name
    # up costs that test, and the kernel is replaced; later tests score.
    _expect(attacked, "weird", {"test_normalize_rows", "test_pairwise_distances"})
    assert "cell test_pairwise_distances: the student's kernel was still busy in the student's code during the " \
           "test; restarting it" in _log_lines(attacked, "weird")


def test_printing_all_tests_passed_changes_nothing(attacked):
    _expect(attacked, "fake_print", {"test_one_hot"})


def test_invalid_notebooks_fail_alone_with_a_clear_log_line(attacked):
    graded, log = attacked["graded"], attacked["log"]
    assert attacked["returncode"] != 0  # nbgrader reports the failed students at the end
    for student in ("bad_json", "bad_format", "renamed"):
        assert f"There was an error processing assignment '01_tensors' for student '{student}'" in log
        assert not graded[student][0]
    assert not graded["missing"][0]  # no notebook: nbgrader skips the student, with a warning
    assert "No notebooks were matched by" in log and "missing/01_tensors/*.ipynb" in log


def test_the_batch_went_on(attacked):
    # Every attacking student was graded, in one run, despite crashes, bombs and broken notebooks;
    # the only errors are the invalid notebooks'.
    for student, (score, _) in attacked["graded"].items():
        if student not in ("bad_json", "bad_format", "renamed", "missing"):
            assert score is not None, student
            assert f"for student '{student}'" not in attacked["log"], _log_lines(attacked, student)
    assert "GRADING STOPPED" not in attacked["log"]


# --------------------------------------------------------------------------------------
# Without them: each check above fails, for the reason its protection exists
# --------------------------------------------------------------------------------------

def _score(result, student: str) -> float | None:
    return result["graded"][student][0]


def _credited(result, student: str, *cells: str) -> None:
    got = result["graded"][student][1]
    assert all(got.get(cell) == FULL[cell] for cell in cells), f"{student}: {got}"


def harm_edited_test_cells(result) -> None:
    # The emptied visible test credits the wrong one_hot (3 points it does not deserve).
    _credited(result, "edit_tests", "test_one_hot")


def harm_edited_metadata(result) -> None:
    # 100 points for a 3-point test, and the rewritten test credits the wrong to_model_input.
    cells = result["graded"]["edit_meta"][1]
    assert cells["test_one_hot"] == 100.0 and cells["test_to_model_input"] == 4.0, cells


def harm_patched_checks(result) -> None:
    assert _score(result, "patch_checks") == 25.0, "the patched checks pass a wrong one_hot"


def harm_patched_libraries(result) -> None:
    # Wrong normalize_rows and a Python loop where none is allowed, credited in full.
    _credited(result, "patch_libs", "test_normalize_rows", "test_pairwise_distances")


def harm_fake_serve(result) -> None:
    # (No channel to fake here: its helpers.check patch alone credits the wrong one_hot.)
    assert _score(result, "fake_serve") == 25.0, result["graded"]["fake_serve"]


def harm_echo_tensor(result) -> None:
    _credited(result, "tensor_tricks", "test_one_hot")     # an all-zeros one_hot


def harm_torch_function_mode(result) -> None:
    _credited(result, "tensor_tricks", "test_batched_matmul")  # a mean instead of a sum


def harm_injected_execute_results(result) -> None:
    _credited(result, "ipython_tricks", "test_one_hot", "test_normalize_rows")


def harm_rebound_caller(result) -> None:
    _credited(result, "ipython_tricks", "test_to_model_input")


def harm_errors_never_sent(result) -> None:
    _credited(result, "ipython_tricks", "test_q2")


def harm_lying_types(result) -> None:
    _credited(result, "lying_types", "test_q1", "test_q2")


def harm_blind_recorder(result) -> None:
    _credited(result, "blind_recorder", "test_pairwise_distances")


def harm_files_and_network(result) -> None:
    printed = _printed(result, "files")
    assert printed.count("LEAK read") == 4, printed     # hidden tests, gradebook, another student, repo
    assert printed.count("LEAK write") == 5, printed    # gradebook, source/, course, another student, outside
    assert "LEAK network" in printed, printed
    assert (result["course"] / "pwned.txt").exists() and result["outside"].exists()


def harm_forged_log(result) -> None:
    assert "student alice: notebook 01_tensors: cell q1: outside the student's folder: read /etc/shadow" in \
        result["log"]


def harm_crash(result) -> None:
    # The dead kernel ends the whole notebook: all its honest points are lost, not 2.
    assert not _score(result, "crash"), result["graded"]["crash"]
    assert "There was an error processing assignment '01_tensors' for student 'crash'" in result["log"]


def harm_exit_during_a_test(result) -> None:
    # The kernel dies in test_normalize_rows, the first to call the exiting function: nothing
    # after it is graded (the segfault in q2 is never even reached).
    harm_crash(result)


def harm_exits(result) -> None:
    assert not _score(result, "exits"), result["graded"]["exits"]


def harm_infinite_loop(result) -> None:
    # Nothing stopped the loop: with a real infinite loop, grading would never end.
    assert "CellTimeoutError" not in _errors(result, "loop")
    assert _score(result, "loop") is not None


def harm_sigint_ignored_in_a_cell(result) -> None:
    # The cell ran its 12 s to the end: its answer was credited, nothing stopped it.
    harm_infinite_loop(result)
    _credited(result, "loop", "test_pairwise_distances")


def harm_sigint_ignored_in_a_test(result) -> None:
    harm_infinite_loop(result)
    _credited(result, "loop", "test_batched_matmul")


def harm_memory_bomb(result) -> None:
    assert "UNLIMITED: 40 GiB of memory granted" in _printed(result, "bombs")


def harm_fork_bomb(result) -> None:
    assert "forked 200" in _printed(result, "bombs")


def harm_huge_output(result) -> None:
    assert (result["course"] / "autograded" / "output" / A / NB).stat().st_size > 6_000_000


def harm_output_during_a_test(result) -> None:
    assert len(_cell_text(_cell(result, "output", "test_normalize_rows"))) > 6_000_000


def harm_planted_files(result) -> None:
    # The stock kernel runs the submitted ipykernel_launcher.py (python -m puts its folder first
    # on sys.path), then imports the submitted IPython.py, torch.py and helpers/; the wrong
    # one_hot gets full marks.
    folder = result["course"] / "autograded" / "plant" / A
    for name in ("ipykernel_launcher.py", "IPython.py", "torch.py", "helpers-__init__.py"):
        assert (folder / f"PWNED-{name}").exists(), sorted(_entries(folder))
    _credited(result, "plant", "test_one_hot")


def harm_files_written_while_graded(result) -> None:
    # They stay in autograded/, where the instructor's next kernel would import them, and the
    # IPython startup file runs in the kernels of the students graded after.
    course = result["course"]
    assert {"ipykernel_launcher.py", "torch.py", "IPython.py"} <= set(_entries(course / "autograded" / "written" / A))
    assert (course / "autograded" / "zz_links" / A / "PWNED-ipython-startup").exists()


def harm_harmless_warnings(result) -> None:
    # nbgrader alone scores a test cell 0 when anything reaches stderr: the correct answers lose.
    cells = result["graded"]["warns"][1]
    assert cells["test_one_hot"] == 0.0 and cells["test_normalize_rows"] == 0.0, cells


def harm_special_files(result) -> None:
    # A FIFO in autograded/ (whoever reads it waits forever); generate_feedback fails on it.
    course = result["course"]
    assert _entries(course / "autograded" / "zz_fifo" / A)["results.txt"] == "fifo"
    if os.geteuid() == 0:
        assert _entries(course / "autograded" / "zz_fifo" / A)["disk"] == "device"
    assert not (course / "feedback" / "zz_fifo" / A / "01_tensors.html").exists()


def harm_links(result) -> None:
    # nbgrader wrote the graded notebook through the link (a classmate's submission overwritten),
    # chmod'ed the targets and copied them into the feedback the student gets back: the
    # instructor's solutions, the gradebook, the configuration and a file outside the course.
    course = result["course"]
    targets = _paths(course, result["outside_secret"])
    assert result["after"][str(targets["classmate.txt"])] != result["before"]["targets"][str(targets["classmate.txt"])]
    feedback = course / "feedback" / "zz_links" / A
    assert (feedback / "solutions.txt").read_bytes() == (course / "source" / A / NB).read_bytes()
    assert (feedback / "outside.txt").read_text() == "SECRET outside the course"
    assert (feedback / "grades.sqlite").is_file() and (feedback / "config.py").is_file()


CONTROLS = {
    "edited test cells (RestoreNotebook, OverwriteCells)": (check_edited_test_cells, harm_edited_test_cells),
    "edited metadata (RestoreNotebook, OverwriteCells)": (check_edited_metadata, harm_edited_metadata),
    "replaced and forged checks (tests' kernel)": (check_patched_checks, harm_patched_checks),
    "patched libraries (tests' kernel)": (check_patched_libraries, harm_patched_libraries),
    "fake serve and helpers.check (tests' kernel)": (check_fake_serve, harm_fake_serve),
    "Tensor subclass reading expected (tests' kernel, wire)": (check_echo_tensor, harm_echo_tensor),
    "TorchFunctionMode (tests' kernel)": (check_torch_function_mode, harm_torch_function_mode),
    "injected execute_result (tests' kernel, outputs normalised)": (check_injected_execute_results,
                                                                    harm_injected_execute_results),
    "caller's namespace rewritten (tests' kernel)": (check_rebound_caller, harm_rebound_caller),
    "errors never sent (tests' kernel)": (check_errors_never_sent, harm_errors_never_sent),
    "answer lying about its type (proxy)": (check_lying_types, harm_lying_types),
    "files and network (sandbox)": (check_files_and_network, harm_files_and_network),
    "crash (dead-kernel recovery)": (check_crash, harm_crash),
    "exit during a test (dead-kernel recovery)": (check_exit_during_a_test, harm_exit_during_a_test),
    "exits (dead-kernel recovery)": (check_exits, harm_exits),
    "infinite loop (cell time limit)": (check_infinite_loop, harm_infinite_loop),
    "SIGINT ignored in a cell (kernel replaced)": (check_sigint_ignored_in_a_cell, harm_sigint_ignored_in_a_cell),
    "SIGINT ignored in a test (kernel replaced)": (check_sigint_ignored_in_a_test, harm_sigint_ignored_in_a_test),
    "memory bomb (address-space limit)": (check_memory_bomb, harm_memory_bomb),
    "fork bomb (process limit)": (check_fork_bomb, harm_fork_bomb),
    "huge output (output limit)": (check_huge_output, harm_huge_output),
    "huge output during a test (output limit)": (check_output_during_a_test, harm_output_during_a_test),
    "submitted Python files (python -P)": (check_planted_files, harm_planted_files),
    "Python files written while graded (python -P, scratch folder)": (check_files_written_while_graded,
                                                                      harm_files_written_while_graded),
    "harmless warnings (stderr is feedback)": (check_harmless_warnings, harm_harmless_warnings),
    "FIFO and device (scratch folder, intake)": (check_special_files, harm_special_files),
    "links made while graded (scratch folder, intake)": (check_links, harm_links),
    "forged grader log via fd 2 (kernel output to a file)": (check_forged_log, harm_forged_log),
}
KNOWN_HOLES = {"blinded call recorder (none: best-effort)": (check_blind_recorder, harm_blind_recorder)}


@pytest.mark.xdist_group("grading-attacks-control")  # its own worker: runs beside the protected batch
@pytest.mark.parametrize("attack", [*CONTROLS, *KNOWN_HOLES])
def test_without_its_protection_the_attack_succeeds(unprotected, attack, record_property):
    check, harm = {**CONTROLS, **KNOWN_HOLES}[attack]
    if attack == next(iter(CONTROLS)):
        record_property("notebooks_executed", unprotected["notebooks"])
    harm(unprotected)  # the damage the protection prevents is visible ...
    with pytest.raises(AssertionError):
        check(unprotected)  # ... and the test that passes with the protection fails


@pytest.mark.xdist_group("grading-attacks-control")
def test_without_protections_honest_work_and_a_printed_claim_grade_the_same(unprotected):
    # The control run grades honestly: differences above come from the attacks alone. And a
    # printed "All tests passed" fooled nothing even there (nbgrader scores errors, not text).
    _expect(unprotected, "honest", set())
    _expect(unprotected, "fake_print", {"test_one_hot"})


def test_without_bubblewrap_grading_works_with_a_reduced_sandbox(tmp_path):
    """No bwrap on PATH (a laptop, macOS): rlimits only, a clear warning, scores still exact."""
    import subprocess
    import sys

    course = make_course_copy(tmp_path, A)
    nbgrader(course, "generate_assignment", A, "--force")
    solution = nbformat.read(REPO / "source" / A / NB, as_version=4)
    submit(course, "honest", A, {NB: solution})
    submit(course, "bombs", A, {NB: _cells(solution, {"batched_matmul": MEMORY_BOMB + BATCHED_MATMUL})})
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no /usr/bin: no bwrap
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", A, "--force"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "course-sandbox: REDUCED SANDBOX (rlimits only): bwrap is not installed" in log
    result = read_gradebook(course, A, ["honest", "bombs"])
    assert result.total == {"honest": 25.0, "bombs": 21.0}, result.cells
    graded = nbformat.read(course / "autograded" / "bombs" / A / NB, as_version=4)
    assert any(o.get("ename") == "MemoryError" for c in graded.cells if c.cell_type == "code" for o in c.outputs)
