"""Lesson 01_tensors: the checks of its exercises (checks.py) and its quiz (quiz.yaml)."""
