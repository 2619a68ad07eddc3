"""Typical wrong answers for assignment 01 (tensors); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

WRONG_ANSWERS = [
    WrongAnswer("one_hot", """
def one_hot(labels, num_classes):
    return torch.nn.functional.one_hot(labels, num_classes)
""", ("test_one_hot",), "returns int64, not float32"),
    WrongAnswer("one_hot", """
def one_hot(labels, num_classes):
    return torch.eye(num_classes)[labels]
""", ("test_one_hot",), "no ValueError for labels out of range (eye()[-1] silently picks the last row)"),
    WrongAnswer("one_hot", """
def one_hot(labels, num_classes):
    if labels.numel() and labels.max() >= num_classes:
        raise ValueError("label too large")
    return torch.eye(num_classes)[labels]
""", ("test_one_hot",), "checks only the upper bound: a negative label passes"),
    WrongAnswer("one_hot", """
def one_hot(labels, num_classes):
    assert ((labels >= 0) & (labels < num_classes)).all(), "label out of range"
    return torch.eye(num_classes)[labels]
""", ("test_one_hot",), "raises AssertionError, not the ValueError the text asks for"),
    WrongAnswer("one_hot", """
def one_hot(labels, num_classes):
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError("label out of range")
    return torch.eye(num_classes)[labels]
""", ("test_one_hot",), "min()/max() crash on an empty labels tensor (a case the text states)"),
    WrongAnswer("normalize_rows", """
def normalize_rows(x, eps=1e-12):
    return x / x.norm(dim=1, keepdim=True)
""", ("test_normalize_rows",), "zero rows become nan (no eps)"),
    WrongAnswer("normalize_rows", """
def normalize_rows(x, eps=1e-12):
    return x / x.norm(dim=0, keepdim=True).clamp_min(eps)
""", ("test_normalize_rows",), "normalises columns instead of rows"),
    WrongAnswer("normalize_rows", """
def normalize_rows(x, eps=1e-12):
    x /= x.norm(dim=1, keepdim=True).clamp_min(eps)
    return x
""", ("test_normalize_rows",), "divides in place: the input changes"),
    WrongAnswer("pairwise_distances", """
def pairwise_distances(a, b):
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(dim=-1)
""", ("test_pairwise_distances",), "squared distances (no sqrt)"),
    WrongAnswer("pairwise_distances", """
def pairwise_distances(a, b):
    rows = []
    for point in a:
        rows.append(((point - b) ** 2).sum(dim=1).sqrt())
    return torch.stack(rows)
""", ("test_pairwise_distances",), "correct values but a Python loop"),
    WrongAnswer("pairwise_distances", """
def _each_row(a, b):
    return torch.stack([((point - b) ** 2).sum(dim=1).sqrt() for point in a])

def pairwise_distances(a, b):
    return _each_row(a, b)
""", ("test_pairwise_distances",), "a comprehension moved into a helper function"),
    WrongAnswer("pairwise_distances", """
def _distances(a, b):
    return torch.cdist(a, b)

def pairwise_distances(a, b):
    return _distances(a, b)
""", ("test_pairwise_distances",), "calls torch.cdist, through a helper function"),
    WrongAnswer("pairwise_distances", """
def pairwise_distances(a, b):
    return (a[:, None, :] - b[None, :, :]).abs().sum(dim=-1)
""", ("test_pairwise_distances",), "Manhattan (L1) distance, not Euclidean"),
    WrongAnswer("batched_matmul", """
def batched_matmul(a, b):
    return a @ b
""", ("test_batched_matmul",), "uses @"),
    WrongAnswer("batched_matmul", """
def _product(a, b):
    return torch.einsum("bnk,bkm->bnm", a, b)

def batched_matmul(a, b):
    return _product(a, b)
""", ("test_batched_matmul",), "einsum, hidden in a helper function"),
    WrongAnswer("batched_matmul", """
def batched_matmul(a, b):
    return torch.stack([(a[i][:, :, None] * b[i][None, :, :]).sum(dim=1) for i in range(a.shape[0])])
""", ("test_batched_matmul",), "a comprehension over the batch"),
    WrongAnswer("batched_matmul", """
def batched_matmul(a, b):
    return (a[:, :, None, :] * b.transpose(1, 2)[:, None, :, :]).sum(dim=2)
""", ("test_batched_matmul",), "sums over the wrong axis"),
    WrongAnswer("to_model_input", """
def to_model_input(images):
    return torch.tensor(images).reshape(images.shape[0], images.shape[3], images.shape[1], images.shape[2]).float() / 255
""", ("test_to_model_input",), "reshape instead of permute scrambles pixels"),
    WrongAnswer("to_model_input", """
def to_model_input(images):
    return torch.tensor(images).permute(0, 3, 1, 2).float()
""", ("test_to_model_input",), "not scaled to [0, 1]"),
    WrongAnswer("to_model_input", """
def to_model_input(images):
    x = torch.tensor(images).permute(0, 3, 1, 2).float()
    return (x - x.min()) / (x.max() - x.min())
""", ("test_to_model_input",), "min-max scaling by the batch's own range, not division by 255"),
    WrongAnswer("to_model_input", """
def to_model_input(images):
    return torch.tensor(images / 255.0).permute(0, 3, 1, 2)
""", ("test_to_model_input",), "float64, not float32"),
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "torch.tensor copies", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "c"', ("test_q2",), "the shapes do broadcast", hidden_only=QUIZ_KEY),
]
