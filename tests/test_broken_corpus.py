"""The conformance suite against the broken receivers in ``tests/broken``.

Three claims, each a test:

- every defect is caught by exactly the requirements expected for it, graded by their level,
  and every case of every check is caught by some defect (``test_corpus_under``);
- every check has a defect that it alone catches: the receiver with that defect fails this
  check and passes every other (``test_every_check_has_a_defect_only_it_catches``);
- so removing any check lets a defect through: with the check gutted to pass, its defect goes
  unnoticed (``test_gutting_a_check_lets_its_defect_through``, the mutation test).

The receivers are judged in this process, case by case, as the plugin's test judges them
(``broken._judge``); the unbroken control also runs through the plugin in a subprocess, as a
user would run it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _suite_runner import describe, run_suite, violations
from broken import (
    BROKEN,
    EXPECTED_FAILURES,
    SUITE_TIMEOUT,
    CorrectReceiver,
    applies,
    expected_for,
    secret_for,
)
from broken._judge import Verdicts, disabled, judge_receiver, replaced

from conformance import Profile, list_profiles, load_profile
from conformance._engine.registry import CheckFunction, cases_for
from conformance._engine.runner import Outcome
from conformance.checks._payloads import compact
from conformance.checks.receiver import CHECKS, Target
from reference import serve_in_thread

pytestmark = pytest.mark.slow


def _judge(defect: str | None, profile: Profile) -> Verdicts:
    secret = secret_for(profile)
    app = CorrectReceiver(profile, secret) if defect is None else BROKEN[defect](profile, secret)
    with serve_in_thread(app) as url:
        return judge_receiver(f"{url}/webhook", profile, secret, timeout=SUITE_TIMEOUT)


def guards(key: str) -> list[tuple[str, str]]:
    """The (defect, profile) pairs expected to fail ``key`` and nothing else, profiles with
    the smallest payload limit first (GitHub's 25 MB body makes a slow defect slower still)."""
    profiles = sorted(list_profiles(), key=lambda n: load_profile(n).limits.payload_bytes)
    return [
        (defect, name)
        for defect in BROKEN
        for name in profiles
        if expected_for(defect, load_profile(name)) == {key}
    ]


@pytest.mark.parametrize("profile_name", list_profiles())
def test_corpus_under(profile_name: str) -> None:
    """Under this profile, each defect that shows fails exactly its expected requirements
    (MUST as failed, SHOULD and MAY as not-strict), and every case of every check fails
    against at least one defect."""
    profile = load_profile(profile_name)
    problems: list[str] = []
    caught: set[tuple[str, str | None]] = set()
    for defect in BROKEN:
        if not applies(defect, profile):
            continue
        verdicts = _judge(defect, profile)
        violated = verdicts.violated()
        caught |= {(key, name) for key, names in violated.items() for name in names}
        expected = expected_for(defect, profile)
        if set(violated) != expected:
            problems.append(
                f"{defect}: missed {sorted(expected - set(violated))}, "
                f"unexpected {sorted(set(violated) - expected)}\n"
                + verdicts.describe(set(violated) ^ expected)
            )
        for key in expected & set(violated):
            level = profile.requirement(f"{profile_name}.{key}").level
            grade = Outcome.FAILED if level == "MUST" else Outcome.NOT_STRICT
            if verdicts.outcome(key) is not grade:
                problems.append(f"{defect}: {key} graded {verdicts.outcome(key).value}")
    runnable = [c for c in cases_for(CHECKS, profile) if c.skip_reason is None]
    uncaught = [c.id for c in runnable if (c.requirement.key, c.name) not in caught]
    if uncaught:
        problems.append(f"cases no defect fails: {', '.join(uncaught)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("profile_name", list_profiles())
def test_unbroken_control_passes(profile_name: str, tmp_path: Path) -> None:
    """The receiver the defects are cut from passes every requirement the suite checks, both
    judged here and through the plugin in a subprocess."""
    profile = load_profile(profile_name)
    verdicts = _judge(None, profile)
    assert verdicts.violated() == {}, verdicts.describe(set(verdicts.violated()))
    secret = secret_for(profile)
    with serve_in_thread(CorrectReceiver(profile, secret)) as url:
        results = run_suite(f"{url}/webhook", profile_name, secret, tmp_path, timeout=1.0)
    violated = set(violations(results))
    assert not violated, describe(results, violated)


def test_every_check_has_a_defect_only_it_catches() -> None:
    """For every registered check, some defect is expected to fail its requirement and no
    other (``test_corpus_under`` proves the expectation holds)."""
    assert [check.key for check in CHECKS if not guards(check.key)] == []


@pytest.mark.parametrize("key", CHECKS.keys())
def test_gutting_a_check_lets_its_defect_through(key: str) -> None:
    """With the check replaced by one that always passes, the defect only it catches is no
    longer noticed: the corpus depends on every check."""
    [(defect, profile_name), *_] = guards(key)
    profile = load_profile(profile_name)
    assert set(_judge(defect, profile).violated()) == {key}
    with disabled(key):
        assert _judge(defect, profile).violated() == {}


def _untampered_with_another_secret(target: Target, case: str | None) -> None:
    """``rejects-tampered-body`` weakened: the body is left alone, signed with a wrong key."""
    payload = target.example()
    body = compact(payload)
    headers = target.headers(body, payload, secret=target.other_secret())
    target.rejected(target.send(target.delivery(body, headers, note="another secret")))


def _stale_instead_of_future(target: Target, case: str | None) -> None:
    """``rejects-future-timestamp`` weakened: the timestamp sent is a stale one."""
    spec = target.profile.signature.timestamp
    assert spec is not None
    payload = target.example()
    body = compact(payload)
    moment = target.clock() - spec.tolerance_seconds - 60
    headers = target.headers(body, payload, timestamp=moment)
    target.rejected(target.send(target.delivery(body, headers, note="stale")))


@pytest.mark.parametrize(
    ("key", "mutant"),
    [
        ("receiver.rejects-tampered-body", _untampered_with_another_secret),
        ("receiver.rejects-future-timestamp", _stale_instead_of_future),
    ],
    ids=["tampered-body-as-wrong-secret", "future-timestamp-as-stale"],
)
def test_a_weakened_check_lets_its_defect_through(key: str, mutant: CheckFunction) -> None:
    """A check that still fails something, but no longer what its requirement names, misses
    the defect that only the real check catches."""
    missed = []
    for defect, profile_name in guards(key):
        profile = load_profile(profile_name)
        with replaced(key, mutant):
            missed.append(_judge(defect, profile).violated() == {})
    assert any(missed)


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
        assert any(applies(defect, load_profile(name)) for name in list_profiles()), defect
