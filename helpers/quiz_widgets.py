"""The ipywidgets front end of a quiz, and `show_quiz`, which picks widgets or plain text.

Display design. Whether a live front end is listening cannot be detected reliably from the
kernel: JupyterLab, nbconvert and nbval all run the same ipykernel. So inside a kernel
`show_quiz` always builds the widgets and displays one mime bundle holding both the widget
view and, as its text/plain part, the readable plain-text quiz. JupyterLab renders the widget;
nbconvert, nbval and a saved notebook viewed without widget state show the text, and nothing
raises. Outside a kernel (plain `python`, terminal IPython) there is nothing to render widgets,
so it prints the same text. The text lists questions and lettered options but never the answers.

The widgets hold no grading logic: each Check button calls `Quiz.grade` (helpers.quiz_data).

CSS classes on the widgets (for browser tests and styling; <name> is the quiz name such as
01_tensors, <id> the question id):
  quiz, quiz-<name>          the whole quiz (a VBox)
  quiz-question, quiz-<name>-<id>   one question's box
  quiz-input                 the answer widget (RadioButtons, Text, or the VBox of checkboxes)
  quiz-option                each Checkbox of a "multiple" question
  quiz-check                 the question's "Check" button
  quiz-feedback              the question's feedback (an HTML widget, empty until checked)
  quiz-score                 the running score (a Label: "Score: 2 / 5 answered correctly")
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from helpers.quiz_data import Feedback, Question, Quiz, load_quiz
from helpers.quiz_text import HOW_TO_ANSWER

__all__ = ["QuestionView", "QuizView", "build_quiz_view", "show_quiz"]

# Widget labels do not wrap by default (long options would be cut off): let them wrap, inside
# quizzes only. The colours only repeat what the ✔/✘ words already say.
_STYLE = """<style>
.quiz .widget-radio-box label, .quiz .jupyter-widget-radio-box label {
  height: auto; line-height: 1.4; white-space: normal; margin-bottom: 0.3em; }
.quiz .quiz-option { width: auto; height: auto; }
.quiz .quiz-option label { white-space: normal; }
.quiz .quiz-right { color: #1a7f37; } .quiz .quiz-wrong { color: #b3261e; }
.quiz pre { margin: 0.3em 0; }
</style>"""


def _inline_html(text: str) -> str:
    """Escape text for HTML and show `backticks` as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _feedback_html(feedback: Feedback) -> str:
    head, _, rest = feedback.message.partition(".")
    css = "quiz-right" if feedback.correct else "quiz-wrong"
    body = _inline_html(rest.strip()).replace("\n", "<br>")
    return f'<div role="status"><b class="{css}">{html.escape(head)}.</b> {body}</div>'


def _css_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


@dataclass
class QuestionView:
    """The widgets of one question; `answer()` reads what the student entered."""

    question: Question
    input: widgets.Widget
    check: widgets.Button
    feedback: widgets.HTML
    box: widgets.VBox
    checkboxes: tuple[widgets.Checkbox, ...] = ()

    def answer(self) -> Any:
        if self.question.type == "multiple":
            return [letter for letter, box in zip(self.question.letters, self.checkboxes) if box.value]
        return self.input.value


@dataclass
class QuizView:
    """The widget tree of a quiz: `box` to display, `questions` by id, the `score` label."""

    quiz: Quiz
    box: widgets.VBox
    questions: dict[str, QuestionView]
    score: widgets.Label


def _question_view(quiz: Quiz, q: Question, number: int, on_checked: Callable[[], None]) -> QuestionView:
    label = f"Question {number}"
    prompt_html = f"<b>{label}.</b> {_inline_html(q.prompt)} <i>({HOW_TO_ANSWER[q.type]})</i>"
    if q.code:
        prompt_html += f"<pre><code>{html.escape(q.code)}</code></pre>"
    prompt = widgets.HTML(prompt_html)
    checkboxes: tuple[widgets.Checkbox, ...] = ()
    if q.type == "single":
        answer_widget: widgets.Widget = widgets.RadioButtons(
            options=[(f"{letter}) {o.text}", letter) for letter, o in zip(q.letters, q.options)],
            value=None, tooltip=f"{label}: choose one answer", layout=widgets.Layout(width="auto"))
    elif q.type == "multiple":
        checkboxes = tuple(widgets.Checkbox(value=False, description=f"{letter}) {o.text}", indent=False,
                                            tooltip=f"{label}: option {letter}")
                           for letter, o in zip(q.letters, q.options))
        for box in checkboxes:
            box.add_class("quiz-option")
        answer_widget = widgets.VBox(list(checkboxes))
    else:
        # Text rather than FloatText for numbers: FloatText cannot be empty (it shows 0, which
        # may be the answer) and silently turns "abc" into the old value; grading parses the text.
        kind = "a number" if q.type == "numeric" else "the printed output"
        answer_widget = widgets.Text(value="", placeholder=f"type {kind}", description="Answer:",
                                     tooltip=f"{label}: type {kind}")
    answer_widget.add_class("quiz-input")
    check = widgets.Button(description="Check", tooltip=f"Check your answer to {label.lower()}")
    check.add_class("quiz-check")
    feedback = widgets.HTML("")
    feedback.add_class("quiz-feedback")
    box = widgets.VBox([prompt, answer_widget, check, feedback], layout=widgets.Layout(margin="0 0 1em 0"))
    box.add_class("quiz-question")
    box.add_class(f"quiz-{_css_name(quiz.name)}-{q.id}")
    view = QuestionView(q, answer_widget, check, feedback, box, checkboxes)

    def on_click(_: widgets.Button) -> None:
        feedback.value = _feedback_html(quiz.grade(q.id, view.answer()))
        on_checked()

    check.on_click(on_click)
    return view


def build_quiz_view(quiz: Quiz) -> QuizView:
    """Build (but do not display) the widgets of `quiz`; grading goes through `quiz.grade`."""
    score = widgets.Label(quiz.score_text())
    score.add_class("quiz-score")

    def update_score() -> None:
        score.value = quiz.score_text()

    views = {q.id: _question_view(quiz, q, n, update_score) for n, q in enumerate(quiz.questions, start=1)}
    title = widgets.HTML(f"{_STYLE}<h3>{html.escape(quiz.title)}</h3>")
    box = widgets.VBox([title, *(v.box for v in views.values()), score])
    box.add_class("quiz")
    box.add_class(f"quiz-{_css_name(quiz.name)}")
    return QuizView(quiz, box, views, score)


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (a front end may render widgets), False in python/terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_quiz(name_or_path: str | Path) -> None:
    """Show a quiz: widgets in a kernel (with a plain-text fallback), plain text elsewhere.

    Returns None on purpose, so a notebook cell ending with show_quiz(...) shows the quiz once.
    """
    quiz = load_quiz(name_or_path)
    if not _in_kernel():
        print(quiz.as_text())
        return
    from IPython.display import display

    view = build_quiz_view(quiz)
    bundle = view.box._repr_mimebundle_()
    bundle["text/plain"] = quiz.as_text()  # what nbconvert, nbval and text front ends show
    display(bundle, raw=True)
