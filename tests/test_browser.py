"""Browser tests: JupyterLab in headless Chromium, driven by Playwright, as a student sees it.

Starts JupyterLab on 127.0.0.1 (free port, token) over a temporary copy of the course,
then: runs lesson 01 and answers a quiz question wrongly and rightly (options laid out with the
box on the first line, the static quiz hidden); opens a quiz exported by nbconvert; checks that a
Trainer progress bar renders as a widget; opens the released assignment 01 and uses
nbgrader's Validate button. Screenshots go to test-artifacts/browser/ (printed at the end).

Chromium comes from Debian's packages (`apt-get install chromium`), never from
`playwright install`. In CI (CI=true) a missing browser fails; elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from grading import free_port, stop_server
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from helpers.quiz import WIDGET_TEXT, available_quizzes, load_quiz

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = ("Chromium not found at /usr/bin/chromium. Install it with `sudo apt-get install chromium` "
                   "(Debian/Ubuntu), then run ./course.sh test again.")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium):
    """A JupyterLab server on a temporary copy of the course; yields (base_url, token, root)."""
    root = tmp_path_factory.mktemp("lab")
    for folder in ("course", "release"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "nbgrader_config.py", root)
    progress = nbformat.v4.new_notebook()
    progress.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    progress.cells = [nbformat.v4.new_code_cell(PROGRESS_NOTEBOOK_CODE)]
    nbformat.write(progress, root / "progress.ipynb")
    every_quiz = nbformat.v4.new_notebook()  # each lesson's quiz, drawn by the widgets (one notebook: one start-up)
    every_quiz.metadata["kernelspec"] = progress.metadata["kernelspec"]
    every_quiz.cells = [nbformat.v4.new_code_cell(f'from helpers.quiz import show_quiz\nshow_quiz("{name}")')
                        for name in available_quizzes()]
    nbformat.write(every_quiz, root / "every_quiz.ipynb")

    # No "get notified about Jupyter news?" toast over the screenshots.
    settings = root / ".lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = free_port(), "course-browser-test"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / ".lab-settings"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root; JupyterLab refuses root without it
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"JupyterLab did not start:\n{(root / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield base, token, root
    stop_server(server, timeout=15)
    log.close()


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    _screenshot(page, f"end-of-{request.node.name}")  # what the page showed last, pass or fail
    context.close()


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def _open_notebook(page, lab, relative: str) -> None:
    base, token, _ = lab
    # A workspace of its own (reset) per notebook: otherwise JupyterLab restores the tabs
    # that earlier tests opened, and their cells are found first.
    workspace = Path(relative).stem.replace(".", "-")
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{relative}?token={token}&reset")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", timeout=90_000)
    # Wait until the kernel is idle so that "Run All" is not lost while it starts.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)


def _run_all(page) -> None:
    # The status bar says "Python 3 (ipykernel) | Idle" once the kernel is connected.
    page.locator(".jp-StatusBar-Item", has_text="| Idle").first.wait_for(timeout=120_000)
    for attempt in range(3):  # a click that lands while JupyterLab is still busy starting can be lost
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first.click(position={"x": 5, "y": 5})
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:  # a cell gets an execution count such as [1] once the kernel runs the cells
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt')]"
                ".some(e => /\\[\\d+\\]/.test(e.textContent))", timeout=45_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def test_lesson_quiz_gives_feedback_for_wrong_then_right_answer(lab, page):
    _open_notebook(page, lab, "course/01_tensors.ipynb")
    _run_all(page)
    quiz = load_quiz("01_tensors")
    question = next(q for q in quiz.questions if q.type == "single")
    right = next(i for i, option in enumerate(question.options) if option.correct)
    wrong = next(i for i, option in enumerate(question.options) if not option.correct)

    box = page.locator(".quiz-question").first
    # JupyterLab 4 only lays out cells near the viewport, so wait for the widget to exist, then scroll to it.
    box.wait_for(state="attached", timeout=180_000)
    box.scroll_into_view_if_needed()
    options = box.locator(".quiz-option")
    choices = box.locator(".quiz-option input[type=checkbox]")
    feedback = box.locator(".quiz-feedback")
    score = page.locator(".quiz-score").first
    assert options.count() == len(question.options)
    page.set_viewport_size({"width": 1000, "height": 1000})  # a laptop's half screen: long options wrap
    box.scroll_into_view_if_needed()
    _assert_options_laid_out(options, question)
    # The static version of the same cell is there (for exports) but hidden while the widgets run.
    static = page.locator(".quiz-static-01_tensors")
    assert static.count() == 1 and not static.is_visible(), "the static quiz must not duplicate the widgets"
    _screenshot(page, "quiz-options")

    choices.nth(wrong).check()
    box.locator(".quiz-check button, button.quiz-check").first.click()
    page.wait_for_function("(el) => el.innerText.includes('Not quite')", arg=feedback.element_handle())
    wrong_text = feedback.inner_text()
    feedback.scroll_into_view_if_needed()  # the screenshot shows the options and the feedback
    _screenshot(page, "quiz-wrong-answer")
    assert "✘ Not quite" in wrong_text
    assert question.options[wrong].explanation.split()[0] in wrong_text

    choices.nth(right).check()  # a single-choice question: this unticks the wrong option
    # (The kernel unticks it and the front end hears back: wait for it, do not race it.)
    expect(choices.nth(wrong)).not_to_be_checked(timeout=15_000)
    box.locator(".quiz-check button, button.quiz-check").first.click()
    page.wait_for_function("(el) => el.innerText.includes('Correct')", arg=feedback.element_handle())
    right_text = feedback.inner_text()
    feedback.scroll_into_view_if_needed()  # the screenshot shows the options and the feedback
    _screenshot(page, "quiz-right-answer")
    assert "✔ Correct" in right_text
    assert "Score: 1 /" in score.inner_text()


def _assert_options_laid_out(options, question, must_wrap: bool = True) -> None:
    """Each option: its box at the start of the first line, the text (inline code as <code>) wrapping beside it."""
    wrapped = 0
    for index, option in enumerate(question.options):
        row = options.nth(index)
        text = row.locator("label > span")
        assert "`" not in text.inner_text(), f"raw backticks in option {index}: {text.inner_text()!r}"
        assert text.locator("code").count() == option.text.count("`") // 2, f"inline code in option {index}"
        box, label = row.locator("input").bounding_box(), text.bounding_box()
        line = float(text.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
        assert box["x"] + box["width"] <= label["x"], f"option {index}: the box is left of the text"
        middle = box["y"] + box["height"] / 2
        assert label["y"] <= middle <= label["y"] + line, \
            f"option {index}: the box sits on the first line of the text, not lower ({box}, {label}, {line})"
        wrapped += label["height"] > 1.5 * line
    assert wrapped >= 1 or not must_wrap, \
        "a long option wraps beside its box (none did: is the quiz too wide or the text cut?)"


def test_every_lesson_quiz_draws_its_options_properly(lab, page):
    """Every lesson's quiz (lesson 01's is taken apart above): each choice question's options have
    their box on the first line and inline code as <code>, and nothing breaks a widget."""
    _open_notebook(page, lab, "every_quiz.ipynb")
    _run_all(page)
    page.set_viewport_size({"width": 1000, "height": 1000})
    for name in available_quizzes():
        quiz = load_quiz(name)
        box = page.locator(f".quiz-{name}")
        box.wait_for(state="attached", timeout=180_000)
        box.scroll_into_view_if_needed()
        questions = box.locator(".quiz-question")
        assert questions.count() == len(quiz.questions), name
        for index, question in enumerate(quiz.questions):
            if question.type in ("single", "multiple"):
                row = questions.nth(index)
                row.scroll_into_view_if_needed()
                options = row.locator(".quiz-option")
                assert options.count() == len(question.options), f"{name}: question {index + 1}"
                _assert_options_laid_out(options, question, must_wrap=False)
    _screenshot(page, "every-quiz")


def test_quiz_static_html_export_in_chromium(browser, tmp_path):
    """The page nbconvert exports (lab template) shows the quiz's questions; answers open on a click."""
    from nbconvert import HTMLExporter

    quiz = load_quiz("01_tensors")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    widget_view = {"model_id": "0123456789abcdef", "version_major": 2, "version_minor": 0}
    notebook.cells = [nbformat.v4.new_code_cell('from helpers.quiz import show_quiz\nshow_quiz("01_tensors")', outputs=[
        # The two outputs show_quiz displays in a kernel (tests/test_quiz.py checks it does).
        nbformat.v4.new_output("display_data", data={"text/html": quiz.as_html(), "text/plain": quiz.as_text()}),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": widget_view,
                                                     "text/plain": WIDGET_TEXT})])]
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    path = tmp_path / "quiz.html"
    path.write_text(body, encoding="utf-8")

    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    page.route("http*://**", lambda route: route.abort())  # the template's CDN scripts: offline here
    try:
        page.goto(path.as_uri(), wait_until="domcontentloaded")
        static = page.locator(".quiz-static-01_tensors")
        assert static.is_visible()
        question = next(q for q in quiz.questions if q.type == "single")
        first = static.locator(".quiz-static-question").first
        assert "Question 1." in first.inner_text()
        assert first.locator(".quiz-static-options li").count() == len(question.options)
        explanation = first.locator("details li").first
        assert not explanation.is_visible(), "answers are folded away until the reader opens them"
        _screenshot(page, "quiz-static-export")
        first.locator("summary").click()
        assert explanation.is_visible()
        _screenshot(page, "quiz-static-export-answer-open")
    finally:
        context.close()


PROGRESS_NOTEBOOK_CODE = """\
import torch
from torch import nn
from helpers.trainer import Trainer

torch.manual_seed(0)
x, y = torch.randn(256, 4), torch.randint(0, 2, (256,))
batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
model = nn.Linear(4, 2)
trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), device="cpu")
history = trainer.fit(batches, epochs=2)
print("TRAINING DONE", len(history["train_loss"]))
"""


def test_trainer_progress_bar_renders_as_a_widget(lab, page):
    _open_notebook(page, lab, "progress.ipynb")
    _run_all(page)
    page.wait_for_selector("text=TRAINING DONE 2", timeout=120_000)
    bars = page.locator(".jp-OutputArea .widget-progress, .jp-OutputArea .progress")
    assert bars.count() >= 1, "tqdm.auto should render a widget progress bar in JupyterLab"
    _screenshot(page, "trainer-progress-bar")


def test_release_assignment_validates_with_nbgrader_button(lab, page):
    _open_notebook(page, lab, "release/01_tensors/01_tensors.ipynb")
    validate = page.locator("button.validate-button, .validate-button button").first
    validate.wait_for(timeout=60_000)
    _screenshot(page, "assignment-toolbar")
    validate.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=180_000)
    page.wait_for_function("() => !document.querySelector('.jp-Dialog').innerText.includes('Validating...')",
                           timeout=180_000)
    text = dialog.inner_text()
    _screenshot(page, "assignment-validate-result")
    assert "Validation Results" in text
    # The release has only stubs: validation must report failing cells, naming the stub's error.
    assert "NotImplementedError" in text or "failed" in text.lower(), text[:2000]
