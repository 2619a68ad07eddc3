"""The tamper guard, inside the grading kernel (an IPython extension; see docs/grading-sandbox.md).

Loaded by the sandbox launcher (`--IPKernelApp.extensions=grader.guard`) before any
student code runs, it imports the modules the tests use and records, by identity, every
attribute of them (and each Python function's code, defaults and closure), the builtins,
the classes of the tensor and of IPython's shell and kernel, and IPython's input/AST
transformers, event callbacks and exception handlers.

The grader (grader.autograde.GuardedExecute) runs `verify(...)` in a separate
execution just before and just after every test cell. It raises TamperingDetected naming
what was replaced (that test cell then scores 0), or prints `course-guard-ok <nonce>`, which
the grader requires to see, so a kernel that silently skips code cannot fake a pass.

This is a defence *inside* the student's process: it stops monkeypatching (replacing or
re-coding functions, shadowing names, swapping modules, hooking IPython), not a student
who studies this file and edits the recorded state itself (gc, ctypes). The sandbox, not
this module, is what protects the machine and the gradebook.
"""

from __future__ import annotations

import builtins
import sys
import types
from typing import Any

#: Modules whose attributes the test cells rely on (directly or through helpers.check).
WATCHED_MODULES = (
    "builtins", "helpers", "helpers.check", "torch", "torch.nn", "torch.nn.functional", "torch.linalg",
    "torch.testing", "numpy", "numpy.testing", "numpy.linalg", "math", "ast", "inspect", "textwrap",
    "operator", "functools", "itertools", "sys", "types", "numbers", "re",
)
#: Names IPython itself sets in builtins and in the user's namespace.
_IPYTHON_NAMES = {"_", "__", "___", "exit", "quit", "get_ipython", "display", "In", "Out", "_ih", "_oh", "_dh",
                  "_i", "_ii", "_iii", "__IPYTHON__", "copyright", "credits", "license", "help",
                  "input", "raw_input"}  # ipykernel swaps input() for its own while a cell runs
#: Attributes of watched modules that legitimately change while code runs.
_MUTABLE = {"sys": {"last_type", "last_value", "last_traceback", "last_exc", "ps1", "ps2", "stdout", "stderr",
                    "stdin", "displayhook", "excepthook", "path", "path_importer_cache", "meta_path",
                    "path_hooks", "modules", "argv", "flags", "_home", "exc_info", "tracebacklimit"},
            "inspect": {"_filesbymodname", "modulesbyfile"}}
_HOOK_METHODS = ("run_cell", "run_cell_async", "run_code", "run_ast_nodes", "transform_cell", "transform_ast",
                 "showtraceback", "_showtraceback", "showsyntaxerror", "showindentationerror", "should_run_async",
                 "get_exception_only", "excepthook", "ex", "ev")
_KERNEL_METHODS = ("do_execute", "execute_request", "send_response", "_publish_execute_input",
                   "_publish_status", "dispatch_shell", "process_one")


class TamperingDetected(Exception):
    """Raised (in the kernel) when something the tests rely on was replaced."""


_snapshot: dict[str, Any] | None = None


def _function_state(value: Any) -> tuple:
    if isinstance(value, types.FunctionType):
        closure = tuple(id(c.cell_contents) if _has_contents(c) else None for c in value.__closure__ or ())
        return (value.__code__, value.__defaults__, repr(value.__kwdefaults__), closure)
    if isinstance(value, (classmethod, staticmethod)):
        return _function_state(value.__func__)
    if isinstance(value, property):
        return tuple(_function_state(f) for f in (value.fget, value.fset, value.fdel))
    return ()


def _has_contents(cell) -> bool:
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def _record(namespace: dict[str, Any]) -> dict[str, tuple]:
    return {name: (value, _function_state(value)) for name, value in list(namespace.items())}


def _classes_to_watch(shell) -> list[type]:
    import torch

    classes: list[type] = [torch.Tensor, torch._C.TensorBase, torch.Generator]
    for obj in (shell, getattr(shell, "kernel", None), getattr(getattr(shell, "kernel", None), "session", None),
                getattr(shell, "displayhook", None), getattr(shell, "display_pub", None)):
        if obj is not None:
            classes.extend(c for c in type(obj).__mro__ if c is not object)
    import helpers.check

    classes.extend(v for v in vars(helpers.check).values() if isinstance(v, type) and v.__module__ == "helpers.check")
    return list(dict.fromkeys(classes))


def take_snapshot(shell=None) -> dict[str, Any]:
    """Record everything `verify` compares (called once, before student code runs)."""
    import ast  # noqa: F401  (the modules below are imported so they can be recorded)
    import inspect  # noqa: F401
    import textwrap  # noqa: F401

    import numpy  # noqa: F401
    import numpy.testing  # noqa: F401
    import torch  # noqa: F401
    import torch.nn.functional  # noqa: F401

    import helpers.check  # noqa: F401

    modules = {name: sys.modules[name] for name in WATCHED_MODULES if name in sys.modules}
    snap: dict[str, Any] = {
        "modules": modules,
        "module_dicts": {name: _record(vars(module)) for name, module in modules.items()},
        "classes": {cls: _record(dict(vars(cls))) for cls in _classes_to_watch(shell)} if shell else {},
        "exports": {name: getattr(helpers.check, name) for name in helpers.check.__all__},
        "aliases": {"np": modules["numpy"], "torch": modules["torch"], "helpers": modules["helpers"]},
        "trace": (sys.gettrace(), sys.getprofile()),
    }
    if shell is not None:
        snap["shell"] = shell
        snap["shell_type"] = type(shell)
        snap["kernel_type"] = type(getattr(shell, "kernel", None))
        snap["hooks"] = _hooks(shell)
    return snap


def _hooks(shell) -> dict[str, Any]:
    events = getattr(shell, "events", None)
    return {
        "input_transformers_cleanup": list(getattr(shell, "input_transformers_cleanup", [])),
        "input_transformers_post": list(getattr(shell, "input_transformers_post", [])),
        "ast_transformers": list(getattr(shell, "ast_transformers", [])),
        "custom_exceptions": tuple(getattr(shell, "custom_exceptions", ())),
        "events": {name: list(cbs) for name, cbs in getattr(events, "callbacks", {}).items()},
    }


def _library_dirs() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple(dict.fromkeys(paths[k].rstrip("/") + "/" for k in ("purelib", "platlib", "stdlib") if k in paths))


def _library_wrapper(now: Any, original: Any) -> bool:
    """A wrapper that a library installed around the original function (functools.wraps-style
    `__wrapped__` pointing to it, code in site-packages or the standard library)."""
    dirs = _library_dirs()
    wrapper = now
    for _ in range(5):
        code = getattr(wrapper, "__code__", None)
        if code is None or not code.co_filename.startswith(dirs):
            return False
        wrapper = getattr(wrapper, "__wrapped__", None)
        if wrapper is original:
            return True
        if wrapper is None:
            return False
    return False


def _compare(label: str, recorded: dict[str, tuple], current: dict[str, Any], skip=frozenset()) -> list[str]:
    problems = []
    for name, (value, state) in recorded.items():
        if name in skip:
            continue
        if name not in current:
            problems.append(f"{label}.{name} deleted")
            continue
        now = current[name]
        if now is not value and _library_wrapper(now, value):
            continue  # e.g. torch wraps torch.manual_seed in torch/_compile.py on first use
        if now is not value:
            problems.append(f"{label}.{name} replaced")
        elif state and _function_state(now) != state:
            problems.append(f"{label}.{name} re-coded (its code, defaults or closure changed)")
    return problems


def problems(test_names: tuple[str, ...] = ()) -> list[str]:
    """What differs from the snapshot (empty when nothing was tampered with)."""
    snap = _snapshot
    if snap is None:
        return ["the guard's snapshot is missing (guard extension not loaded, or removed)"]
    found: list[str] = []
    # Modules: the same objects in sys.modules, with the same attributes.
    for name, module in snap["modules"].items():
        if sys.modules.get(name) is not module:
            found.append(f"module {name} replaced in sys.modules")
    for name, recorded in snap["module_dicts"].items():
        skip = _IPYTHON_NAMES | _MUTABLE.get(name, set()) if name == "builtins" else _MUTABLE.get(name, set())
        found += _compare(name, recorded, vars(snap["modules"][name]), skip)
    for cls, recorded in snap["classes"].items():
        found += _compare(f"{cls.__module__}.{cls.__qualname__}", recorded, dict(vars(cls)),
                          {"__annotations__", "__doc__", "__weakref__", "__dict__", "_abc_impl"})
    # The user's namespace: the names the tests use must still mean what they meant.
    shell = snap.get("shell")
    if shell is not None:
        user_ns = shell.user_ns
        expected = {**snap["exports"], **snap["aliases"]}
        for name in test_names:
            if name in _IPYTHON_NAMES:
                continue
            if name in expected and name in user_ns and user_ns[name] is not expected[name]:
                found.append(f"{name} rebound in the notebook (it is not {_describe(expected[name])} any more)")
            elif hasattr(builtins, name) and name in user_ns and user_ns[name] is not getattr(builtins, name):
                found.append(f"built-in {name} shadowed in the notebook")
        for name, value in expected.items():
            if name in user_ns and user_ns[name] is not value and name not in test_names:
                found.append(f"{name} rebound in the notebook (it is not {_describe(value)} any more)")
        found += _shell_problems(shell, snap)
    if (sys.gettrace(), sys.getprofile()) != snap["trace"]:
        found.append("a trace or profile function was installed (sys.settrace/sys.setprofile)")
    return found


_TRUSTED_CALLBACK_MODULES = ("matplotlib_inline.", "IPython.", "ipykernel.", "ipywidgets.", "matplotlib.")


def _trusted(callback: Any) -> bool:
    """Callbacks libraries register themselves (matplotlib's inline backend flushes figures)."""
    func = getattr(callback, "__func__", callback)
    module = getattr(func, "__module__", None) or ""
    return isinstance(func, types.FunctionType) and module.startswith(_TRUSTED_CALLBACK_MODULES) and \
        not getattr(func, "__code__", None) is None and \
        func.__code__.co_filename.startswith(tuple(p for p in sys.path if "site-packages" in p) or ("/",))


def _describe(value: Any) -> str:
    module = getattr(value, "__module__", None) or getattr(value, "__name__", "")
    return f"{module}.{getattr(value, '__qualname__', '')}".strip(".") or repr(value)


def _shell_problems(shell, snap) -> list[str]:
    found = []
    if type(shell) is not snap["shell_type"]:
        found.append("the IPython shell's class was replaced")
    kernel = getattr(shell, "kernel", None)
    if type(kernel) is not snap["kernel_type"]:
        found.append("the kernel's class was replaced")
    for obj, names, label in ((shell, _HOOK_METHODS, "IPython shell"), (kernel, _KERNEL_METHODS, "kernel"),
                              (getattr(kernel, "session", None), ("send", "serialize", "sign"), "kernel session")):
        if obj is None:
            continue
        overridden = sorted(n for n, v in vars(obj).items()
                            if (n in names or (callable(v) and hasattr(type(obj), n))) and not _same_method(obj, n, v))
        if overridden:
            found.append(f"{label} method(s) {', '.join(overridden)} overridden on the instance")
    now = _hooks(shell)
    for key, before in snap["hooks"].items():
        if key == "events":
            for event, callbacks in now["events"].items():
                added = [cb for cb in callbacks if cb not in before.get(event, []) and not _trusted(cb)]
                removed = [cb for cb in before.get(event, []) if cb not in callbacks]
                if added or removed:
                    found.append(f"IPython event callback added or removed ({event})")
        elif now[key] != before and not (key == "custom_exceptions" and not now[key]):
            found.append(f"IPython {key} changed")
    return found


def _same_method(obj, name: str, value: Any) -> bool:
    """An instance attribute that is just the class's own method bound to the instance (ipykernel does that)."""
    func = getattr(value, "__func__", None)
    return func is not None and getattr(value, "__self__", None) is obj and \
        any(vars(c).get(name) is func for c in type(obj).__mro__)


# --------------------------------------------------------------------------------------
# Access log: what the student's code tried outside its own folder (for the grading log)
# --------------------------------------------------------------------------------------

_access_notes: list[tuple[str, str]] = []   # (cell_key of the cell that ran, what it tried)
MAX_ACCESS_NOTES = 20


def cell_key(source: str) -> str:
    """A short name for a cell's source (the kernel does not know the notebook's cell ids)."""
    import hashlib

    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _under(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def watch_access(shell, own: list[str], scratch: list[str], hidden: list[str], readable: list[str]) -> None:
    """Note, through a Python audit hook, file access outside the student's folders `own`
    (changes anywhere but the `scratch` folders; reads and listings of the `hidden` course
    folders, except the `readable` environment inside them) and network connections.

    Only a log, not a protection (the sandbox blocks these; code in the student's process
    could also silence it): it tells the instructor what a submission tried."""
    import os

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_TRUNC", 0)
    seen: set[str] = set()
    running = ["?"]  # which cell runs: a hash of its source, which the grader maps to the cell's name

    def remember_cell(info: Any) -> None:
        running[0] = cell_key(getattr(info, "raw_cell", "") or "")

    shell.events.register("pre_run_cell", remember_cell)

    def note(text: str) -> None:
        if text in seen:
            return
        seen.add(text)
        if len(_access_notes) < MAX_ACCESS_NOTES:
            _access_notes.append((running[0], text))
        elif len(_access_notes) == MAX_ACCESS_NOTES:
            _access_notes.append((running[0], "... more attempts not listed"))

    def path_of(value: Any) -> str | None:
        if isinstance(value, (str, bytes, os.PathLike)):
            return os.path.abspath(os.fsdecode(value))
        return None  # a file descriptor

    def hook(event: str, args: tuple) -> None:
        try:
            if event in ("open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir", "os.rmdir",
                         "os.chmod", "shutil.rmtree"):
                path = path_of(args[0])
                if path is None or _under(path, own) or "/__pycache__/" in path:
                    return
                secret = _under(path, hidden) and not _under(path, readable)
                if event == "open":
                    mode, flags = args[1] or "", args[2] or 0
                    writing = bool(flags & write_flags) or any(c in mode for c in "wax+")
                    action = "write" if writing else "read"
                else:
                    writing, action = event not in ("os.listdir", "os.scandir"), event.split(".")[-1]
                # Reads and listings matter in the hidden folders; changes anywhere but scratch space.
                if secret or (writing and not _under(path, scratch)):
                    note(f"{action} {path}")
            elif event == "socket.connect":
                note(f"connect to {args[1]!r}")
        except Exception:  # noqa: BLE001 - an audit hook must never break the student's code
            pass

    sys.addaudithook(hook)


def verify(nonce: str, test_names: tuple[str, ...] = ()) -> None:
    """Report the access notes, then raise TamperingDetected listing what changed, or print
    the grader's token."""
    for key, text in _access_notes:
        print(f"course-guard-access {nonce} {key} {text}")
    _access_notes.clear()
    found = problems(tuple(test_names))
    if found:
        shown = found[:8] + ([f"... and {len(found) - 8} more"] if len(found) > 8 else [])
        raise TamperingDetected("; ".join(shown))
    print(f"course-guard-ok {nonce}")


def cap_output(shell, limit: int) -> None:
    """Drop what a cell writes to stdout/stderr beyond `limit` characters, inside the kernel.

    Only a speed-up: the grader enforces its own limit on what reaches the notebook (and
    output written straight to the file descriptors bypasses this), but it spares the grader
    from receiving hundreds of MB that it would drop anyway."""
    used = [0]

    def reset(*_args) -> None:
        used[0] = 0

    shell.events.register("pre_run_cell", reset)
    for stream in (sys.stdout, sys.stderr):
        original = stream.write

        def write(text, _original=original):
            room = limit - used[0]
            used[0] += len(text)
            if room <= 0:
                return len(text)
            return _original(text if len(text) <= room else text[:room])

        stream.write = write


def load_ipython_extension(shell) -> None:
    global _snapshot
    if _snapshot is None:
        import os

        cap = int(os.environ.pop("COURSE_OUTPUT_CAP", "0") or 0)
        if cap > 0:
            cap_output(shell, cap)
        watch = os.environ.pop("COURSE_GUARD_WATCH", "")
        if watch:
            import json

            settings = json.loads(watch)
            watch_access(shell, settings["own"], settings["scratch"], settings["hidden"], settings["readable"])
        _snapshot = take_snapshot(shell)


def unload_ipython_extension(shell) -> None:  # pragma: no cover - the grader never unloads it
    pass
