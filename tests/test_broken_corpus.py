"""The conformance suite run against the broken receivers in ``tests/broken``: each defect is
caught by exactly the requirements expected for it, and the unbroken control passes.

Each case serves a receiver on loopback and runs the suite in a subprocess, exactly as a user
would (``pytest --target-url=... --profile=... --conformance-report=FILE``), then reads the JSON
report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from broken import BROKEN, EXPECTED_FAILURES, SUITE_TIMEOUT, CorrectReceiver, applies, expected_for
from starlette.types import ASGIApp

from conformance import list_profiles, load_profile
from reference import serve_in_thread

pytestmark = pytest.mark.slow

#: The ``whsec_`` prefix is what ``strips-secret-prefix`` mishandles.
SECRET = "whsec_broken-corpus-secret"
VIOLATED = {"failed", "not-strict"}


def run_suite(app: ASGIApp, profile: str, workdir: Path) -> dict[str, dict[str, Any]]:
    """The suite's report on ``app``, one entry per requirement key."""
    report = workdir / "report.json"
    with serve_in_thread(app) as url:
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--target-url={url}/webhook",
            f"--profile={profile}",
            "--role=receiver",
            f"--secret={SECRET}",
            f"--conformance-timeout={SUITE_TIMEOUT}",
            f"--conformance-report={report}",
        ]
        result = subprocess.run(
            command, cwd=workdir, capture_output=True, text=True, timeout=300, check=False
        )
    if not report.is_file():
        pytest.fail(
            f"the suite wrote no report (exit {result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    entries = json.loads(report.read_text(encoding="utf-8"))["requirements"]
    return {entry["id"].removeprefix(f"{profile}."): entry for entry in entries}


def _describe(results: dict[str, dict[str, Any]], keys: set[str]) -> str:
    return "\n".join(
        f"  {key}: {results[key]['outcome']}: {results[key].get('message', '')[:600]}"
        for key in sorted(keys)
    )


CASES = [
    pytest.param(defect, name, id=f"{defect}-{name}")
    for defect in BROKEN
    for name in list_profiles()
    if applies(defect, load_profile(name))
]


@pytest.mark.parametrize(("defect", "profile_name"), CASES)
def test_defect_is_caught_by_its_requirements(
    defect: str, profile_name: str, tmp_path: Path
) -> None:
    """The suite fails exactly the requirements expected for the defect (MUST as failed,
    SHOULD as not-strict), and nothing else."""
    profile = load_profile(profile_name)
    results = run_suite(BROKEN[defect](profile, SECRET), profile_name, tmp_path)
    violated = {key for key, entry in results.items() if entry["outcome"] in VIOLATED}
    expected = expected_for(defect, profile)
    assert violated == expected, (
        f"missed:\n{_describe(results, expected - violated)}\n"
        f"unexpected:\n{_describe(results, violated - expected)}"
    )
    for key in expected:
        grade = "failed" if results[key]["level"] == "MUST" else "not-strict"
        assert results[key]["outcome"] == grade, key


@pytest.mark.parametrize("profile_name", list_profiles())
def test_unbroken_control_passes(profile_name: str, tmp_path: Path) -> None:
    """The receiver the defects are cut from passes every requirement the suite checks."""
    profile = load_profile(profile_name)
    results = run_suite(CorrectReceiver(profile, SECRET), profile_name, tmp_path)
    violated = {key for key, entry in results.items() if entry["outcome"] in VIOLATED}
    assert not violated, _describe(results, violated)


def test_every_expected_key_is_a_receiver_requirement() -> None:
    """Every defect has expectations, and each expected key is a receiver requirement of
    some profile (a misspelt key would otherwise never be expected anywhere)."""
    known = {
        r.key
        for name in list_profiles()
        for r in load_profile(name).requirements
        if r.role == "receiver"
    }
    assert set(EXPECTED_FAILURES) == set(BROKEN)
    for defect, keys in EXPECTED_FAILURES.items():
        assert keys, defect
        assert keys <= known, (defect, keys - known)
