"""Lesson 04_data: the checks of its exercises (checks.py) and its quiz (quiz.yaml)."""
