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

The most used names are importable from `helpers` directly; `helpers.plots` is imported on
demand because matplotlib is slow to import.
"""

from helpers.env import check_environment, require_packages

# Fail early with a clear message (and the fix command) if a package is missing,
# instead of an ImportError from deep inside another module.
require_packages()

from helpers.callbacks import BestModel, Callback, EarlyStopping, SaveCheckpoint  # noqa: E402
from helpers.checkpoint import CheckpointMismatch, load_weights  # noqa: E402
from helpers.data import DigitsDataset, TensorBatchLoader, digits_tensors  # noqa: E402
from helpers.device import pick_device, seed_everything  # noqa: E402
from helpers.losses import FocalLoss  # noqa: E402
from helpers.models import (MLP, ResidualBlock, SequenceClassifier, SmallCNN, SmallResNet,  # noqa: E402
                            TinySeq2Seq, TransformerClassifier, count_parameters)
from helpers.trainer import NonFiniteLossError, Trainer, accuracy  # noqa: E402

__all__ = [
    "check_environment", "pick_device", "seed_everything",
    "Trainer", "accuracy", "NonFiniteLossError", "Callback", "EarlyStopping", "BestModel", "SaveCheckpoint",
    "CheckpointMismatch", "load_weights",
    "MLP", "SmallCNN", "ResidualBlock", "SmallResNet", "SequenceClassifier", "TransformerClassifier",
    "TinySeq2Seq", "count_parameters", "FocalLoss", "digits_tensors", "DigitsDataset", "TensorBatchLoader",
]
