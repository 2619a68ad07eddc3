"""Lesson 03_modules: the checks of its exercises (checks.py) and its quiz (quiz.yaml)."""
