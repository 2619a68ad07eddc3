"""Lesson 08 (attention and Transformers): the checks behind its exercises and its quiz."""
