"""The tests' kernel during grading (an IPython extension; docs/grading-sandbox.md).

No student code ever runs in this process. It runs the setup cell, the instructor's other
locked cells and every test cell. Before each cell, the names the cell uses that this kernel
did not define itself (`one_hot`, `MLP`, `q1_answer`, ...) are looked up in the student's
kernel over a unix socket:

* plain data (numbers, strings, tensors, arrays, and lists, tuples, dicts of them) arrives as
  a copy, decoded by grader.wire, which never unpickles what the student's process sends;
* anything else (a function, a class, a model) arrives as a `Remote`: calling it, reading
  its attributes or items, iterating over it, arithmetic, are requests to the student's
  kernel, whose answers are again data or Remotes. Never the student's answer: `==` (identity)
  and truth (always true), so a test comparing values cannot be fooled by a student's __eq__.

Arguments travel the other way by pickle (this side is trusted). Tensors, modules and
optimizers passed to a student's function come back changed when the function changed them
in place (link.tracked_arguments), so `sgd_step(params, lr)` or `train_one_epoch(model, ...)`
read as ordinary Python. `helpers.check.in_student(fn)` runs a function of the test's in the
student's kernel, for work that must stay there (autograd through the student's code).

The student's kernel can return wrong values; it cannot reach this process's objects, the
test code, or how a test's outcome is decided.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import socket
import sys
from typing import Any
from collections.abc import Callable

from grader import link, wire

SOCKET_VAR = "COURSE_TESTS_SOCKET"
ACCEPT_TIMEOUT_S = 15  # the grader starts the student's side first; an idle kernel connects at once
REQUEST_TIMEOUT_S = 900  # the grader interrupts a test cell long before (Execute.timeout)
#: Modules whose classes a Remote may claim to be an instance of (for isinstance in the tests).
TRUSTED_MODULES = ("builtins", "torch", "numpy", "collections", "PIL", "torchvision", "abc", "helpers")


class StudentError(Exception):
    """An exception of the student's code whose type is not one of Python's built-in exceptions."""


class StudentUnavailable(RuntimeError):
    """The student's kernel did not answer (it died, hung, or stopped serving)."""


# --------------------------------------------------------------------------------------
# Remote: a proxy for an object that stays in the student's kernel
# --------------------------------------------------------------------------------------

#: Types that always travel as data: a proxy claiming one of them is lying, and is not one.
_DATA_TYPES = {f"builtins:{name}" for name in ("str", "int", "float", "bool", "bytes", "complex", "list", "tuple",
                                                "dict", "set", "frozenset", "NoneType", "slice")}


def _trusted_class(types: list[str]) -> type:
    for entry in types:
        if entry in _DATA_TYPES:
            continue
        module_name, _, qualname = entry.partition(":")
        if module_name.split(".")[0] not in TRUSTED_MODULES or module_name not in sys.modules:
            continue
        value: Any = sys.modules[module_name]
        for part in qualname.split("."):
            value = getattr(value, part, None)
        if isinstance(value, type):
            return value
    return Remote


class Remote:
    """An object of the student's kernel (see the module docstring). `isinstance(r, nn.Module)`
    holds when the student's object is one; `type(r)` is Remote."""

    __slots__ = ("_course_id", "_course_types", "__weakref__")

    def __init__(self, info: dict):
        object.__setattr__(self, "_course_id", info["id"])
        object.__setattr__(self, "_course_types", list(info.get("types", [])))

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105 - what isinstance() sees
        return _trusted_class(object.__getattribute__(self, "_course_types"))

    def __getattr__(self, name: str) -> Any:
        if (name.startswith("__") and name not in ("__name__", "__qualname__")) \
                or name.startswith(("_repr_", "_ipython_")):
            raise AttributeError(name)
        return _link().request("getattr", self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        _link().request("setattr", self, name, value, track=link.tracked_arguments(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _link().call(self, args, kwargs)

    def __getitem__(self, key: Any) -> Any:
        return _link().request("getitem", self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        _link().request("setitem", self, key, value, track=link.tracked_arguments(value))

    def __delitem__(self, key: Any) -> None:
        _link().request("delitem", self, key)

    def __len__(self) -> int:
        value = _link().request("len", self)
        if type(value) is not int:
            raise TypeError("len() of the student's object is not an int")
        return value

    def __iter__(self):
        return _RemoteIterator(_link().request("iter", self))

    def __next__(self) -> Any:
        items, _ = _link().request("next_chunk", self, 1)
        if not items:
            raise StopIteration
        return items[0]

    def __contains__(self, item: Any) -> bool:
        return bool(_link().request("contains", self, item))

    def __bool__(self) -> bool:
        # Like any object, and never the student's answer: `assert result` on a proxy must not
        # pass because the student's __bool__ says so.
        return True

    def __eq__(self, other: Any) -> bool:
        # Identity, never the student's __eq__: `[got] == [False]` must compare data.
        return other is self

    def __ne__(self, other: Any) -> bool:
        return other is not self

    def __repr__(self) -> str:
        try:
            return str(_link().request("repr", self))
        except Exception:  # noqa: BLE001 - repr is used in error messages: never fail there
            return f"<{_short_type(self)} object of the student's kernel>"

    def __str__(self) -> str:
        return str(_link().request("str", self))

    def __hash__(self) -> int:
        return hash(("remote", object.__getattribute__(self, "_course_id")))

    def __dir__(self) -> list[str]:
        return list(_link().request("dir", self))

    def __reduce_ex__(self, protocol: int):
        raise TypeError("an object of the student's kernel cannot be copied into the tests' kernel "
                        "(call its methods, or use helpers.check.in_student)")

    def course_source(self) -> str:
        """The source code of the student's function or class (as the student's kernel reports it)."""
        return str(_link().request("source", self))


def _operator(name: str, swapped: bool = False) -> Callable:
    def method(self, other):
        args = (other, self) if swapped else (self, other)
        return _link().request("operator", name, *args)
    method.__name__ = f"__{'r' if swapped else ''}{name.rstrip('_')}__"
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul"):
    setattr(Remote, f"__{_name}__", _operator(_name))
    setattr(Remote, f"__r{_name}__", _operator(_name, swapped=True))
Remote.__neg__ = lambda self: _link().request("operator", "neg", self)  # type: ignore[attr-defined]


def _short_type(remote: Remote) -> str:
    types = object.__getattribute__(remote, "_course_types")
    return types[0].rpartition(":")[2] if types else "?"


class _RemoteIterator:
    """Iterates over a student's iterator, fetching 64 items per request."""

    def __init__(self, iterator: Any):
        self._iterator, self._items, self._done = iterator, [], False

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        if not self._items and not self._done:
            items, self._done = _link().request("next_chunk", self._iterator, 64)
            self._items = list(items)[::-1]
        if not self._items:
            raise StopIteration
        return self._items.pop()


# --------------------------------------------------------------------------------------
# The link to the student's kernel
# --------------------------------------------------------------------------------------

def _dumps(value: Any) -> bytes:
    import cloudpickle
    import torch

    class Pickler(cloudpickle.Pickler):
        def persistent_id(self, obj):
            if type(obj) is Remote:
                return ("remote", object.__getattribute__(obj, "_course_id"))
            return None

        def reducer_override(self, obj):
            if type(obj) is not Remote and isinstance(obj, torch.Tensor) and (
                    obj.grad is not None if obj.is_leaf else obj.requires_grad):
                grad = obj.grad if obj.is_leaf else None
                return link.rebuild_tensor, (obj.detach(), obj.requires_grad, grad,
                                             isinstance(obj, torch.nn.Parameter))
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=5).dump(value)
    return buffer.getvalue()


def _exception(info: Any) -> BaseException:
    """The tests' side of an exception raised in the student's kernel."""
    if not isinstance(info, dict):
        return StudentError("the student's code failed")
    message = str(info.get("message", ""))[:4000]
    error: BaseException | None = None
    for entry in info.get("types") or []:
        module_name, _, name = str(entry).partition(":")
        value = getattr(builtins, name, None) if module_name == "builtins" else None
        if isinstance(value, type) and issubclass(value, Exception) and value is not Exception:
            try:
                error = value(message)
            except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs 5 arguments
                continue
            break
    if error is None:
        types = info.get("types") or ["?"]
        error = StudentError(f"{str(types[0]).rpartition(':')[2]}: {message}")
    trace = str(info.get("traceback", ""))[-3000:]
    if trace:
        error.add_note(f"--- raised in your code (the student's kernel) ---\n{trace.rstrip()}")
    return error


class Link:
    """This kernel's end of the channel: listens on a unix socket; the grader has the student's
    kernel connect before every cell and disconnect after it."""

    def __init__(self, path: str):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.conn: socket.socket | None = None
        self.proxies: dict[int, Remote] = {}

    def begin(self) -> None:
        self.end()
        self.server.settimeout(ACCEPT_TIMEOUT_S)
        try:
            conn, _ = self.server.accept()
            conn.settimeout(REQUEST_TIMEOUT_S)
            link.recv_frame(conn)  # the student's kernel's hello
        except (OSError, link.ChannelClosed) as error:
            raise StudentUnavailable(f"the student's kernel did not connect ({error})") from None
        self.conn = conn

    def end(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                link.send_frame(conn, b"end")
            except OSError:
                pass
            conn.close()

    def remote(self, info: dict) -> Remote:
        proxy = self.proxies.get(info["id"])
        if proxy is None or object.__getattribute__(proxy, "_course_types") != info.get("types"):
            proxy = self.proxies[info["id"]] = Remote(info)
        return proxy

    def request(self, op: str, *args: Any, track: list | tuple = ()) -> Any:
        if self.conn is None:
            raise StudentUnavailable("the student's kernel is not connected (it died or stopped answering "
                                     "earlier in this cell)")
        payload = _dumps((op, args, list(track)))
        try:
            link.send_frame(self.conn, payload)
            reply = wire.decode(link.recv_frame(self.conn), self.remote)
        except BaseException as error:
            # Interrupted (the cell's time limit), timed out, closed, or garbled: the channel is
            # out of step, so this cell talks to the student's kernel no more.
            conn, self.conn = self.conn, None
            conn.close()
            if isinstance(error, (OSError, link.ChannelClosed, wire.WireError)):
                raise StudentUnavailable(f"the student's kernel stopped answering ({error})") from None
            raise
        if not isinstance(reply, dict):
            raise wire.WireError("malformed reply from the student's process")
        states = reply.get("restore") or []
        for obj, state in zip(track, states if isinstance(states, list) else []):
            link.restore(obj, state)
        if "error" in reply:
            raise _exception(reply["error"])
        return reply.get("ok")

    def call(self, target: Any, args: tuple, kwargs: dict) -> Any:
        return self.request("call", target, args, kwargs, track=link.tracked_arguments([args, kwargs]))

    def in_student(self, fn: Callable) -> Callable:
        def run(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, args, kwargs)

        run.__name__ = getattr(fn, "__name__", "in_student")
        return run


_LINK: Link | None = None


def _link() -> Link:
    if _LINK is None:
        raise StudentUnavailable("not grading: there is no student's kernel to talk to")
    return _LINK


# --------------------------------------------------------------------------------------
# Names: what a cell uses that this kernel did not define
# --------------------------------------------------------------------------------------

def free_names(source: str) -> set[str]:
    """Every name a cell reads (anywhere in it, nested functions included)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


class Binder:
    """Binds the names a cell needs from the student's kernel before it runs (IPython events)."""

    def __init__(self, shell, channel: Link, allowed: set[str] | None = None):
        self.shell, self.link = shell, channel
        self.bound: dict[str, Any] = {}   # name -> the value looked up for it
        self.allowed = allowed            # the names the instructor's solution cells define (None: any)

    def pre_run_cell(self, info: Any) -> None:
        self.link.begin()
        namespace = self.shell.user_ns
        source = self.shell.transform_cell(getattr(info, "raw_cell", "") or "")
        wanted = sorted(name for name in free_names(source)
                        if name not in builtins.__dict__ and (name not in namespace or name in self.bound)
                        and (self.allowed is None or name in self.allowed))
        found = self.link.request("lookup", wanted) if wanted else {}
        for name in wanted:
            if name in found:
                namespace[name] = self.bound[name] = found[name]
            elif name in self.bound:
                del self.bound[name]
                namespace.pop(name, None)

    def post_run_cell(self, result: Any) -> None:
        self.link.end()
        namespace = self.shell.user_ns
        for name, value in list(self.bound.items()):
            if namespace.get(name, self) is not value:  # reassigned by the tests: theirs now
                del self.bound[name]


def load_ipython_extension(shell) -> None:
    global _LINK
    if _LINK is not None:
        return
    path = os.environ.pop(SOCKET_VAR, "")
    if not path:
        return
    if sys.platform == "linux":
        # Not dumpable: a process of the same uid (the student's kernel, when there is no
        # bubblewrap to put them in separate pid namespaces) can neither ptrace this one nor
        # read its memory through /proc.
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    for entry in ("", os.getcwd()):  # nothing of a writable folder is importable here
        while entry in sys.path:
            sys.path.remove(entry)
    _LINK = Link(path)
    names = os.environ.pop("COURSE_STUDENT_NAMES", "")
    binder = Binder(shell, _LINK, set(json.loads(names)) if names else None)
    shell.events.register("pre_run_cell", binder.pre_run_cell)
    shell.events.register("post_run_cell", binder.post_run_cell)
    import helpers.check

    helpers.check._student_runner = _LINK.in_student
