"""The ipywidgets front end of a quiz, and `show_quiz`, which shows widgets and a static version.

Display design. Whether a live front end is listening cannot be detected reliably from the
kernel: JupyterLab, nbconvert and nbval all run the same ipykernel. So inside a kernel
`show_quiz` displays two outputs:
  1. the static quiz: text/html (`Quiz.as_html`: questions and options, each answer and its
     explanations inside a closed <details>) and text/plain (`Quiz.as_text`, never the answers);
  2. the widgets: the widget view, an empty text/html (an HTML comment) and a one-line text/plain.
How nbconvert 7's HTML export (and so nbviewer) picks a mime type: the first one of its
`display_data_priority` that the output has, where the widget view comes first but is skipped
when the notebook has no saved state for its model (WidgetsDataTypeFilter). A notebook saved
by JupyterLab has no widget state (the default), so output 2 falls back to its empty HTML; a
notebook executed by nbconvert or nbclient has it, so output 2 becomes the widget (an empty
<div> offline, dead widgets that cannot check answers online). In both cases output 1 shows
the static quiz; a single bundle with the static HTML beside the widget view would be blank in
the second case. In a live JupyterLab (and Notebook 7, and the classic Notebook) the widgets'
own <style> hides the static output of the same cell (a CSS :has() rule, active only once the
widgets render, so a notebook reopened without a kernel still shows the static quiz), and on a
page exported by nbconvert it hides the widgets. Text front ends (nbval, terminal) show the
plain text once. Outside a kernel (plain `python`, terminal IPython) there is nothing to
render widgets, so it prints the text.

Options are Checkboxes whose description is HTML (`code` shows as code, everything else is
escaped), laid out as a flex row so that the box sits at the start of the first line and a
long text wraps beside it. A "single" question's checkboxes exclude each other (ticking one
unticks the others) and are drawn round, like radio buttons; RadioButtons cannot render HTML.

The widgets hold no grading logic: each Check button calls `Quiz.grade` (helpers.quiz_data).

CSS classes on the widgets (for browser tests and styling; <name> is the quiz name such as
01_tensors, <id> the question id):
  quiz, quiz-<name>          the whole quiz (a VBox)
  quiz-question, quiz-<name>-<id>   one question's box
  quiz-input                 the answer widget (the VBox of options, or a Text)
  quiz-single, quiz-multiple on that VBox, by question type
  quiz-option                each option's Checkbox (<input type=checkbox> and its HTML label)
  quiz-check                 the question's "Check" button
  quiz-feedback              the question's feedback (an HTML widget, empty until checked)
  quiz-score                 the running score (a Label: "Score: 2 / 5 answered correctly")
The static version's classes: quiz-static, quiz-static-<name> (helpers.quiz_text).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from helpers.quiz_data import Feedback, Question, Quiz, load_quiz
from helpers.quiz_text import HOW_TO_ANSWER, css_name, inline_html

__all__ = ["WIDGET_TEXT", "WIDGET_HTML", "QuestionView", "QuizView", "build_quiz_view", "show_quiz"]

# The text/plain and text/html of the widget output: the static output before it carries the quiz.
WIDGET_TEXT = "(The quiz's widgets: they work in JupyterLab with a running kernel.)"
WIDGET_HTML = "<!-- the quiz's widgets: the static quiz above stands in for them here -->"

# Widget labels do not wrap by default (long options would be cut off): inside quizzes only,
# option rows are flex rows (box first, text wrapping beside it). The colours only repeat what
# the ✔/✘ words already say.
_STYLE = """<style>
.quiz .quiz-option { width: auto; height: auto; line-height: 1.4; margin: 0.15em 0; }
.quiz .quiz-option label { display: flex; align-items: flex-start; gap: 0.6em; white-space: normal;
  overflow: visible; line-height: 1.4; cursor: pointer; }
.quiz .quiz-option input { flex: none; align-self: flex-start; font-size: inherit; width: 1em; height: 1em;
  margin: 0.2em 0 0 0; }
.quiz .quiz-option label > span { flex: 1 1 auto; min-width: 0; }
.quiz .quiz-single input[type=checkbox] { appearance: none; -webkit-appearance: none; border-radius: 50%;
  border: 1px solid var(--jp-border-color1, #767676); background: var(--jp-layout-color1, white);
  display: grid; place-content: center; }
.quiz .quiz-single input[type=checkbox]::before { content: ""; width: 0.55em; height: 0.55em;
  border-radius: 50%; background: var(--jp-brand-color1, #1976d2); transform: scale(0); }
.quiz .quiz-single input[type=checkbox]:checked { border-color: var(--jp-brand-color1, #1976d2); }
.quiz .quiz-single input[type=checkbox]:checked::before { transform: scale(1); }
.quiz .quiz-single input[type=checkbox]:focus-visible { outline: 2px solid var(--jp-brand-color1, #1976d2); }
.quiz .quiz-right { color: #1a7f37; } .quiz .quiz-wrong { color: #b3261e; }
.quiz pre { margin: 0.3em 0; }
.quiz .widget-html-content, .quiz .jupyter-widget-html-content { line-height: 1.4; }
</style>"""


def _visibility_style(name: str) -> str:
    """CSS that hides the static quiz where the widgets run, and the widgets on an exported page."""
    widget, static = f".quiz-{name}", f".quiz-static-{name}"
    return ("<style>"
            # JupyterLab and Notebook 7: the output (of the same cell) holding the static quiz.
            f".jp-NotebookPanel .jp-OutputArea:has({widget}) > .jp-OutputArea-child:has({static}),"
            # The classic Notebook.
            f" body.notebook_app .output:has({widget}) > .output_area:has({static})"
            " { display: none; }"
            # Pages exported by nbconvert (lab and classic templates) with the widget state saved:
            # there the widgets render but cannot check answers; the static quiz stays.
            f" body.jp-Notebook {widget}, body:not(.notebook_app) #notebook-container {widget}"
            " { display: none; }"
            "</style>")


def _feedback_html(feedback: Feedback) -> str:
    head, _, rest = feedback.message.partition(".")
    css = "quiz-right" if feedback.correct else "quiz-wrong"
    body = inline_html(rest.strip())
    return f'<div role="status"><b class="{css}">{html.escape(head)}.</b> {body}</div>'


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
        """The letters ticked (a list) for multiple, the ticked letter or None for single, else the text."""
        ticked = [letter for letter, box in zip(self.question.letters, self.checkboxes) if box.value]
        if self.question.type == "multiple":
            return ticked
        if self.question.type == "single":
            return ticked[0] if ticked else None
        return self.input.value


@dataclass
class QuizView:
    """The widget tree of a quiz: `box` to display, `questions` by id, the `score` label."""

    quiz: Quiz
    box: widgets.VBox
    questions: dict[str, QuestionView]
    score: widgets.Label


def _make_exclusive(checkboxes: tuple[widgets.Checkbox, ...]) -> None:
    """Ticking one checkbox unticks the others (a "single" question: one answer at a time)."""
    def untick_others(change: dict[str, Any]) -> None:
        if change["new"]:
            for other in checkboxes:
                if other is not change["owner"]:
                    other.value = False

    for box in checkboxes:
        box.observe(untick_others, names="value")


def _question_view(quiz: Quiz, q: Question, number: int, on_checked: Callable[[], None]) -> QuestionView:
    label = f"Question {number}"
    prompt_html = f"<b>{label}.</b> {inline_html(q.prompt)} <i>({HOW_TO_ANSWER[q.type]})</i>"
    if q.code:
        prompt_html += f"<pre><code>{html.escape(q.code)}</code></pre>"
    prompt = widgets.HTML(prompt_html)
    checkboxes: tuple[widgets.Checkbox, ...] = ()
    if q.type in ("single", "multiple"):
        checkboxes = tuple(
            widgets.Checkbox(value=False, description=f"{letter}) {inline_html(o.text)}", description_allow_html=True,
                             indent=False, layout=widgets.Layout(width="auto"), tooltip=f"{label}: option {letter}")
            for letter, o in zip(q.letters, q.options))
        for box in checkboxes:
            box.add_class("quiz-option")
        if q.type == "single":
            _make_exclusive(checkboxes)
        answer_widget: widgets.Widget = widgets.VBox(list(checkboxes), layout=widgets.Layout(width="auto"))
        answer_widget.add_class(f"quiz-{q.type}")
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
    box.add_class(f"quiz-{css_name(quiz.name)}-{q.id}")
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
    title = widgets.HTML(f"{_STYLE}{_visibility_style(css_name(quiz.name))}<h3>{html.escape(quiz.title)}</h3>")
    box = widgets.VBox([title, *(v.box for v in views.values()), score])
    box.add_class("quiz")
    box.add_class(f"quiz-{css_name(quiz.name)}")
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
    """Show a quiz: in a kernel its static version and its widgets (see the module docstring), else plain text.

    Returns None on purpose, so a notebook cell ending with show_quiz(...) shows the quiz once.
    """
    quiz = load_quiz(name_or_path)
    if not _in_kernel():
        print(quiz.as_text())
        return
    from IPython.display import display

    view = build_quiz_view(quiz)
    # What nbconvert's HTML, nbviewer and text front ends show; hidden where the widgets run.
    display({"text/html": quiz.as_html(), "text/plain": quiz.as_text()}, raw=True)
    bundle = view.box._repr_mimebundle_()
    bundle["text/plain"] = WIDGET_TEXT  # not the widget's repr (VBox(children=...)), not the quiz twice
    bundle["text/html"] = WIDGET_HTML  # what an HTML export without widget state shows: nothing more
    display(bundle, raw=True)
