"""Typical wrong answers for assignment 03 (nn.Module and losses); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

_FOCAL_HEAD = '''
class FocalLoss(nn.Module):
    def __init__(self, gamma=2.0, alpha=None, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(reduction)
        self.gamma, self.alpha, self.reduction = gamma, alpha, reduction

    def _weights(self, targets):
        if isinstance(self.alpha, torch.Tensor):
            return self.alpha[targets]
        return 1.0 if self.alpha is None else self.alpha

    def _reduce(self, loss):
        return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[self.reduction]
'''

_DIGIT_HEAD = '''
class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
'''

WRONG_ANSWERS = [
    # Exercise 1: count_parameters
    WrongAnswer("count_parameters", """
def count_parameters(model, trainable_only=True):
    return len(list(model.parameters()))
""", ("test_count_parameters",), "counts parameter tensors, not values"),
    WrongAnswer("count_parameters", """
def count_parameters(model, trainable_only=True):
    return sum(t.numel() for t in model.state_dict().values())
""", ("test_count_parameters",), "state_dict also holds buffers (BatchNorm statistics) and frozen parameters"),
    WrongAnswer("count_parameters", """
def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters())
""", ("test_count_parameters",), "ignores trainable_only (counts frozen parameters)"),
    WrongAnswer("count_parameters", """
def count_parameters(model, trainable_only=True):
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
""", ("test_count_parameters",), "ignores the biases"),
    WrongAnswer("count_parameters", """
def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if trainable_only and p.requires_grad)
""", ("test_count_parameters",), "trainable_only=False counts nothing (the condition is inverted)"),
    # Exercise 2: MLP
    WrongAnswer("mlp", """
class MLP(nn.Module):
    def __init__(self, in_features, hidden, out_features, dropout=0.0):
        super().__init__()
        widths = [in_features, *hidden, out_features]
        self.layers = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
        self.p = dropout

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = F.dropout(torch.relu(layer(x)), self.p, training=self.training)
        return self.layers[-1](x)
""", ("test_mlp",), "layers in a plain list are not registered (0 parameters)"),
    WrongAnswer("mlp", """
class MLP(nn.Module):
    def __init__(self, in_features, hidden, out_features, dropout=0.0):
        super().__init__()
        widths = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.p = dropout

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = F.dropout(torch.relu(layer(x)), self.p)
        return self.layers[-1](x)
""", ("test_mlp",), "F.dropout without training=self.training stays on in eval mode"),
    WrongAnswer("mlp", """
class MLP(nn.Module):
    def __init__(self, in_features, hidden, out_features, dropout=0.0):
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
""", ("test_mlp",), "no flatten: image input (N, 1, 8, 8) fails"),
    WrongAnswer("mlp", """
class MLP(nn.Module):
    def __init__(self, in_features, hidden, out_features, dropout=0.0):
        super().__init__()
        layers, width = [nn.Flatten()], in_features
        for h in [*hidden, out_features]:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
""", ("test_mlp",), "ReLU and dropout after the last layer (outputs are not raw logits)"),
    WrongAnswer("mlp", """
class MLP(nn.Module):
    def __init__(self, in_features, hidden, out_features, dropout=0.0):
        super().__init__()
        layers, width = [nn.Flatten()], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
""", ("test_mlp",), "ignores the dropout argument (no Dropout layers)"),
    # Exercise 3: width_for_budget
    WrongAnswer("width_for_budget", """
def width_for_budget(in_features, out_features, budget):
    return budget // (in_features + out_features)
""", ("test_width_for_budget",), "ignores the biases"),
    WrongAnswer("width_for_budget", """
def width_for_budget(in_features, out_features, budget):
    return budget // (in_features + out_features + 1)
""", ("test_width_for_budget",), "forgets the output layer's biases"),
    WrongAnswer("width_for_budget", """
def width_for_budget(in_features, out_features, budget):
    return -(-(budget - out_features) // (in_features + out_features + 1))
""", ("test_width_for_budget",), "rounds up instead of down"),
    WrongAnswer("width_for_budget", """
def width_for_budget(in_features, out_features, budget):
    return (budget - out_features) // (in_features + out_features + 1)
""", ("test_width_for_budget",), "negative width instead of 0 when nothing fits"),
    WrongAnswer("width_for_budget", """
def width_for_budget(in_features, out_features, budget):
    h = 0
    while (h + 1) * (in_features + out_features + 1) + out_features <= budget:
        h += 1
    return h
""", ("test_width_for_budget",), "tries widths in a loop instead of solving for h"),
    WrongAnswer("width_for_budget", """
def _largest_fitting(per_unit, fixed, budget):
    h = 0
    while (h + 1) * per_unit + fixed <= budget:
        h += 1
    return h


def width_for_budget(in_features, out_features, budget):
    return _largest_fitting(in_features + out_features + 1, out_features, budget)
""", ("test_width_for_budget",), "the loop trying widths moved into a helper function"),
    # Exercise 4: FocalLoss
    WrongAnswer("focal_loss", _FOCAL_HEAD + """
    def forward(self, logits, targets):
        p_t = torch.softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        loss = -((1 - p_t) ** self.gamma) * torch.log(p_t)
        return self._reduce(loss * self._weights(targets))
""", ("test_focal_loss",), "log(softmax): inf/nan for logits of ±1e4"),
    WrongAnswer("focal_loss", _FOCAL_HEAD + """
    def forward(self, logits, targets):
        loss = F.cross_entropy(logits, targets, reduction="none")
        return self._reduce(loss * self._weights(targets))
""", ("test_focal_loss",), "forgets the (1 - p_t)**gamma factor"),
    WrongAnswer("focal_loss", _FOCAL_HEAD + """
    def forward(self, logits, targets):
        log_p_t = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        loss = -((1 - log_p_t.exp()) ** self.gamma) * log_p_t * self._weights(targets)
        return loss if self.reduction == "none" else loss.sum()
""", ("test_focal_loss",), "'mean' returns the sum"),
    WrongAnswer("focal_loss", _FOCAL_HEAD + """
    def forward(self, logits, targets):
        log_p_t = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        loss = -((1 - log_p_t.exp()) ** self.gamma) * log_p_t
        weights = self._weights(targets)
        if self.reduction == "mean" and isinstance(weights, torch.Tensor):
            return (loss * weights).sum() / weights.sum()
        return self._reduce(loss * weights)
""", ("test_focal_loss",), "'mean' with class weights divides by the sum of the weights, not by N"),
    WrongAnswer("focal_loss", _FOCAL_HEAD + """
    def forward(self, logits, targets):
        log_p_t = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        loss = -((1 - log_p_t.exp()) ** self.gamma) * log_p_t
        weights = self.alpha.mean() if isinstance(self.alpha, torch.Tensor) else self._weights(targets)
        return self._reduce(loss * weights)
""", ("test_focal_loss",), "per-class alpha not indexed by the target"),
    WrongAnswer("focal_loss", """
class FocalLoss(nn.Module):
    def __init__(self, gamma=2.0, alpha=None, reduction="mean"):
        super().__init__()
        self.gamma, self.alpha, self.reduction = gamma, alpha, reduction

    def forward(self, logits, targets):
        log_p_t = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        loss = -((1 - log_p_t.exp()) ** self.gamma) * log_p_t
        if isinstance(self.alpha, torch.Tensor):
            loss = loss * self.alpha[targets]
        elif self.alpha is not None:
            loss = loss * self.alpha
        return {"sum": loss.sum(), "none": loss}.get(self.reduction, loss.mean())
""", ("test_focal_loss",), "no ValueError for an unknown reduction"),
    # Exercise 5: DigitNet
    WrongAnswer("digit_net", _DIGIT_HEAD + """
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(16 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
""", ("test_digit_net",), "fixes the channels but keeps the wrong flatten size 16*7*7"),
    WrongAnswer("digit_net", _DIGIT_HEAD + """
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(16 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
""", ("test_digit_net",), "changes the padding to make 7x7 fit instead of fixing the Linear (architecture differs)"),
    WrongAnswer("digit_net", _DIGIT_HEAD + """
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(16 * 6 * 6, 32), nn.ReLU(), nn.Linear(32, 10), nn.ReLU())

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
""", ("test_digit_net",), "ReLU after the last Linear (logits cannot be negative)"),
    WrongAnswer("digit_net", _DIGIT_HEAD + """
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(16 * 6 * 6, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten())
""", ("test_digit_net",), "flatten() without start_dim=1 flattens the batch dimension too"),
    WrongAnswer("digit_net", _DIGIT_HEAD + """
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(16 * 6 * 6, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
""", ("test_digit_net",), "adds a Dropout layer: not the table's architecture"),
    # Quiz
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "forgot the 16 biases", hidden_only=QUIZ_KEY),
    WrongAnswer("q1", 'q1_answer = "c"', ("test_q1",), "forgot the 3 input channels", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "a"', ("test_q2",), "cross-entropy assumes exactly one label per sample", hidden_only=QUIZ_KEY),
]
