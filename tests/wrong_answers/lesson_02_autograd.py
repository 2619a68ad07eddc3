"""Typical wrong answers for assignment 02 (autograd); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

WRONG_ANSWERS = [
    # Exercise 1: gradients by hand
    WrongAnswer("mse_gradients", """
def mse_gradients(X, w, b, y):
    residual = X @ w + b - y
    return X.T @ residual / X.shape[0], residual.mean()
""", ("test_mse_gradients",), "forgets the factor 2 from the square"),
    WrongAnswer("mse_gradients", """
def mse_gradients(X, w, b, y):
    residual = y - (X @ w + b)
    return 2 / X.shape[0] * X.T @ residual, 2 * residual.mean()
""", ("test_mse_gradients",), "wrong sign: residual is target - prediction"),
    WrongAnswer("mse_gradients", """
def mse_gradients(X, w, b, y):
    residual = X @ w + b - y
    return 2 * X.T @ residual, 2 * residual.sum()
""", ("test_mse_gradients",), "gradient of the sum, not of the mean"),
    WrongAnswer("mse_gradients", """
def mse_gradients(X, w, b, y):
    w = w.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    ((X @ w + b - y) ** 2).mean().backward()
    return w.grad, b.grad
""", ("test_mse_gradients",), "uses autograd instead of deriving the gradient by hand"),
    WrongAnswer("mse_gradients", """
def _autograd_gradients(X, w, b, y):
    w = w.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    return torch.autograd.grad(((X @ w + b - y) ** 2).mean(), (w, b))


def mse_gradients(X, w, b, y):
    return _autograd_gradients(X, w, b, y)
""", ("test_mse_gradients",), "hides torch.autograd.grad in a helper function"),
    WrongAnswer("mse_gradients", """
def mse_gradients(X, w, b, y):
    residual = X @ w + b - y
    return 2 / X.shape[0] * X.T @ residual, 2 * residual.mean(0, keepdim=True)
""", ("test_mse_gradients",), "grad_b of shape (1,) instead of a 0-d tensor"),
    # Exercise 2: one manual SGD step
    WrongAnswer("sgd_step", """
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
""", ("test_sgd_step",), "forgets to zero the gradients (they accumulate)"),
    WrongAnswer("sgd_step", """
def sgd_step(params, lr):
    for p in params:
        if p.grad is not None:
            p -= lr * p.grad
            p.grad.zero_()
""", ("test_sgd_step",), "updates without torch.no_grad (in-place change of a leaf raises)"),
    WrongAnswer("sgd_step", """
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p += lr * p.grad
                p.grad.zero_()
""", ("test_sgd_step",), "wrong sign: steps up the gradient"),
    WrongAnswer("sgd_step", """
def sgd_step(params, lr):
    with torch.no_grad():
        return [p - lr * p.grad for p in params]
""", ("test_sgd_step",), "returns new tensors instead of updating in place"),
    WrongAnswer("sgd_step", """
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None
""", ("test_sgd_step",), "fails on a parameter whose grad is None"),
    WrongAnswer("sgd_step", """
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.zero_()
                p -= lr * p.grad
""", ("test_sgd_step",), "clears the gradient before using it: nothing moves"),
    # Exercise 3: Swish as a custom autograd Function
    WrongAnswer("swish", """
class Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return s + x * s * (1 - s)


swish = Swish.apply
""", ("test_swish",), "backward ignores grad_output (right for .sum(), wrong for any other grad_output)"),
    WrongAnswer("swish", """
class Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(torch.nn.functional.silu(x), x, grad_output)
        return grad


swish = Swish.apply
""", ("test_swish",), "backward lets autograd differentiate silu instead of the hand-written derivative"),
    WrongAnswer("swish", """
class Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * x * s * (1 - s)


swish = Swish.apply
""", ("test_swish",), "product rule: misses the sigma(x) term"),
    WrongAnswer("swish", """
class Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


def swish(x):
    return x * torch.sigmoid(x)
""", ("test_swish",), "plain function: the custom Function is never used"),
    # Exercise 4: polynomial regression with autograd
    WrongAnswer("fit_polynomial", """
def fit_polynomial(x, y, degree, lr, steps):
    features = torch.stack([x ** k for k in range(degree + 1)], dim=1)
    w = torch.zeros(degree + 1, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((features @ w - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
        losses.append(loss.item())
    return w.detach(), losses
""", ("test_fit_polynomial",), "forgets to zero w.grad (gradients accumulate)"),
    WrongAnswer("fit_polynomial", """
def fit_polynomial(x, y, degree, lr, steps):
    features = torch.stack([x ** k for k in range(degree + 1)], dim=1)
    w = torch.zeros(degree + 1, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((features @ w - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w += lr * w.grad
            w.grad.zero_()
        losses.append(loss.item())
    return w.detach(), losses
""", ("test_fit_polynomial",), "wrong sign of the update"),
    WrongAnswer("fit_polynomial", """
def fit_polynomial(x, y, degree, lr, steps):
    features = torch.stack([x ** k for k in range(degree + 1)], dim=1)
    w = torch.zeros(degree + 1, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((features @ w - y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            w.grad.zero_()
        losses.append(loss.item())
    return w.detach(), losses
""", ("test_fit_polynomial",), "sum instead of mean: steps N times too large"),
    WrongAnswer("fit_polynomial", """
def fit_polynomial(x, y, degree, lr, steps):
    features = torch.stack([x ** k for k in range(1, degree + 2)], dim=1)
    w = torch.zeros(degree + 1, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((features @ w - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            w.grad.zero_()
        losses.append(loss.item())
    return w.detach(), losses
""", ("test_fit_polynomial",), "features x^1..x^(d+1): no constant column"),
    WrongAnswer("fit_polynomial", """
def fit_polynomial(x, y, degree, lr, steps):
    features = torch.stack([x ** k for k in range(degree + 1)], dim=1)
    w = torch.zeros(degree + 1, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((features @ w - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            w.grad.zero_()
        losses.append(loss)
    return w.detach(), losses
""", ("test_fit_polynomial",), "losses holds tensors, not Python floats"),
    WrongAnswer("fit_polynomial", """
def fit_polynomial(x, y, degree, lr, steps):
    features = torch.stack([x ** k for k in range(degree + 1)], dim=1)
    w = torch.zeros(degree + 1, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((features @ w - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            w.grad.zero_()
            losses.append(((features @ w - y) ** 2).mean().item())
    return w.detach(), losses
""", ("test_fit_polynomial",), "records the loss after each update, not before"),
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "intermediate tensors do not keep .grad", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "b"', ("test_q2",), "w = w - ... is not an in-place change", hidden_only=QUIZ_KEY),
]
