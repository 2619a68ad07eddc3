"""Lesson 06 (convolutional networks): the checks behind its exercises and its quiz."""
