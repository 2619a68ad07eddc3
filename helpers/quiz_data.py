"""Quiz data and grading: the question schema, loading and validating YAML files, and grading answers.

This half of the quiz engine is pure logic: it imports neither ipywidgets nor IPython, so
grading can be unit-tested and used by graded assignments (`answer_matches`) without a front
end. `helpers.quiz` is the entry point lessons import; `helpers.quiz_widgets` shows a quiz.

Question types (docs/quizzes.md describes the file format and every validation error):
  single    choose one option (radio buttons); exactly one option is correct
  multiple  select all that apply (checkboxes); at least one option is correct
  numeric   a number; right when |answer - expected| <= tolerance (inclusive)
  predict   "predict the output": a short text (a shape, a dtype, a value) compared after
            `normalise_answer`, so torch.Size([2, 3]) == (2, 3) == 2,3 and torch.float32 == float32

`load_quiz` validates the whole file and raises one `QuizFormatError` listing every problem
(file path and question id). `Quiz.grade(question_id, answer)` returns `Feedback(correct,
message)` without touching widgets, so grading is unit-testable; the message always starts
with "✔ Correct" or "✘ Not quite" and carries the explanation, so feedback never relies on colour.
A student may check again as often as they like; `Quiz.score_text()` gives the running score.
A question counts as answered correctly once it has been answered correctly: trying the other
options afterwards (to read their explanations) does not take the point away.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from helpers.quiz_text import quiz_as_html, quiz_as_text

__all__ = [
    "LESSONS_DIR",
    "quiz_path",
    "QUESTION_TYPES",
    "QuizFormatError",
    "Option",
    "Question",
    "Feedback",
    "Quiz",
    "load_quiz",
    "available_quizzes",
    "normalise_answer",
    "answer_matches",
]

LESSONS_DIR = Path(__file__).with_name("lessons")  # lesson_NN_topic/quiz.yaml, one per lesson
QUESTION_TYPES = ("single", "multiple", "numeric", "predict")
RIGHT, WRONG = "✔ Correct", "✘ Not quite"

# Allowed keys per question type: an unknown key is reported, so a typo such as
# `explaination:` is caught instead of silently losing the explanation.
_COMMON_KEYS = {"id", "type", "prompt", "code"}
_TYPE_KEYS = {
    "single": {"options"},
    "multiple": {"options"},
    "numeric": {"answer", "tolerance", "explanation", "wrong_explanation"},
    "predict": {"answers", "explanation", "wrong_explanation"},
}
_OPTION_KEYS = {"text", "correct", "explanation"}
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")  # ids become CSS classes


class QuizFormatError(ValueError):
    """A quiz file has problems; the message lists all of them with the file path."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{count} in quiz file {path}:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Option:
    """One option of a single or multiple question; its explanation is shown whenever it is judged."""

    text: str
    correct: bool
    explanation: str


@dataclass(frozen=True)
class Question:
    """One question. Which fields are used depends on `type` (see the module docstring)."""

    id: str
    type: str
    prompt: str
    code: str | None = None
    options: tuple[Option, ...] = ()          # single, multiple
    answer: float | None = None               # numeric
    tolerance: float = 0.0                    # numeric
    answers: tuple[str, ...] = ()             # predict: every accepted answer
    explanation: str = ""                     # numeric, predict: shown when right
    wrong_explanation: str = ""               # numeric, predict: shown when wrong (no spoiler)

    @property
    def letters(self) -> list[str]:
        """The options' letters (a, b, ...): students answer with them and the text version shows them."""
        return list(string.ascii_lowercase[: len(self.options)])


@dataclass(frozen=True)
class Feedback:
    """The result of grading one answer: plain data, so grading is testable without widgets."""

    correct: bool
    message: str


# ---------------------------------------------------------------------------- normalisation

_FLOAT_LITERAL = re.compile(r"(?<![\w.])-?(?:\d+\.\d*|\.\d+|\d+(?=e))(?:e[-+]?\d+)?(?![\w.])")
_WRAPPERS = ("size(", "tensor(")


def _enclosed(text: str, opening: str) -> bool:
    """True when the bracket at text[0] is closed by the last character (it wraps everything)."""
    closing = {"(": ")", "[": "]"}[opening]
    if not (text.startswith(opening) and text.endswith(closing)):
        return False
    depth = 0
    for i, char in enumerate(text):
        depth += char in "(["
        depth -= char in ")]"
        if depth == 0:
            return i == len(text) - 1
    return False


def normalise_answer(text: Any) -> str:
    """Canonical form of a short printed answer, so equivalent spellings compare equal.

    Steps: lower-case; drop quotes and the `torch.` prefix (torch.float32 -> float32); write
    floats in one way (2. == 2.0 == 2.0000, while the integer 2 stays different, since int vs
    float is often the point); remove spaces around punctuation and treat other whitespace as a
    comma (NumPy prints [5. 0. 0.]); unwrap one size(...) or tensor(...); unwrap one enclosing
    pair of brackets; drop a trailing comma. So torch.Size([2, 3]), (2, 3), [2,3] and 2, 3 all
    become "2,3", and tensor(6.) becomes "6.0".
    """
    s = str(text).strip().lower()
    s = re.sub(r"[\"'`]", "", s)
    s = s.replace("torch.", "")
    s = _FLOAT_LITERAL.sub(lambda m: repr(float(m.group())), s)
    s = re.sub(r"\s*([,()\[\]=:])\s*", r"\1", s)
    s = re.sub(r"\s+", ",", s)
    for wrapper in _WRAPPERS:
        if s.startswith(wrapper) and _enclosed(s[len(wrapper) - 1:], "("):
            s = s[len(wrapper):-1]
            break
    if _enclosed(s, "(") or _enclosed(s, "["):
        s = s[1:-1]
    return s.rstrip(",")


def answer_matches(answer: Any, accepted: str | Sequence[str]) -> bool:
    """True when `answer` equals one of the `accepted` answers after `normalise_answer`.

    Use it in the hidden tests of graded quiz questions, e.g.
    `assert answer_matches(q2_answer, ["torch.Size([4, 3])"])`.
    """
    options = [accepted] if isinstance(accepted, str) else list(accepted)
    return normalise_answer(answer) in {normalise_answer(a) for a in options}


# ---------------------------------------------------------------------------- loading

def _text(value: Any) -> str | None:
    """A non-empty string stripped, or None."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def _is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float (not a bool, which YAML reads from true/false)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number_hint(value: Any) -> str:
    # PyYAML follows YAML 1.1, where 1e-4 (no dot) is a string: a common surprise.
    return " (write 1.0e-4, not 1e-4: YAML reads 1e-4 as text)" if isinstance(value, str) else ""


def _parse_options(raw: Any, qtype: str, where: str, problems: list[str]) -> tuple[Option, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        problems.append(f"{where}: 'options' must be a list of at least 2 options")
        return ()
    if len(raw) > len(string.ascii_lowercase):
        problems.append(f"{where}: at most {len(string.ascii_lowercase)} options (they are lettered a-z)")
    options = []
    for letter, item in zip(string.ascii_lowercase, raw):
        at = f"{where}, option {letter}"
        if not isinstance(item, dict):
            problems.append(f"{at}: must be a mapping with 'text', 'explanation' and optionally 'correct'")
            continue
        for key in sorted(set(item) - _OPTION_KEYS):
            problems.append(f"{at}: unknown key {key!r} (allowed: {', '.join(sorted(_OPTION_KEYS))})")
        text, explanation = _text(item.get("text")), _text(item.get("explanation"))
        if text is None:
            problems.append(f"{at}: 'text' is missing or empty")
        if explanation is None:
            problems.append(f"{at}: 'explanation' is missing or empty (every option explains itself)")
        correct = item.get("correct", False)
        if not isinstance(correct, bool):
            problems.append(f"{at}: 'correct' must be true or false, got {correct!r}")
            correct = False
        options.append(Option(text or "", correct, explanation or ""))
    n_correct = sum(o.correct for o in options)
    if qtype == "single" and n_correct != 1:
        problems.append(f"{where}: a single-choice question needs exactly one correct option, found {n_correct}")
    if qtype == "multiple" and n_correct < 1:
        problems.append(f"{where}: a multiple-choice question needs at least one correct option, found 0")
    return tuple(options)


def _parse_question(raw: Any, index: int, seen_ids: set[str], problems: list[str]) -> Question | None:
    if not isinstance(raw, dict):
        problems.append(f"question #{index}: must be a mapping (id, type, prompt, ...), got {type(raw).__name__}")
        return None
    qid = raw.get("id")
    if isinstance(qid, str) and _ID_PATTERN.match(qid):
        where = f"question {qid!r}"
        if qid in seen_ids:
            problems.append(f"{where}: duplicate id (ids must be unique within a quiz)")
        seen_ids.add(qid)
    else:
        where = f"question #{index}"
        problems.append(f"{where}: 'id' must be letters, digits, '-' or '_' (it becomes a CSS class), got {qid!r}")
        qid = f"#{index}"
    prompt = _text(raw.get("prompt"))
    if prompt is None:
        problems.append(f"{where}: 'prompt' is missing or empty")
    qtype = raw.get("type")
    if qtype not in QUESTION_TYPES:
        # The other fields depend on the type, so they cannot be checked.
        problems.append(f"{where}: unknown type {qtype!r} (known types: {', '.join(QUESTION_TYPES)})")
        return None
    for key in sorted(set(raw) - _COMMON_KEYS - _TYPE_KEYS[qtype]):
        allowed = ", ".join(sorted(_COMMON_KEYS | _TYPE_KEYS[qtype]))
        problems.append(f"{where}: unknown key {key!r} for a {qtype} question (allowed: {allowed})")
    code = raw.get("code")
    if code is not None and _text(code) is None:
        problems.append(f"{where}: 'code' must be a non-empty string when given")
        code = None
    fields: dict[str, Any] = {"id": qid, "type": qtype, "prompt": prompt or "", "code": code.rstrip() if code else None}

    if qtype in ("single", "multiple"):
        fields["options"] = _parse_options(raw.get("options"), qtype, where, problems)
    else:
        for key, role in (("explanation", "shown when the answer is right"),
                          ("wrong_explanation", "shown when it is wrong")):
            value = _text(raw.get(key))
            if value is None:
                problems.append(f"{where}: {key!r} is missing or empty ({role})")
            fields[key] = value or ""
    if qtype == "numeric":
        answer, tolerance = raw.get("answer"), raw.get("tolerance")
        if not _is_number(answer):
            problems.append(f"{where}: 'answer' must be a finite number, got {answer!r}{_number_hint(answer)}")
        if not _is_number(tolerance) or tolerance < 0:
            problems.append(f"{where}: 'tolerance' must be a number >= 0 (0 means exact), got {tolerance!r}"
                            f"{_number_hint(tolerance)}")
        fields["answer"] = float(answer) if _is_number(answer) else None
        fields["tolerance"] = float(tolerance) if _is_number(tolerance) and tolerance >= 0 else 0.0
    if qtype == "predict":
        answers = raw.get("answers")
        # Numbers are accepted (YAML reads `answers: [6]` as an int); they are compared as text.
        if (not isinstance(answers, list) or not answers
                or not all(isinstance(a, (str, int, float)) and str(a).strip() for a in answers)):
            problems.append(f"{where}: 'answers' must be a non-empty list of accepted answers (strings), "
                            f"got {answers!r}")
            answers = []
        fields["answers"] = tuple(str(a).strip() for a in answers)
    return Question(**fields)


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
    else:
        path = quiz_path(text)
    if not path.is_file():
        raise FileNotFoundError(f"no quiz file {path}; shipped quizzes: {', '.join(available_quizzes()) or 'none'}")
    return path


def quiz_path(lesson: str) -> Path:
    """Where the quiz of a lesson id such as "01_tensors" lives: helpers/lessons/lesson_01_tensors/quiz.yaml."""
    return LESSONS_DIR / f"lesson_{lesson}" / "quiz.yaml"


def _quiz_name(path: Path) -> str:
    """A lesson's quiz is named by its lesson id (lesson_01_tensors/quiz.yaml: "01_tensors"), other files by stem."""
    if path.name == "quiz.yaml" and path.parent.name.startswith("lesson_"):
        return path.parent.name.removeprefix("lesson_")
    return path.stem


def available_quizzes() -> list[str]:
    """The lesson ids whose folder in helpers/lessons/ has a quiz (for load_quiz and show_quiz)."""
    return sorted(_quiz_name(path) for path in LESSONS_DIR.glob("lesson_*/quiz.yaml"))


def load_quiz(name_or_path: str | Path) -> Quiz:
    """Load and validate a quiz: a lesson id such as "01_tensors" (its folder in helpers/lessons/) or a file path.

    Raises QuizFormatError listing every problem in the file, FileNotFoundError if there is no file.
    """
    path = _resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise QuizFormatError(path, [f"not valid YAML: {error}"]) from None
    problems: list[str] = []
    if not isinstance(data, dict):
        raise QuizFormatError(path, ["the file must be a mapping with the keys 'title' and 'questions'"])
    for key in sorted(set(data) - {"title", "questions"}):
        problems.append(f"unknown top-level key {key!r} (allowed: title, questions)")
    title = _text(data.get("title"))
    if title is None:
        problems.append("'title' is missing or empty")
    raw_questions = data.get("questions")
    questions: list[Question] = []
    if not isinstance(raw_questions, list) or not raw_questions:
        problems.append("'questions' must be a non-empty list")
    else:
        seen: set[str] = set()
        for index, raw in enumerate(raw_questions, start=1):
            question = _parse_question(raw, index, seen, problems)
            if question is not None:
                questions.append(question)
    if problems:
        raise QuizFormatError(path, problems)
    return Quiz(name=_quiz_name(path), title=title or "", questions=tuple(questions), path=path)


# ---------------------------------------------------------------------------- grading

def _right(explanation: str) -> Feedback:
    return Feedback(True, f"{RIGHT}. {explanation}")


def _wrong(explanation: str, retry: bool = True) -> Feedback:
    return Feedback(False, f"{WRONG}. {explanation}" + (" Try again." if retry else ""))


def _grade_single(q: Question, answer: Any) -> Feedback:
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return _wrong("No option is chosen yet: choose one, then check.", retry=False)
    letter = str(answer).strip().lower()
    if letter not in q.letters:
        return _wrong(f"{answer!r} is not one of the options {', '.join(q.letters)}.", retry=False)
    option = q.options[q.letters.index(letter)]
    return _right(option.explanation) if option.correct else _wrong(option.explanation)


def _letters_of(answer: Any) -> list[str]:
    """A multiple-choice answer as letters: "a, c", "ac" and ["a", "c"] all give ["a", "c"]."""
    if answer is None:
        return []
    if isinstance(answer, str):
        return [c for c in answer.lower() if not c.isspace() and c not in ",;"]
    return [str(a).strip().lower() for a in answer]


def _grade_multiple(q: Question, answer: Any) -> Feedback:
    chosen = _letters_of(answer)
    if not chosen:
        return _wrong("No option is chosen yet: select every option that applies, then check.", retry=False)
    unknown = [c for c in chosen if c not in q.letters]
    if unknown:
        return _wrong(f"{', '.join(map(repr, unknown))} is not one of the options {', '.join(q.letters)}.",
                      retry=False)
    right = {letter for letter, o in zip(q.letters, q.options) if o.correct}
    picked = set(chosen)
    if picked == right:
        # Right: explain every option, the chosen and the rejected ones, since both teach.
        lines = [f"{letter}) is {'right' if o.correct else 'wrong'}: {o.explanation}"
                 for letter, o in zip(q.letters, q.options)]
        return Feedback(True, f"{RIGHT}.\n" + "\n".join(lines))
    # Wrong: explain the wrong choices, and only count the missed ones (naming them would give it away).
    lines = [f"{letter}) is wrong: {q.options[q.letters.index(letter)].explanation}"
             for letter in sorted(picked - right)]
    found = len(picked & right)
    if found < len(right):
        lead = "Every option you chose is right, but you" if not picked - right else "You"
        lines.append(f"{lead} found {found} of the {len(right)} correct options.")
    return Feedback(False, f"{WRONG}.\n" + "\n".join(lines) + "\nTry again.")


def _grade_numeric(q: Question, answer: Any) -> Feedback:
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return _wrong("Type a number first, then check.", retry=False)
    try:
        if isinstance(answer, bool):
            raise ValueError
        value = float(answer.strip() if isinstance(answer, str) else answer)
    except (TypeError, ValueError):
        return _wrong(f"{answer!r} is not a number. Type a number such as 0.5 or 1e-3.", retry=False)
    assert q.answer is not None  # validated by load_quiz
    # A hair of slack so that the tolerance is inclusive despite binary rounding (0.4 - 0.3 > 0.1).
    slack = 1e-9 * max(1.0, abs(q.answer))
    if math.isfinite(value) and abs(value - q.answer) <= q.tolerance + slack:
        return _right(q.explanation)
    return _wrong(q.wrong_explanation)


def _grade_predict(q: Question, answer: Any) -> Feedback:
    if answer is None or not str(answer).strip():
        return _wrong("Type what the code prints first, then check.", retry=False)
    return _right(q.explanation) if answer_matches(answer, q.answers) else _wrong(q.wrong_explanation)


_GRADERS = {"single": _grade_single, "multiple": _grade_multiple, "numeric": _grade_numeric,
            "predict": _grade_predict}


@dataclass
class Quiz:
    """A validated quiz and the student's progress (which questions were answered correctly)."""

    name: str
    title: str
    questions: tuple[Question, ...]
    path: Path
    solved: set[str] = field(default_factory=set)

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(f"quiz {self.name!r} has no question {question_id!r}; "
                       f"its ids: {', '.join(q.id for q in self.questions)}")

    def grade(self, question_id: str, answer: Any) -> Feedback:
        """Grade one answer and record it for the score.

        answer: a letter ("b") for single; letters ("a, c", "ac" or ["a", "c"]) for multiple;
        a number or numeric string for numeric; the predicted output as text for predict.
        """
        q = self.question(question_id)
        feedback = _GRADERS[q.type](q, answer)
        if feedback.correct:
            self.solved.add(q.id)
        return feedback

    def score(self) -> tuple[int, int]:
        """(questions answered correctly, questions in the quiz)."""
        return len(self.solved), len(self.questions)

    def score_text(self) -> str:
        right, total = self.score()
        return f"Score: {right} / {total} answered correctly"

    def reset(self) -> None:
        self.solved.clear()

    def as_text(self) -> str:
        """The quiz as plain text: questions and lettered options, never the answers."""
        return quiz_as_text(self)

    def as_html(self) -> str:
        """The quiz as static HTML for rendered notebooks: answers and explanations inside <details>."""
        return quiz_as_html(self)
