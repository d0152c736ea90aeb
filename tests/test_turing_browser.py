"""End to end in a real browser: Debian's Chromium driven by Playwright (never a downloaded browser).

A rater opens the page, starts, answers with clicks and with keys, sees feedback in the feedback
condition, reaches the thank-you screen; the report then matches what was clicked. A screenshot of
the rating page is saved under ``test-artifacts/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from turing_support import LiveServer, db_rows, make_study

from improved_gan.evaluation import write_report

CHROMIUM = os.environ.get("IMPROVED_GAN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# CI sets IMPROVED_GAN_REQUIRE_BROWSER=1: there a missing browser is a failure, not a skip.
REQUIRED = os.environ.get("IMPROVED_GAN_REQUIRE_BROWSER") == "1"
if REQUIRED:
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")
pytestmark = pytest.mark.skipif(
    not REQUIRED and not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium); browsers are never downloaded",
)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 900, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.problems = problems
    yield page
    context.close()


def current_truth(db_path: Path, page) -> str:
    token = page.input_value("#trial")
    rows = db_rows(
        db_path,
        "SELECT i.is_real FROM trials t JOIN images i ON i.id = t.image_id WHERE t.token = ?",
        (token,),
    )
    return "real" if rows[0][0] else "fake"


def wait_for_image(page, position: int) -> None:
    page.wait_for_function(
        "p => document.getElementById('position').textContent === String(p)"
        " && !document.querySelector('#answer-real').disabled && document.getElementById('sample').complete",
        arg=position,
    )


def test_rater_answers_with_clicks_and_keys_and_the_report_matches(tmp_path, page):
    db_path = make_study(tmp_path, n=20)
    plan = [
        "click-real",
        "key-g",
        "click-fake",
        "key-r",
        "key-ArrowRight",
        "key-ArrowLeft",
        "click-real",
        "key-f",
    ]
    with LiveServer(db_path, per_rater=len(plan)) as server:
        page.goto(server.url + "/")
        page.fill("#name", "Playwright")
        page.fill("#worker-id", "PW-1")
        page.click("#start")
        page.wait_for_url("**/rate")
        given = []
        for position, step in enumerate(plan, start=1):
            wait_for_image(page, position)
            assert page.locator("#progress").inner_text() == f"{position} / {len(plan)}"
            assert page.locator("#feedback").count() == 0  # no feedback in this condition
            if position == 2:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "turing_page.png"))
                size = page.eval_on_selector("#sample", "img => [img.naturalWidth, img.clientWidth]")
                assert size == [28, 448]  # drawn 16× larger...
                assert (
                    page.eval_on_selector("#sample", "img => getComputedStyle(img).imageRendering")
                    == "pixelated"
                )
            kind, what = step.split("-", 1)
            if kind == "click":
                page.click(f"#answer-{what}")
                given.append(what)
            else:
                page.keyboard.press(what if what.startswith("Arrow") else what)
                given.append("real" if what in ("r", "ArrowLeft") else "fake")
        page.wait_for_url("**/done")
        assert page.locator("#thanks").inner_text() == "Thank you!"
        code = page.locator("#completion-code").inner_text()
    assert page.problems == []
    rows = db_rows(
        db_path,
        "SELECT a.position, a.answer, a.truth, a.correct, a.client_latency_ms, s.completion_code"
        " FROM answers a JOIN sessions s ON s.id = a.session_id ORDER BY a.position",
    )
    assert [r[1] for r in rows] == given and [r[0] for r in rows] == list(range(len(plan)))
    assert all(r[4] is not None for r in rows) and rows[0][5] == code
    report = write_report(db_path, tmp_path / "report").report
    (rater,) = report.raters_table
    assert (rater.rater, rater.worker_id) == ("Playwright", "PW-1")
    assert rater.accuracy.k == sum(r[2] == answer for r, answer in zip(rows, given)) and rater.accuracy.n == 8


def test_feedback_condition_tells_the_rater_after_each_answer(tmp_path, page):
    db_path = make_study(tmp_path, n=20)
    with LiveServer(db_path, per_rater=6, feedback="on", feedback_delay_ms=150) as server:
        page.goto(server.url + "/")
        page.click("#start")
        right = 0
        for position in range(1, 7):
            wait_for_image(page, position)
            truth = current_truth(db_path, page)
            answer = "real" if position % 2 else "fake"
            if position % 3:
                page.click(f"#answer-{answer}")
            else:
                page.keyboard.press("r" if answer == "real" else "g")
            correct = answer == truth
            right += correct
            shown = "real" if truth == "real" else "generated"
            expected = f"{'Right' if correct else 'Wrong'}: the image you just rated was {shown}."
            page.wait_for_function("t => document.getElementById('feedback').textContent === t", arg=expected)
            assert page.locator("#feedback").is_visible()
            if position == 3:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "turing_feedback.png"))
        page.wait_for_url("**/done")
        assert f"You were right on {right} of them." in page.locator("main").inner_text()
        page.goto(server.url + "/rate")  # a finished rater cannot rate again
        assert page.url.endswith("/done")
    assert page.problems == []
    assert db_rows(db_path, "SELECT COUNT(*), SUM(correct), MIN(feedback) FROM answers") == [(6, right, 1)]


def test_reload_mid_study_resumes_at_the_same_image(tmp_path, page):
    db_path = make_study(tmp_path, n=20)
    with LiveServer(db_path, per_rater=4) as server:
        page.goto(server.url + "/")
        page.click("#start")
        wait_for_image(page, 1)
        page.click("#answer-real")
        wait_for_image(page, 2)
        token = page.input_value("#trial")
        page.reload()
        wait_for_image(page, 2)
        assert page.input_value("#trial") == token
    assert page.problems == []
