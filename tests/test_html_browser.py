"""The HTML reports as a person sees them: opened in headless Chromium (Debian's chromium and
chromedriver, which ``.ci/run`` installs), read through the browser's DOM.

Each page renders without a console error and runs no script; the text of every requirement
row is what the JSON report says; a failing row is open and shows its curl line; the
demo's matrix agrees with the combined report and its links lead to the rows they name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _reports import HOSTILE_BODY, Run, run_accepting_receiver

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Why .ci/run could not install the browser, when it could not.
WHY_NO_BROWSER = os.environ.get("WEBHOOK_CONFORMANCE_NO_BROWSER", "")

if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip(
        "headless Chromium is not installed (Debian's chromium and chromium-driver, which "
        f".ci/run installs with apt-get){': ' + WHY_NO_BROWSER if WHY_NO_BROWSER else ''}",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402 - only once the browser is known to be there
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.slow

#: The text of each requirement row's cells, in order, as the browser shows them.
_ROWS = """return Array.from(document.querySelectorAll('details.requirement > summary'))
  .map(s => Array.from(s.children).map(c => c.textContent));"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    # The machine's network is closed: without the background-networking flags Chromium
    # keeps trying to reach Google's services, and logs each refusal.
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", f"--user-data-dir={profile}",
        "--window-size=1280,1000",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_accepting_receiver(tmp_path_factory.mktemp("accepting"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The demo for one profile with all three roles: its matrix page and combined report."""
    workdir = tmp_path_factory.mktemp("demo")
    report = workdir / "out" / "report.json"
    command = [sys.executable, "-m", "conformance._cli", "demo", "--profile", "zta", "--fast",
               "--report", str(report)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return report.with_suffix(".html"), json.loads(report.read_text(encoding="utf-8"))


def _open(browser: webdriver.Chrome, page: Path) -> list[dict[str, Any]]:
    """Load the page; the console's errors and warnings while it rendered."""
    browser.get_log("browser")  # drain what an earlier page left
    browser.get(page.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    logs: list[dict[str, Any]] = browser.get_log("browser")
    return [entry for entry in logs if entry["level"] in ("SEVERE", "WARNING")]


def _pages(demo: tuple[Path, dict[str, Any]]) -> list[tuple[Path, dict[str, Any]]]:
    """Each run's page of the demo, with its JSON report."""
    matrix, combined = demo
    return [
        (matrix.with_suffix("") / f"{r['profile']}-{r['role']}.html", r)
        for r in combined["profiles"]
    ]


def _rows_match(browser: webdriver.Chrome, report: dict[str, Any]) -> None:
    rows = browser.execute_script(_ROWS)
    expected = [[r["id"], r["level"], r["outcome"], r["message"]] for r in report["requirements"]]
    assert rows == expected
    for summary in browser.find_elements(By.CSS_SELECTOR, "details.requirement > summary"):
        assert summary.is_displayed()


def test_the_failing_page_renders_without_console_errors(
    browser: webdriver.Chrome, failing: Run
) -> None:
    """No console error, no script: the body the target answered with did not run."""
    assert _open(browser, failing.html_path) == []
    assert browser.execute_script("return document.scripts.length") == 0
    assert browser.title.startswith("webhook-conformance: zta receiver: not conformant")


def test_the_failing_page_rows_match_the_json_report(
    browser: webdriver.Chrome, failing: Run
) -> None:
    _open(browser, failing.html_path)
    _rows_match(browser, failing.report())


def test_a_failing_row_shows_its_curl_line(browser: webdriver.Chrome, failing: Run) -> None:
    """Every failed requirement's row is open and shows, for each failed case, the exchange
    (the hostile answer as text) and the curl line that replays the request."""
    _open(browser, failing.html_path)
    failed = [r for r in failing.report()["requirements"] if r["outcome"] == "failed"]
    assert failed
    for requirement in failed:
        row = browser.find_element(By.ID, f"req-{requirement['id']}")
        assert row.get_attribute("open") is not None
        for case in requirement["cases"]:
            if case["outcome"] != "failed":
                continue
            block = browser.find_element(By.ID, f"case-{case['id']}")
            curl = block.find_element(By.CSS_SELECTOR, "pre.curl")
            assert curl.is_displayed()
            assert "curl -sS -i -X POST " in curl.text
            assert curl.text == case["reproduction"]["command"]
            exchange = block.find_element(By.CSS_SELECTOR, "pre.exchange")
            assert HOSTILE_BODY in exchange.text


def test_every_demo_page_renders_and_matches_its_report(
    browser: webdriver.Chrome, demo: tuple[Path, dict[str, Any]]
) -> None:
    """Each run's page: no console error, no script, its rows as its JSON report says; the
    sender page draws a visible timeline for every scenario."""
    pages = _pages(demo)
    assert sorted(r["role"] for _, r in pages) == ["management", "receiver", "sender"]
    for page, report in pages:
        assert _open(browser, page) == [], page
        assert browser.execute_script("return document.scripts.length") == 0
        _rows_match(browser, report)
        figures = browser.find_elements(By.CSS_SELECTOR, "#scenarios ~ figure.timeline svg")
        assert len(figures) == len(report["scenarios"])
        assert all(svg.is_displayed() and svg.size["width"] > 300 for svg in figures)
        if report["role"] == "sender":
            assert {t["scenario"] for t in report["scenarios"]} >= {"delivered", "exhausted"}


def test_the_matrix_matches_the_combined_report(
    browser: webdriver.Chrome, demo: tuple[Path, dict[str, Any]]
) -> None:
    """A cell per requirement of each run, with its outcome, linking to its row on the
    run's page; following a link lands on that row."""
    matrix, combined = demo
    assert _open(browser, matrix) == []
    assert browser.execute_script("return document.scripts.length") == 0
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('td[data-id]')).map(td => "
        "[td.dataset.id, td.dataset.outcome, td.textContent, td.querySelector('a').href])"
    )
    expected = {r["id"]: r["outcome"] for run in combined["profiles"] for r in run["requirements"]}
    symbols = {"passed": "\u2713", "failed": "\u2717", "not-strict": "!", "skipped": "\u2013"}
    assert {rid: outcome for rid, outcome, _, _ in cells} == expected
    assert all(text == symbols[outcome] for _, outcome, text, _ in cells)
    assert len(cells) == len(expected)
    rid, _, _, href = next(c for c in cells if ".sender." in c[0])
    assert href.endswith(f"/out/report/zta-sender.html#req-{rid}")
    assert _open(browser, matrix) == []
    browser.find_element(By.CSS_SELECTOR, f'td[data-id="{rid}"] a').click()
    assert browser.current_url == href
    assert browser.find_element(By.ID, f"req-{rid}").tag_name == "details"
