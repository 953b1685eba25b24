"""The check registry: every checkable requirement has a check, every check a requirement,
and cases carry readable ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import list_profiles, load_profile
from conformance._engine.registry import Case, Registry, cases_for
from conformance._requirements import common_requirements
from conformance.checks.receiver import CHECKS

ROOT = Path(__file__).resolve().parents[1]
PROFILES = [load_profile(name) for name in list_profiles()] + [
    load_profile(path) for path in sorted((ROOT / "tests" / "profiles").glob("*.yaml"))
]
IMPLEMENTED_ROLES = ("receiver",)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_every_checkable_requirement_has_a_check(profile) -> None:
    """Each requirement of an implemented role that is verified by a check has one."""
    missing = [
        r.id
        for r in profile.requirements
        if r.role in IMPLEMENTED_ROLES and r.verification == "check" and r.key not in CHECKS
    ]
    assert missing == []


def test_every_check_has_a_requirement() -> None:
    """Each registered check's key is a requirement key in spec/ (common or a profile's)."""
    keys = {raw["key"] for raw in common_requirements()}
    keys |= {r.key for p in PROFILES for r in p.requirements}
    assert sorted(set(CHECKS.keys()) - keys) == []


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_case_ids_are_unique_and_carry_the_requirement(profile) -> None:
    """Test ids are distinct and start with the requirement id they check."""
    cases = cases_for(CHECKS, profile)
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
    assert all(c.id.startswith(c.requirement.id) for c in cases)
    assert {c.requirement.id for c in cases} == {
        r.id for r in profile.requirements if r.role == "receiver"
    }


def test_inspection_requirements_are_skipped_with_the_reason() -> None:
    """A requirement verified by inspection becomes one case that says why it is skipped."""
    cases = cases_for(CHECKS, load_profile("zaits"))
    [case] = [c for c in cases if c.requirement.key == "receiver.constant-time"]
    assert case.skip_reason == "verified by inspection: not observable from outside"
    assert case.id == "zaits.receiver.constant-time"


def test_cases_follow_the_profile() -> None:
    """Case names come from the profile: a prefix to remove or to add, timestamp cases."""

    def names(profile: str, key: str) -> list[str | None]:
        cases = cases_for(CHECKS, load_profile(profile))
        return [c.name for c in cases if c.requirement.key == key]

    assert names("zaits", "receiver.rejects-bad-signature") == [
        "empty",
        "not-hex",
        "wrong-secret",
        "truncated",
        "other-label",
        "no-label",
    ]
    assert names("zupertry", "receiver.rejects-bad-signature")[-1] == "added-label"
    assert names("ztrace", "receiver.rejects-missing-signature") == ["no-signature", "no-timestamp"]
    assert names("zaits", "receiver.rejects-missing-signature") == ["no-signature"]
    assert names("zaits", "receiver.idempotent") == [None]
    assert names("stripe", "receiver.signature-rotation") == [
        "unknown-key-first",
        "only-unknown-keys",
    ]
    assert names("github", "receiver.rejects-bad-signature")[-2:] == ["other-label", "no-label"]
    assert names("standard-webhooks", "receiver.id-is-signed") == [None]
    assert names("zupertry", "receiver.out-of-order") == []  # no event follows another
    assert names("zaits", "receiver.out-of-order") == ["document.completed-before-document.signed"]


def test_registry_refuses_a_second_check_for_a_key() -> None:
    """A key has exactly one check, aliases included, and only its role's keys."""
    registry = Registry("receiver")
    registry.register("receiver.x", also=("receiver.y",))(lambda target, case: None)
    with pytest.raises(ValueError, match=r"a check for 'receiver\.x' is already registered"):
        registry.register("receiver.x")(lambda target, case: None)
    with pytest.raises(ValueError, match=r"a check for 'receiver\.y' is already registered"):
        registry.register("receiver.z", also=("receiver.y",))(lambda target, case: None)
    with pytest.raises(ValueError, match=r"'sender\.x' is not a receiver requirement key"):
        registry.register("sender.x")
    assert "receiver.x" in registry
    assert "receiver.y" in registry
    assert registry.get("receiver.y") is registry.get("receiver.x")
    assert len(registry) == 1


def test_case_without_check_is_skipped() -> None:
    """A requirement nobody wrote a check for is skipped, naming its key."""
    registry = Registry("receiver")
    cases = cases_for(registry, load_profile("zaits"))
    assert all(isinstance(c, Case) and c.check is None for c in cases)
    assert cases[0].skip_reason == "no check is registered for receiver.accepts-valid"


def test_checks_public_api() -> None:
    """The checks package exports exactly its documented names."""
    from conformance import checks

    assert sorted(checks.__all__) == ["REGISTRIES", "registry_for"]
    assert sorted(checks.REGISTRIES) == ["management", "receiver", "sender"]
    assert "management.responses-match-schema" in checks.registry_for("management")
