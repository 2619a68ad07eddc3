"""nbgrader preprocessors that make autograding exact (registered in nbgrader_config.py).

RestoreNotebook (sanitize step, before nbgrader's OverwriteCells, which then finds nothing to
fix): the graded notebook gets the instructor's cells in the instructor's order with the
gradebook's metadata, whatever the student did to them: deleted test cells come back, moved
cells go back, edited flags, points, ids and checksums are reset. The student's own extra
cells stay where they were (after the instructor cell they followed).

TwoKernelExecute (autograde step, replaces nbgrader's Execute): two sandboxed kernels per
notebook (grader.sandbox), in a private scratch copy of the student's folder:

* the student's kernel runs the solution cells and the student's own cells
  (grader.student_side);
* the tests' kernel runs the test cells, where no student code ever runs
  (grader.tests_side): the names a test uses come from the student's kernel as data or as
  proxies, through a channel that carries data only;
* the setup cell and the instructor's other locked cells run in both.

A test cell's points are earned when it runs to its end in the tests' kernel; what the
student's code prints there is shown as plain text, warnings and all, never read as a score.
A dead or stuck student kernel (os._exit, a crash, the memory limit, a loop that ignores
interrupts) costs only the cell it was running: it is killed, a fresh one replays the earlier
cells and grading goes on. Every such event, every cell a grading limit stopped (time, memory,
processes, file size) and what the student's code tried outside its folder is logged as
`student S: notebook N: cell C: what happened`.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any
from collections.abc import Iterator
from urllib.parse import urlparse

import nbformat
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer, Unicode

from grader import intake
from grader.sandbox import KERNEL_NAME, OUTPUT_LOG, pick_uid
from grader.student_side import cell_key


#: Errors that mean a grading limit stopped the cell (ename, text in evalue or None) -> which limit.
LIMIT_ERRORS = {("CellTimeoutError", None): "the time limit per cell (Execute.timeout)",
                ("MemoryError", None): "the memory limit (SandboxKernelManager.memory_limit_mib)",
                ("BlockingIOError", "Resource temporarily unavailable"):
                    "the process limit (SandboxKernelManager.max_processes)",
                ("OSError", "File too large"): "the file size limit (SandboxKernelManager.max_file_size_mib)"}


def _limit_hit(output: NotebookNode) -> str | None:
    """Which grading limit an error output reports, if any."""
    for (ename, text), limit in LIMIT_ERRORS.items():
        if output.get("ename") == ename and (text is None or text in str(output.get("evalue", ""))):
            return limit
    return None


def _who(resources: dict) -> str:
    info = resources.get("nbgrader", {})
    return f"student {info.get('student', '?')}: notebook {info.get('notebook', '?')}"


# --------------------------------------------------------------------------------------
# Sanitize: the instructor's cells, order and metadata
# --------------------------------------------------------------------------------------

def _without_hidden_tests(source: str) -> str:
    """A test cell as the release has it (nbgrader's ClearHiddenTests, on a copy)."""
    from nbgrader.preprocessors import ClearHiddenTests

    cell = nbformat.v4.new_code_cell(source)
    try:
        ClearHiddenTests()._remove_hidden_test_region(cell)
    except RuntimeError:  # unbalanced delimiters: nbgrader would not have released it
        return source
    return cell.source


def instructor_notebook(resources: dict, course_root: str, source_directory: str = "source") -> NotebookNode | None:
    """The instructor's version (source/) of the notebook being graded, or None."""
    info = resources.get("nbgrader", {})
    if not info.get("assignment") or not info.get("notebook"):
        return None
    root = course_root or os.path.dirname(urlparse(info.get("db_url", "")).path.replace("//", "/", 1))
    path = Path(root, source_directory, info["assignment"], f"{info['notebook']}.ipynb")
    return nbformat.read(path, as_version=4) if path.is_file() else None


def student_names(source: NotebookNode) -> list[str]:
    """The names the instructor's solution cells define at top level: the only names the tests'
    kernel ever looks up in the student's kernel (a test reading `check_tensor` gets its own,
    never a student's look-alike)."""
    names: set[str] = set()
    for cell in source.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return sorted(names)


class RestoreNotebook(NbGraderPreprocessor):
    """Rebuild the submitted notebook around the instructor's cells (see the module docstring)."""

    source_directory = Unicode("source", config=True, help="folder of the instructor's notebooks, "
                               "relative to the course root (the gradebook's folder) unless absolute")
    course_root = Unicode("", config=True, help="course root; default: the folder of the sqlite gradebook")

    def _source_order(self, resources: dict) -> list[str] | None:
        source = instructor_notebook(resources, self.course_root, self.source_directory)
        if source is None:
            self.log.warning("%s: instructor notebook not found; cell order not checked", _who(resources))
            return None
        return [c.metadata["nbgrader"]["grade_id"] for c in source.cells
                if c.metadata.get("nbgrader", {}).get("grade_id")]

    def preprocess(self, nb: NotebookNode, resources: dict):
        info = resources["nbgrader"]
        who = _who(resources)
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            sources = {c.name: c for c in notebook.source_cells}
            grades = {c.name: c.max_score for c in notebook.grade_cells}
            solutions = {c.name for c in notebook.solution_cells}
            tasks = {c.name: c.max_score for c in notebook.task_cells}
            order = self._source_order(resources) or [c.name for c in notebook.source_cells]
            known = [gid for gid in order if gid in sources]

            # Which cell is which: the first cell with a known id wins; the others are the student's.
            by_id: dict[str, NotebookNode] = {}
            extras: dict[str | None, list[NotebookNode]] = {None: []}
            anchor = None
            submitted_order = []
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if gid in sources and gid not in by_id:
                    by_id[gid] = cell
                    anchor = gid
                    submitted_order.append(gid)
                    extras.setdefault(gid, [])
                else:
                    if "nbgrader" in cell.metadata:
                        del cell.metadata["nbgrader"]  # a copied or renamed cell is just the student's cell
                    extras.setdefault(anchor, []).append(cell)

            if [g for g in submitted_order if g in known] != [g for g in known if g in by_id]:
                self.log.warning("%s: cells were moved; put back in the instructor's order", who)
            cells = list(extras[None])
            for gid in known:
                src = sources[gid]
                cell = by_id.get(gid)
                restored = cell is None
                if cell is None:
                    if gid in solutions:
                        self.log.warning("%s: cell %s: answer cell missing; the unanswered stub is graded", who, gid)
                    else:
                        self.log.warning("%s: cell %s: missing from the submission; restored from the gradebook",
                                         who, gid)
                    cell = (nbformat.v4.new_code_cell(src.source) if src.cell_type == "code"
                            else nbformat.v4.new_markdown_cell(src.source))
                elif cell.cell_type != src.cell_type:
                    self.log.warning("%s: cell %s: type changed to %s; restored", who, gid, cell.cell_type)
                    cell = (nbformat.v4.new_code_cell(cell.source) if src.cell_type == "code"
                            else nbformat.v4.new_markdown_cell(cell.source))
                meta = {"grade": gid in grades, "grade_id": gid, "locked": bool(src.locked),
                        "solution": gid in solutions, "task": gid in tasks, "schema_version": 3,
                        "checksum": src.checksum}
                if gid in grades or gid in tasks:
                    meta["points"] = float(grades.get(gid, tasks.get(gid)))
                old = cell.metadata.get("nbgrader", {})
                changed = sorted(k for k in ("grade", "solution", "locked", "task", "points")
                                 if k in meta and k in old and old[k] != meta[k] or (k in meta) != (k in old))
                if changed and not restored:
                    self.log.warning("%s: cell %s: nbgrader metadata edited (%s); restored", who, gid,
                                     ", ".join(changed))
                cell.metadata["nbgrader"] = meta
                if src.locked and cell.source != src.source:
                    # The student's copy lacks the hidden tests: only other differences are edits.
                    if cell.source.strip() != _without_hidden_tests(src.source).strip():
                        self.log.warning("%s: cell %s: locked cell edited; restored", who, gid)
                    cell.source = src.source
                cells.append(cell)
                cells.extend(extras.get(gid, []))
            nb.cells = cells
        return nb, resources

    def preprocess_cell(self, cell, resources, index):  # pragma: no cover - preprocess does the work
        return cell, resources


# --------------------------------------------------------------------------------------
# Autograde: two kernels, the output limit, dead and stuck kernels
# --------------------------------------------------------------------------------------

class GradingMisconfigured(BaseException):
    """The grading kernels cannot start or import the course's packages: a problem of the set-up,
    not of any submission. A BaseException, because nbgrader grades the next student after any
    Exception, and every student would then fail the same way: this stops the batch."""


def _route(cell: NotebookNode) -> str:
    """Which kernel runs a code cell: 'tests', 'student' or 'both'."""
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return "tests"
    if meta.get("locked") and not meta.get("solution"):
        return "both"   # the setup cell and the instructor's other read-only code
    return "student"    # solution cells and the student's own cells


def _copy_regular_files(source: str, dest: str) -> None:
    """The student's folder, for the kernels to work in: folders and regular files with one name,
    copied without following links (grader.intake); anything else is left out."""
    os.makedirs(dest)
    src_fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    dst_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        intake.copy_tree(src_fd, dst_fd, skip=lambda name, rel, st: intake.kind(st) is not None)
    finally:
        os.close(src_fd)
        os.close(dst_fd)


class TwoKernelExecute(Execute):
    """nbgrader's Execute with the test cells in a kernel of their own (see the module docstring)."""

    max_cell_output_kib = Integer(100, config=True, help=(
        "Output (text, images, errors) one cell may leave in the graded notebook, KiB; the rest is "
        "dropped with a note, so a cell printing 200 MB leaves a small notebook (-1: no limit)"))
    max_kernel_restarts = Integer(3, config=True, help="fresh student kernels per notebook after a dead one")
    course_root = Unicode("", config=True, help="course root (for source/); default: the folder of the "
                          "sqlite gradebook")
    serve_grace_s = Integer(10, config=True, help=(
        "seconds the student's kernel has, after a test cell ended, to stop serving it; "
        "longer means it is stuck in the student's code, and it is replaced"))

    def __init__(self, *args: Any, **kwargs: Any):
        from grader.sandbox import SandboxKernelManager

        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)
        self._peaks: dict[str, float] = {}    # role -> largest peak address space of its kernels, MiB
        self.shutdown_kernel = "immediate"  # nothing to save in a grading kernel; saves ~1 s each

    # -- the notebook's workspace and kernels -----------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        resources = resources or {}
        self._who = _who(resources)
        self._output_bytes: dict[int, int] = {}
        self._truncated: dict[int, int] = {}
        self._student_cells: list[str] = []   # what ran in the student's kernel (replayed after a restart)
        self._tests_setup: list[str] = []     # instructor cells that ran in the tests' kernel
        self._restarts = 0
        self._restart_needed = False  # set inside a coroutine; the restart itself runs outside it
        self._student_gone = False
        self._tests: tuple[Any, Any] | None = None
        self._managers: list = []
        self._peaks = {}   # per notebook
        if self.kernel_name != KERNEL_NAME:
            self.log.warning("%s: grading kernel is %r, not the sandbox %r", self._who, self.kernel_name,
                             KERNEL_NAME)
        real_dir = resources.get("metadata", {}).get("path") or os.getcwd()
        self._real_dir = os.path.realpath(real_dir)
        self._workspace = tempfile.mkdtemp(prefix="course-grading-")
        os.chmod(self._workspace, 0o755)
        self._scratch = os.path.join(self._workspace, "student")
        _copy_regular_files(self._real_dir, self._scratch)
        self._shared = [os.path.join(self._workspace, "tmp"), os.path.join(self._workspace, "channel")]
        for folder in self._shared:
            os.makedirs(folder)
        os.chmod(self._shared[0], 0o1777)
        self._socket = os.path.join(self._shared[1], "tests.sock")
        self._uid = pick_uid() if hasattr(os, "geteuid") and os.geteuid() == 0 else -1
        source = instructor_notebook(resources, self.course_root)
        self._student_names = student_names(source) if source is not None else None
        if self._student_names is None:
            self.log.warning("%s: instructor notebook not found: the tests may look up any name in the "
                             "student's kernel", self._who)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._stop_tests_kernel()
            self._log_peaks()
            for manager in self._managers:  # dead kernels are not always cleaned up by jupyter_client
                private = getattr(manager, "_private_dir", None)
                if private:
                    shutil.rmtree(private, ignore_errors=True)
            shutil.rmtree(self._workspace, ignore_errors=True)

    def _new_manager(self, role: str):
        manager = self.kernel_manager_class(kernel_name=self.kernel_name, config=self.config)
        manager.role = role
        manager.workspace = self._shared
        manager.tests_socket = self._socket
        manager.notebook_dir = self._real_dir
        manager.kernel_uid = self._uid
        self._managers.append(manager)
        return manager

    def create_kernel_manager(self):
        self.km = self._new_manager("student")
        return self.km

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self._student_names is not None:
            env["COURSE_STUDENT_NAMES"] = json.dumps(self._student_names)
        if self.max_cell_output_kib >= 0:
            # The kernel drops output far beyond the limit itself (see student_side.cap_output).
            env["COURSE_OUTPUT_CAP"] = str(4 * self.max_cell_output_kib * 1024)
        return env

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        kwargs["cwd"] = self._scratch
        kwargs["env"] = self._env()
        await super().async_start_new_kernel(**kwargs)
        if self._tests is None:
            self._tests = (await self._launch_tests_kernel(), None)

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self):
        try:
            kc = await super().async_start_new_kernel_client()
            # The student's kernel imports torch while the tests' kernel starts (in parallel).
            checks = [(self.kc, "student's", "import torch, helpers, grader.student_side")]
            pending = [self.kc.execute(checks[0][2], silent=True, store_history=False, allow_stdin=False)]
            if self._tests is not None and self._tests[1] is None:
                tests_kc = await self._connect(self._tests[0])
                self._tests = (self._tests[0], tests_kc)
                checks.append((tests_kc, "tests'", "import torch, helpers.check, grader.tests_side"))
                pending.append(tests_kc.execute(checks[1][2], silent=True, store_history=False, allow_stdin=False))
            for (client, role, code), msg_id in zip(checks, pending):
                await self._check_imports(client, role, code, msg_id)
        except GradingMisconfigured:
            raise
        except RuntimeError as error:
            raise GradingMisconfigured(self._misconfigured(f"a grading kernel did not start ({error})")) from None
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def _launch_tests_kernel(self):
        """Start the tests' kernel, in an empty folder of its own; its manager."""
        manager = self._new_manager("tests")
        cwd = os.path.join(self._workspace, "tests")
        os.makedirs(cwd, exist_ok=True)
        await ensure_async(manager.start_kernel(extra_arguments=self.extra_arguments, cwd=cwd, env=self._env()))
        return manager

    async def _connect(self, manager):
        """A client of `manager`'s kernel, once the kernel answers."""
        client = manager.client()
        await ensure_async(client.start_channels())
        await ensure_async(client.wait_for_ready(timeout=self.startup_timeout))
        client.allow_stdin = False
        return client

    def _kernel_output(self) -> str:
        """The tail of what the kernels printed themselves (their stderr: start-up errors)."""
        tails = []
        for manager in self._managers:
            path = os.path.join(getattr(manager, "_private_dir", "") or "", OUTPUT_LOG)
            try:
                with open(path, "rb") as handle:
                    handle.seek(max(0, os.path.getsize(path) - 1500))
                    text = handle.read().decode(errors="replace").strip()
            except OSError:
                continue
            if text:
                tails.append(f"[{manager.role}'s kernel] ...{text[-1500:]}")
        return ("\nWhat the kernels printed:\n" + "\n".join(tails)) if tails else ""

    def _misconfigured(self, problem: str) -> str:
        message = (f"GRADING STOPPED: {problem}. This is the grading set-up, not a submission: every student "
                   "would fail the same way. The sandboxed kernels must be able to run the course environment's "
                   "Python and import torch, helpers and grader: put the environment (and the course's "
                   "packages) in a folder every user can read that is not under /tmp (the sandbox gives each "
                   "kernel an empty /tmp), nor under a folder listed in SandboxKernelManager.hide_paths; see "
                   "docs/grading-sandbox.md (a MemoryError or 'failed to map segment' means "
                   "SandboxKernelManager.memory_limit_mib is too small for torch)." + self._kernel_output())
        self.log.error(message)
        return message

    async def _check_imports(self, kc, role: str, code: str, msg_id: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                reply = await ensure_async(kc.shell_channel.get_msg(timeout=max(0.1, deadline - time.monotonic())))
            except Empty:
                raise GradingMisconfigured(self._misconfigured(f"the {role} kernel did not answer")) from None
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"]["status"] != "ok":
            content = reply["content"]
            raise GradingMisconfigured(self._misconfigured(
                f"the {role} kernel cannot `{code}`: {content.get('ename')}: {content.get('evalue')}"))

    # -- memory: how close honest work comes to the limit -------------------------------------
    def _note_peak(self, manager: Any) -> None:
        """Remember the peak address space of `manager`'s kernel, just before it stops."""
        reader = getattr(manager, "peak_address_space_mib", None)
        peak = reader() if reader is not None else None
        if peak is not None:
            role = getattr(manager, "role", "student")
            self._peaks[role] = max(peak, self._peaks.get(role, 0.0))

    def _log_peaks(self) -> None:
        """One line per notebook: the peak address space of each kernel against the memory limit
        (SandboxKernelManager.memory_limit_mib), so an instructor sees how much room honest work
        leaves (docs/grading-sandbox.md)."""
        if not self._peaks:
            return
        limit = getattr(self._managers[0], "memory_limit_mib", 0) if self._managers else 0
        names = {"student": "the student's kernel", "tests": "the tests' kernel"}
        peaks = ", ".join(f"{names[role]} {self._peaks[role]:.0f} MiB" for role in names if role in self._peaks)
        self.log.info("%s: peak address space: %s (limit %s)", self._who, peaks,
                      f"{limit} MiB" if limit else "none")

    async def _async_cleanup_kernel(self) -> None:
        if self.km is not None:
            self._note_peak(self.km)
        await super()._async_cleanup_kernel()

    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    def _stop_tests_kernel(self) -> None:
        if self._tests is None:
            return
        manager, client = self._tests
        self._note_peak(manager)
        self._tests = None
        try:
            if client is not None:
                client.stop_channels()
            run_sync(manager.shutdown_kernel)(now=True)
        except Exception as error:  # noqa: BLE001 - already gone
            self.log.debug("stopping the tests' kernel: %s", error)

    @contextmanager
    def _on_tests_kernel(self) -> Iterator[None]:
        """Let nbclient's machinery execute on the tests' kernel for a while."""
        saved = self.km, self.kc
        self.km, self.kc = self._tests
        try:
            yield
        finally:
            self.km, self.kc = saved

    # -- output limit ---------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        limit = self.max_cell_output_kib * 1024
        if limit < 0:
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._output_bytes.get(cell_index, 0)
        self._output_bytes[cell_index] = used + size
        if used + size > limit and msg["msg_type"] != "error":
            self._truncated[cell_index] = self._truncated.get(cell_index, 0) + size
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _note_truncation(self, cell: NotebookNode, index: int, label: str) -> None:
        dropped = self._truncated.pop(index, 0)
        if dropped:
            note = (f"\n... output truncated: this cell printed about {dropped / 1e6:.1f} MB more than the "
                    f"{self.max_cell_output_kib} KiB a graded cell may keep ...\n")
            cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=note))
            self.log.warning("%s: cell %s: output limit: about %.1f MB of output dropped", self._who, label,
                             dropped / 1e6)

    # -- cells ------------------------------------------------------------------------
    def _label(self, cell: NotebookNode, index: int) -> str:
        return cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{index}"

    def _error(self, cell: NotebookNode, ename: str, evalue: str) -> None:
        cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                                   traceback=[f"{ename}: {evalue}"]))

    def _log_limits(self, cell: NotebookNode, label: str) -> None:
        for output in cell.outputs:
            limit = _limit_hit(output) if output.get("output_type") == "error" else None
            if limit:
                self.log.warning("%s: cell %s: %s: stopped by %s", self._who, label, output.ename, limit)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        label = self._label(cell, index)
        route = _route(cell)
        if route in ("student", "both"):
            self._run_in_student(cell, resources, index, label)
        if route in ("tests", "both"):
            self._run_in_tests(cell, resources, index, label, keep=route == "both")
        return cell, resources

    def _run_in_student(self, cell, resources, index, label) -> None:
        if self._student_gone:
            cell.outputs = []
            self._error(cell, "KernelDied", "not run: the student's grading kernel could not be restarted")
            return
        try:
            super().preprocess_cell(cell, resources, index)
        except (DeadKernelError, CellTimeoutError) as error:
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"]
            if isinstance(error, DeadKernelError):
                self._error(cell, "KernelDied", "the grading kernel died while running this cell (os._exit, a "
                            "crash, or the memory limit); the cell scores 0 and the rest is graded in a fresh kernel")
                self.log.warning("%s: cell %s: the kernel died (%s); restarting it", self._who, label,
                                 str(error).splitlines()[0] if str(error) else type(error).__name__)
            else:
                self._error(cell, "CellTimeoutError", self.error_on_timeout.get("evalue", "this cell was stopped")
                            + " (it ignored the interrupt, so its kernel was replaced)")
                self.log.warning("%s: cell %s: CellTimeoutError: stopped by %s; the kernel ignored the interrupt "
                                 "and was replaced", self._who, label, LIMIT_ERRORS[("CellTimeoutError", None)])
            self._restart_student()
            return
        self._note_truncation(cell, index, label)
        self._log_limits(cell, label)
        if any(o.get("ename") == "CellTimeoutError" for o in cell.outputs if o.get("output_type") == "error"):
            # Interrupted in time, but a cell that hit the limit is not replayed after a restart.
            return
        self._student_cells.append(cell.source)

    def _run_in_tests(self, cell, resources, index, label, keep: bool) -> None:
        """Run a cell in the tests' kernel while the student's kernel answers its requests."""
        try:
            printed = self._tests_execute(cell, label, lambda: super(TwoKernelExecute, self).preprocess_cell(
                cell, resources, index))
        except (DeadKernelError, CellTimeoutError) as error:
            printed = ""
            self._error(cell, "TestsKernelDied", f"the tests' kernel stopped while running this cell ({error}); "
                        "the cell scores 0")
            self.log.warning("%s: cell %s: the tests' kernel stopped (%s); restarting it", self._who, label, error)
            self._restart_tests()
        self._note_truncation(cell, index, label)
        self._log_limits(cell, label)
        for i, output in enumerate(cell.outputs):
            # Scores come from errors alone: text on stderr (warnings) is feedback, and a value
            # the cell displays is never read as partial credit.
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                cell.outputs[i] = nbformat.v4.new_output("stream", name="stdout", text=output.get("text", ""))
            elif output.get("output_type") == "execute_result":
                cell.outputs[i] = nbformat.v4.new_output("display_data", data=output.get("data", {}),
                                                         metadata=output.get("metadata", {}))
        if printed:
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stdout", text="--- printed by your code during this cell ---\n" + printed))
        if keep:
            # The instructor's own cell cannot import in the tests' kernel (a module in a folder the
            # sandbox hides): every student would score 0, so stop and say so. Only import errors:
            # a student's cell placed before it could make it time out.
            failed = [o for o in cell.outputs if o.get("output_type") == "error"
                      and o.get("ename") in ("ModuleNotFoundError", "ImportError", "EnvironmentProblem")]
            if failed:
                raise GradingMisconfigured(self._misconfigured(
                    f"the instructor's cell {label} cannot run in the tests' kernel: "
                    f"{failed[0].get('ename')}: {failed[0].get('evalue')}"))
            self._tests_setup.append(cell.source)

    def _tests_execute(self, cell: NotebookNode, label: str, run) -> str:
        """`run()` (an execution in the tests' kernel) while the student's kernel serves it; returns
        what the student's code printed meanwhile."""
        nonce = secrets.token_hex(8)
        serve_id = None
        if self._student_gone:
            self._refuse_connection()
        else:
            serve_id = self.kc.execute(
                f'__import__("grader.student_side", fromlist=["serve"]).serve({self._socket!r}, {nonce!r})',
                silent=False, store_history=False, allow_stdin=False)
        try:
            with self._on_tests_kernel():
                run()
        finally:
            printed = run_sync(self._finish_serve)(serve_id, nonce, label) if serve_id else ""
            if self._restart_needed:  # not from inside _finish_serve: no nested event loop
                self._restart_needed = False
                self._restart_student()
        return printed

    def _refuse_connection(self) -> None:
        """No student's kernel: connect and hang up, so the tests' kernel learns it at once."""
        import socket

        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(self._socket)
        except OSError as error:
            self.log.debug("refusing the tests' kernel: %s", error)

    async def _finish_serve(self, msg_id: str, nonce: str, label: str) -> str:
        """Wait for the student's kernel to stop serving; its printed text (warnings included),
        or a restart when it is stuck in the student's code."""
        deadline = time.monotonic() + self.serve_grace_s
        texts: list[str] = []
        done = False
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await ensure_async(self.km.is_alive()):
                break
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=min(0.5, remaining)))
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                texts.append(msg["content"].get("text", ""))
            elif msg["msg_type"] == "error":
                texts.append(f"{msg['content'].get('ename')}: {msg['content'].get('evalue')}\n")
            elif msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                done = True
        if not done:
            alive = await ensure_async(self.km.is_alive())
            self.log.warning("%s: cell %s: the student's kernel %s during the test; restarting it", self._who,
                             label, "was still busy in the student's code" if alive else "died")
            self._restart_needed = True
        else:
            # Drain the matching shell reply, so that nbclient's next wait does not see it.
            try:
                while True:
                    reply = await ensure_async(self.kc.shell_channel.get_msg(timeout=1))
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
            except Empty:
                pass
        text = "".join(texts)
        kept = []
        prefix = f"course-access {nonce} "
        for line in text.splitlines(keepends=True):
            if line.startswith(prefix):
                self._log_access(line[len(prefix):].strip(), label)
            else:
                kept.append(line)
        text = "".join(kept)
        limit = max(self.max_cell_output_kib, 0) * 1024 or 100 * 1024
        if len(text) > limit:
            text = text[:limit] + f"\n... {len(text) - limit} more characters not shown ...\n"
        return text

    def _log_access(self, note: str, during: str) -> None:
        """Log what the student's code tried outside its folder (student_side.watch_access); an
        attempt made while serving a test is the student's function called by cell `during`."""
        key, _, what = note.partition(" ")
        labels = getattr(self, "_labels_by_key", None)
        if labels is None:
            labels = self._labels_by_key = {}
            for i, c in enumerate(self.nb.cells):  # the first cell with that source names it
                if c.cell_type == "code":
                    labels.setdefault(cell_key(c.source), self._label(c, i))
        self.log.warning("%s: cell %s: outside the student's folder: %s", self._who, labels.get(key, during), what)

    # -- restarts -----------------------------------------------------------------------
    def _side_execute(self, source: str, index: int) -> None:
        """Execute code that is not part of the notebook (nbclient stores it at `index`: undo that)."""
        original = self.nb.cells[index]
        try:
            self.execute_cell(nbformat.v4.new_code_cell(source), index, store_history=False)
        finally:
            self.nb.cells[index] = original

    def _restart_student(self) -> None:
        """Replace the student's kernel (dead, or stuck ignoring interrupts) and replay its cells."""
        if self._restarts >= self.max_kernel_restarts:
            self._student_gone = True
            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:  # noqa: BLE001
                pass
            return
        self._restarts += 1
        try:
            self._cleanup_kernel()
        except Exception as error:  # noqa: BLE001 - the old kernel is dead anyway
            self.log.debug("cleanup of the old kernel: %s", error)
        self.km = self.create_kernel_manager()
        self.kc = None
        self.start_new_kernel()
        self.start_new_kernel_client()
        for source in self._student_cells:
            try:
                self._side_execute(source, len(self.nb.cells) - 1)
            except (DeadKernelError, CellTimeoutError):
                self._student_gone = True
                return

    def _restart_tests(self) -> None:
        """Replace the tests' kernel and replay the instructor's setup cells in it."""
        self._stop_tests_kernel()
        manager = run_sync(self._launch_tests_kernel)()
        self._tests = (manager, run_sync(self._connect)(manager))
        # Setup cells only: replaying test cells would call the student's code again.
        for source in self._tests_setup:
            try:
                self._tests_execute(nbformat.v4.new_code_cell(source), "setup (replay)",
                                    lambda code=source: self._side_execute(code, len(self.nb.cells) - 1))
            except (DeadKernelError, CellTimeoutError):
                return
