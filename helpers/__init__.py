"""helpers: the course's own small library, imported by every notebook.

Modules (read them! each is short and does one thing):
  env         check_environment(): are the right packages installed? (the first cell of every notebook)
  device      pick_device(), seed_everything()
  check       instant feedback for exercises and the visible tests (check_tensor, check_function, ...)
  shapes      check_forward_shapes(): a model's shapes, layer by layer, with problems explained in words
  quiz        quizzes with instant feedback (ipywidgets, or plain text without a front end)
  trainer     Trainer: the training loop of lesson 05, with metrics, AMP, accumulation, clipping
  callbacks   EarlyStopping, BestModel, SaveCheckpoint, CSVLogger (one event mechanism: Callback)
  checkpoint  atomic, weights_only checkpoints and RNG state (resume == uninterrupted run)
  models      MLP, SmallCNN, ResidualBlock, SmallResNet, sequence and Transformer models
  losses      FocalLoss
  data        digits tensors and Dataset, a fast in-memory loader, sequence tasks, offline torchvision sets
  plots       history curves, image and prediction grids, confusion matrix
  lessons     one folder per lesson: the checks of its exercises and its quiz (lesson_NN_topic/)

Import what you use from the module that defines it (`from helpers.trainer import Trainer`).
Only the environment check is imported here: `import helpers` imports nothing but the
standard library, so the check can run, and name what is missing, before torch is imported.
"""

from helpers.env import check_environment

__all__ = ["check_environment"]
