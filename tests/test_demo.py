"""``webhook-conformance demo``: the reference receiver and sender judged by the suite, in a
subprocess so the demo's own pytest runs are independent of this one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance._cli import main

#: What the demo (and the plugin in the runs it makes) says it wrote: ``... written to PATH``,
#: and any absolute path elsewhere in the output (a URL's path is not one).
_WRITTEN = re.compile(r"\bwritten to (\S+?);?$", re.MULTILINE)
_ABSOLUTE = re.compile(r"(?<![\w.:/])/[\w.-]+(?:/[\w.-]+)+")


def printed_paths(output: str, cwd: Path) -> set[Path]:
    """Every file path in the demo's output, relative ones taken from ``cwd``."""
    return {cwd / path for path in (*_WRITTEN.findall(output), *_ABSOLUTE.findall(output))}


def test_demo_one_profile_fast(tmp_path: Path) -> None:
    """The demo runs the fast suite of both roles for one profile, exits 0 and writes the
    combined report, the matrix page and each run's page: the files it leaves, and the
    paths it prints, which exist after it exits."""
    report = tmp_path / "out" / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance._cli",
            "demo",
            "--profile",
            "zupertry",
            "--fast",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert set(data) == {"conformant", "summary", "profiles"}
    assert data["conformant"] is True
    receiver, sender = data["profiles"]
    assert [(r["profile"], r["role"], r["strict"]) for r in (receiver, sender)] == [
        ("zupertry", "receiver", False),
        ("zupertry", "sender", False),
    ]
    assert data["summary"] == {
        outcome: receiver["summary"][outcome] + sender["summary"][outcome]
        for outcome in data["summary"]
    }
    assert data["summary"]["failed"] == 0
    assert sender["summary"]["passed"] >= 10
    assert "passed   zupertry.receiver.raw-body: 4 cases passed" in done.stdout
    assert "passed   zupertry.sender.retry-schedule: 1 case passed" in done.stdout
    assert "zupertry sender " in done.stdout
    assert done.stdout.rstrip().endswith(
        f"report written to {report}; every MUST requirement passes"
    )
    html, pages = report.with_suffix(".html"), report.with_suffix("")
    assert f"HTML report written to {html} (" in done.stdout
    printed = printed_paths(done.stdout + done.stderr, tmp_path)
    assert printed == {report, html, pages}
    assert all(path.exists() for path in printed)
    run_pages = [pages / "zupertry-receiver.html", pages / "zupertry-sender.html"]
    # No .hypothesis/ either, nor any run's JSON report.
    assert sorted(tmp_path.rglob("*")) == sorted([report.parent, report, html, pages, *run_pages])
    matrix = html.read_text(encoding="utf-8")
    assert 'href="report/zupertry-sender.html#req-zupertry.sender.retry-schedule"' in matrix


def test_demo_unknown_profile(tmp_path: Path) -> None:
    """An unknown profile is a one-line error before any server starts."""
    done = subprocess.run(
        [sys.executable, "-m", "conformance._cli", "demo", "--profile", "nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("webhook-conformance: error: unknown profile 'nope'")
    assert not (tmp_path / "conformance-report.json").exists()


def test_demo_one_role(tmp_path: Path) -> None:
    """--role narrows the demo to one role's runs."""
    report = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "conformance._cli", "demo", "-p", "zta", "--role", "sender",
         "--fast", "--report", str(report)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["role"] for r in json.loads(report.read_text("utf-8"))["profiles"]] == ["sender"]


def test_report_path_that_is_a_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory as --report is refused before any suite runs, in one line, exit 2."""
    assert main(["demo", "--report", str(tmp_path)]) == 2
    assert f"--report {str(tmp_path)!r} is a directory" in capsys.readouterr().err


def test_html_paths_that_cannot_be_written_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--html naming a directory, or a file standing where the runs' pages go, is refused
    before any suite runs."""
    assert main(["demo", "--html", str(tmp_path)]) == 2
    assert f"--html {str(tmp_path)!r} is a directory" in capsys.readouterr().err
    (tmp_path / "m").write_text("", encoding="utf-8")
    assert main(["demo", "--html", str(tmp_path / "m.html")]) == 2
    assert "is a file; the runs' pages go in a directory there" in capsys.readouterr().err
