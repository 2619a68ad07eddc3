"""Quizzes with instant feedback: questions are data (one YAML file per lesson), grading is pure logic.

In a lesson's last cell:

    from helpers.quiz import show_quiz
    show_quiz("01_tensors")          # a lesson id finds helpers/lessons/lesson_01_tensors/quiz.yaml; a path works too

This module is the entry point that lessons, tests and docs import; the engine lives in three
modules, so that loading and grading can be used and tested without a front end:
  helpers.quiz_data     question schema, loading and validation (QuizFormatError), answer
                        normalisation and grading (Quiz.grade). Imports neither ipywidgets nor IPython.
  helpers.quiz_text     the static versions: plain text (never the answers) and HTML for rendered
                        notebooks (answers folded inside <details>)
  helpers.quiz_widgets  the ipywidgets front end, front-end detection and show_quiz (static HTML
                        output plus widgets in a kernel, text elsewhere)

docs/quizzes.md describes the file format, the question types and every validation error.
"""

from __future__ import annotations

from helpers.quiz_data import (QUESTION_TYPES, LESSONS_DIR, Feedback, Option, Question, Quiz, QuizFormatError,
                               answer_matches, available_quizzes, load_quiz, normalise_answer, quiz_path)
from helpers.quiz_text import NO_ANSWERS_LINE
from helpers.quiz_widgets import WIDGET_HTML, WIDGET_TEXT, QuestionView, QuizView, build_quiz_view, show_quiz

__all__ = [
    "LESSONS_DIR",
    "quiz_path",
    "QUESTION_TYPES",
    "NO_ANSWERS_LINE",
    "WIDGET_TEXT",
    "WIDGET_HTML",
    "QuizFormatError",
    "Option",
    "Question",
    "Feedback",
    "Quiz",
    "load_quiz",
    "available_quizzes",
    "normalise_answer",
    "answer_matches",
    "QuestionView",
    "QuizView",
    "build_quiz_view",
    "show_quiz",
]
