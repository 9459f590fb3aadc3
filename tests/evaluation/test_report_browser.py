"""report.html in a real browser: headless Chromium (Debian's /usr/bin/chromium) through playwright.

Every image must decode, the leaderboard table must be there and the console must stay free of
errors; the summary and each model's findings box must be shown as text. A full-page screenshot is
kept as a test artefact in test-artifacts/ (gitignored). Playwright starts Chromium headless with a
fresh temporary profile (--user-data-dir) each time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from textclf.compare import CompareSettings, compare

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").is_file():
        path = "/usr/bin/chromium"
    if path is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from tests.conftest import write_corpus

    root = tmp_path_factory.mktemp("browser")
    train = write_corpus(root / "train.csv", n_per_class=40)
    test = write_corpus(root / "test.csv", n_per_class=10, seed=1)
    # A text that must be escaped, not interpreted, by the page.
    test.write_text(test.read_text() + '"<script>console.error(1)</script> <b>furious</b> rage",anger\n')
    settings = CompareSettings(data=str(train), test=str(test), models=("fasttext", "cnn"), seeds=1,
                               overrides=("train.epochs=2", "model.embedding_dim=16", "cnn:model.num_filters=8"))
    compare(settings, root / "compare", rounds=200)
    return root / "compare" / "report.html"


def test_report_renders_in_headless_chromium(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report_browser.png"
    console_errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            page.goto(report.as_uri(), wait_until="load")
            widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
            leaderboard_rows = page.locator("table#leaderboard tbody tr").count()
            leaderboard_text = page.locator("table#leaderboard").inner_text()
            scripts = page.locator("script").count()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"screenshot: {screenshot}")
    # 1 lengths + 1 per-class F1 + per model (2): curves and confusion.
    assert len(widths) == 6 and all(width > 0 for width in widths), widths
    assert leaderboard_rows == 2 and "fasttext" in leaderboard_text and "cnn" in leaderboard_text
    assert console_errors == []
    assert scripts == 0  # the text with a <script> tag is escaped wherever it is shown, never run
    assert screenshot.stat().st_size > 10_000


def _visible_text(report: Path, selectors: list[str]) -> dict[str, Any]:
    """{selector: its visible text, or None when it is not shown} in headless Chromium."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report.as_uri(), wait_until="load")
            return {s: page.locator(s).inner_text() if page.locator(s).is_visible() else None for s in selectors}
        finally:
            browser.close()


def test_summary_and_findings_boxes_are_shown(report):
    board = json.loads((report.parent / "results.json").read_text())["leaderboard"]
    rows = {row["model"]: row for row in board["rows"]}
    shown = _visible_text(report, ["#summary", "#findings-fasttext", "#findings-cnn"])
    summary = shown["#summary"]
    assert summary is not None and summary.startswith("Summary")
    assert f"Best: {board['best']}, accuracy" in summary
    assert f"Lead over the next model, {board['rows'][1]['model']}:" in summary
    assert ("not clearly better" in summary) != board["summary"]["clearly_better"]
    assert "Doctor: " in summary
    found = 0
    for name in ("fasttext", "cnn"):
        box = shown[f"#findings-{name}"]
        assert box is not None and box.startswith("Doctor")
        for finding in rows[name]["findings"]:
            assert f"{finding['code']} ({finding['severity']}) on {finding['runs']} of 1 seed" in box
            assert f"Advice: {finding['fix']}" in box
            found += 1
        if not rows[name]["findings"]:
            assert "No findings on its 1 seed." in box
    assert found > 0  # these tiny two-epoch runs give the doctor something to say
