"""Why a typical wrong answer may be caught by hidden tests only (`WrongAnswer.hidden_only`)."""

#: A graded quiz question: the visible test checks only that the answer is one of the options;
#: the key is in the hidden tests, or the quiz would give itself away.
QUIZ_KEY = "a quiz question: its key is in the hidden tests"
#: A wrong answer the lesson teaches against that no visible test catches yet: a gap to close
#: by adding a visible check with a message naming the mistake (then drop the mark).
VISIBLE_GAP = "not caught by a visible test yet: a gap to close"
