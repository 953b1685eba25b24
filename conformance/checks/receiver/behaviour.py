"""Receiver checks on behaviour: duplicates, unknown and out-of-order events, and malformed
bodies."""

from __future__ import annotations

import json
import re
from itertools import product
from typing import Any

from conformance._engine.failures import CheckFailure, NotApplicable
from conformance._http import Exchange
from conformance._profile import Profile
from conformance.checks._payloads import compact, is_valid, parts, refreshed, set_at
from conformance.checks.receiver._checks import CHECKS
from conformance.checks.receiver._target import REJECTED, Target

__all__: list[str] = []

#: An event type no catalogue holds.
UNKNOWN_EVENT = "webhook-conformance.unknown-event"
#: The same, for a type header whose declared pattern takes no dot or hyphen (GitHub's).
UNKNOWN_EVENT_WORD = "webhook_conformance_unknown_event"


def unknown_event_type(profile: Profile) -> str:
    """An event type outside the catalogue, in the form the type's header declares where
    the type travels in a header: a receiver may check the form before anything else."""
    name = profile.envelope.event_type_header
    declared = next((h for h in profile.headers if name and h.name == name), None)
    if declared is not None and declared.pattern is not None:
        for candidate in (UNKNOWN_EVENT, UNKNOWN_EVENT_WORD):
            if re.fullmatch(declared.pattern, candidate):
                return candidate
    return UNKNOWN_EVENT


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
            evidence=second,
        )


@CHECKS.register("receiver.unknown-event")
def unknown_event(target: Target, case: str | None) -> None:
    profile = target.profile
    unknown = unknown_event_type(profile)
    if unknown in profile.event_names:  # pragma: no cover - no profile uses the name
        raise NotApplicable(f"the catalogue holds {unknown}")
    payload = target.example()
    if profile.envelope.event_type is not None:
        payload = set_at(payload, parts(profile.envelope.event_type), unknown)
    note = f"event type {unknown!r}, outside the catalogue"
    target.accepted(target.send(target.signed(payload, note=note, event=unknown)))


def _order_cases(profile: Profile) -> tuple[str, ...]:
    return tuple(f"{e.name}-before-{e.follows}" for e in profile.events if e.follows)


_Data = dict[str, Any]
_Path = tuple[str | int, ...]


def _shared(profile: Profile, later: Any, earlier: Any) -> tuple[_Path, _Data, _Data]:
    """The data path and the data objects of two events, when both have one."""
    data = parts(profile.envelope.data)
    try:
        ours, theirs = earlier, later
        for part in data:
            ours, theirs = ours[part], theirs[part]
    except (KeyError, TypeError):
        return data, {}, {}
    if not isinstance(ours, dict) or not isinstance(theirs, dict):
        return data, {}, {}
    return data, ours, theirs


def _linked(profile: Profile, later: Any, earlier: Any) -> tuple[Any, Any]:
    """The two events about one never-seen object: the data fields they share (the job,
    document or analysis id) get fresh values in ``later`` where its schema allows, and are
    copied into ``earlier`` where its schema allows; identities stay fresh."""
    keep = {parts(p) for p in (profile.envelope.event_id, profile.idempotency_key) if p}
    data, ours, theirs = _shared(profile, later, earlier)
    later_event, event = profile.event_type_of(later), profile.event_type_of(earlier)
    if not isinstance(event, str) or not isinstance(later_event, str):
        return later, earlier
    for key in sorted(set(ours) - set(theirs)):  # fields the later event may carry as well
        candidate = set_at(later, (*data, key), ours[key])
        if (*data, key) not in keep and is_valid(profile, later_event, candidate):
            later = candidate
    data, ours, theirs = _shared(profile, later, earlier)
    shared = sorted(
        key
        for key in set(ours) & set(theirs)
        if (*data, key) not in keep and type(ours[key]) is type(theirs[key])
    )
    for key in shared:
        later = refreshed(profile, later_event, later, (*data, key))
    _, _, theirs = _shared(profile, later, earlier)
    for key in shared:
        candidate = set_at(earlier, (*data, key), theirs[key])
        if is_valid(profile, event, candidate):
            earlier = candidate
    return later, earlier


@CHECKS.register("receiver.out-of-order", cases=_order_cases)
def out_of_order(target: Target, case: str | None) -> None:
    """A later event arrives before the one it follows; both are acknowledged."""
    profile = target.profile
    later = next(e for e in profile.events if case == f"{e.name}-before-{e.follows}")
    assert later.follows is not None
    payloads = list(_linked(profile, target.example(later.name), target.example(later.follows)))
    names = [later.name, later.follows]
    for position, (name, payload) in enumerate(zip(names, payloads, strict=True), 1):
        note = f"{name}, delivery {position} of {len(names)}"
        target.accepted(target.send(target.signed(payload, note=note, event=name)), what=note)


_MALFORMED = ("not-json", "truncated-json", "array", "no-event-type")


def _malformed(
    target: Target, kind: str, *, secret: str | None = None
) -> tuple[bytes, dict[str, str], str]:
    """A malformed body, the headers a conforming sender would send with it (signed with
    ``secret``, default the target's), and a note."""
    payload: Any = target.example()
    body = compact(payload)
    envelope = target.profile.envelope
    if kind == "not-json":
        body, payload, note = b"this is not JSON {", None, "a body that is not JSON"
    elif kind == "truncated-json":
        body, payload, note = body[: len(body) // 2], None, "JSON cut off halfway"
    elif kind == "array":
        body, payload = b"[" + body + b"]", [payload]
        note = "a JSON array holding a valid payload"
    elif envelope.event_type is None:
        assert envelope.event_type_header is not None
        headers = target.headers(body, payload, secret=secret)
        del headers[envelope.event_type_header]
        return body, headers, f"a valid body without the {envelope.event_type_header} header"
    else:
        pointer = parts(envelope.event_type)
        parent: Any = payload
        for part in pointer[:-1]:
            parent = parent[part]
        del parent[pointer[-1]]
        body, note = compact(payload), f"a JSON object without {envelope.event_type}"
    return body, target.headers(body, payload, secret=secret), note


@CHECKS.register(
    "receiver.malformed-unsigned-4xx",
    cases=tuple(f"{k}-{how}" for k, how in product(_MALFORMED, ("unsigned", "bad-signature"))),
)
def malformed_unsigned_4xx(target: Target, case: str | None) -> None:
    """A malformed body that is not authentic is refused like any unauthenticated request."""
    assert case is not None
    kind, how = next((k, case[len(k) + 1 :]) for k in _MALFORMED if case.startswith(k + "-"))
    if how == "unsigned":
        body, headers, note = _malformed(target, kind)
        headers = target.unsigned(headers)
        note += ", without a signature"
    else:
        body, headers, note = _malformed(target, kind, secret=target.other_secret())
        note += ", signed with another secret"
    target.rejected(target.send(target.delivery(body, headers, note=note)))


def _signed_malformed(target: Target, case: str | None) -> Exchange:
    assert case is not None
    body, headers, note = _malformed(target, case)
    return target.send(target.delivery(body, headers, note=note + ", correctly signed"))


@CHECKS.register("receiver.malformed-signed-no-5xx", cases=_MALFORMED)
def malformed_signed_no_5xx(target: Target, case: str | None) -> None:
    """An authentic but malformed body may be stored (2xx) or refused (4xx), never a 5xx."""
    exchange = _signed_malformed(target, case)
    if exchange.status is None or exchange.status // 100 not in (2, 4):
        server = " (a server error)" if exchange.status and exchange.status >= 500 else ""
        raise CheckFailure(
            f"expected 2xx or 4xx, got {exchange.describe()}{server}",
            expected="2xx (stored) or 4xx (refused), never 5xx",
            evidence=exchange,
        )


@CHECKS.register("receiver.malformed-signed-refused", cases=_MALFORMED)
def malformed_signed_refused(target: Target, case: str | None) -> None:
    """Judges only an acknowledgement: a 5xx is ``malformed-signed-no-5xx``'s to report."""
    exchange = _signed_malformed(target, case)
    if exchange.status is not None and exchange.status // 100 == 2:
        raise CheckFailure(
            f"expected 4xx, got {exchange.describe()} (accepted)",
            expected=REJECTED,
            evidence=exchange,
        )
