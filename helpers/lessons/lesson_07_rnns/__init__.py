"""Lesson 07_rnns: the checks of its exercises (checks.py), its data and tasks (tasks.py, data/), its quiz."""
