"""helpers: the course's own small library, imported by every notebook.

Modules (read them! each is short and does one thing):
  env         check_environment(): are the right packages installed?
  device      pick_device(), seed_everything()
  check       instant feedback for exercises (check_tensor, check_function, ...)
  quiz        quizzes with instant feedback (ipywidgets, or plain text without a front end)
  trainer     Trainer: the training loop of lesson 05, with metrics, AMP, accumulation, clipping
  callbacks   EarlyStopping, BestModel, SaveCheckpoint (one event mechanism: Callback)
  checkpoint  atomic, weights_only checkpoints and RNG state (resume == uninterrupted run)
  models      MLP, SmallCNN, ResidualBlock, SmallResNet, sequence and Transformer models
  losses      FocalLoss
  data        digits tensors and Dataset, a fast in-memory loader, sequence tasks, offline torchvision sets
  plots       history curves, image and prediction grids, confusion matrix (import helpers.plots)
  exercises   the checks behind each lesson's exercises
  grading     instructor tools: sandboxed and parallel autograding (see docs/instructor.md)

The most used names are importable from `helpers` directly (`from helpers import Trainer`);
each is imported on first use. `helpers.plots` is imported on demand because matplotlib is
slow to import.
"""

from helpers.env import check_environment, require_packages

# Fail early with a clear message (and the fix command) if a package is missing,
# instead of an ImportError from deep inside another module.
require_packages()

# Where each name of `from helpers import ...` lives. They are imported on first use (PEP 562
# module __getattr__ below), so `import helpers.check` or the instructor's grading tools do
# not pay for importing torch (2 s) when they do not need it.
_EXPORTS = {
    "helpers.callbacks": ("BestModel", "Callback", "EarlyStopping", "SaveCheckpoint"),
    "helpers.checkpoint": ("CheckpointMismatch", "load_weights"),
    "helpers.data": ("DigitsDataset", "TensorBatchLoader", "digits_tensors"),
    "helpers.device": ("pick_device", "seed_everything"),
    "helpers.losses": ("FocalLoss",),
    "helpers.models": ("MLP", "ResidualBlock", "SequenceClassifier", "SmallCNN", "SmallResNet", "TinySeq2Seq",
                       "TransformerClassifier", "count_parameters"),
    "helpers.trainer": ("NonFiniteLossError", "Trainer", "accuracy"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # next time, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "check_environment", "pick_device", "seed_everything",
    "Trainer", "accuracy", "NonFiniteLossError", "Callback", "EarlyStopping", "BestModel", "SaveCheckpoint",
    "CheckpointMismatch", "load_weights",
    "MLP", "SmallCNN", "ResidualBlock", "SmallResNet", "SequenceClassifier", "TransformerClassifier",
    "TinySeq2Seq", "count_parameters", "FocalLoss", "digits_tensors", "DigitsDataset", "TensorBatchLoader",
]
