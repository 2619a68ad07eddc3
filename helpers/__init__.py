"""helpers: the course's own small library, imported by every notebook.

Modules (read them! each is short):
  env      check_environment(): are the right packages installed?
  device   pick_device(), seed_everything()
  check    instant feedback for exercises (check_tensor, check_function, ...)
  quiz     quizzes with instant feedback (ipywidgets, or plain text without a front end)
"""

from helpers.env import check_environment, require_packages

# Fail early with a clear message (and the fix command) if a package is missing,
# instead of an ImportError from deep inside another module.
require_packages()

from helpers.device import pick_device, seed_everything  # noqa: E402

__all__ = ["check_environment", "pick_device", "seed_everything"]
