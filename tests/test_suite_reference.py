"""The whole receiver suite, slow checks included, against the reference receiver for every
bundled profile and for the anchor profiles in tests/profiles: every requirement passes,
except the one verified by inspection."""

from __future__ import annotations

import json
from pathlib import Path

# pytester's in-process runs drop the modules first imported during them, and a second
# import goes wrong: httpx keeps the exception classes of the first httpcore, and hypothesis
# re-imported under assertion rewriting trips a CPython AST error. Import them out here.
import httpcore  # noqa: F401
import hypothesis.internal.observability  # noqa: F401
import hypothesis_jsonschema  # noqa: F401
import pytest
from _suite_runner import fixed_secret

from conformance import Profile, list_profiles, load_profile
from reference import create_app, serve_in_thread

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PROFILES = [pytest.param(name, id=name) for name in list_profiles()] + [
    pytest.param(str(path), id=path.stem)
    for path in sorted((ROOT / "tests/profiles").glob("*.yaml"))
]


def _secret(profile: Profile) -> str:
    return fixed_secret(profile, "reference-suite-secret!!")


@pytest.mark.parametrize("name", PROFILES)
def test_reference_conforms(pytester: pytest.Pytester, tmp_path: Path, name: str) -> None:
    """The reference receiver passes every receiver requirement of the profile."""
    profile = load_profile(name)
    secret = _secret(profile)
    app = create_app(profile, secret, db_path=tmp_path / "events.sqlite3")
    with serve_in_thread(app) as base:
        result = pytester.runpytest(
            "--target-url",
            f"{base}/webhook",
            "--profile",
            name,
            "--secret",
            secret,
            "--conformance-report",
            "report.json",
        )
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    not_passed = {r["id"]: r["message"] for r in report["requirements"] if r["outcome"] != "passed"}
    inspected = {
        r.id: "verified by inspection: not observable from outside"
        for r in profile.requirements
        if r.role == "receiver" and r.verification == "inspection"
    }
    assert f"{profile.name}.receiver.constant-time" in inspected
    assert not_passed == inspected
    assert result.ret == pytest.ExitCode.OK
