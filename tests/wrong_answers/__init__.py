"""Typical wrong answers for every graded cell of every assignment (used by the round-trip test).

One module per assignment, `lesson_NN_topic.py` (the lesson's id, docs/authoring.md), defining `WRONG_ANSWERS: list[WrongAnswer]`.
Each entry replaces one solution cell of the reference solution; the grade cells it names
must then score 0 and every other grade cell full marks. Together the entries must cover
every grade cell of the assignment (tests/test_grading_roundtrip.py checks that).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from grading import WrongAnswer

WRONG_ANSWERS: dict[str, list[WrongAnswer]] = {
    path.stem.removeprefix("lesson_"): importlib.import_module(f"wrong_answers.{path.stem}").WRONG_ANSWERS
    for path in sorted(Path(__file__).parent.glob("lesson_[0-9][0-9]_*.py"))
}
