"""Lesson 09 (speed, memory and mixed precision): the checks behind its exercises, its quiz and its tools."""
