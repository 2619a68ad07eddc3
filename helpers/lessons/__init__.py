"""One folder per lesson, named after the lesson's id (`lesson_03_modules` for course/03_modules.ipynb).

Each holds `checks.py`, the checks behind the lesson's exercises
(`from helpers.lessons.lesson_03_modules import checks as ex`), and `quiz.yaml`, its quiz
(`show_quiz("03_modules")`). The same id names the lesson's other files: course/NN_topic.ipynb,
source/NN_topic/ and release/NN_topic/ (its assignment) and tests/wrong_answers/lesson_NN_topic.py.
"""
