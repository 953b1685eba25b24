"""Receiver checks on signatures: valid deliveries pass, forged or altered ones do not, and
the signature is checked over the raw bytes."""

from __future__ import annotations

import json
from typing import Any

from conformance._engine.failures import NotApplicable
from conformance._examples import document_examples
from conformance._profile import Profile
from conformance._signing import fresh_header_value
from conformance.checks._payloads import (
    EXAMPLES_PER_EVENT,
    changeable,
    compact,
    examples,
    with_text,
)
from conformance.checks.receiver._checks import CHECKS
from conformance.checks.receiver._target import Target

__all__: list[str] = []

#: For the ``other-label`` case: a label the profile does not sign with, for the labels in
#: use (Stripe's ``v0`` is the one its verifiers must ignore).
_OTHER_LABEL = {"sha256": "sha1", "sha1": "sha256", "sha512": "sha256", "v1": "v0"}
_ADDED_LABEL = "sha256="


def _events(profile: Profile) -> tuple[str, ...]:
    return profile.event_names


@CHECKS.register("receiver.accepts-valid", cases=_events)
def accepts_valid(target: Target, case: str | None) -> None:
    """Generated payloads of the event (the minimal one first), then the provider document's
    own examples of it sent byte for byte as printed, each correctly signed."""
    assert case is not None
    count = min(EXAMPLES_PER_EVENT, len(examples(target.profile, case)))
    for index in range(count):
        payload = target.example(case, index)
        what = f"example {index + 1} of {count}"
        note = f"generated {case} example {index + 1} of {count}"
        target.accepted(target.send(target.signed(payload, note=note, event=case)), what=what)
    for example in document_examples(target.profile, event=case):
        note = f"the example of {example.document} ({example.quote!r}), as printed"
        delivery = target.signed(json.loads(example.body), body=example.body, note=note, event=case)
        target.accepted(target.send(delivery), what=f"document example {example.file}")


@CHECKS.register(
    "receiver.rejects-missing-signature",
    cases=lambda p: (
        ("no-signature", "no-timestamp") if p.signature.timestamp else ("no-signature",)
    ),
)
def rejects_missing_signature(target: Target, case: str | None) -> None:
    scheme = target.profile.signature
    payload = target.example()
    body = compact(payload)
    headers = target.headers(body, payload)
    if case == "no-timestamp":
        assert scheme.timestamp is not None
        headers, note = target.with_timestamp(headers, None), f"without {scheme.timestamp.where}"
    else:
        headers, note = target.unsigned(headers), f"without the {scheme.header} header"
    target.rejected(target.send(target.delivery(body, headers, note=note)))


@CHECKS.register("receiver.rejects-legacy-only")
def rejects_legacy_only(target: Target, case: str | None) -> None:
    """The legacy signature header (GitHub's SHA-1 ``X-Hub-Signature``), correct, without
    the one the profile verifies."""
    scheme = target.profile.signature
    payload = target.example()
    body = compact(payload)
    headers = {k: v for k, v in target.headers(body, payload).items() if k != scheme.header}
    kept = ", ".join(s.header for s in scheme.legacy if s.header)
    note = f"without the {scheme.header} header, with a correct {kept}"
    target.rejected(target.send(target.delivery(body, headers, note=note)))


def _bad_signature_cases(profile: Profile) -> tuple[str, ...]:
    scheme = profile.signature
    names = ["empty", f"not-{scheme.primary.encoding}", "wrong-secret", "truncated"]
    names += ["other-label", "no-label"] if scheme.labels else ["added-label"]
    return tuple(names)


def _forged(target: Target, case: str, headers: dict[str, str]) -> tuple[dict[str, str], str]:
    """The headers with the signature forged as a case says, and a note saying how."""
    sig = target.profile.signature
    *rest, (label, value) = target.signatures(headers)
    joined = f"{label}{sig.label_separator}" if label is not None else ""
    if case == "empty":
        return {**headers, sig.header: ""}, "an empty signature header"
    if case.startswith("not-"):
        junk = "z" if case == "not-hex" else "!"
        forged = [*rest, (label, junk * len(value))]
        return target.with_signatures(headers, forged), f"a signature that is not {case[4:]}"
    if case == "truncated":
        forged = [*rest, (label, value[: len(value) // 2])]
        return target.with_signatures(headers, forged), "the signature cut to half its length"
    if case == "other-label":
        assert label is not None
        other = _OTHER_LABEL.get(label, "x" + label)
        note = f"the valid signature under the label {other!r}, which this profile does not use"
        return target.with_signatures(headers, [*rest, (other, value)]), note
    if case == "no-label":
        note = f"the signature without its label {joined!r}"
        return target.with_signatures(headers, [*rest, (None, value)]), note
    if case == "added-label":
        forged = [*rest, (None, _ADDED_LABEL + value)]
        return target.with_signatures(
            headers, forged
        ), f"a {_ADDED_LABEL!r} prefix the scheme does not use"
    raise ValueError(f"unknown case {case!r}")  # pragma: no cover - cases come from above


@CHECKS.register("receiver.rejects-bad-signature", cases=_bad_signature_cases)
def rejects_bad_signature(target: Target, case: str | None) -> None:
    assert case is not None
    payload = target.example()
    body = compact(payload)
    headers = target.headers(body, payload)
    if case == "wrong-secret":
        headers = target.headers(body, payload, secret=target.other_secret())
        note = "signed with another secret"
    else:
        headers, note = _forged(target, case, headers)
    target.rejected(target.send(target.delivery(body, headers, note=note)))


@CHECKS.register("receiver.signature-rotation", cases=("unknown-key-first", "only-unknown-keys"))
def signature_rotation(target: Target, case: str | None) -> None:
    """During key rotation the header carries one signature per key. ``unknown-key-first``
    puts a signature made with a key the receiver does not hold before the right one (it
    must be accepted); ``only-unknown-keys`` carries two signatures, neither made with the
    receiver's key (it must be refused)."""
    payload = target.example()
    body = compact(payload)
    if case == "unknown-key-first":
        keys = [target.other_secret(), target.secret]
        headers = target.headers(body, payload, secret=keys)
        note = "two signatures: one with a key the receiver does not hold, then the right one"
        target.accepted(target.send(target.delivery(body, headers, note=note)))
        return
    headers = target.headers(body, payload, secret=[target.other_secret(), target.other_secret()])
    note = "two signatures, each with a key the receiver does not hold"
    target.rejected(target.send(target.delivery(body, headers, note=note)))


@CHECKS.register("receiver.id-is-signed")
def id_is_signed(target: Target, case: str | None) -> None:
    """A delivery is acknowledged, then sent again byte for byte with only its signed id
    header changed: the signature covers the id, so the copy no longer verifies (a receiver
    that does not bind the id to the signature takes the replay as a new event)."""
    name = target.profile.signature.id_header
    assert name is not None, "only profiles that sign an id header have this check"
    payload = target.example()
    body = compact(payload)
    headers = target.headers(body, payload)
    first = target.send(target.delivery(body, headers, note="the original, correctly signed"))
    if first.status is None or first.status // 100 != 2:
        raise NotApplicable(
            f"the original delivery was not acknowledged ({first.describe()}), so a copy "
            "with another id cannot show whether the id is signed"
        )
    swapped = {**headers, name: fresh_header_value(target.profile, name)}
    note = f"the delivery just sent again with {name} {swapped[name]} (signed: {headers[name]})"
    target.rejected(target.send(target.delivery(body, swapped, note=note)))


@CHECKS.register("receiver.invalid-signature-401")
def invalid_signature_401(target: Target, case: str | None) -> None:
    payload = target.example()
    body = compact(payload)
    headers = target.headers(body, payload, secret=target.other_secret())
    delivery = target.delivery(body, headers, note="signed with another secret")
    target.status(target.send(delivery), 401)


#: Bytes that are not UTF-8, inserted into the body by the ``invalid-utf8`` case.
NOT_UTF8 = b"\xff\xfe"


@CHECKS.register("receiver.rejects-tampered-body", cases=("after-delivery", "invalid-utf8"))
def rejects_tampered_body(target: Target, case: str | None) -> None:
    """A correctly signed body, changed after signing and sent with its signature.

    ``after-delivery`` first delivers the original, then the copy with one byte changed
    outside the event's identity (a receiver that looks up the id before verifying answers it
    as a duplicate). ``invalid-utf8`` inserts bytes that are not UTF-8 into a fresh body (a
    receiver that decodes the body leniently before verifying drops them)."""
    found = changeable(target.profile, keep_identity=True)
    if found is None:
        raise NotApplicable("no generated payload has a string to change")
    event, payload, changed = found
    body = compact(payload)
    headers = target.headers(body, payload, event=event)
    if case == "after-delivery":
        first = target.send(target.delivery(body, headers, note="the original, correctly signed"))
        if first.status is None or first.status // 100 != 2:
            raise NotApplicable(
                f"the original delivery was not acknowledged ({first.describe()}), so its "
                "changed copy cannot test a lookup before verification"
            )
        note = "the delivery just sent again with its signature, one byte of the body changed"
        target.rejected(target.send(target.delivery(changed, headers, note=note)))
        return
    at = body.index(b'"') + 1
    changed = body[:at] + NOT_UTF8 + body[at:]
    note = f"the bytes {NOT_UTF8!r}, which are not UTF-8, inserted after signing"
    exchange = target.send(target.delivery(changed, headers, note=note))
    # What this case looks for is a forgery accepted after lenient decoding (2xx). A receiver
    # that refuses or even crashes on bytes it cannot decode has not accepted the forgery.
    if exchange.status is not None and exchange.status // 100 == 2:
        target.rejected(exchange)


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


def _serializations(payload: Any) -> dict[str, tuple[bytes, str]]:
    escaped = compact(payload, ensure_ascii=True).replace(b"/", b"\\/")
    return {
        "pretty": (
            json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8") + b"\n",
            "pretty-printed with a trailing newline",
        ),
        "key-order": (compact(_reversed_keys(payload)), "object keys in reverse order"),
        "escaped": (escaped, "non-ASCII text as \\u escapes and / as \\/"),
        "utf8": (compact(payload), "non-ASCII text as raw UTF-8"),
    }


def _textual_example(target: Target) -> tuple[str, Any]:
    for event in target.profile.event_names:
        payload = with_text(target.profile, event, target.example(event))
        if payload is not None:
            return event, payload
    raise NotApplicable("no event's schema leaves room for non-ASCII text")


@CHECKS.register("receiver.raw-body", cases=("pretty", "key-order", "escaped", "utf8"))
def raw_body(target: Target, case: str | None) -> None:
    """The same JSON serialized another way, signed over its own bytes, is accepted."""
    assert case is not None
    event, example = _textual_example(target)
    body, note = _serializations(example)[case]
    payload = json.loads(body)
    target.accepted(target.send(target.signed(payload, body=body, note=note, event=event)))
