"""The suite against deliberately broken receivers: each defect is caught by the check named
for it, and graded by the requirement's level."""

from __future__ import annotations

import json

# pytester's in-process runs drop the modules first imported during them, and a second
# import goes wrong: httpx keeps the exception classes of the first httpcore, and hypothesis
# re-imported under assertion rewriting trips a CPython AST error. Import them out here.
import httpcore  # noqa: F401
import hypothesis.internal.observability  # noqa: F401
import hypothesis_jsonschema  # noqa: F401
import pytest
from _toy_receiver import Defects, serve

from conformance import load_profile

pytest_plugins = ["pytester"]

SECRET = "whsec_checks"


#: One toy-receiver defect per case: the requirement whose check must catch it, and how.
CASES = [
    pytest.param(
        "zaits",
        Defects(ignore_signature=True),
        "receiver.rejects-bad-signature",
        "failed",
        (),
        id="accepts-any-signature",
    ),
    pytest.param(
        "zupertry",
        Defects(ignore_signature=True),
        "receiver.rejects-missing-signature",
        "failed",
        (),
        id="accepts-no-signature",
    ),
    pytest.param(
        "zta",
        Defects(ignore_signature=True),
        "receiver.rejects-tampered-body",
        "failed",
        (),
        id="accepts-tampered-body",
    ),
    pytest.param(
        "zaits",
        Defects(reserialize=True),
        "receiver.raw-body",
        "failed",
        (),
        id="verifies-reserialized-json",
    ),
    pytest.param(
        "zaits",
        Defects(reject_duplicates=True),
        "receiver.idempotent",
        "failed",
        (),
        id="refuses-duplicates",
    ),
    pytest.param(
        "zta",
        Defects(reject_unknown=True),
        "receiver.unknown-event",
        "failed",
        (),
        id="refuses-unknown-events",
    ),
    pytest.param(
        "zaits",
        Defects(crash_on_malformed=True),
        "receiver.malformed-body-4xx",
        "failed",
        (),
        id="crashes-on-malformed-json",
    ),
    pytest.param(
        "ztrace",
        Defects(strict_order=True),
        "receiver.out-of-order",
        "not-strict",
        (),
        id="insists-on-order",
    ),
    pytest.param(
        "zaits",
        Defects(limit=64 * 1024),
        "receiver.accepts-max-payload",
        "failed",
        (),
        id="limit-too-small",
    ),
    pytest.param(
        "zaits",
        Defects(accept_oversized=True),
        "receiver.rejects-oversized",
        "not-strict",
        (),
        id="no-size-limit",
    ),
    pytest.param(
        "zupertry",
        Defects(serial_delay=0.1),
        "receiver.responds-in-time",
        "failed",
        ("--timeout", "1"),
        id="slow-under-load",
    ),
    pytest.param(
        "ztrace",
        Defects(no_tolerance=True),
        "receiver.rejects-stale-timestamp",
        "failed",
        (),
        id="accepts-stale",
    ),
    pytest.param(
        "ztrace",
        Defects(no_tolerance=True),
        "receiver.rejects-future-timestamp",
        "failed",
        (),
        id="accepts-future",
    ),
    pytest.param(
        "ztrace",
        Defects(unbound_timestamp=True),
        "receiver.timestamp-is-signed",
        "failed",
        (),
        id="timestamp-not-signed",
    ),
    pytest.param(
        "zupertry",
        Defects(duplicate_body={"ok": True}),
        "receiver.duplicate-response",
        "not-strict",
        (),
        id="other-duplicate-body",
    ),
    pytest.param(
        "zta",
        Defects(rejection_status=403),
        "receiver.invalid-signature-401",
        "not-strict",
        (),
        id="403-for-bad-signature",
    ),
]


@pytest.mark.parametrize(
    ("profile", "defects", "key", "outcome", "extra"),
    CASES,
)
def test_defect_is_caught_by_its_check(
    pytester: pytest.Pytester,
    profile: str,
    defects: Defects,
    key: str,
    outcome: str,
    extra: tuple[str, ...],
) -> None:
    """The check for the requirement the defect breaks grades it; MUST fails the run."""
    loaded = load_profile(profile)
    with serve(loaded, SECRET, defects) as url:
        result = pytester.runpytest(
            "--target-url",
            url,
            "--profile",
            profile,
            "--secret",
            SECRET,
            "--conformance-report",
            "report.json",
            "-k",
            key.removeprefix("receiver."),
            *extra,
        )
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    graded = {r["id"]: r for r in report["requirements"]}
    entry = graded[f"{profile}.{key}"]
    assert entry["outcome"] == outcome, entry["message"]
    assert entry["cases"], "the check ran"
    expected = pytest.ExitCode.TESTS_FAILED if outcome == "failed" else pytest.ExitCode.OK
    assert result.ret == expected


def test_every_check_is_caught_by_some_one_defect_receiver() -> None:
    """Every registered check fails against at least one receiver with exactly the defect it
    targets: a toy-receiver case here, or a receiver of the broken corpus (tests/broken)."""
    from broken import EXPECTED_FAILURES

    from conformance.checks import CHECKS

    caught = {case.values[2] for case in CASES} | set().union(*EXPECTED_FAILURES.values())
    assert set(CHECKS.keys()) - caught == set()
