"""The `course-sandbox` kernel: ipykernel under resource limits, in bubblewrap, unprivileged.

Two halves:

* `SandboxKernelManager` runs inside nbgrader. It starts the kernel named `course-sandbox`
  (a kernel spec made here, no file to install), talks to it over unix sockets (ZMQ `ipc`
  transport, so the kernel can live in a network namespace of its own), and hands the
  limits from nbgrader_config.py to the launcher in the COURSE_SANDBOX environment variable.
* `python -m grader.sandbox -f CONNECTION_FILE [ipykernel args]` is the launcher (the
  kernel spec runs this file by its path, which skips importing any package):
  it sets the rlimits (address space, processes, file size, no core files), then runs
  ipykernel (`python -P`: no folder a student can write is ever on sys.path) with the
  extension of its role inside `bwrap` as a uid of its own when it can, or with the rlimits
  only when it cannot. Two roles: the student's kernel (grader.student_side: solution cells)
  and the tests' kernel (grader.tests_side: test cells), one of each per notebook.

docs/grading-sandbox.md describes what each mode covers.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

KERNEL_NAME = "course-sandbox"
ENV_VAR = "COURSE_SANDBOX"
WATCH_VAR = "COURSE_GUARD_WATCH"  # read (and removed) by grader.student_side.watch_access
SOCKET_VAR = "COURSE_TESTS_SOCKET"  # read (and removed) by grader.tests_side
EXTENSIONS = {"student": "grader.student_side", "tests": "grader.tests_side"}
OUTPUT_LOG = "kernel-output.log"  # the kernel's own stdout and stderr, in its private folder
# Each sandboxed kernel runs as a uid of its own (when the grader is root): RLIMIT_NPROC counts
# per uid, and kernels of students graded in parallel cannot signal each other.
UID_BASE = 200_000
UID_SPAN = 100_000

GRADER_DIR = Path(__file__).resolve().parent            # .../grader
REPO_ROOT = GRADER_DIR.parent
HELPERS_DIR = REPO_ROOT / "helpers"


# --------------------------------------------------------------------------------------
# Launcher (runs as the kernel process)
# --------------------------------------------------------------------------------------

def _count_tasks_of(uid: int) -> int:
    """Threads (RLIMIT_NPROC counts threads) of the processes owned by `uid`."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                total += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return total


def _set_limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def apply_rlimits(settings: dict[str, Any], uid: int | None) -> None:
    """Address space, file size, core files and processes, as the instructor configured."""
    mib = 1024 * 1024
    if settings.get("memory_mib"):
        _set_limit(resource.RLIMIT_AS, int(settings["memory_mib"]) * mib)
    if settings.get("file_size_mib"):
        _set_limit(resource.RLIMIT_FSIZE, int(settings["file_size_mib"]) * mib)
    _set_limit(resource.RLIMIT_CORE, 0)
    if settings.get("max_processes"):
        limit = int(settings["max_processes"])
        if uid is None and hasattr(os, "getuid"):
            # Same uid as the grader (not root): the limit counts all of the user's processes,
            # so allow the ones already running plus the configured number.
            if not os.path.isdir("/proc"):
                return  # macOS: no cheap way to count them; no process limit (documented)
            limit += _count_tasks_of(os.getuid())
        _set_limit(resource.RLIMIT_NPROC, limit)


def kernel_command(role: str, argv: list[str]) -> list[str]:
    """ipykernel with the role's extension; -P: neither the working folder nor the script's is
    put on sys.path, so a submitted `ipykernel_launcher.py` or `torch.py` is never imported."""
    return [sys.executable, "-P", "-m", "ipykernel_launcher", *argv, f"--IPKernelApp.extensions={EXTENSIONS[role]}"]


def _bwrap_command(settings: dict[str, Any], uid: int | None, kernel: list[str]) -> list[str]:
    work = settings["workdir"]
    private = settings["private_dir"]
    shared = list(settings.get("shared", []))
    cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
           "--new-session"]
    if uid is None:
        cmd += ["--unshare-user"]  # unprivileged bwrap: a user namespace maps our own uid
    tmp_size = settings.get("tmp_size_mib")
    cmd += (["--size", str(int(tmp_size) * 1024 * 1024)] if tmp_size else []) + ["--perms", "1777", "--tmpfs", "/tmp"]
    hidden = [h for h in settings.get("hide", []) if os.path.isdir(h) and not h.startswith("/tmp/")]
    for folder in hidden:
        cmd += ["--tmpfs", folder]
    readable = [r for r in settings.get("readable", []) if os.path.exists(r)]
    # bwrap creates the missing folders on the way to a mount point with mode 0700, which the
    # kernel's own uid cannot cross (a course cloned under /tmp, say): create them 0755 first.
    emptied = ["/tmp", *hidden]
    made: list[str] = []
    for target in [*readable, work, private, *shared]:
        for parent in reversed(Path(target).parents):
            folder = str(parent)
            if folder not in made and any(folder.startswith(e + "/") for e in emptied):
                cmd += ["--perms", "0755", "--dir", folder]
                made.append(folder)
    for folder in readable:
        cmd += ["--ro-bind", folder, folder]
    for folder in [work, private, *shared]:
        cmd += ["--bind", folder, folder]
    cmd += ["--chdir", work]
    if uid is not None:
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        cmd += ["--", setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all"]
    else:
        cmd += ["--"]
    return cmd + kernel


def _chown_tree(path: str, uid: int) -> None:
    os.chown(path, uid, uid)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                os.lchown(os.path.join(folder, name), uid, uid)
            except OSError:
                pass


def _usable_by_others(path: str) -> bool:
    """Whether a uid of its own could run this Python (every folder on the way o+x)."""
    parts = Path(path).parents
    return all(os.stat(p).st_mode & 0o001 for p in parts) and bool(os.stat(path).st_mode & 0o005)


def launch(argv: list[str]) -> None:
    """Entry point of the kernel spec: apply the limits and exec the kernel."""
    settings = json.loads(os.environ.pop(ENV_VAR, "{}") or "{}")
    # torch starts a thread per core: on a big grading server that would run into the process
    # limit (it counts threads), and kernels of several students share the cores anyway.
    os.environ.setdefault("OMP_NUM_THREADS", str(min(os.cpu_count() or 1, 4)))
    mode = settings.get("mode", "rlimits")
    kernel = kernel_command(settings.get("role", "student"), argv)
    os.environ["PYTHONSAFEPATH"] = "1"
    private = settings.get("private_dir")
    if private:
        for name in ("home", "ipython", "cache"):
            os.makedirs(os.path.join(private, name), exist_ok=True)
        os.environ.update(HOME=os.path.join(private, "home"), IPYTHONDIR=os.path.join(private, "ipython"),
                          XDG_CACHE_HOME=os.path.join(private, "cache"),
                          MPLCONFIGDIR=os.path.join(private, "cache"),
                          # Shared by the notebook's two kernels: files a test writes, the student's code reads.
                          TMPDIR=settings.get("tmpdir") or ("/tmp" if mode == "bwrap" else private))
    uid = settings.get("uid") if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    if uid is not None and mode != "bwrap" and not _usable_by_others(os.path.realpath(sys.executable)):
        # Without bwrap a uid of its own cannot reach a Python in a private folder (/root/.pyenv).
        print("course-sandbox: WARNING: the kernel runs as root (Python is not readable by other users), "
              "so the process limit is not enforced", file=sys.stderr)
        uid = None
    if uid is not None:
        uid = int(uid)
        for path in (settings.get("workdir"), private, *settings.get("shared", [])):
            if path:
                _chown_tree(path, uid)
    apply_rlimits(settings, uid)
    if settings.get("workdir"):
        # For the access log (grader.student_side: what the code tried outside its own folder).
        own = [p for p in (settings["workdir"], private, *settings.get("shared", [])) if p]
        os.environ[WATCH_VAR] = json.dumps({"own": own, "scratch": ["/tmp", "/dev"], "hidden": settings.get("hide", []),
                                            "readable": settings.get("readable", [])})
    if private:
        # The kernel talks over its sockets. Its own stdout and stderr (ipykernel's banner, and
        # whatever the student's code writes to file descriptors 1 and 2) go to a file of the
        # kernel's, never to the grader's log, where a student could forge or flood lines; the
        # grader shows its tail when a kernel fails to start.
        output = os.open(os.path.join(private, OUTPUT_LOG), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
    if mode == "bwrap":
        # In its own pid namespace the kernel's parent is pid 1, which ipykernel's parent poller
        # takes for "the grader exited"; --die-with-parent does that job instead.
        os.environ.pop("JPY_PARENT_PID", None)
        command = _bwrap_command(settings, uid, kernel)
        os.execvp(command[0], command)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.execv(kernel[0], kernel)


# --------------------------------------------------------------------------------------
# Grader side (runs inside nbgrader)
# --------------------------------------------------------------------------------------

_BWRAP_PROBE: dict[bool, str | None] = {}


def bwrap_problem() -> str | None:
    """None when bubblewrap can build the sandbox here, else why not (cached per process)."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if root in _BWRAP_PROBE:
        return _BWRAP_PROBE[root]
    problem = None
    if sys.platform != "linux":
        problem = f"bubblewrap needs Linux (this is {sys.platform})"
    elif not shutil.which("bwrap"):
        problem = "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    else:
        probe = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net",
                 "--unshare-pid", "--die-with-parent", "--tmpfs", "/tmp"]
        if not root:
            probe.append("--unshare-user")
        try:
            proc = subprocess.run([*probe, "--", "true"], capture_output=True, text=True, timeout=30)
            if proc.returncode != 0:
                problem = f"bwrap cannot create namespaces here: {proc.stderr.strip()[:200]}"
        except (OSError, subprocess.TimeoutExpired) as error:
            problem = f"bwrap failed to run: {error}"
    _BWRAP_PROBE[root] = problem
    return problem


def _make_kernel_spec():
    from jupyter_client.kernelspec import KernelSpec

    return KernelSpec(
        # The file itself, not `-m grader.sandbox` (same code): -m would first import the
        # helpers package, and with it torch, in the launcher too: 2 s more per kernel.
        argv=[sys.executable, str(Path(__file__).resolve()), "-f", "{connection_file}"],
        display_name="Python 3 (course grading sandbox)",
        language="python",
        # A signal to the launcher would reach bwrap, not the kernel: interrupt by message.
        interrupt_mode="message",
        metadata={"debugger": False},
    )


def _kernel_spec_manager_class():
    from jupyter_client.kernelspec import KernelSpecManager

    class SandboxKernelSpecManager(KernelSpecManager):
        """Knows the `course-sandbox` kernel without installing a kernel.json anywhere."""

        def get_kernel_spec(self, kernel_name: str):
            if kernel_name == KERNEL_NAME:
                spec = _make_kernel_spec()
                spec.resource_dir = str(Path(__file__).parent)
                return spec
            return super().get_kernel_spec(kernel_name)

        def find_kernel_specs(self):
            return {**super().find_kernel_specs(), KERNEL_NAME: str(Path(__file__).parent)}

    return SandboxKernelSpecManager


def _kernel_manager_class():
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Bool, Enum, Integer, List, Unicode, default

    class SandboxKernelManager(AsyncKernelManager):
        """Starts grading kernels in the sandbox; every limit is configurable (nbgrader_config.py)."""

        sandbox = Enum(["auto", "bwrap", "rlimits", "off"], "auto", config=True, help=(
            "auto: bubblewrap where it works, else rlimits only with a warning; bwrap: fail when "
            "bubblewrap is unavailable; rlimits: limits only; off: a plain kernel (tests only)."))
        memory_limit_mib = Integer(8192, config=True, help="RLIMIT_AS of the kernel, MiB (0: none); torch's "
                                   "CUDA build alone maps about 3.2 GiB of address space")
        max_processes = Integer(64, config=True, help="RLIMIT_NPROC: processes+threads of the kernel's uid")
        max_file_size_mib = Integer(256, config=True, help="RLIMIT_FSIZE: largest file the kernel may write, MiB")
        tmp_size_mib = Integer(512, config=True, help="size of the sandbox's private /tmp (bwrap), MiB")
        hide_paths = List(Unicode(), config=True, help=(
            "Folders to hide from the kernel (bwrap): the course root, the gradebook's folder... "
            "The student's own folder (the kernel's cwd) is bound back read-write."))
        drop_privileges = Bool(True, config=True, help="When grading as root, run the kernel as a uid of its own")
        # Set per notebook by grader.autograde.TwoKernelExecute (not configuration):
        role = Enum(["student", "tests"], "student", help="which of the notebook's two kernels this is")
        workspace = List(Unicode(), help="folders both kernels of the notebook share: scratch /tmp, channel")
        tests_socket = Unicode("", help="the tests' kernel's socket, for the tests' kernel")
        notebook_dir = Unicode("", help="the student's real folder (to find the course root to hide)")
        kernel_uid = Integer(-1, help="uid of both kernels of the notebook (-1: choose one)")

        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("kernel_spec_manager")
        def _default_ksm(self):
            return _cached("SandboxKernelSpecManager")(data_dir=self.data_dir)

        def _mode(self) -> str:
            if self.sandbox in ("off", "rlimits"):
                return self.sandbox
            problem = bwrap_problem()
            if problem is None:
                return "bwrap"
            if self.sandbox == "bwrap":
                raise RuntimeError(f"course-sandbox: {problem}")
            self.log.warning("course-sandbox: REDUCED SANDBOX (rlimits only): %s. The kernel can read "
                             "the whole file system and use the network; see docs/grading-sandbox.md.",
                             problem)
            return "rlimits"

        async def _async_pre_start_kernel(self, **kw: Any):
            mode = self._mode()
            self._private_dir = tempfile.mkdtemp(prefix="course-kernel-")
            os.chmod(self._private_dir, 0o700)
            if mode == "off":
                self.transport, self.ip = "tcp", "127.0.0.1"
            else:
                # Connection file and unix sockets live in a folder the sandbox can see.
                self.connection_file = os.path.join(self._private_dir, "kernel.json")
                self.ip = os.path.join(self._private_dir, "kernel-ipc")
            kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
            env = dict(kw.get("env") or os.environ)
            if self.role == "tests":
                env[SOCKET_VAR] = self.tests_socket
            if mode == "off":
                kw["env"] = env
                return kernel_command(self.role, kernel_cmd[kernel_cmd.index("-f"):]), kw
            workdir = os.path.realpath(kw.get("cwd") or os.getcwd())
            root = os.geteuid() == 0
            uid = None
            if root and self.drop_privileges:
                uid = self.kernel_uid if self.kernel_uid >= 0 else pick_uid()
            tmpdir = next((w for w in self.workspace if os.path.basename(w) == "tmp"), None)
            settings = {
                "mode": mode, "role": self.role, "workdir": workdir, "private_dir": self._private_dir,
                "uid": uid, "shared": list(self.workspace), "tmpdir": tmpdir,
                "memory_mib": self.memory_limit_mib, "max_processes": self.max_processes,
                "file_size_mib": self.max_file_size_mib, "tmp_size_mib": self.tmp_size_mib,
                "hide": _hidden_paths(list(self.hide_paths), self.notebook_dir or workdir),
                "readable": _readable_paths(),
            }
            env[ENV_VAR] = json.dumps(settings)
            kw["env"] = env
            self.log.debug("course-sandbox: %s", settings)
            return kernel_cmd, kw

        def peak_address_space_mib(self) -> float | None:
            """The largest peak address space (VmPeak, what the memory limit caps) of the kernel's
            processes so far, MiB; None when it cannot be read (no /proc, the kernel gone)."""
            process = getattr(self.provisioner, "process", None)
            return peak_address_space_mib(process.pid) if process is not None else None

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            private = getattr(self, "_private_dir", None)
            if private and not restart:
                shutil.rmtree(private, ignore_errors=True)

        cleanup_resources = _async_cleanup_resources

    return SandboxKernelManager


def _descendants(root: int) -> list[int]:
    """`root` and every process below it (bwrap's own, the kernel, its children), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def peak_address_space_mib(root: int) -> float | None:
    """The largest VmPeak of `root` and its descendants, MiB (None: nothing readable)."""
    if not os.path.isdir("/proc"):
        return None
    peaks = []
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/status") as handle:
                peaks += [int(line.split()[1]) / 1024 for line in handle if line.startswith("VmPeak:")]
        except (OSError, IndexError, ValueError):
            continue
    return max(peaks) if peaks else None


def pick_uid() -> int:
    """A uid for a notebook's kernels: not the uid of anything on this machine."""
    uid = UID_BASE + os.getpid() % UID_SPAN
    while _uid_in_use(uid):
        uid += 1
    return uid


def _uid_in_use(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        pass
    return _count_tasks_of(uid) > 0


def _hidden_paths(configured: list[str], workdir: str) -> list[str]:
    hidden = [os.path.realpath(p) for p in configured]
    hidden.append(str(REPO_ROOT))                        # the course repository (source/, gradebook.db)
    work = Path(workdir)
    if len(work.parents) >= 3:
        hidden.append(str(work.parents[2]))              # course root: <root>/autograded/<student>/<assignment>
    hidden.append(os.path.expanduser("~"))
    return sorted({h for h in hidden if h not in ("/", "")})


def _readable_paths() -> list[str]:
    """What the kernel needs from hidden folders: Python, the environment, the helpers package."""
    paths = {sys.prefix, sys.base_prefix, str(HELPERS_DIR), str(GRADER_DIR),
             os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(p for p in paths if p)


@functools.cache
def _cached(name: str):
    return _kernel_manager_class() if name == "SandboxKernelManager" else _kernel_spec_manager_class()


def __getattr__(name: str):
    # Imported lazily so the launcher (every kernel start) does not import jupyter_client.
    if name in ("SandboxKernelManager", "SandboxKernelSpecManager"):
        return _cached(name)
    raise AttributeError(name)


if __name__ == "__main__":
    launch(sys.argv[1:])
