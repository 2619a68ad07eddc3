"""Typical wrong answers for assignment 05 (training and evaluation); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

WRONG_ANSWERS = [
    WrongAnswer("train_one_epoch", """
def train_one_epoch(model, loader, loss_fn, optimizer):
    model.train()
    losses = []
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", ("test_train_one_epoch",), "mean of the per-batch losses (the small last batch counts as much as a full one)"),
    WrongAnswer("train_one_epoch", """
def train_one_epoch(model, loader, loss_fn, optimizer):
    model.train()
    loss_sum, seen = 0.0, 0
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(targets)
        seen += len(targets)
    return loss_sum / seen
""", ("test_train_one_epoch",), "forgets optimizer.zero_grad(): gradients accumulate over batches"),
    WrongAnswer("train_one_epoch", """
def train_one_epoch(model, loader, loss_fn, optimizer):
    loss_sum, seen = 0.0, 0
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(targets)
        seen += len(targets)
    return loss_sum / seen
""", ("test_train_one_epoch",), "never calls model.train() (a model left in eval mode trains without dropout)"),
    WrongAnswer("train_one_epoch", """
def train_one_epoch(model, loader, loss_fn, optimizer):
    model.train()
    loss_sum, seen = 0.0, 0
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(targets)
        seen += len(targets)
    return loss_sum / seen
""", ("test_train_one_epoch",), "returns a tensor, not a Python float"),
    WrongAnswer("train_one_epoch", """
def train_one_epoch(model, loader, loss_fn, optimizer):
    model.train()
    loss_sum, seen = 0.0, 0
    for inputs, targets in loader:
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        loss_sum += loss.item() * len(targets)
        seen += len(targets)
    return loss_sum / seen
""", ("test_train_one_epoch",), "zero_grad() between backward() and step(): the gradients are erased before the update"),
    WrongAnswer("evaluate", """
def evaluate(model, loader, loss_fn):
    was_training = model.training
    model.eval()
    losses, accs = [], []
    with torch.no_grad():
        for inputs, targets in loader:
            outputs = model(inputs)
            losses.append(loss_fn(outputs, targets).item())
            accs.append((outputs.argmax(dim=1) == targets).float().mean().item())
    model.train(was_training)
    return sum(losses) / len(losses), sum(accs) / len(accs)
""", ("test_evaluate",), "means of per-batch means"),
    WrongAnswer("evaluate", """
def evaluate(model, loader, loss_fn):
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            outputs = model(inputs)
            loss_sum += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            seen += len(targets)
    return loss_sum / seen, correct / seen
""", ("test_evaluate",), "forgets model.eval(): dropout stays on"),
    WrongAnswer("evaluate", """
def evaluate(model, loader, loss_fn):
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for inputs, targets in loader:
        outputs = model(inputs)
        loss_sum += loss_fn(outputs, targets).item() * len(targets)
        correct += (outputs.argmax(dim=1) == targets).sum().item()
        seen += len(targets)
    model.train(was_training)
    return loss_sum / seen, correct / seen
""", ("test_evaluate",), "forgets torch.no_grad()"),
    WrongAnswer("evaluate", """
def evaluate(model, loader, loss_fn):
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            outputs = model(inputs)
            loss_sum += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            seen += len(targets)
    return loss_sum / seen, correct / seen
""", ("test_evaluate",), "leaves the model in eval mode"),
    WrongAnswer("evaluate", """
def evaluate(model, loader, loss_fn):
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            outputs = model(inputs)
            loss_sum += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            seen += len(targets)
    model.train(was_training)
    return loss_sum / seen, 100 * correct / seen
""", ("test_evaluate",), "accuracy as a percentage"),
    WrongAnswer("evaluate", """
def evaluate(model, loader, loss_fn):
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            outputs = model(inputs)
            loss_sum += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            seen += len(targets)
    model.train()
    return loss_sum / seen, correct / seen
""", ("test_evaluate",), "always switches to training mode at the end, even when the model was in eval mode"),
    WrongAnswer("early_stopping", """
class EarlyStopping:
    def __init__(self, patience=3, min_delta=0.0, mode="min"):
        if mode not in ("min", "max") or patience < 1:
            raise ValueError("bad arguments")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0

    def step(self, value):
        if self.mode == "min":
            improved = self.best - value >= self.min_delta
        else:
            improved = value - self.best >= self.min_delta
        if improved:
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        return self.num_bad_epochs >= self.patience
""", ("test_early_stopping",), "an improvement of exactly min_delta counts (>= instead of >)"),
    WrongAnswer("early_stopping", """
class EarlyStopping:
    def __init__(self, patience=3, min_delta=0.0, mode="min"):
        if mode not in ("min", "max") or patience < 1:
            raise ValueError("bad arguments")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.last = self.best
        self.num_bad_epochs = 0

    def step(self, value):
        sign = 1 if self.mode == "min" else -1
        if sign * (self.last - value) > self.min_delta:
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if sign * (self.best - value) > self.min_delta:
            self.best = value
        self.last = value
        return self.num_bad_epochs >= self.patience
""", ("test_early_stopping",), "resets the count when the value beats the previous epoch instead of the best"),
    WrongAnswer("early_stopping", """
class EarlyStopping:
    def __init__(self, patience=3, min_delta=0.0, mode="min"):
        if mode not in ("min", "max") or patience < 1:
            raise ValueError("bad arguments")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0

    def step(self, value):
        if self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        return self.num_bad_epochs > self.patience
""", ("test_early_stopping",), "stops one epoch late (> patience)"),
    WrongAnswer("early_stopping", """
class EarlyStopping:
    def __init__(self, patience=3, min_delta=0.0, mode="min"):
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf
        self.num_bad_epochs = 0

    def step(self, value):
        if value < self.best - self.min_delta:
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        return self.num_bad_epochs >= self.patience
""", ("test_early_stopping",), "ignores mode='max' and never raises ValueError"),
    WrongAnswer("early_stopping", """
class EarlyStopping:
    def __init__(self, patience=3, min_delta=0.0, mode="min"):
        if mode not in ("min", "max") or patience < 1:
            raise ValueError("bad arguments")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0

    def step(self, value):
        if self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best = value
        else:
            self.num_bad_epochs += 1
        return self.num_bad_epochs >= self.patience
""", ("test_early_stopping",), "never resets the count of bad epochs on an improvement"),
    WrongAnswer("checkpoint", """
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model": model.state_dict(), "epoch": epoch}, path)


def load_checkpoint(path, model, optimizer):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    return state["epoch"]
""", ("test_checkpoint",), "the optimizer state is missing: momentum restarts from zero"),
    WrongAnswer("checkpoint", """
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model": model, "optimizer": optimizer, "epoch": epoch}, path)


def load_checkpoint(path, model, optimizer):
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"].state_dict())
    optimizer.load_state_dict(state["optimizer"].state_dict())
    return state["epoch"]
""", ("test_checkpoint",), "pickles whole objects and loads them with weights_only=False"),
    WrongAnswer("checkpoint", """
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)


def load_checkpoint(path, model, optimizer):
    state = torch.load(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"]
""", ("test_checkpoint",), "torch.load without an explicit weights_only=True"),
    WrongAnswer("checkpoint", """
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)


def load_checkpoint(path, model, optimizer):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"] + 1
""", ("test_checkpoint",), "returns the next epoch instead of the saved one"),
    WrongAnswer("checkpoint", """
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)


def load_checkpoint(path, model, optimizer):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    return state["epoch"]
""", ("test_checkpoint",), "saves the optimizer state but never loads it"),
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "the mean of per-batch accuracies", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "a"', ("test_q2",), "the optimizer state holds the momentum", hidden_only=QUIZ_KEY),
]
