"""Receiver checks on behaviour: duplicates, unknown and out-of-order events, and malformed
bodies."""

from __future__ import annotations

import json
from itertools import product
from typing import Any

from conformance._profile import Profile
from conformance.checks._payloads import compact, is_valid, parts, set_at
from conformance.checks._registry import CHECKS, CheckFailure, NotApplicable
from conformance.checks._target import Target

__all__: list[str] = []

#: An event type no catalogue holds.
UNKNOWN_EVENT = "webhook-conformance.unknown-event"


@CHECKS.register("receiver.idempotent")
def idempotent(target: Target, case: str | None) -> None:
    delivery = target.signed(target.example(), note="sent twice, byte for byte")
    target.accepted(target.send(delivery), what="first delivery")
    target.accepted(target.send(delivery), what="second, identical delivery")


@CHECKS.register("receiver.duplicate-response")
def duplicate_response(target: Target, case: str | None) -> None:
    expected = target.profile.duplicate_response
    if expected is None:
        raise NotApplicable("the profile documents no duplicate response")
    delivery = target.signed(target.example(), note="sent twice, byte for byte")
    target.accepted(target.send(delivery), what="first delivery")
    second = target.send(delivery)
    target.accepted(second, what="second, identical delivery")
    try:
        answer = json.loads(second.body)
    except ValueError:
        answer = None
    if answer != expected:
        shown = json.dumps(expected, ensure_ascii=False)
        raise CheckFailure(
            f"the second delivery was not answered with {shown}",
            expected=f"2xx with the body {shown}",
            exchange=second,
        )


@CHECKS.register("receiver.unknown-event")
def unknown_event(target: Target, case: str | None) -> None:
    profile = target.profile
    if UNKNOWN_EVENT in profile.event_names:  # pragma: no cover - no profile uses the name
        raise NotApplicable(f"the catalogue holds {UNKNOWN_EVENT}")
    payload = set_at(target.example(), parts(profile.envelope.event_type), UNKNOWN_EVENT)
    note = f"event type {UNKNOWN_EVENT!r}, outside the catalogue"
    target.accepted(target.send(target.signed(payload, note=note)))


def _order_cases(profile: Profile) -> tuple[str, ...]:
    pairs = [f"{e.name}-before-{e.follows}" for e in profile.events if e.follows]
    return tuple(pairs) or ("reverse-catalogue",)


def _linked(profile: Profile, later: Any, earlier: Any) -> Any:
    """``earlier`` with the data fields it shares with ``later`` (the job, document or
    analysis id) copied from ``later``, when its schema allows; identities stay fresh."""
    data = parts(profile.envelope.data)
    keep = {parts(p) for p in (profile.envelope.event_id, profile.idempotency_key) if p}
    try:
        ours, theirs = earlier, later
        for part in data:
            ours, theirs = ours[part], theirs[part]
    except (KeyError, TypeError):
        return earlier
    if not isinstance(ours, dict) or not isinstance(theirs, dict):
        return earlier
    event = profile.event_type_of(earlier)
    for key in sorted(set(ours) & set(theirs)):
        path = (*data, key)
        if path in keep or type(ours[key]) is not type(theirs[key]) or not isinstance(event, str):
            continue
        candidate = set_at(earlier, path, theirs[key])
        if is_valid(profile, event, candidate):
            earlier = candidate
    return earlier


@CHECKS.register("receiver.out-of-order", cases=_order_cases)
def out_of_order(target: Target, case: str | None) -> None:
    """A later event arrives before the one it follows; both are acknowledged."""
    profile = target.profile
    if case == "reverse-catalogue":
        names = list(reversed(profile.event_names))
        payloads = [target.example(name) for name in names]
    else:
        later = next(e for e in profile.events if case == f"{e.name}-before-{e.follows}")
        assert later.follows is not None
        first = target.example(later.name)
        payloads = [first, _linked(profile, first, target.example(later.follows))]
        names = [later.name, later.follows]
    for position, (name, payload) in enumerate(zip(names, payloads, strict=True), 1):
        note = f"{name}, delivery {position} of {len(names)}"
        target.accepted(target.send(target.signed(payload, note=note)), what=note)


_MALFORMED = ("not-json", "truncated-json", "array", "no-event-type")


def _malformed(target: Target, kind: str) -> tuple[bytes, object, str]:
    """A malformed body, the payload its mirrored headers come from, and a note."""
    payload = target.example()
    body = compact(payload)
    if kind == "not-json":
        return b"this is not JSON {", None, "a body that is not JSON"
    if kind == "truncated-json":
        return body[: len(body) // 2], None, "JSON cut off halfway"
    if kind == "array":
        return b"[" + body + b"]", [payload], "a JSON array holding a valid payload"
    pointer = parts(target.profile.envelope.event_type)
    parent: Any = payload
    for part in pointer[:-1]:
        parent = parent[part]
    del parent[pointer[-1]]
    return compact(payload), payload, f"a JSON object without {target.profile.envelope.event_type}"


@CHECKS.register(
    "receiver.malformed-body-4xx",
    cases=tuple(f"{kind}-{how}" for kind, how in product(_MALFORMED, ("signed", "unsigned"))),
)
def malformed_body_4xx(target: Target, case: str | None) -> None:
    assert case is not None
    kind, _, how = case.rpartition("-")
    body, payload, note = _malformed(target, kind)
    headers = target.headers(body, payload)
    if how == "unsigned":
        headers.pop(target.profile.signature.header)
        note += ", without a signature"
    else:
        note += ", correctly signed"
    target.rejected(target.send(target.delivery(body, headers, note=note)))
