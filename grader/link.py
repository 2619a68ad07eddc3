"""The channel between the tests' kernel and the student's kernel: length-prefixed frames on a
unix socket (grader.tests_side listens, grader.student_side connects), and the copy-back of
arguments that a student's function changed.

Requests (tests -> student) are pickled: the tests' process is trusted, and the student's
process may do what it likes with them. Replies (student -> tests) are grader.wire
messages, never pickles.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

MAX_FRAME = 2 * 1024**3  # a reply larger than 2 GiB is refused


class ChannelClosed(ConnectionError):
    """The other side went away (the student's kernel died, or stopped serving)."""


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack("<Q", len(payload)) + payload)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise ChannelClosed("the student's process closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack("<Q", _recv_exact(sock, 8))
    if size > MAX_FRAME:
        raise ChannelClosed(f"a message of {size} bytes is over the {MAX_FRAME}-byte limit")
    return _recv_exact(sock, size)


def rebuild_tensor(data, requires_grad: bool, grad, parameter: bool):
    """A tensor of the tests' as the student's side gets it: with its .grad (pickle drops it) and
    as a leaf (autograd graphs do not travel)."""
    import torch

    tensor = torch.nn.Parameter(data, requires_grad=requires_grad) if parameter else data.requires_grad_(requires_grad)
    if grad is not None:
        tensor.grad = grad
    return tensor


# --------------------------------------------------------------------------------------
# Copy-back: what a call did to its arguments (tensors, modules, optimizers)
# --------------------------------------------------------------------------------------

def tracked_arguments(values: Any, depth: int = 0, found: list | None = None) -> list:
    """Tensors, modules and optimizers in `values` (through lists, tuples and dicts): their
    state comes back after the call, so in-place changes reach the tests' objects."""
    import torch

    found = [] if found is None else found
    if depth > 6 or len(found) > 10_000:
        return found
    if isinstance(values, (torch.Tensor, torch.nn.Module, torch.optim.Optimizer)):
        if not any(v is values for v in found):
            found.append(values)
    elif isinstance(values, (list, tuple)):
        for v in values:
            tracked_arguments(v, depth + 1, found)
    elif isinstance(values, dict):
        for v in values.values():
            tracked_arguments(v, depth + 1, found)
    return found


def state_of(obj: Any) -> Any:
    """What the student's side sends back about one tracked argument (plain data)."""
    import torch

    from grader import wire

    if isinstance(obj, torch.Tensor):
        return {"tensor": obj}
    if isinstance(obj, torch.nn.Module):
        attrs = []
        for module in obj.modules():
            plain = {}
            for key, value in vars(module).items():
                if key.startswith("_") or key == "training":
                    continue
                try:
                    wire.encode(value, None)
                except (TypeError, ValueError, RecursionError):
                    continue
                plain[key] = value
            attrs.append(plain)
        return {"module": {"state": dict(obj.state_dict(keep_vars=True)),
                           "training": [m.training for m in obj.modules()], "attrs": attrs}}
    if isinstance(obj, torch.optim.Optimizer):
        return {"optimizer": obj.state_dict()}
    return None


def restore(obj: Any, state: Any) -> None:
    """Apply a state from `state_of` to the tests' own object, in place."""
    import torch

    if not isinstance(state, dict) or len(state) != 1:
        return
    (kind, body), = state.items()
    if kind == "tensor" and isinstance(obj, torch.Tensor) and isinstance(body, torch.Tensor):
        _restore_tensor(obj, body)
    elif kind == "module" and isinstance(obj, torch.nn.Module) and isinstance(body, dict):
        mine = obj.state_dict(keep_vars=True)
        for name, value in (body.get("state") or {}).items():
            if name in mine and isinstance(value, torch.Tensor):
                _restore_tensor(mine[name], value)
        modules = list(obj.modules())
        for module, flag in zip(modules, body.get("training") or []):
            if isinstance(flag, bool):
                module.training = flag
        for module, attrs in zip(modules, body.get("attrs") or []):
            for key, value in (attrs or {}).items():
                if isinstance(key, str) and not key.startswith("_") and key != "training":
                    try:
                        setattr(module, key, value)
                    except Exception:  # noqa: BLE001 - a read-only attribute stays as it was
                        pass
    elif kind == "optimizer" and isinstance(obj, torch.optim.Optimizer) and isinstance(body, dict):
        try:
            obj.load_state_dict(body)
        except Exception:  # noqa: BLE001 - a state that no longer fits (changed param groups)
            pass


def _restore_tensor(target, new) -> None:
    import torch

    with torch.no_grad():
        if target.shape == new.shape and target.dtype == new.dtype:
            if not torch.equal(target, new):
                target.copy_(new)
        elif target.is_leaf:
            target.data = new.detach().clone()
    if target.is_leaf:
        if target.requires_grad != new.requires_grad and (target.is_floating_point() or target.is_complex()):
            target.requires_grad_(new.requires_grad)
        grad = new.grad
        if grad is None or (grad.shape == target.shape and grad.dtype == target.dtype):
            target.grad = grad
