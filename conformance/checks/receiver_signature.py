"""Receiver checks on signatures: valid deliveries pass, forged or altered ones do not, and
the signature is checked over the raw bytes."""

from __future__ import annotations

import json
import secrets
from typing import Any

from conformance._examples import document_examples
from conformance._profile import Profile
from conformance.checks._payloads import EXAMPLES_PER_EVENT, compact, examples, with_text
from conformance.checks._payloads import tampered as changed_byte
from conformance.checks._registry import CHECKS, NotApplicable
from conformance.checks._target import Target

__all__: list[str] = []

_OTHER_PREFIX = {"sha256=": "sha1=", "sha1=": "sha256=", "sha512=": "sha256="}
_ADDED_PREFIX = "sha256="


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
        target.accepted(target.send(target.signed(payload, note=note)), what=what)
    for example in document_examples(target.profile, event=case):
        note = f"the example of {example.document} ({example.quote!r}), as printed"
        delivery = target.signed(json.loads(example.body), body=example.body, note=note)
        target.accepted(target.send(delivery), what=f"document example {example.file}")


@CHECKS.register(
    "receiver.rejects-missing-signature",
    cases=lambda p: (
        ("no-signature", "no-timestamp") if p.signature.timestamp else ("no-signature",)
    ),
)
def rejects_missing_signature(target: Target, case: str | None) -> None:
    scheme = target.profile.signature
    drop = scheme.header
    if case == "no-timestamp":
        assert scheme.timestamp is not None
        drop = scheme.timestamp.header
    payload = target.example()
    body = compact(payload)
    headers = {k: v for k, v in target.headers(body, payload).items() if k != drop}
    delivery = target.delivery(body, headers, note=f"without the {drop} header")
    target.rejected(target.send(delivery))


def _bad_signature_cases(profile: Profile) -> tuple[str, ...]:
    scheme = profile.signature
    names = ["empty", f"not-{scheme.encoding}", "wrong-secret", "truncated"]
    names += ["other-prefix", "no-prefix"] if scheme.prefix else ["added-prefix"]
    return tuple(names)


def _forged(target: Target, case: str, good: str) -> tuple[str, str]:
    """The signature header's value for a case, and a note saying what was done."""
    prefix = target.profile.signature.prefix
    digest = good[len(prefix) :]
    if case == "empty":
        return "", "an empty signature header"
    if case.startswith("not-"):
        junk = "z" if target.profile.signature.encoding == "hex" else "!"
        return prefix + junk * len(digest), f"a signature that is not {case[4:]}"
    if case == "truncated":
        return prefix + digest[: len(digest) // 2], "the signature cut to half its length"
    if case == "other-prefix":
        other = _OTHER_PREFIX.get(prefix, "x" + prefix)
        return other + digest, f"the prefix {prefix!r} replaced with {other!r}"
    if case == "no-prefix":
        return digest, f"the signature without its prefix {prefix!r}"
    if case == "added-prefix":
        return _ADDED_PREFIX + good, f"a {_ADDED_PREFIX!r} prefix the scheme does not use"
    raise ValueError(f"unknown case {case!r}")  # pragma: no cover - cases come from above


@CHECKS.register("receiver.rejects-bad-signature", cases=_bad_signature_cases)
def rejects_bad_signature(target: Target, case: str | None) -> None:
    assert case is not None
    header = target.profile.signature.header
    payload = target.example()
    body = compact(payload)
    headers = target.headers(body, payload)
    if case == "wrong-secret":
        headers = target.headers(body, payload, secret=secrets.token_bytes(32))
        note = "signed with another secret"
    else:
        headers[header], note = _forged(target, case, headers[header])
    target.rejected(target.send(target.delivery(body, headers, note=note)))


@CHECKS.register("receiver.invalid-signature-401")
def invalid_signature_401(target: Target, case: str | None) -> None:
    payload = target.example()
    body = compact(payload)
    headers = target.headers(body, payload, secret=secrets.token_bytes(32))
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
    payload = target.example()
    body = compact(payload)
    headers = target.headers(body, payload)
    if case == "after-delivery":
        changed = changed_byte(target.profile, target.first_event, payload, keep_identity=True)
        if changed is None:
            raise NotApplicable("no generated payload has a string to change")
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


def _textual_example(target: Target) -> Any:
    for event in target.profile.event_names:
        payload = with_text(target.profile, event, target.example(event))
        if payload is not None:
            return payload
    raise NotApplicable("no event's schema leaves room for non-ASCII text")


@CHECKS.register("receiver.raw-body", cases=("pretty", "key-order", "escaped", "utf8"))
def raw_body(target: Target, case: str | None) -> None:
    """The same JSON serialized another way, signed over its own bytes, is accepted."""
    assert case is not None
    body, note = _serializations(_textual_example(target))[case]
    payload = json.loads(body)
    target.accepted(target.send(target.signed(payload, body=body, note=note)))
