"""nbgrader preprocessors that make autograding exact (registered in nbgrader_config.py).

RestoreNotebook (sanitize step, before nbgrader's OverwriteCells, which then finds nothing to fix): the graded notebook gets the
instructor's cells in the instructor's order with the gradebook's metadata, whatever the
student did to them: deleted test cells come back, moved cells go back, edited flags, points,
ids and checksums are reset. The student's own extra cells stay where they were (after the
instructor cell they followed).

GuardedExecute (autograde step, replaces nbgrader's Execute): runs the notebook in the
`course-sandbox` kernel (helpers.grading.sandbox), runs the tamper guard
(helpers.grading.guard) just before and after every test cell, caps the output a cell may
leave in the notebook, and survives a dead kernel (os._exit, a crash, the memory limit): the
cell that killed it gets an error, a fresh kernel replays the earlier cells and grading goes
on. Every such event, and every cell a grading limit stopped (time, memory, processes, file
size), is logged as `student S: notebook N: cell C: what happened`.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode

from helpers.grading.guard import cell_key
from helpers.grading.sandbox import KERNEL_NAME

GUARD_OK = "course-guard-ok"


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


class RestoreNotebook(NbGraderPreprocessor):
    """Rebuild the submitted notebook around the instructor's cells (see the module docstring)."""

    source_directory = Unicode("source", config=True, help="folder of the instructor's notebooks, "
                               "relative to the course root (the gradebook's folder) unless absolute")
    course_root = Unicode("", config=True, help="course root; default: the folder of the sqlite gradebook")

    def _source_order(self, resources: dict) -> list[str] | None:
        info = resources["nbgrader"]
        root = self.course_root or os.path.dirname(urlparse(info["db_url"]).path.replace("//", "/", 1))
        path = Path(root, self.source_directory, info["assignment"], f"{info['notebook']}.ipynb")
        if not path.is_file():
            self.log.warning("%s: instructor notebook %s not found; cell order not checked", _who(resources), path)
            return None
        source = nbformat.read(path, as_version=4)
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
# Autograde: sandbox, guard, output limit, dead kernels
# --------------------------------------------------------------------------------------

def _names_used(source: str) -> tuple[str, ...]:
    """Global names a test cell reads (what the guard checks in the user's namespace)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {"isinstance", "AssertionError", "getattr", "type", "len", "any", "all", "__import__"}
    return tuple(sorted(names))


class GuardedExecute(Execute):
    """nbgrader's Execute in the sandbox kernel, with the tamper guard around every test cell."""

    guard = Bool(True, config=True, help="run the tamper guard before and after every test cell")
    max_cell_output_kib = Integer(100, config=True, help=(
        "Output (text, images, errors) one cell may leave in the graded notebook, KiB; the rest is "
        "dropped with a note, so a cell printing 200 MB leaves a small notebook (-1: no limit)"))
    max_kernel_restarts = Integer(3, config=True, help="fresh kernels per notebook after a dead kernel")

    def __init__(self, *args: Any, **kwargs: Any):
        from helpers.grading.sandbox import SandboxKernelManager

        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)
        self.shutdown_kernel = "immediate"  # nothing to save in a grading kernel; saves ~1 s each

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        if self.max_cell_output_kib >= 0:
            # The kernel drops output far beyond the limit itself (see guard.cap_output).
            kwargs["env"] = {**(kwargs.get("env") or os.environ),
                             "COURSE_OUTPUT_CAP": str(4 * self.max_cell_output_kib * 1024)}
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

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

    # -- notebook -------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        self._who = _who(resources or {})
        self._output_bytes: dict[int, int] = {}
        self._truncated: dict[int, int] = {}
        self._executed: list[str] = []
        self._restarts = 0
        self._kernel_gone = False
        self._managers: list = []
        if self.kernel_name != KERNEL_NAME:
            self.log.warning("%s: grading kernel is %r, not the sandbox %r", self._who, self.kernel_name,
                             KERNEL_NAME)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            # Dead kernels are not always cleaned up by jupyter_client: remove their folders.
            for manager in self._managers:
                private = getattr(manager, "_private_dir", None)
                if private:
                    shutil.rmtree(private, ignore_errors=True)

    def create_kernel_manager(self):
        manager = super().create_kernel_manager()
        self._managers.append(manager)
        return manager

    def _label(self, cell: NotebookNode, index: int) -> str:
        return cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{index}"

    def _error(self, cell: NotebookNode, ename: str, evalue: str) -> None:
        cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                                   traceback=[f"{ename}: {evalue}"]))

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        label = self._label(cell, index)
        if self._kernel_gone:
            cell.outputs = []
            self._error(cell, "KernelDied", "not run: the grading kernel could not be restarted")
            return cell, resources
        is_test = utils.is_grade(cell) and not utils.is_solution(cell)
        try:
            tampering = self._guard(cell, index, "before") if is_test and self.guard else None
            if tampering:
                cell.outputs = []
                self._error(cell, "TamperingDetected", f"not run: {tampering}")
                self.log.warning("%s: cell %s: tampering detected (%s)", self._who, label, tampering)
                return cell, resources
            cell, resources = super().preprocess_cell(cell, resources, index)
            self._note_truncation(cell, index, label)
            for output in cell.outputs:
                limit = _limit_hit(output) if output.get("output_type") == "error" else None
                if limit:
                    self.log.warning("%s: cell %s: %s: stopped by %s", self._who, label, output.ename, limit)
            self._executed.append(cell.source)
            tampering = self._guard(cell, index, "after") if is_test and self.guard else None
            if tampering:
                self._error(cell, "TamperingDetected", f"during this test cell: {tampering}")
                self.log.warning("%s: cell %s: tampering detected (%s)", self._who, label, tampering)
        except DeadKernelError as error:
            self._error(cell, "KernelDied", "the grading kernel died while running this cell (os._exit, a crash, "
                        "or the memory limit); the cell scores 0 and the rest is graded in a fresh kernel")
            self.log.warning("%s: cell %s: the kernel died (%s); restarting it", self._who, label,
                             str(error).splitlines()[0] if str(error) else type(error).__name__)
            self._restart_kernel()
        return cell, resources

    def _guard(self, cell: NotebookNode, index: int, when: str) -> str | None:
        """Run the guard in the kernel; None when it reported the token, else what is wrong."""
        nonce = secrets.token_hex(16)
        names = _names_used(cell.source)
        probe = nbformat.v4.new_code_cell(
            f'__import__("helpers.grading.guard", fromlist=["verify"]).verify({nonce!r}, {names!r})')
        saved = self._output_bytes.get(index), self._truncated.get(index)
        try:
            self._side_execute(probe, index)
        except DeadKernelError:
            raise
        except Exception as error:  # noqa: BLE001 - a hung or broken kernel fails the check
            return f"the integrity check {when} the cell failed to run ({type(error).__name__}: {error})"
        self._output_bytes[index], self._truncated[index] = saved[0] or 0, saved[1] or 0
        errors = [o for o in probe.outputs if o.output_type == "error"]
        if errors:
            return f"{errors[0].get('evalue', '')}".strip() or errors[0].get("ename", "guard failed")
        text = "".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream")
        self._log_access(text, nonce)
        if f"{GUARD_OK} {nonce}" not in text:
            return f"the integrity check {when} the cell did not run (cell execution intercepted)"
        return None

    def _log_access(self, text: str, nonce: str) -> None:
        """Log what the guard's audit hook saw the student's code try outside its folder."""
        prefix = f"course-guard-access {nonce} "
        notes = [line[len(prefix):].partition(" ") for line in text.splitlines() if line.startswith(prefix)]
        if not notes:
            return
        labels: dict[str, str] = {}
        for i, c in enumerate(self.nb.cells):  # the first cell with that source names it
            if c.cell_type == "code":
                labels.setdefault(cell_key(c.source), self._label(c, i))
        for key, _, what in notes:
            self.log.warning("%s: cell %s: outside the student's folder: %s", self._who, labels.get(key, "?"), what)

    def _side_execute(self, cell: NotebookNode, index: int) -> None:
        """Execute a cell that is not part of the notebook (nbclient stores it at `index`: undo that)."""
        original = self.nb.cells[index]
        try:
            self.execute_cell(cell, index, store_history=False)
        finally:
            self.nb.cells[index] = original

    def _restart_kernel(self) -> None:
        if self._restarts >= self.max_kernel_restarts:
            self._kernel_gone = True
            return
        self._restarts += 1
        try:
            self._cleanup_kernel()
        except Exception as error:  # noqa: BLE001 - the old kernel is dead anyway
            self.log.debug("cleanup of the dead kernel: %s", error)
        self.km = self.create_kernel_manager()
        self.start_new_kernel(cwd=self.resources.get("metadata", {}).get("path") or None)
        self.start_new_kernel_client()
        # Replay what ran before (outputs discarded) so later cells see the same state.
        for source in self._executed:
            try:
                self._side_execute(nbformat.v4.new_code_cell(source), len(self.nb.cells) - 1)
            except DeadKernelError:
                self._kernel_gone = True
                return
