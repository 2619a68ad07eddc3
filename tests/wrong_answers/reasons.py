"""Why a typical wrong answer may be caught by hidden tests only (`WrongAnswer.hidden_only`)."""

#: A graded quiz question: the visible test checks only that the answer is one of the options;
#: the key is in the hidden tests, or the quiz would give itself away. It is the only reason:
#: every other typical wrong answer is caught by a visible test (tests/test_grading_roundtrip.py).
QUIZ_KEY = "a quiz question: its key is in the hidden tests"
