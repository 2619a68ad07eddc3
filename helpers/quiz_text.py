"""The plain-text version of a quiz: what nbconvert, nbval, plain `python` and text front ends show.

It lists the questions and their lettered options but never the answers, so a rendered or
saved notebook gives nothing away. Kept apart from the widgets so that `helpers.quiz_data`
(`Quiz.as_text`) can use it without importing ipywidgets; it imports only the standard library.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: helpers.quiz_data imports this module
    from helpers.quiz_data import Quiz

__all__ = ["NO_ANSWERS_LINE", "HOW_TO_ANSWER", "quiz_as_text"]

NO_ANSWERS_LINE = "Answers: run this notebook in JupyterLab to check yourself."

# How each type asks for its answer, in the text version and in the widget's prompt, so that
# prompts in the YAML files need not say it.
HOW_TO_ANSWER = {"single": "choose one", "multiple": "select all that apply",
                 "numeric": "answer with a number", "predict": "type the output"}


def _wrap(text: str, indent: str, hanging: str, width: int = 88) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=hanging) or [indent]


def quiz_as_text(quiz: Quiz) -> str:
    """The quiz as plain text: questions and lettered options, never the answers."""
    n = len(quiz.questions)
    lines = [f"{quiz.title} ({n} question{'s' if n != 1 else ''})", ""]
    for number, q in enumerate(quiz.questions, start=1):
        lines += _wrap(f"{number}. {q.prompt} ({HOW_TO_ANSWER[q.type]})", "", "   ")
        if q.code:
            lines += ["", *("       " + line for line in q.code.splitlines())]
        for letter, option in zip(q.letters, q.options):
            lines += _wrap(f"{letter}) {option.text}", "   ", "      ")
        lines.append("")
    lines.append(NO_ANSWERS_LINE)
    return "\n".join(lines)
