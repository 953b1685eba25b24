"""Payloads the checks send (``conformance.checks._payloads``): generated from the schemas,
valid, reproducible, and freshly identified."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conformance import delivery_headers, list_profiles, load_profile, validate_payload
from conformance._signing import generate_secret
from conformance.checks import _payloads as payloads

EVENTS = [
    pytest.param(load_profile(name), event, id=f"{name}-{event}")
    for name in list_profiles()
    for event in load_profile(name).event_names
]
PROFILES = [pytest.param(load_profile(name), id=name) for name in list_profiles()]


@pytest.mark.parametrize(("profile", "event"), EVENTS)
def test_examples_are_valid(profile, event) -> None:
    """Every generated example validates against the event's schema."""
    found = payloads.examples(profile, event)
    assert len(found) == payloads.EXAMPLES_PER_EVENT
    for example in found:
        validate_payload(profile, example, event)


_GENERATE = """
import json
import re
import subprocess
import sys
from conformance import list_profiles, load_profile
from conformance.checks._payloads import examples
profiles = [load_profile(name) for name in list_profiles()]
print(json.dumps([examples(p, e) for p in profiles for e in p.event_names]))
"""


def test_examples_are_reproducible() -> None:
    """Two runs generate the same examples. (Hypothesis also draws constants from the local
    modules a process has loaded, so the same invocation reproduces, a different one may
    not.)"""
    runs = [
        subprocess.run([sys.executable, "-c", _GENERATE], capture_output=True, check=True).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("profile", "event"), [p for p in EVENTS if p.values[0].idempotency_header is None]
)
def test_fresh_examples_differ_and_stay_valid(profile, event) -> None:
    """Two fresh copies of one example differ in their idempotency key and both validate."""
    first, second = (payloads.fresh_example(profile, event) for _ in range(2))
    validate_payload(profile, first, event)
    validate_payload(profile, second, event)
    a, b = payloads.compact(first), payloads.compact(second)
    assert profile.idempotency_value(a, first) != profile.idempotency_value(b, second)


@pytest.mark.parametrize("profile", PROFILES)
def test_padded_to_the_exact_size(profile) -> None:
    """A padded body has exactly the size asked for and is still a valid payload."""
    size = profile.limits.payload_bytes
    event, payload, body = payloads.padded(profile, size)
    assert len(body) == size
    assert json.loads(body) == payload
    validate_payload(profile, payload, event)


@pytest.mark.parametrize("profile", PROFILES)
def test_tampered_differs_in_one_byte(profile) -> None:
    """The tampered body is JSON and differs from the original in exactly one byte."""
    found = payloads.changeable(profile)
    assert found is not None
    _, payload, changed = found
    original = payloads.compact(payload)
    json.loads(changed)
    assert len(changed) == len(original)
    assert sum(x != y for x, y in zip(changed, original, strict=True)) == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_with_text_adds_non_ascii(profile) -> None:
    """Some string of the first event takes the non-ASCII text and the payload stays valid."""
    event = profile.event_names[0]
    changed = payloads.with_text(profile, event, payloads.fresh_example(profile, event))
    assert changed is not None
    assert payloads.NON_ASCII in json.dumps(changed, ensure_ascii=False)
    validate_payload(profile, changed, event)


@pytest.mark.parametrize(
    "profile", [p for p in PROFILES if p.values[0].idempotency_header is not None]
)
def test_header_borne_ids_are_fresh_per_delivery(profile) -> None:
    """Where the idempotency key travels in a header (webhook-id, X-GitHub-Delivery), each
    delivery of the same body gets a new one, as the profile's declaration generates it."""
    event = profile.event_names[0]
    payload = payloads.fresh_example(profile, event)
    body = payloads.compact(payload)
    secret = generate_secret(profile.signature)
    keys = {
        profile.idempotency_value(
            body, payload, delivery_headers(profile, secret, body, payload, event_type=event)
        )
        for _ in range(2)
    }
    assert len(keys) == 2
    assert None not in keys
    declared = next(h for h in profile.headers if h.name == profile.idempotency_header)
    assert all(re.fullmatch(declared.pattern or ".+", key) for key in keys if key)


def test_examples_are_cached_per_schema_and_redrawn_when_unusable(tmp_path, monkeypatch) -> None:
    """The drawing is kept in the cache directory and read back identical; a cache file
    that does not parse, or holds a payload that no longer validates, is drawn again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    profile = load_profile("zaits")
    draw = payloads.examples.__wrapped__  # past the in-process cache
    drawn = draw(profile, "document.signed")
    (cached,) = (tmp_path / "webhook-conformance" / "examples").glob("*.json")
    assert json.loads(cached.read_text(encoding="utf-8")) == list(drawn)
    assert draw(profile, "document.signed") == drawn
    for broken in ("not json", json.dumps([{"type": "not an event"}])):
        cached.write_text(broken, encoding="utf-8")
        assert draw(profile, "document.signed") == drawn
        assert json.loads(cached.read_text(encoding="utf-8")) == list(drawn)
