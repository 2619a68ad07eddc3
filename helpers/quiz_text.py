"""The static versions of a quiz: plain text (never the answers) and HTML (answers folded away).

- `quiz_as_text`: what plain `python`, terminal IPython and text front ends show. It lists the
  questions and their lettered options but never the answers.
- `quiz_as_html`: what a rendered notebook shows where the widgets cannot run (nbconvert's HTML
  export, nbviewer, a course website): the questions and options as HTML, each answer with its
  explanations inside a closed `<details>` element, so the reader decides when to look.

Kept apart from the widgets so that `helpers.quiz_data` (`Quiz.as_text`, `Quiz.as_html`) can use
it without importing ipywidgets; it imports only the standard library.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: helpers.quiz_data imports this module
    from helpers.quiz_data import Question, Quiz

__all__ = ["NO_ANSWERS_LINE", "STATIC_NOTE", "HOW_TO_ANSWER", "quiz_as_text", "quiz_as_html", "inline_html",
           "css_name"]

NO_ANSWERS_LINE = "Answers: run this notebook in JupyterLab to check yourself."
STATIC_NOTE = ("This is the quiz without its widgets. Run the notebook in JupyterLab to answer it with "
               "instant feedback; here each answer is folded under “Show the answer”.")

# How each type asks for its answer, in the text version and in the widget's prompt, so that
# prompts in the YAML files need not say it.
HOW_TO_ANSWER = {"single": "choose one", "multiple": "select all that apply",
                 "numeric": "answer with a number", "predict": "type the output"}


def inline_html(text: str) -> str:
    """Escape text for HTML and show `backticks` as code; line breaks stay line breaks."""
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
    return escaped.replace("\n", "<br>")


def css_name(text: str) -> str:
    """A quiz name as part of a CSS class (quiz-01_tensors, quiz-static-01_tensors)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


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


def _number(value: float) -> str:
    return f"{value:g}"


def _answer_html(q: Question) -> str:
    """The inside of a question's <details>: the answer, then every explanation."""
    if q.type in ("single", "multiple"):
        right = [f"<b>{letter})</b> {inline_html(o.text)}" for letter, o in zip(q.letters, q.options) if o.correct]
        head = f"<p>Answer: {'; '.join(right)}</p>"
        items = "".join(f"<li><b>{letter})</b> is {'right' if o.correct else 'wrong'}: {inline_html(o.explanation)}"
                        "</li>" for letter, o in zip(q.letters, q.options))
        return f"{head}<ul>{items}</ul>"
    if q.type == "numeric":
        assert q.answer is not None  # validated by load_quiz
        within = f" (anything within ±{_number(q.tolerance)} counts)" if q.tolerance else ""
        head = f"<p>Answer: <code>{_number(q.answer)}</code>{within}</p>"
    else:
        head = f"<p>Answer: <code>{html.escape(q.answers[0])}</code></p>"
        if len(q.answers) > 1:
            others = ", ".join(f"<code>{html.escape(a)}</code>" for a in q.answers[1:])
            head += f"<p>Also accepted: {others} (and the same with other spacing).</p>"
    return f"{head}<p>{inline_html(q.explanation)}</p>"


def _question_html(q: Question, number: int) -> str:
    parts = ['<div class="quiz-static-question" style="margin: 0 0 1.2em 0;">',
             f"<p><b>Question {number}.</b> {inline_html(q.prompt)} <i>({HOW_TO_ANSWER[q.type]})</i></p>"]
    if q.code:
        parts.append(f"<pre><code>{html.escape(q.code)}</code></pre>")
    if q.options:
        items = "".join(f"<li><b>{letter})</b> {inline_html(o.text)}</li>" for letter, o in zip(q.letters, q.options))
        parts.append(f'<ul class="quiz-static-options" style="list-style: none; padding-left: 1em;">{items}</ul>')
    parts.append('<details class="quiz-static-answer" style="margin: 0.4em 0 0 1em;">'
                 f'<summary style="cursor: pointer;">Show the answer</summary>{_answer_html(q)}</details>')
    parts.append("</div>")
    return "\n".join(parts)


def quiz_as_html(quiz: Quiz) -> str:
    """The quiz as static HTML: questions and options in the open, answers inside <details>.

    The outer element has the classes quiz-static and quiz-static-<name>; the widgets hide it in
    a live JupyterLab, where they show the same questions (helpers.quiz_widgets).
    """
    name = css_name(quiz.name)
    questions = "\n".join(_question_html(q, n) for n, q in enumerate(quiz.questions, start=1))
    return (f'<div class="quiz-static quiz-static-{name}">\n<h3>{html.escape(quiz.title)}</h3>\n'
            f"<p><i>{html.escape(STATIC_NOTE)}</i></p>\n{questions}\n</div>")
