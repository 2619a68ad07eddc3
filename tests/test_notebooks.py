"""Every notebook follows the course template and the course's rules (no outputs committed,
environment check first, no shell commands, no downloads, points that add up)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "course").glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted((REPO / "source").glob("*/*.ipynb"))
RELEASES = sorted((REPO / "release").glob("*/*.ipynb"))
ALL = LESSONS + SOURCES + RELEASES
TEMPLATE_SECTIONS = ["## Learning objectives", "## Exercises", "## Quiz", "## Summary", "## Common mistakes"]
DOWNLOAD_PATTERNS = [r"download\s*=\s*True", r"urlretrieve", r"requests\.get", r"pretrained\s*=\s*True",
                     r"load_state_dict_from_url", r"torch\.hub\.load", r"hf_hub_download"]


def ids(paths):
    return [p.relative_to(REPO).as_posix() for p in paths]


def code_of(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_notebook_is_valid_and_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells {dirty} have outputs: clear them before committing"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_notebook_is_portable_and_offline(path: Path):
    code = code_of(nbformat.read(path, as_version=4))
    shell_lines = [line for line in code.splitlines() if line.lstrip().startswith(("!", "%%bash", "%%sh", "%system"))]
    assert not shell_lines, f"shell commands do not run on every platform: {shell_lines}"
    for pattern in DOWNLOAD_PATTERNS:
        assert not re.search(pattern, code), f"downloads at run time ({pattern}) are not allowed"


@pytest.mark.parametrize("path", LESSONS + SOURCES, ids=ids(LESSONS + SOURCES))
def test_notebook_starts_with_the_environment_check(path: Path):
    first_code = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert "check_environment()" in first_code.source


@pytest.mark.parametrize("path", [p for p in LESSONS if not p.name.startswith("00_")],
                         ids=ids([p for p in LESSONS if not p.name.startswith("00_")]))
def test_lesson_follows_the_template(path: Path):
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    positions = [markdown.find(section) for section in TEMPLATE_SECTIONS]
    missing = [s for s, p in zip(TEMPLATE_SECTIONS, positions) if p < 0]
    assert not missing, f"missing sections: {missing}"
    assert positions == sorted(positions), "template sections are out of order"
    assert f'show_quiz("{path.stem}")' in code_of(nb), "the quiz section must show this lesson's quiz"
    exercise_cells = [c for c in nb.cells if "raises-exception" in c.metadata.get("tags", [])]
    assert exercise_cells, "a lesson needs exercises with checks"
    for cell in exercise_cells:
        assert "..." in cell.source and "check" in cell.source, f"exercise cell without placeholder or check:\n{cell.source}"


TOPIC_LESSONS = [p for p in LESSONS if not p.name.startswith("00_")]
MAX_MINUTES, MAX_PROSE_WORDS = 45, 2600
PREDICT = "**Predict, then run.**"


def _markdown_words(nb) -> int:
    return sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", TOPIC_LESSONS, ids=ids(TOPIC_LESSONS))
def test_lesson_is_one_sitting(path: Path):
    """docs/authoring.md: about 45 minutes for a beginner, stated at the top; prose under 2,600 words."""
    nb = nbformat.read(path, as_version=4)
    time = re.search(r"\*\*Time:\*\* about (\d+) minutes", nb.cells[0].source)
    assert time, "the first cell must state **Time:** about N minutes"
    assert int(time.group(1)) <= MAX_MINUTES, f"{time.group(1)} minutes: a lesson is one sitting (at most 45)"
    words = _markdown_words(nb)
    assert words < MAX_PROSE_WORDS, f"{words} words of prose: move what belongs to a later lesson there"


@pytest.mark.parametrize("path", TOPIC_LESSONS, ids=ids(TOPIC_LESSONS))
def test_lesson_asks_to_predict_then_run(path: Path):
    """2-4 prompts: the question, then a code cell that starts with a line for the student's guess."""
    cells = nbformat.read(path, as_version=4).cells
    prompts = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith(PREDICT)]
    assert 2 <= len(prompts) <= 4, f"{len(prompts)} '{PREDICT}' prompts: a lesson has 2-4"
    for i in prompts:
        follower = cells[i + 1] if i + 1 < len(cells) else None
        assert follower is not None and follower.cell_type == "code" and \
            follower.source.startswith("# Your prediction:"), \
            f"the cell after prompt {cells[i].source[:60]!r} must be code starting with '# Your prediction:'"


@pytest.mark.parametrize("path", TOPIC_LESSONS, ids=ids(TOPIC_LESSONS))
def test_each_exercise_has_its_own_collapsed_solution(path: Path):
    """Right after each exercise cell: a hidden solution of that exercise only (never one cell for all)."""
    nb = nbformat.read(path, as_version=4)
    assert "## Solutions to the exercises" not in "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    exercises = [i for i, c in enumerate(nb.cells) if "raises-exception" in c.metadata.get("tags", [])]
    for number, i in enumerate(exercises, start=1):
        solution = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        assert solution is not None and solution.cell_type == "code", f"exercise {number} has no solution cell after it"
        assert solution.metadata.get("jupyter", {}).get("source_hidden"), f"solution {number} is not collapsed"
        assert solution.source.startswith(f"# Solution to Exercise {number} (try first!)"), solution.source[:80]
        assert "..." not in solution.source.replace("# Solution", ""), f"solution {number} still has a `...`"
    hidden = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("jupyter", {}).get("source_hidden")]
    assert len(hidden) == len(exercises), "every collapsed code cell is one exercise's solution"


@pytest.mark.parametrize("path", SOURCES, ids=ids(SOURCES))
def test_assignment_states_its_total_and_has_hidden_tests(path: Path):
    nb = nbformat.read(path, as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    points = [c.metadata["nbgrader"]["points"] for c in graded]   # test cells and written answers
    assert 3 <= len(points) <= 11
    total = re.search(r"\*\*Total: (\d+) points\*\*", nb.cells[0].source)
    assert total, "the first cell must state **Total: N points**"
    assert int(total.group(1)) == sum(points), f"stated total {total.group(1)} != sum of cell points {sum(points)}"
    for cell in graded:  # a written answer says it is graded by a person, and for how many points
        if cell.cell_type == "markdown":
            question = nb.cells[nb.cells.index(cell) - 1].source
            assert "graded by a person" in question and f"{cell.metadata.nbgrader['points']} points" in question
    tests = [c.source for c in graded if c.cell_type == "code"]
    assert all("### BEGIN HIDDEN TESTS" in t for t in tests), "every test cell needs hidden tests"
    quiz_answers = re.findall(r"^q\d+_answer\s*=", code_of(nb), flags=re.M)
    assert 1 <= len(quiz_answers) <= 2, "1-2 graded quiz questions per assignment"


def test_every_lesson_has_an_assignment_and_a_release():
    lessons = {p.stem for p in LESSONS if not p.name.startswith("00_")}
    assignments = {p.parent.name for p in SOURCES}
    releases = {p.parent.name for p in RELEASES}
    assert lessons <= assignments, f"lessons without an assignment: {lessons - assignments}"
    assert assignments == releases, "every source/ assignment needs its generated release/ (and no other)"


@pytest.mark.parametrize("path", SOURCES, ids=ids(SOURCES))
def test_test_cells_do_not_end_with_a_value(path: Path):
    """nbgrader reads a test cell's last value as a partial-credit score (and may treat
    other values as errors in future releases): test cells end with a statement, print(),
    or a check (checks return None)."""
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("grade") and cell.cell_type == "code"):
            continue
        for variant in (cell.source, cell.source.split("### BEGIN HIDDEN TESTS")[0]):
            body = ast.parse(variant).body
            last = body[-1] if body else None
            called = getattr(last.value, "func", None) if isinstance(last, ast.Expr) else None
            name = getattr(called, "id", getattr(called, "attr", ""))
            is_value = isinstance(last, ast.Expr) and not (name == "print" or name.startswith("check"))
            assert not is_value, f"{meta['grade_id']} ends with the value of `{ast.unparse(last)[:60]}`"


# Relative links ([text](path) and [text](path#anchor)) in notebooks' markdown and in the docs.
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_DOCS = sorted(REPO.glob("*.md")) + sorted((REPO / "docs").glob("*.md"))


def _markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    return path.read_text()


@pytest.mark.parametrize("path", ALL + _DOCS, ids=ids(ALL + _DOCS))
def test_relative_links_point_at_files_that_exist(path: Path):
    broken = []
    for target in _LINK.findall(_markdown_of(path)):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or an anchor in the same file
        file = target.split("#")[0]
        if file and not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"links to files that do not exist: {broken}"


# Students never see the documents the topics come from: lessons, assignments and quizzes never
# mention them ("a tutorial you may find online" instead).
_SOURCE_MENTIONS = re.compile(r"source tutorials?|source documents?|\bseed's\b|\bseed \d{3}\b|\bthe seeds\b", re.I)
_QUIZZES = sorted((REPO / "helpers" / "lessons").glob("lesson_*/quiz.yaml"))


@pytest.mark.parametrize("path", ALL + _QUIZZES, ids=ids(ALL + _QUIZZES))
def test_student_text_never_mentions_the_source_documents(path: Path):
    text = _markdown_of(path) if path.suffix == ".ipynb" else path.read_text()
    found = sorted({m.group(0) for m in _SOURCE_MENTIONS.finditer(text)})
    assert not found, f"student text mentions the course's source documents: {found}"


# One lesson, one id (docs/authoring.md): every file of lesson NN_topic carries its id.
LESSON_IDS = [p.stem for p in LESSONS if not p.name.startswith("00_")]


def _lesson_files(lesson: str) -> list[str]:
    return [f"course/{lesson}.ipynb", f"helpers/lessons/lesson_{lesson}/__init__.py",
            f"helpers/lessons/lesson_{lesson}/checks.py", f"helpers/lessons/lesson_{lesson}/quiz.yaml",
            f"source/{lesson}/{lesson}.ipynb", f"release/{lesson}/{lesson}.ipynb",
            f"tests/wrong_answers/lesson_{lesson}.py"]


@pytest.mark.parametrize("lesson", LESSON_IDS)
def test_every_file_of_a_lesson_carries_its_id(lesson: str):
    missing = [f for f in _lesson_files(lesson) if not (REPO / f).is_file()]
    assert not missing, f"lesson {lesson} lacks {missing} (docs/authoring.md, 'One lesson, one id')"


def test_no_file_names_a_lesson_that_does_not_exist():
    per_lesson = [*(REPO / "helpers" / "lessons").glob("lesson_*"), *(REPO / "source").iterdir(),
                  *(REPO / "release").iterdir(), *(REPO / "tests" / "wrong_answers").glob("lesson_*.py")]
    ids_named = {re.sub(r"^lesson_", "", p.name.removesuffix(".py")) for p in per_lesson if not p.name.startswith(".")}
    strays = sorted(ids_named - set(LESSON_IDS))
    assert not strays, f"files for lessons that have no course/NN_topic.ipynb: {strays}"
