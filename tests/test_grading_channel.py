"""The channel between the tests' kernel and the student's kernel (grader.wire, grader.link,
grader.student_side, grader.tests_side), in one process: a thread plays the student's kernel.

What is proven here: values arrive as plain data or as proxies; calls, attributes, items,
iteration and comparisons reach the student's objects; in-place changes to the tests'
arguments come back; exceptions keep their built-in type; and the decoder refuses every
malformed message without ever unpickling what the student's side sends.
"""

from __future__ import annotations

import math
import pickle
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from grader import link, student_side, tests_side, wire


@pytest.fixture
def student(tmp_path, monkeypatch):
    """(namespace, link): what the student defined, and the tests' end of a live channel."""
    path = str(tmp_path / "tests.sock")
    channel = tests_side.Link(path)
    namespace: dict = {}
    monkeypatch.setattr(student_side, "_user_ns", lambda: namespace)
    monkeypatch.setattr(student_side, "report_access", lambda nonce: None)
    monkeypatch.setattr(tests_side, "_LINK", channel)
    thread = threading.Thread(target=student_side.serve, args=(path, "nonce"), daemon=True)
    thread.start()
    channel.begin()
    yield namespace, channel
    channel.end()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the student's side did not stop serving at the end of the cell"


def lookup(channel, name):
    return channel.request("lookup", [name])[name]


# ----------------------------------------------------------------------------- data


def test_plain_data_arrives_as_equal_copies(student):
    namespace, channel = student
    weight = nn.Parameter(torch.tensor([1.0, -2.0]))
    weight.grad = torch.tensor([0.5, 0.5])
    values = {
        "ints": [0, -7, 2**70, True, None], "floats": (1.5, math.inf, -math.inf), "text": "é ✔",
        "raw": b"\x00\xff", "nested": {"a": [1, (2, 3)], 4: {"b"}}, "path": Path("/tmp/x/y.png"),
        "f32": torch.arange(6.0).reshape(2, 3), "i64": torch.tensor([[1, 2]]), "flags": torch.tensor([True, False]),
        "bf16": torch.tensor([1.5, 2.0], dtype=torch.bfloat16), "scalar": torch.tensor(3.0), "empty": torch.zeros(0, 4),
        "weight": weight, "array": np.arange(4, dtype=np.uint8), "npscalar": np.int16(-3),
        "meta": (torch.Size([2, 3]), torch.float16, torch.device("cpu"), slice(1, None, 2), 2 + 3j),
    }
    namespace.update(values)
    got = channel.request("lookup", sorted(values))
    assert got["ints"] == values["ints"] and type(got["ints"][3]) is bool
    assert got["floats"] == values["floats"] and got["text"] == values["text"] and got["raw"] == values["raw"]
    assert got["nested"] == values["nested"] and got["path"] == values["path"]
    for name in ("f32", "i64", "flags", "bf16", "scalar", "empty"):
        assert got[name].dtype == values[name].dtype and torch.equal(got[name], values[name]), name
    assert isinstance(got["weight"], nn.Parameter) and torch.equal(got["weight"].grad, weight.grad)
    assert got["array"].dtype == np.uint8 and np.array_equal(got["array"], values["array"])
    assert type(got["npscalar"]) is np.int16 and got["npscalar"] == -3
    assert got["meta"] == values["meta"]
    assert math.isnan(channel.request("call", lambda: math.nan, (), {}))


def test_objects_arrive_as_proxies_that_reach_the_students_object(student):
    namespace, channel = student

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
            self.note = "hi"

        def forward(self, x):
            return self.layers(x)

    namespace["Net"] = Net
    net = lookup(channel, "Net")()
    assert type(net) is tests_side.Remote and isinstance(net, nn.Module) and not isinstance(net, nn.Linear)
    assert net.eval() is net and net.training is False and net.note == "hi"
    assert [m.__class__ for m in net.modules()][2:] == [nn.Linear, nn.ReLU, nn.Linear]
    assert sum(p.numel() for p in net.parameters()) == 3 * 4 + 4 + 4 * 2 + 2
    assert len(net.layers) == 3 and isinstance(net.layers[0], nn.Linear)
    x = torch.randn(5, 3)
    first = net.layers[0]
    expected = torch.relu(x @ first.weight.T + first.bias) @ net.layers[2].weight.T + net.layers[2].bias
    assert torch.allclose(net(x), expected, atol=1e-6)
    net.note = "changed"
    assert net.note == "changed" and "changed" == net.note
    assert next(net.parameters()).shape == (4, 3)
    assert "Net" in repr(net)


def test_in_place_changes_to_the_tests_arguments_come_back(student):
    namespace, channel = student

    def sgd_step(params, lr):
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad.zero_()

    def train(model, optimizer, x, y):
        model.train()
        model.seen = [True, 3]
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()

    namespace.update(sgd_step=sgd_step, train=train)
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    (w ** 2).sum().backward()
    pointer = w.data_ptr()
    assert lookup(channel, "sgd_step")([w], lr=0.1) is None
    assert torch.allclose(w.detach(), torch.tensor([0.8, -1.6])) and w.data_ptr() == pointer
    assert w.is_leaf and w.requires_grad and not w.grad.any()

    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    reference = nn.Linear(2, 1)
    reference.load_state_dict(model.state_dict())
    model.eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(4, 2), torch.randn(4, 1)
    lookup(channel, "train")(model, optimizer, x, y)
    train(reference, torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9), x, y)
    assert model.training and model.seen == [True, 3]
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)
    assert optimizer.state_dict()["state"][0]["momentum_buffer"] is not None


def test_in_student_runs_a_tests_function_next_to_the_students_objects(student):
    namespace, channel = student

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    namespace["square"] = Square.apply
    square = lookup(channel, "square")

    def forward_backward(f, x):
        out = f(x)
        out.sum().backward()
        return out.detach(), type(out.grad_fn).__name__

    x = torch.tensor([1.0, 3.0], requires_grad=True)
    out, grad_fn = channel.in_student(forward_backward)(square, x)
    assert torch.equal(out, torch.tensor([1.0, 9.0])) and "Square" in grad_fn
    assert torch.equal(x.grad, torch.tensor([2.0, 6.0]))  # the gradient came back with the argument


def test_exceptions_keep_their_builtin_type_and_say_where_they_came_from(student):
    namespace, channel = student

    class LabelError(KeyError):
        pass

    class Custom(Exception):
        pass

    def fail(kind):
        raise {"value": ValueError("labels out of range"), "label": LabelError("7"), "custom": Custom("odd"),
               "exit": SystemExit(3)}[kind]

    namespace["fail"] = fail
    remote_fail = lookup(channel, "fail")
    with pytest.raises(ValueError, match="labels out of range") as caught:
        remote_fail("value")
    assert any("raised in your code" in note for note in caught.value.__notes__)
    with pytest.raises(KeyError):
        remote_fail("label")
    with pytest.raises(tests_side.StudentError, match="Custom: odd"):
        remote_fail("custom")
    with pytest.raises(tests_side.StudentError, match="SystemExit"):
        remote_fail("exit")
    assert lookup(channel, "fail") is remote_fail  # the channel still works after errors


def test_a_broken_repr_never_breaks_an_error_message(student):
    namespace, channel = student

    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr for you")

    namespace["thing"] = Hostile()
    thing = lookup(channel, "thing")
    assert "Hostile" in repr(thing)


# ----------------------------------------------------------------------------- hostile bytes


def _message(header, buffers=()) -> bytes:
    raw = __import__("json").dumps(header).encode()
    parts = [struct.pack("<II", len(raw), len(buffers)), raw]
    for buf in buffers:
        parts += [struct.pack("<Q", len(buf)), buf]
    return b"".join(parts)


@pytest.mark.parametrize("header, buffers", [
    ({"tensor": {"dtype": "float32", "shape": [3], "buf": 0}}, [b"\x00" * 8]),        # size mismatch
    ({"tensor": {"dtype": "object", "shape": [1], "buf": 0}}, [b"\x00" * 8]),         # not a tensor dtype
    ({"ndarray": {"dtype": "|O", "shape": [1], "buf": 0}}, [b"\x00" * 8]),           # object arrays: pickles
    ({"ndarray": {"dtype": "<f8", "shape": [-1], "buf": 0}}, [b"\x00" * 8]),         # negative shape
    ({"tensor": {"dtype": "float32", "shape": [1], "buf": 5}}, [b"\x00" * 4]),        # buffer index
    ({"pickle": 0}, []),                                                            # unknown tag
    ({"handle": {"id": "1"}}, []),                                                  # handle id not an int
    ({"list": [1], "tuple": [2]}, []),                                              # two tags
    ({"float": "1e999"}, []),                                                       # not nan/inf
])
def test_the_decoder_refuses_malformed_messages(header, buffers):
    with pytest.raises(wire.WireError):
        wire.decode(_message(header, buffers), lambda info: pytest.fail("no handle expected"))


def test_the_decoder_refuses_deep_nesting_and_truncation():
    deep: dict = {"list": []}
    node = deep
    for _ in range(wire.MAX_DEPTH + 5):
        child: dict = {"list": []}
        node["list"].append(child)
        node = child
    with pytest.raises(wire.WireError):
        wire.decode(_message(deep), lambda info: None)
    with pytest.raises(wire.WireError):
        wire.decode(_message({"bytes": 0}, [b"abc"])[:-2], lambda info: None)


def test_the_decoder_never_unpickles():
    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("a pickle from the student's side was loaded",))

    payload = pickle.dumps(Boom())
    assert wire.decode(_message({"bytes": 0}, [payload]), lambda info: None) == payload
    with pytest.raises(wire.WireError):
        wire.decode(payload, lambda info: None)


def test_a_student_side_that_hangs_up_is_reported_not_trusted(tmp_path, monkeypatch):
    path = str(tmp_path / "tests.sock")
    channel = tests_side.Link(path)
    monkeypatch.setattr(tests_side, "_LINK", channel)

    def fake_student():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        link.send_frame(sock, b"hello")
        link.recv_frame(sock)                       # the first request...
        link.send_frame(sock, pickle.dumps({"ok": 25}))  # ...answered with a pickle, then gone
        sock.close()

    thread = threading.Thread(target=fake_student, daemon=True)
    thread.start()
    channel.begin()
    with pytest.raises(tests_side.StudentUnavailable):
        channel.request("lookup", ["score"])
    with pytest.raises(tests_side.StudentUnavailable, match="not connected"):
        channel.request("lookup", ["score"])
    thread.join(timeout=10)


def test_free_names_are_every_name_a_cell_reads():
    cell = "import torch\n_x = one_hot(labels, 3)\ndef _f(v):\n    return MLP(v) + _x\nprint([n for n in items])\n"
    assert {"one_hot", "labels", "MLP", "_x", "print", "items"} <= tests_side.free_names(cell)
    assert "torch" not in tests_side.free_names(cell) and "_f" not in tests_side.free_names(cell)
    assert tests_side.free_names("this is not python (") == set()


def test_a_students_eq_and_bool_never_decide_a_comparison(student):
    namespace, channel = student

    class EqualsEverything:
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        def __bool__(self):
            return False

    namespace["step"] = lambda value: EqualsEverything()
    step = lookup(channel, "step")
    decisions = [step(v) for v in (1.0, 0.9)]
    assert decisions != [False, True] and not decisions == [False, True]
    assert bool(decisions[0]) and decisions[0] == decisions[0]
