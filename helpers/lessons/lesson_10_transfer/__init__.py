"""Lesson 10_transfer: its backbone (transfer.py, pretrain.py, data/), exercise checks (checks.py) and quiz."""
