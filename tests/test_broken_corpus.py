"""The conformance suite run against the broken receivers in ``tests/broken``: each defect is
caught by exactly the requirements expected for it, and the unbroken control passes.

Each case serves a receiver on loopback and runs the suite in a subprocess, exactly as a user
would (``pytest --target-url=... --profile=... --conformance-report=FILE``), then reads the JSON
report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _suite_runner import describe, run_suite, violations
from broken import BROKEN, EXPECTED_FAILURES, SUITE_TIMEOUT, CorrectReceiver, applies, expected_for
from starlette.types import ASGIApp

from conformance import list_profiles, load_profile
from reference import serve_in_thread

pytestmark = pytest.mark.slow

#: The ``whsec_`` prefix is what ``strips-secret-prefix`` mishandles.
SECRET = "whsec_broken-corpus-secret"


def _judge(app: ASGIApp, profile: str, workdir: Path) -> dict[str, dict[str, Any]]:
    with serve_in_thread(app) as url:
        return run_suite(f"{url}/webhook", profile, SECRET, workdir, timeout=SUITE_TIMEOUT)


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
    results = _judge(BROKEN[defect](profile, SECRET), profile_name, tmp_path)
    violated = set(violations(results))
    expected = expected_for(defect, profile)
    assert violated == expected, (
        f"missed:\n{describe(results, expected - violated)}\n"
        f"unexpected:\n{describe(results, violated - expected)}"
    )
    for key in expected:
        grade = "failed" if results[key]["level"] == "MUST" else "not-strict"
        assert results[key]["outcome"] == grade, key


@pytest.mark.parametrize("profile_name", list_profiles())
def test_unbroken_control_passes(profile_name: str, tmp_path: Path) -> None:
    """The receiver the defects are cut from passes every requirement the suite checks."""
    profile = load_profile(profile_name)
    results = _judge(CorrectReceiver(profile, SECRET), profile_name, tmp_path)
    violated = set(violations(results))
    assert not violated, describe(results, violated)


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
