"""Lesson 05_training: the checks of its exercises (checks.py) and its quiz (quiz.yaml)."""
