"""Checks for the exercises inside the lessons, one module per lesson.

Each function compares your answer with a reference computed here and raises
`helpers.check.CheckFailed` with a specific message when they differ. Reading this
code before solving an exercise spoils it: try first.
"""
