"""The student's kernel during grading (an IPython extension; docs/grading-sandbox.md).

The sandbox launcher loads it into the student's kernel, which runs the solution cells and the
student's own cells and never a test cell. While a test cell runs in the tests' kernel, the
grader has this kernel execute `serve(...)`: it connects to the tests' kernel and answers its
requests (look up a name, call a function, read an attribute, ...) until told to stop. Every
answer is plain data or a handle (grader.wire), so nothing here can change how the tests judge
the values: code in this process may replace anything in it, and can still only return values.

Also here: the access log (what the student's code tried outside its folder, through a Python
audit hook) and the in-kernel output cap. Both are information and speed-ups, not protections.
"""

from __future__ import annotations

import io
import os
import pickle
import socket
import sys
import traceback
from typing import Any

from grader import link, wire

MAX_ACCESS_NOTES = 20
_objects: dict[int, Any] = {}      # handle id -> the object it stands for (kept alive)
_handle_of: dict[int, int] = {}    # id(object) -> handle id
_access_notes: list[tuple[str, str]] = []


def _type_names(obj: Any) -> list[str]:
    return [f"{c.__module__}:{c.__qualname__}" for c in type(obj).__mro__]


def handle(obj: Any) -> dict:
    """The handle that stands for `obj` in the tests' kernel (the same object, the same handle)."""
    hid = _handle_of.get(id(obj))
    if hid is None or _objects.get(hid) is not obj:
        hid = len(_objects) + 1
        _objects[hid] = obj
        _handle_of[id(obj)] = hid
    try:
        text = repr(obj)[:300]
    except Exception:  # noqa: BLE001 - a broken __repr__ is the student's
        text = f"<{type(obj).__name__} object>"
    return {"id": hid, "types": _type_names(obj), "repr": text}


class _Loader(pickle.Unpickler):
    """Requests from the tests: handles in them are the objects they stand for."""

    def persistent_load(self, pid: Any) -> Any:
        return _objects[pid[1]]


def _error(error: BaseException) -> dict:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=-8))
    return {"types": _type_names(error), "message": str(error)[:4000], "traceback": text[-6000:]}


def _perform(op: str, args: tuple) -> Any:
    if op == "lookup":
        namespace = _user_ns()
        return {name: namespace[name] for name in args[0] if name in namespace}
    if op == "call":
        target, positional, keywords = args
        return target(*positional, **keywords)
    if op == "getattr":
        return getattr(args[0], args[1])
    if op == "setattr":
        setattr(args[0], args[1], args[2])
        return None
    if op == "getitem":
        return args[0][args[1]]
    if op == "setitem":
        args[0][args[1]] = args[2]
        return None
    if op == "delitem":
        del args[0][args[1]]
        return None
    if op == "len":
        return len(args[0])
    if op == "iter":
        return iter(args[0])
    if op == "next_chunk":
        items = []
        for _ in range(args[1]):
            try:
                items.append(next(args[0]))
            except StopIteration:
                return items, True
        return items, False
    if op in ("repr", "str"):
        return (repr if op == "repr" else str)(args[0])
    if op == "bool":
        return bool(args[0])
    if op == "contains":
        return args[1] in args[0]
    if op == "operator":
        import operator

        return getattr(operator, args[0])(*args[1:])
    if op == "source":
        import inspect
        import textwrap

        return textwrap.dedent(inspect.getsource(args[0]))
    if op == "dir":
        return sorted(dir(args[0]))
    raise ValueError(f"unknown request {op!r}")


def _answer(request: bytes) -> bytes:
    tracked: list = []
    try:
        op, args, tracked = _Loader(io.BytesIO(request)).load()
    except Exception as error:  # noqa: BLE001 - e.g. a class of the tests' that cannot be rebuilt here
        return wire.encode({"error": _error(error), "restore": []}, handle)
    try:
        value = _perform(op, args)
        reply = {"ok": value}
    except BaseException as error:  # noqa: BLE001 - KeyboardInterrupt, SystemExit: the test's failure
        reply = {"error": _error(error)}
    states = []
    for obj in tracked:
        try:
            states.append(link.state_of(obj))
        except Exception:  # noqa: BLE001
            states.append(None)
    reply["restore"] = states
    try:
        return wire.encode(reply, handle)
    except Exception as error:  # noqa: BLE001 - a value that cannot be sent (too deep, ...)
        return wire.encode({"error": _error(error), "restore": []}, handle)


def _user_ns() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else vars(sys.modules["__main__"])


def serve(path: str, nonce: str) -> None:
    """Answer the tests' kernel's requests until it says the test cell ended."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        link.send_frame(sock, nonce.encode())
        while True:
            try:
                request = link.recv_frame(sock)
            except link.ChannelClosed:
                break
            if request == b"end":
                break
            link.send_frame(sock, _answer(request))
    finally:
        sock.close()
        report_access(nonce)


# --------------------------------------------------------------------------------------
# Access log and output cap
# --------------------------------------------------------------------------------------

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
                         "os.chmod", "shutil.rmtree", "os.symlink", "os.link"):
                path = path_of(args[1] if event in ("os.symlink", "os.link") else args[0])
                if path is None or _under(path, own) or "/__pycache__/" in path:
                    if event not in ("os.symlink", "os.link"):
                        return
                    path = path_of(args[0]) or "?"
                secret = _under(path, hidden) and not _under(path, readable)
                if event == "open":
                    mode, flags = args[1] or "", args[2] or 0
                    writing = bool(flags & write_flags) or any(c in mode for c in "wax+")
                    action = "write" if writing else "read"
                else:
                    writing, action = event not in ("os.listdir", "os.scandir"), event.split(".")[-1]
                # Reads and listings matter in the hidden folders; changes anywhere but scratch space;
                # links pointing anywhere outside the student's folder.
                if secret or (writing and not _under(path, scratch)) or event in ("os.symlink", "os.link"):
                    note(f"{action} {path}")
            elif event == "socket.connect" and getattr(args[0], "family", None) != socket.AF_UNIX:
                note(f"connect to {args[1]!r}")
        except Exception:  # noqa: BLE001 - an audit hook must never break the student's code
            pass

    sys.addaudithook(hook)


def report_access(nonce: str) -> None:
    """Print the access notes for the grader (it logs them with the cell's name)."""
    for key, text in _access_notes:
        print(f"course-access {nonce} {key} {text}")
    _access_notes.clear()


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


_loaded = False


def load_ipython_extension(shell) -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import json

    cap = int(os.environ.pop("COURSE_OUTPUT_CAP", "0") or 0)
    if cap > 0:
        cap_output(shell, cap)
    watch = os.environ.pop("COURSE_GUARD_WATCH", "")
    if watch:
        settings = json.loads(watch)
        watch_access(shell, settings["own"], settings["scratch"], settings["hidden"], settings["readable"])
