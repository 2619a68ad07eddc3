"""Browser tests: JupyterLab in headless Chromium, driven by Playwright, as a student sees it.

Starts JupyterLab on 127.0.0.1 (free port, token) over a temporary copy of the course,
then: runs lesson 01 and answers a quiz question wrongly and rightly; checks that a
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

from helpers.quiz import load_quiz

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
    radios = box.locator("input[type=radio]")
    feedback = box.locator(".quiz-feedback")
    score = page.locator(".quiz-score").first

    radios.nth(wrong).check()
    box.locator(".quiz-check button, button.quiz-check").first.click()
    page.wait_for_function("(el) => el.innerText.includes('Not quite')", arg=feedback.element_handle())
    wrong_text = feedback.inner_text()
    _screenshot(page, "quiz-wrong-answer")
    assert "✘ Not quite" in wrong_text
    assert question.options[wrong].explanation.split()[0] in wrong_text

    radios.nth(right).check()
    box.locator(".quiz-check button, button.quiz-check").first.click()
    page.wait_for_function("(el) => el.innerText.includes('Correct')", arg=feedback.element_handle())
    right_text = feedback.inner_text()
    _screenshot(page, "quiz-right-answer")
    assert "✔ Correct" in right_text
    assert "Score: 1 /" in score.inner_text()


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
