"""Data that crosses from the student's process to the tests' process, and nothing else.

The tests never unpickle anything the student's process sends. A reply is encoded here as
a JSON header plus raw byte buffers, and decoded into plain values only: None, bools,
numbers, strings, bytes, paths, lists, tuples, dicts, sets, slices, torch tensors, parameters,
sizes, dtypes and devices, numpy arrays and scalars of numeric types. Anything else (a
function, a model, a dataset) stays in the student's process and arrives as a *handle*: a
number and a few strings that the tests' side turns into a proxy (grader.tests_side.Remote).

Decoding checks every field (types, dtype names, shapes against buffer sizes, depth), so a
hostile student process can send wrong values, never code or objects of its choosing.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path, PurePath
from typing import Any
from collections.abc import Callable

MAX_DEPTH = 64
MAX_ITEMS = 10_000_000

TORCH_DTYPES = ("float64", "float32", "float16", "bfloat16", "complex64", "complex128", "int64", "int32",
                "int16", "int8", "uint8", "bool")
NUMPY_KINDS = "biufc"  # bool, int, unsigned, float, complex: never object, void or strings


class WireError(Exception):
    """A message that is not what the protocol allows (raised on the tests' side)."""


# --------------------------------------------------------------------------------------
# Encoding (runs in the student's process)
# --------------------------------------------------------------------------------------

def encode(value: Any, handle: Callable[[Any], dict] | None) -> bytes:
    """`value` as one message; objects that are not data become `handle(obj)` (None: refuse them)."""
    buffers: list[bytes] = []
    header = json.dumps(_enc(value, handle, buffers, 0)).encode()
    parts = [struct.pack("<II", len(header), len(buffers)), header]
    for buf in buffers:
        parts += [struct.pack("<Q", len(buf)), buf]
    return b"".join(parts)


def _enc(value: Any, handle, buffers: list[bytes], depth: int) -> Any:
    import numpy as np
    import torch

    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply to send to the tests")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, float):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, int) and not isinstance(value, np.integer):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, torch.Tensor):
        return {"tensor": _enc_tensor(value, handle, buffers, depth)}
    if isinstance(value, torch.Size):
        return {"size": [int(v) for v in value]}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, np.ndarray) and value.dtype.kind in NUMPY_KINDS:
        buffers.append(np.ascontiguousarray(value).tobytes())
        return {"ndarray": {"dtype": value.dtype.str, "shape": list(value.shape), "buf": len(buffers) - 1}}
    if isinstance(value, np.generic) and value.dtype.kind in NUMPY_KINDS:
        buffers.append(value.tobytes())
        return {"npscalar": {"dtype": value.dtype.str, "buf": len(buffers) - 1}}
    if isinstance(value, complex):
        return {"complex": [repr(value.real), repr(value.imag)]}
    if isinstance(value, PurePath):
        return {"path": str(value)}
    if isinstance(value, (bytes, bytearray)):
        buffers.append(bytes(value))
        return {"bytes": len(buffers) - 1}
    if isinstance(value, slice):
        return {"slice": [_enc(v, handle, buffers, depth + 1) for v in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"ellipsis": 0}
    if isinstance(value, list):
        return {"list": [_enc(v, handle, buffers, depth + 1) for v in value]}
    if isinstance(value, tuple):  # namedtuples and torch.return_types arrive as plain tuples
        return {"tuple": [_enc(v, handle, buffers, depth + 1) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"set": [_enc(v, handle, buffers, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[_enc(k, handle, buffers, depth + 1), _enc(v, handle, buffers, depth + 1)]
                         for k, v in value.items()]}
    if handle is None:
        raise TypeError(f"{type(value).__name__} is not data")
    return {"handle": handle(value)}


def _enc_tensor(value, handle, buffers: list[bytes], depth: int) -> dict:
    import torch

    data = torch.Tensor.detach(value)
    if data.layout != torch.strided or data.is_quantized or data.device.type == "meta":
        data = data.to_dense() if data.layout != torch.strided else data.dequantize()
    data = data.cpu().contiguous()
    name = str(data.dtype).removeprefix("torch.")
    if name not in TORCH_DTYPES:
        data, name = data.double(), "float64"
    raw = data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b""
    buffers.append(raw)
    node = {"dtype": name, "shape": list(data.shape), "buf": len(buffers) - 1,
            "requires_grad": bool(value.requires_grad), "param": isinstance(value, torch.nn.Parameter)}
    grad = value.grad if value.is_leaf else None
    if grad is not None:
        node["grad"] = _enc_tensor(grad, handle, buffers, depth + 1)
    return node


# --------------------------------------------------------------------------------------
# Decoding (runs in the tests' process: trusts nothing)
# --------------------------------------------------------------------------------------

def decode(message: bytes, remote: Callable[[dict], Any]) -> Any:
    """The value in `message`; `remote(info)` makes the proxy for a handle."""
    try:
        header_len, count = struct.unpack_from("<II", message, 0)
        offset = 8
        header = json.loads(message[offset:offset + header_len])
        offset += header_len
        buffers = []
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", message, offset)
            offset += 8
            if offset + size > len(message):
                raise WireError("truncated buffer")
            buffers.append(message[offset:offset + size])
            offset += size
    except (struct.error, ValueError) as error:
        raise WireError(f"malformed message from the student's process: {error}") from None
    return _dec(header, buffers, remote, 0)


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise WireError(f"malformed message from the student's process: {what}")


def _buffer(buffers: list[bytes], index: Any) -> bytes:
    _expect(type(index) is int and 0 <= index < len(buffers), "buffer index")
    return buffers[index]


def _dec(node: Any, buffers: list[bytes], remote, depth: int) -> Any:
    _expect(depth <= MAX_DEPTH + 2, "nested too deeply")
    if node is None or type(node) in (bool, int, float, str):
        return node
    _expect(type(node) is dict and len(node) == 1, "node")
    (tag, body), = node.items()
    items = lambda: [_dec(v, buffers, remote, depth + 1) for v in _list(body)]  # noqa: E731
    if tag == "list":
        return items()
    if tag == "tuple":
        return tuple(items())
    if tag == "set":
        return set(items())
    if tag == "dict":
        pairs = [_list(p) for p in _list(body)]
        _expect(all(len(p) == 2 for p in pairs), "dict item")
        return {_dec(k, buffers, remote, depth + 1): _dec(v, buffers, remote, depth + 1) for k, v in pairs}
    if tag == "float":
        _expect(body in ("nan", "inf", "-inf"), "float")
        return float(body)
    if tag == "complex":
        parts = _list(body)
        _expect(len(parts) == 2 and all(type(p) is str for p in parts), "complex")
        return complex(float(parts[0]), float(parts[1]))
    if tag == "bytes":
        return bytes(_buffer(buffers, body))
    if tag == "path":
        _expect(type(body) is str, "path")
        return Path(body)
    if tag == "slice":
        parts = items()
        _expect(len(parts) == 3, "slice")
        return slice(*parts)
    if tag == "ellipsis":
        return Ellipsis
    if tag == "tensor":
        return _dec_tensor(body, buffers, depth)
    if tag == "size":
        import torch

        _expect(all(type(v) is int for v in _list(body)), "size")
        return torch.Size(body)
    if tag == "dtype":
        import torch

        _expect(body in TORCH_DTYPES, "dtype")
        return getattr(torch, body)
    if tag == "device":
        import torch

        _expect(type(body) is str and len(body) < 32, "device")
        return torch.device(body)
    if tag == "ndarray":
        return _dec_ndarray(body, buffers)
    if tag == "npscalar":
        import numpy as np

        _expect(type(body) is dict, "numpy scalar")
        dtype = _numpy_dtype(body.get("dtype"))
        raw = _buffer(buffers, body.get("buf"))
        _expect(len(raw) == dtype.itemsize, "numpy scalar size")
        return np.frombuffer(raw, dtype=dtype)[0]
    if tag == "handle":
        _expect(type(body) is dict and type(body.get("id")) is int, "handle")
        types = body.get("types", [])
        _expect(type(types) is list and all(type(t) is str for t in types), "handle types")
        _expect(type(body.get("repr", "")) is str, "handle repr")
        return remote(body)
    raise WireError(f"malformed message from the student's process: unknown tag {tag!r}")


def _list(value: Any) -> list:
    _expect(type(value) is list and len(value) <= MAX_ITEMS, "list")
    return value


def _shape(value: Any) -> list[int]:
    _expect(type(value) is list and len(value) <= 32 and all(type(v) is int and v >= 0 for v in value), "shape")
    return value


def _dec_tensor(body: Any, buffers: list[bytes], depth: int):
    import torch

    _expect(type(body) is dict, "tensor")
    name, shape = body.get("dtype"), _shape(body.get("shape"))
    _expect(name in TORCH_DTYPES, "tensor dtype")
    dtype = getattr(torch, name)
    raw = _buffer(buffers, body.get("buf"))
    numel = math.prod(shape)
    _expect(len(raw) == numel * torch.empty((), dtype=dtype).element_size(), "tensor size")
    if numel == 0:
        tensor = torch.empty(shape, dtype=dtype)
    else:
        tensor = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape)
    requires_grad = body.get("requires_grad", False)
    _expect(type(requires_grad) is bool, "requires_grad")
    if body.get("param"):
        tensor = torch.nn.Parameter(tensor, requires_grad=requires_grad)
    elif requires_grad:
        _expect(tensor.is_floating_point() or tensor.is_complex(), "requires_grad on an integer tensor")
        tensor.requires_grad_(True)
    if body.get("grad") is not None:
        grad = _dec_tensor(body["grad"], buffers, depth + 1)
        if grad.shape == tensor.shape and grad.dtype == tensor.dtype:
            tensor.grad = grad
    return tensor


def _numpy_dtype(text: Any):
    import numpy as np

    _expect(type(text) is str and len(text) < 8, "numpy dtype")
    try:
        dtype = np.dtype(text)
    except TypeError:
        raise WireError(f"malformed message from the student's process: numpy dtype {text!r}") from None
    _expect(dtype.kind in NUMPY_KINDS and dtype.fields is None and dtype.subdtype is None, "numpy dtype kind")
    return dtype


def _dec_ndarray(body: Any, buffers: list[bytes]):
    import numpy as np

    _expect(type(body) is dict, "ndarray")
    dtype, shape = _numpy_dtype(body.get("dtype")), _shape(body.get("shape"))
    raw = _buffer(buffers, body.get("buf"))
    _expect(len(raw) == math.prod(shape) * dtype.itemsize, "ndarray size")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
