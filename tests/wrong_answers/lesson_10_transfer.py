"""Typical wrong answers for assignment 10 (transfer learning); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY


def _count(body: str) -> str:
    return "\ndef count_parameters(model):\n" + body


def _extractor(init: str, train: str = '''
    def train(self, mode=True):
        super().train(mode)
        self.backbone.eval()
        return self
''', forward: str = '''
    def forward(self, x):
        return self.head(self.backbone(x))
''') -> str:
    return ("\nclass FeatureExtractor(nn.Module):\n    def __init__(self, backbone, features, num_classes):\n"
            "        super().__init__()\n" + init + forward + train)


_FROZEN = '''
        self.backbone = backbone.requires_grad_(False)
        self.head = nn.Linear(features, num_classes)
'''


def _optimizer(body: str) -> str:
    return "\ndef make_optimizer(model, backbone_lr, head_lr):\n" + body


WRONG_ANSWERS = [
    # Exercise 1: count_parameters
    WrongAnswer("count_parameters", _count('''
    parameters = list(model.parameters())
    return len([p for p in parameters if p.requires_grad]), len(parameters)
'''), ("test_count_parameters",), "counts parameter tensors, not scalars"),
    WrongAnswer("count_parameters", _count('''
    total = sum(p.numel() for p in model.parameters())
    return total, total
'''), ("test_count_parameters",), "ignores requires_grad: everything counted as trainable"),
    WrongAnswer("count_parameters", _count('''
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)
'''), ("test_count_parameters",), "returns (total, trainable): the tuple in the wrong order"),
    WrongAnswer("count_parameters", _count('''
    total = sum(t.numel() for t in model.state_dict().values())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
'''), ("test_count_parameters",), "counts the state_dict: BatchNorm's buffers included"),
    WrongAnswer("count_parameters", _count('''
    params = [p for module in model.modules() for p in module.parameters(recurse=False)]
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
'''), ("test_count_parameters",), "counts a tied weight once per layer that uses it"),
    WrongAnswer("count_parameters", _count('''
    params = list(model.parameters())
    return float(sum(p.numel() for p in params if p.requires_grad)), float(sum(p.numel() for p in params))
'''), ("test_count_parameters",), "returns floats, not ints"),
    # Exercise 2: FeatureExtractor
    WrongAnswer("feature_extractor", _extractor('''
        self.backbone = backbone
        self.head = nn.Linear(features, num_classes)
'''), ("test_feature_extractor",), "never freezes the backbone"),
    WrongAnswer("feature_extractor", _extractor('''
        self.backbone = backbone
        self.head = nn.Linear(features, num_classes)
        self.requires_grad_(False)
'''), ("test_feature_extractor",), "freezes the head too"),
    WrongAnswer("feature_extractor", _extractor('''
        self.backbone = backbone.requires_grad_(False)
        self.backbone.eval()
        self.head = nn.Linear(features, num_classes)
''', train=""), ("test_feature_extractor",), "eval() once in __init__: model.train() undoes it, BatchNorm statistics move"),
    WrongAnswer("feature_extractor", _extractor(_FROZEN, train='''
    def train(self, mode=True):
        self.backbone.eval()
        return self
'''), ("test_feature_extractor",), "train() override without super().train(mode): the head never changes mode"),
    WrongAnswer("feature_extractor", _extractor(_FROZEN, forward='''
    def forward(self, x):
        with torch.no_grad():
            return self.head(self.backbone(x))
'''), ("test_feature_extractor",), "runs the head under no_grad too: it never learns"),
    WrongAnswer("feature_extractor", _extractor('''
        self.backbone = copy.deepcopy(backbone).requires_grad_(False)
        for module in self.backbone.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
        self.head = nn.Linear(features, num_classes)
'''), ("test_feature_extractor",), "resets the backbone's BatchNorm statistics"),
    # Exercise 3: make_optimizer
    WrongAnswer("make_optimizer", _optimizer('''
    return torch.optim.SGD(model.parameters(), lr=head_lr, momentum=0.9)
'''), ("test_make_optimizer",), "one group for everything, frozen parameters included"),
    WrongAnswer("make_optimizer", _optimizer('''
    return torch.optim.SGD([{"params": model.backbone.parameters(), "lr": backbone_lr},
                            {"params": model.head.parameters(), "lr": head_lr}], momentum=0.9)
'''), ("test_make_optimizer",), "keeps the frozen backbone parameters in the optimizer"),
    WrongAnswer("make_optimizer", _optimizer('''
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    return torch.optim.SGD([{"params": backbone, "lr": head_lr},
                            {"params": model.head.parameters(), "lr": backbone_lr}], momentum=0.9)
'''), ("test_make_optimizer",), "learning rates swapped"),
    WrongAnswer("make_optimizer", _optimizer('''
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    return torch.optim.SGD([{"params": backbone, "lr": backbone_lr},
                            {"params": model.head.parameters(), "lr": head_lr}], lr=head_lr)
'''), ("test_make_optimizer",), "forgets momentum=0.9"),
    WrongAnswer("make_optimizer", _optimizer('''
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD([{"params": trainable, "lr": backbone_lr},
                            {"params": model.head.parameters(), "lr": head_lr}], momentum=0.9)
'''), ("test_make_optimizer",), "the backbone group takes model.parameters(): the head is in both groups"),
    WrongAnswer("make_optimizer", _optimizer('''
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    return torch.optim.AdamW([{"params": backbone, "lr": backbone_lr},
                              {"params": model.head.parameters(), "lr": head_lr}])
'''), ("test_make_optimizer",), "AdamW instead of SGD"),
    # Quiz
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "thinks weight decay moves parameters without a gradient",
                hidden_only=QUIZ_KEY),
    WrongAnswer("q1", 'q1_answer = "c"', ("test_q1",), "thinks SGD refuses frozen parameters", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "a"', ("test_q2",), "forgets BatchNorm's buffers", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "b"', ("test_q2",), "thinks requires_grad does not cover BatchNorm's affine",
                hidden_only=QUIZ_KEY),
]
