"""The bundled profiles: they load, say what their documents say, and record their decisions.

Broken copies of a profile, written to a temporary folder, must be refused with a
``ProfileError`` whose message names the problem.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import ProfileError, list_profiles, load_profile
from conformance._requirements import common_requirements
from conformance._resources import spec_dir

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
EVENT_COUNTS = {"zaits": 9, "zta": 5, "ztrace": 8, "zupertry": 2}
# The questions each document leaves open or answers twice; each needs a recorded decision.
DECISION_TOPICS = {
    "zaits": {"attempt-count", "payload-size", "redirects"},
    "zta": {
        "signed-bytes",
        "secret-in-list",
        "attempt-count",
        "retried-outcomes",
        "connection-errors",
        "payload-size",
        "auto-disable",
        "idempotency-key",
        "timing-safe-equal-length",
    },
    "ztrace": {
        "attempt-count",
        "timestamp-format",
        "timestamp-tolerance",
        "auto-disable",
        "idempotency-key",
        "secret-fields",
        "management-scope",
        "payload-size",
    },
    "zupertry": {
        "webhook-url-precedence",
        "attempt-count",
        "idempotency-key",
        "duplicate-response",
        "required-fields",
        "timing-safe-equal-length",
        "payload-size",
    },
}
# Decisions that settle a contradiction quote both of its sides.
CONTRADICTIONS = {
    "zta": {"signed-bytes", "secret-in-list", "attempt-count"},
    "ztrace": {"secret-fields"},
    "zupertry": {"attempt-count", "timing-safe-equal-length"},
}


@pytest.mark.parametrize("name", list_profiles())
def test_bundled_profile_loads(name: str) -> None:
    """Every bundled profile validates against the meta-schema and loads by name."""
    assert load_profile(name).name == name


def test_seed_providers_are_bundled() -> None:
    """Each of the four seed providers has a bundled profile."""
    assert set(EVENT_COUNTS) <= set(list_profiles())


@pytest.mark.parametrize(("name", "count"), EVENT_COUNTS.items())
def test_event_count(name: str, count: int) -> None:
    """Each profile catalogues as many events as its document lists."""
    assert len(load_profile(name).events) == count


@pytest.mark.parametrize(("name", "topics"), DECISION_TOPICS.items())
def test_profile_records_decisions(name: str, topics: set[str]) -> None:
    """Each profile records a decision for every open or contradictory point of its document."""
    recorded = [d.topic for d in load_profile(name).decisions]
    assert len(recorded) == len(set(recorded))
    assert topics <= set(recorded)


@pytest.mark.parametrize(("name", "topics"), CONTRADICTIONS.items())
def test_contradictions_quote_both_sides(name: str, topics: set[str]) -> None:
    """A decision that settles a contradiction quotes both sides, in `quote` and `also`."""
    decisions = {d.topic: d for d in load_profile(name).decisions}
    for topic in topics:
        assert decisions[topic].also, topic


@pytest.mark.parametrize("name", list_profiles())
def test_requirement_ids_unique_and_prefixed(name: str) -> None:
    """Requirement ids are unique, start with the profile's name, and then name their role."""
    requirements = load_profile(name).requirements
    ids = [r.id for r in requirements]
    assert len(ids) == len(set(ids))
    for requirement in requirements:
        profile_part, role_part, _ = requirement.id.split(".", 2)
        assert (profile_part, role_part) == (name, requirement.role), requirement.id


def _normalise(text: str) -> str:
    """Markdown emphasis dropped and whitespace runs collapsed, as a reader sees the text."""
    return re.sub(r"\s+", " ", text.replace("**", "")).strip()


def _is_verbatim(quote: str, document: str) -> bool:
    """Whether the quote's pieces (split at " ... ") occur in the document, in order."""
    position = 0
    for piece in _normalise(quote).split(" ... "):
        found = document.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def _quotes(name: str) -> list[tuple[str, str, str]]:
    """(label, quote, document) for every quote a profile attributes to a seed document."""
    profile = load_profile(name)
    found = []
    for decision in profile.decisions:
        # A parenthesised quote is an editor's note that the document is silent.
        if not (decision.quote.startswith("(") and decision.quote.endswith(")")):
            found.append((f"decision {decision.topic}", decision.quote, profile.document))
        if decision.also:
            found.append((f"decision {decision.topic} (also)", decision.also, profile.document))
    for requirement in profile.requirements:
        if requirement.source.document:
            found.append((requirement.id, requirement.source.quote, requirement.source.document))
    return found


#: Profiles read from a seed document; the public ones (Stripe, GitHub, Standard Webhooks)
#: cite web documents, whose quotes were checked against stored copies when written.
SEED_PROFILES = [n for n in list_profiles() if not load_profile(n).document.startswith("http")]


@pytest.mark.parametrize("name", SEED_PROFILES)
def test_quotes_are_verbatim(name: str) -> None:
    """Every quote a profile attributes to a seed document is that document's own text."""
    if not SEEDS.is_dir():
        pytest.skip(f"seed documents not available at {SEEDS}")
    missing = []
    for label, quote, document in _quotes(name):
        text = _normalise((SEEDS / document).read_text(encoding="utf-8"))
        if not _is_verbatim(quote, text):
            missing.append(f"{label}: {quote!r}")
    assert missing == []


def test_ztrace_policy() -> None:
    """Ztrace: six attempts with doubling delays, a signed timestamp in either format, 300 s."""
    profile = load_profile("ztrace")
    assert profile.delivery.max_attempts == 6
    assert profile.delivery.schedule_seconds == (0, 30, 60, 120, 240, 480)
    assert profile.delivery.schedule_from == "previous-attempt"
    assert profile.delivery.auto_disable_after_hours == 24
    timestamp = profile.signature.timestamp
    assert timestamp is not None
    assert (timestamp.header, timestamp.format, timestamp.emit, timestamp.tolerance_seconds) == (
        "X-Ztrace-Timestamp",
        "unix-or-iso8601",
        "unix",
        300,
    )
    assert profile.signature.signed_content == "{timestamp}.{body}"
    assert profile.idempotency_key == "body-digest"
    assert profile.envelope.event_id is None
    assert profile.management is not None
    assert [r.operation for r in profile.management.routes] == ["create"]
    assert profile.management.secret_request_field == "secret"
    assert profile.management.secret_response_field == "signing_secret"


def test_zta_policy() -> None:
    """ZTA: three attempts in all, 5xx and timeouts retried, 4xx final, 5 s, documented limits."""
    profile = load_profile("zta")
    delivery = profile.delivery
    assert (delivery.max_attempts, delivery.schedule_seconds) == (3, (0, 5, 25))
    assert delivery.retry_classes == {"5xx"}
    assert delivery.retry_on_timeout
    assert not delivery.retries_status(404)
    assert delivery.timeout_seconds == 5
    assert delivery.auto_disable_after_hours == 24
    assert (profile.limits.payload_bytes, profile.limits.webhooks_per_site) == (1_000_000, 10)
    assert profile.limits.events_per_webhook == 5
    assert profile.signature.signed_content == "{body}"
    assert profile.idempotency_key == "body-digest"
    assert profile.requirement("zta.management.secret-not-listed").level == "SHOULD"
    assert profile.management is not None
    assert {r.operation: r.query for r in profile.management.routes} == {
        "list": ("siteId",),
        "create": (),
        "delete": ("id",),
    }


def test_zupertry_policy() -> None:
    """Zupertry: bare-hex signature, job_id deduplication with the documented answer, no API."""
    profile = load_profile("zupertry")
    assert profile.signature.label_separator is None
    assert [s.label for s in profile.signature.schemes] == [None]
    assert profile.idempotency_key == "/data/job_id"
    assert profile.duplicate_response == {"received": True, "duplicate": True}
    assert (profile.delivery.max_attempts, profile.delivery.schedule_seconds) == (3, (0, 60, 300))
    assert profile.delivery.retries_status(404)
    assert profile.management is None


@pytest.mark.parametrize(
    ("name", "event", "follows"),
    [
        ("ztrace", "analysis.completed", "analysis.started"),
        ("ztrace", "analysis.failed", "analysis.started"),
        ("ztrace", "batch.progress", "batch.started"),
        ("ztrace", "batch.completed", "batch.started"),
        ("zaits", "document.completed", "document.signed"),
    ],
)
def test_natural_order(name: str, event: str, follows: str) -> None:
    """Events that come after another name it in `follows`, for the out-of-order check."""
    assert load_profile(name).event(event).follows == follows


@pytest.mark.parametrize("name", list_profiles())
def test_every_profile_refuses_redirects_and_bounds_payloads(name: str) -> None:
    """Every profile forbids following redirects and states a payload limit of at least 1MB."""
    profile = load_profile(name)
    assert profile.delivery.follow_redirects is False
    assert profile.limits.payload_bytes >= 1_000_000


@pytest.mark.parametrize("name", list_profiles())
def test_a_level_below_the_catalogue_names_its_decision(name: str) -> None:
    """Where a profile changes a cross-provider level, the requirement carries the topic of
    the decision that says why, and that decision is in the profile."""
    profile = load_profile(name)
    topics = {d.topic for d in profile.decisions}
    common = {raw["key"]: raw["level"] for raw in common_requirements()}
    for requirement in profile.requirements:
        if requirement.level_decision is None:
            assert not requirement.common or requirement.level == common[requirement.key]
        else:
            assert requirement.level_decision in topics, requirement.id
            assert requirement.level != common[requirement.key], requirement.id


def test_no_documented_limit_means_the_size_checks_do_not_fail() -> None:
    """Where the payload limit is this project's choice, the size requirements are SHOULD and
    MAY; where the document states it (ZTA), accepting it stays a MUST."""
    for name in ("zaits", "ztrace", "zupertry"):
        profile = load_profile(name)
        assert profile.requirement(f"{name}.receiver.accepts-max-payload").level == "SHOULD"
        assert profile.requirement(f"{name}.receiver.rejects-oversized").level == "MAY"
    zta = load_profile("zta")
    assert zta.requirement("zta.receiver.accepts-max-payload").level == "MUST"
    assert zta.requirement("zta.receiver.rejects-oversized").level == "SHOULD"


# ---------------------------------------------------------------------------------------
# Broken profiles


def _zaits() -> dict[str, Any]:
    raw = yaml.safe_load((spec_dir() / "profiles" / "zaits.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _broken(change: str) -> dict[str, Any]:
    raw = copy.deepcopy(_zaits())
    if change == "missing-signature":
        del raw["signature"]
    elif change == "unknown-top-level-key":
        raw["retries"] = 3
    elif change == "unknown-nested-key":
        raw["delivery"]["backoff"] = "exponential"
    elif change == "schedule-vs-max-attempts":
        raw["delivery"]["max_attempts"] = 4
    elif change == "missing-schema-file":
        raw["events"][0]["schema"] = "zaits/events/nope.json"
    elif change == "follows-unknown-event":
        raw["events"][1]["follows"] = "document.opened"
    elif change == "undeclared-signature-header":
        raw["headers"] = [h for h in raw["headers"] if h["name"] != "X-Zaits-Signature"]
    elif change == "foreign-requirement-id":
        raw["requirements"][0]["id"] = "zta.sender.event-header-matches-body"
    elif change == "level-without-decision":
        raw["levels"][0]["decision"] = "no-such-topic"
    elif change == "level-for-unknown-key":
        raw["levels"][0]["key"] = "receiver.no-such-requirement"
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing-signature", "is invalid at (top level): 'signature' is a required property"),
        (
            "unknown-top-level-key",
            "is invalid at (top level): "
            "Additional properties are not allowed ('retries' was unexpected)",
        ),
        (
            "unknown-nested-key",
            "is invalid at delivery: "
            "Additional properties are not allowed ('backoff' was unexpected)",
        ),
        ("schedule-vs-max-attempts", "delivery.schedule_seconds has 5 entries for max_attempts 4"),
        ("missing-schema-file", "schema 'zaits/events/nope.json' does not exist under"),
        (
            "follows-unknown-event",
            "event 'document.completed' follows unknown event 'document.opened'",
        ),
        (
            "undeclared-signature-header",
            "header 'X-Zaits-Signature' is not declared under headers",
        ),
        (
            "foreign-requirement-id",
            "requirement 'zta.sender.event-header-matches-body' of profile 'zaits' "
            "must start with 'zaits.'",
        ),
        (
            "level-without-decision",
            "levels: receiver.accepts-max-payload names decision 'no-such-topic', which is not "
            "a topic under decisions",
        ),
        (
            "level-for-unknown-key",
            "sets levels: for receiver.no-such-requirement, which are not cross-provider "
            "requirements that apply to it",
        ),
    ],
)
def test_broken_profile_is_refused(tmp_path: Path, change: str, message: str) -> None:
    """A profile file with a defect is refused with a ProfileError that names the defect."""
    path = _write(tmp_path, _broken(change))
    with pytest.raises(ProfileError, match=re.escape(message)):
        load_profile(path)


def test_unbroken_copy_loads(tmp_path: Path) -> None:
    """The unchanged copy the broken profiles start from loads, so each defect is the cause."""
    assert load_profile(_write(tmp_path, _zaits())).name == "zaits"


_TABLE_ROW = re.compile(
    r"^\| `(?P<name>[a-z-]+)` \| .* \| (?P<events>\d+)(?: \([^)]*\))? \| .* \| "
    r"(?P<attempts>\d+) \| "
    r"(?P<total>\d+) \((?P<receiver>\d+) / (?P<sender>\d+) / (?P<management>\d+)\) \| "
    r"(?P<decisions>\d+) \|$",
    re.MULTILINE,
)


def test_readme_profiles_table_matches_the_profiles() -> None:
    """README's table of profiles lists every bundled profile with its real counts: events,
    attempts, requirements by role and decisions (the table is checked, not remembered)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## The profiles")[1].split("\n\n")[1]
    rows = {m["name"]: m for m in _TABLE_ROW.finditer(table)}
    assert sorted(rows) == sorted(list_profiles())
    for name, row in rows.items():
        profile = load_profile(name)
        by_role = Counter(r.role for r in profile.requirements)
        assert {k: int(v) for k, v in row.groupdict().items() if k != "name"} == {
            "events": len(profile.events),
            "attempts": profile.delivery.max_attempts,
            "total": len(profile.requirements),
            "receiver": by_role["receiver"],
            "sender": by_role["sender"],
            "management": by_role["management"],
            "decisions": len(profile.decisions),
        }, name
