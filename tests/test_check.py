"""helpers.check: every failure names what differs, in one short message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.check import (CheckFailed, NotAttempted, check_choice, check_close, check_function, check_gradient,
                           check_implemented, check_no_loops, check_shape, check_tensor, numeric_gradient,
                           require_attempted, require_function)


def message_of(call, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_placeholders_are_not_attempted_and_values_are_not_functions():
    with pytest.raises(NotAttempted, match="gru_cell: not attempted yet"):
        require_function(..., "gru_cell")
    with pytest.raises(NotAttempted, match="n_params: not attempted yet"):
        require_attempted(..., "n_params")
    assert "expected a function, got int" in message_of(require_function, 3, "gru_cell")
    assert require_function(len, "gru_cell") is len
    require_attempted(0, "n_params")  # a value, however small, is an attempt


def test_check_failed_is_an_assertion_error_with_a_short_ipython_rendering():
    error = CheckFailed("x: shape is (2,), expected (3,)")
    assert isinstance(error, AssertionError)
    rendered = error._render_traceback_()
    assert len(rendered) == 1 and "shape is (2,), expected (3,)" in rendered[0]


def test_passing_checks_return_none_and_print_only_when_asked(capsys):
    assert check_tensor(torch.ones(2), torch.ones(2)) is None
    assert capsys.readouterr().out == ""
    check_tensor(torch.ones(2), torch.ones(2), name="ones", quiet=False)
    assert capsys.readouterr().out.strip() == "✔ ones: correct"


def test_shape_mismatch_names_both_shapes():
    assert message_of(check_tensor, torch.ones(3), torch.ones(3, 1), name="y") == "y: shape is (3,), expected (3, 1)"


def test_dtype_mismatch_names_both_dtypes_and_suggests_a_fix():
    message = message_of(check_tensor, torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))
    assert "dtype is torch.int64, expected torch.float32" in message
    assert "Hint: convert with .to(torch.float32)" in message


def test_value_mismatch_gives_first_index_and_counts():
    got = torch.tensor([[1.0, 2.0], [3.0, 9.0]])
    message = message_of(check_tensor, got, torch.tensor([[1.0, 2.0], [3.0, 4.0]]), name="m", hint="look at row 1")
    assert "values differ at index (1, 1): got 9, expected 4" in message
    assert "1 of 4 elements differ, largest difference 5" in message
    assert message.endswith("Hint: look at row 1")


def test_nan_is_reported_as_a_difference_not_equal():
    message = message_of(check_tensor, torch.tensor([float("nan"), 1.0]), torch.tensor([0.0, 1.0]))
    assert "index (0,): got nan, expected 0" in message


def test_tolerances_are_respected():
    assert check_tensor(torch.tensor([1.0 + 1e-7]), torch.tensor([1.0])) is None
    with pytest.raises(CheckFailed):
        check_tensor(torch.tensor([1.001]), torch.tensor([1.0]))


def test_device_is_checked_only_when_asked():
    assert check_tensor(torch.ones(1), torch.ones(1), check_device=True) is None


def test_wrong_types_are_named():
    assert "got a NumPy array" in message_of(check_tensor, np.ones(2), torch.ones(2))
    assert "got None" in message_of(check_tensor, None, torch.ones(2))
    assert "got list" in message_of(check_shape, [1, 2], (2,))


def test_ellipsis_means_not_attempted():
    with pytest.raises(NotAttempted, match="not attempted yet: replace the `...`"):
        check_tensor(..., torch.ones(2), name="grid")
    with pytest.raises(NotAttempted):
        check_choice(..., ["a", "b"])


def test_check_close_on_numbers_and_one_element_tensors():
    assert check_close(torch.tensor(0.5), 0.5) is None
    assert message_of(check_close, 0.4, 0.5, name="lr") == "lr: got 0.4, expected 0.5"
    assert "expected a single number" in message_of(check_close, torch.ones(2), 1.0)
    assert "expected a number, got str" in message_of(check_close, "0.5", 0.5)


def test_check_implemented_turns_stub_into_friendly_message():
    def stub(x):
        raise NotImplementedError

    assert "stub: not written yet" in message_of(check_implemented, stub, 1)
    assert check_implemented(lambda x: x + 1, 1) == 2


def test_check_function_reports_the_failing_call_and_protects_inputs():
    def student(x):
        x.mul_(2)  # in place: must not change the reference's input
        return x

    def reference(x):
        return x * 2

    assert check_function(student, reference, [(torch.tensor([1.0, 2.0]),)]) is None
    message = message_of(check_function, lambda x: x + 1, reference, [(torch.tensor([1.0]),), (torch.tensor([3.0]),)])
    # 1 + 1 == 1 * 2, so the first case passes and the second is reported
    assert message.startswith("<lambda>(tensor([3.0])): values differ at index (0,): got 4, expected 6")
    assert "returned 3, expected 4" in message_of(check_function, lambda n: n + 1, lambda n: n * 2, [(1,), (2,)])


def test_check_choice_validates_format_only():
    assert check_choice(" B ", ["a", "b"], quiet=True) is None
    assert "not one of the options" in message_of(check_choice, "e", ["a", "b"])
    assert "must be a string" in message_of(check_choice, 2, ["a", "b"])


def fn_with_loop(x):
    total = 0
    for value in x:
        total += value
    return total


def fn_with_comprehension(x):
    return sum([v for v in x])


def fn_vectorised(x):
    return x.sum()


def fn_calling_a_looping_helper(x):
    return _scale(x) + fn_vectorised(x)


def _scale(x):
    return fn_with_loop(x) * 2   # the loop is two calls deep


def fn_calling_a_library(x):
    return torch.cdist(x, x).sum() + fn_vectorised(x)


def test_check_no_loops_finds_loops_and_comprehensions():
    assert "uses a Python loop (for on line 3" in message_of(check_no_loops, fn_with_loop)
    assert "list comprehension" in message_of(check_no_loops, fn_with_comprehension)
    assert check_no_loops(fn_vectorised) is None


def test_check_no_loops_follows_the_functions_it_calls():
    """A loop moved into a helper of the notebook is still a loop; library functions are not read."""
    message = message_of(check_no_loops, fn_calling_a_looping_helper)
    assert "uses a Python loop (for on line 3 of fn_with_loop(), which it calls)" in message
    assert check_no_loops(fn_calling_a_library) is None
    lambda_with_loop = lambda x: fn_with_comprehension(x)  # noqa: E731
    assert "list comprehension" in message_of(check_no_loops, lambda_with_loop)


def test_numeric_gradient_matches_autograd_and_check_gradient_catches_a_wrong_one():
    x = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    f = lambda t: (t ** 3).sum()  # noqa: E731
    assert torch.allclose(numeric_gradient(f, x), 3 * x ** 2, atol=1e-6)
    assert check_gradient(3 * x ** 2, f, x) is None
    assert "values differ" in message_of(check_gradient, 2 * x ** 2, f, x)


# --- checks that tests use when grading runs them in a kernel of their own -------------


def test_in_student_is_the_function_itself_in_a_notebook():
    from helpers.check import in_student

    def double(x):
        return 2 * x

    assert in_student(double) is double


def test_check_not_called_sees_forbidden_calls_in_helpers_too():
    from helpers.check import CheckFailed, check_not_called

    def helper(a, b):
        return torch.cdist(a, b)

    def hidden_cdist(a, b):
        return helper(a, b)  # the forbidden call is one function away

    def broadcasting(a, b):
        return (a[:, None] - b[None]).pow(2).sum(-1).sqrt()

    def matmul_operator(a, b):
        return a @ b.T

    a, b = torch.randn(3, 2), torch.randn(4, 2)
    with pytest.raises(CheckFailed, match=r"calls torch\.\S*cdist"):
        check_not_called(hidden_cdist, (a, b), {"cdist"}, name="pairwise")
    with pytest.raises(CheckFailed, match="matmul"):
        check_not_called(matmul_operator, (a, b), {"matmul", "__matmul__"}, name="mm")
    check_not_called(broadcasting, (a, b), {"cdist", "matmul", "__matmul__"}, name="pairwise")


def test_source_of_reads_a_notebook_function():
    from helpers.check import source_of

    def shout(text):
        return text.upper()

    assert source_of(shout).startswith("def shout(text):")
