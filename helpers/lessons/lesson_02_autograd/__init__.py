"""Lesson 02_autograd: the checks of its exercises (checks.py) and its quiz (quiz.yaml)."""
