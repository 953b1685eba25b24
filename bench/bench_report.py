"""Benchmark: what the HTML reports cost, against the run they report.

Runs the demo once (every profile and role, slow checks included unless ``--fast``) into a
scratch directory; then, from its combined JSON report, renders every run's page and the
matrix again ``--rounds`` times and takes the median. The baseline is the demo's own wall
time, measured in the same run: the ratio says how much of a reported run the reports add.
Where headless Chromium is installed, it also loads the matrix and the largest run's page
and reads the browser's own timing (navigation start to the load event's end).

    python bench/bench_report.py [--rounds 5] [--fast]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance._engine.html import render_matrix, render_report

ROLES = ("receiver", "sender", "management")


def _browser_ms(pages: list[Path]) -> dict[str, float] | None:
    """Chromium's load time of each page, in ms (``None`` without Chromium)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        timings = {}
        for page in pages:
            samples = []
            for _ in range(3):
                driver.get(page.as_uri())
                samples.append(
                    driver.execute_script(
                        "const t = performance.getEntriesByType('navigation')[0];"
                        "return t.loadEventEnd - t.startTime;"
                    )
                )
            timings[page.name] = statistics.median(samples)
        return timings
    finally:
        driver.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fast", action="store_true", help="the demo without slow checks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        report = Path(tmp) / "conformance-report.json"
        command = [sys.executable, "-m", "conformance._cli", "demo", "--report", str(report)]
        started = time.perf_counter()
        done = subprocess.run(
            command + (["--fast"] if args.fast else []),
            cwd=tmp, capture_output=True, text=True, check=False,
        )  # fmt: skip
        run_seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"the demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
        combined: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
        html = report.with_suffix(".html")
        pages = sorted(html.with_suffix("").glob("*.html"))
        matrix_bytes = html.stat().st_size
        page_bytes = [p.stat().st_size for p in pages]
        links = {(r["profile"], r["role"]): f"x/{r['profile']}-{r['role']}.html"
                 for r in combined["profiles"]}  # fmt: skip
        meta = {**combined, "date": "-", "version": "-"}
        rounds = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            for run in combined["profiles"]:
                render_report(run)
            each = time.perf_counter() - began
            render_matrix(meta, roles=ROLES, pages=links, took=run_seconds)
            rounds.append((each, time.perf_counter() - began - each))
        pages_s = statistics.median(r[0] for r in rounds)
        matrix_s = statistics.median(r[1] for r in rounds)
        largest = max(pages, key=lambda p: p.stat().st_size)
        browser = _browser_ms([html, largest])
    print(f"demo run (the baseline):  {run_seconds:.1f} s, {len(pages)} suite runs")
    print(f"matrix page:              {matrix_bytes / 1024:.0f} KiB, rendered in "
          f"{matrix_s * 1000:.1f} ms")  # fmt: skip
    print(f"run pages:                {sum(page_bytes) / 1024:.0f} KiB in all (largest "
          f"{max(page_bytes) / 1024:.0f} KiB, {largest.name}), rendered in "
          f"{pages_s * 1000:.1f} ms in all")  # fmt: skip
    total = pages_s + matrix_s
    print(f"rendering / run:          {total / run_seconds:.5f} ({total * 1000:.0f} ms of "
          f"{run_seconds:.1f} s)")  # fmt: skip
    if browser is None:
        print("Chromium:                 not installed; browser timing skipped")
    else:
        for name, ms in browser.items():
            print(f"Chromium load:            {name}: {ms:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
