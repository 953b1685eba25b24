"""The broken receivers: each overrides one step of ``CorrectReceiver`` with one defect."""

from __future__ import annotations

import base64
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import Receive, Scope

from conformance import (
    FutureTimestamp,
    MissingHeader,
    Profile,
    SignatureMismatch,
    StaleTimestamp,
    VerificationError,
    sign,
    verify,
)
from conformance._signing import parse_timestamp, render_items, split_header
from conformance.checks._payloads import examples, parts

from ._base import CorrectReceiver

#: The per-attempt timeout (seconds) ``test_broken_corpus`` gives the suite (``--timeout``);
#: the slow receiver is tuned against it.
SUITE_TIMEOUT = 1.0


class AcceptsEverything(CorrectReceiver):
    """Never verifies the signature."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        pass


class SignatureHeaderPresentOnly(CorrectReceiver):
    """Checks that the signature headers are there, not what they say."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        scheme = self.profile.signature
        stamp = scheme.timestamp.header if scheme.timestamp else None
        needed = [scheme.header] + ([stamp] if stamp else [])
        present = {name.lower() for name in headers}
        for name in needed:
            if name.lower() not in present:
                raise MissingHeader(name)


def _timestamp(profile: Profile, lowered: Mapping[str, str]) -> str | None:
    """The timestamp's text, from its header or its item of the signature header."""
    spec = profile.signature.timestamp
    if spec is None:
        return None
    if spec.header is not None:
        text = lowered.get(spec.header.lower())
    else:
        text, _ = split_header(profile.signature, lowered.get(profile.signature.header.lower(), ""))
    if text is None:
        raise MissingHeader(spec.where)
    return text


def _signatures(profile: Profile, lowered: Mapping[str, str]) -> list[tuple[str | None, str]]:
    sig = profile.signature
    return split_header(sig, lowered.get(sig.header.lower(), ""))[1]


def _resigned(
    profile: Profile, lowered: Mapping[str, str], items: list[tuple[str | None, str]]
) -> dict[str, str]:
    """The headers with the signature items replaced, the timestamp kept."""
    sig = profile.signature
    stamp = _timestamp(profile, lowered) if sig.timestamp and sig.timestamp.item else None
    return {**lowered, sig.header.lower(): render_items(sig, items, stamp)}


def _check_age(profile: Profile, text: str, *, past: bool = True, future: bool = True) -> None:
    spec = profile.signature.timestamp
    assert spec is not None
    skew = time.time() - parse_timestamp(spec, text).timestamp()
    limit = spec.tolerance_seconds
    if past and skew > limit:
        raise StaleTimestamp(spec.where, skew_seconds=skew, tolerance_seconds=limit)
    if future and skew < -limit:
        raise FutureTimestamp(spec.where, skew_seconds=skew, tolerance_seconds=limit)


class ComparesSignaturePrefix(CorrectReceiver):
    """Compares only the first 8 characters of the signature after its label (timestamps are
    still checked)."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        scheme = self.profile.signature
        lowered = _lowered(headers)
        if scheme.header.lower() not in lowered:
            raise MissingHeader(scheme.header)
        timestamp = _timestamp(self.profile, lowered)
        msg_id = lowered.get(scheme.id_header.lower()) if scheme.id_header else None
        expected = sign(self.profile, self.secret, body, timestamp=timestamp, msg_id=msg_id)
        want = _signatures(self.profile, _lowered(expected))[-1]
        got = _signatures(self.profile, lowered)
        if not got or (got[-1][0], got[-1][1][:8]) != (want[0], want[1][:8]):
            raise SignatureMismatch(scheme.header)  # the defect: the rest is never compared
        if timestamp is not None:
            _check_age(self.profile, timestamp)


class VerifiesReserializedJson(CorrectReceiver):
    """Verifies the parsed body serialized again (compactly, like ``JSON.stringify``), not the
    bytes that arrived."""

    @staticmethod
    def reserialize(body: bytes) -> bytes:
        return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            again = self.reserialize(body)
        except ValueError:  # a body it cannot parse cannot be authentic to it
            raise SignatureMismatch(self.profile.signature.header) from None
        super().verify(again, headers)


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class IgnoresTimestampTolerance(CorrectReceiver):
    """Verifies the signature, timestamp included, but accepts a timestamp of any age."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        verify(self.profile, self.secret, body, headers, tolerance=math.inf)


#: How long the slow receiver blocks per delivery. A burst of 20 then takes 1.5 timeouts, so
#: its last third is late, while what is left of it when the suite gives up on the burst
#: (half a timeout) still leaves the next check's single delivery time to be answered.
BLOCKING_SECONDS = SUITE_TIMEOUT * 3 / 40


class BlocksWhileProcessing(CorrectReceiver):
    """Processes each event before answering, with blocking code in an async app, so
    deliveries that arrive together wait for each other: one alone is answered in time, a
    burst is not."""

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        time.sleep(BLOCKING_SECONDS)  # the defect: blocks the event loop
        return await super().accept(key, event_type, payload)


class CrashesOnUnknownEvent(CorrectReceiver):
    """Dispatches on the event type through a table of the catalogued types: 500 for others."""

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        handlers = {name: (lambda data: None) for name in self.profile.event_names}
        handlers[event_type](payload)  # KeyError for an event type outside the catalogue
        return await super().accept(key, event_type, payload)


class CrashesOnDuplicate(CorrectReceiver):
    """Inserts every event as new, so a duplicate raises (500) like a unique constraint."""

    def duplicate(self) -> tuple[int, object]:
        raise RuntimeError("UNIQUE constraint failed: events.key")


class BodyLimitTooSmall(CorrectReceiver):
    """Refuses bodies over 64 KiB, below the profile's limit."""

    @property
    def limit(self) -> int:
        return 64 * 1024


class StripsSecretPrefix(CorrectReceiver):
    """Takes ``whsec_`` off the secret before using it as the key, which no profile asks for."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        verify(self.profile, self.secret.removeprefix("whsec_"), body, headers)


class CrashesOnNonAscii(CorrectReceiver):
    """Writes each event to an ASCII-only log before answering: 500 for non-ASCII text."""

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        json.dumps(payload, ensure_ascii=False).encode("ascii")  # UnicodeEncodeError
        return await super().accept(key, event_type, payload)


class AcceptsMissingSignature(CorrectReceiver):
    """Verifies a signature when there is one (``if signature := headers.get(...)``), and lets
    a delivery without the header through."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        if self.profile.signature.header.lower() in _lowered(headers):
            super().verify(body, headers)


class AcceptsMissingTimestamp(CorrectReceiver):
    """Treats a delivery without the timestamp header as one from an older sender that did not
    sign, and skips verification for it."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            _timestamp(self.profile, _lowered(headers))
        except MissingHeader:
            return
        super().verify(body, headers)


class AcceptsEmptySignature(CorrectReceiver):
    """Requires the signature header, then compares only a non-empty value (the comparison is
    guarded by ``if value:``)."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        value = _lowered(headers).get(self.profile.signature.header.lower())
        if value is None:
            raise MissingHeader(self.profile.signature.header)
        if value:
            super().verify(body, headers)


class VerifiesLossyText(CorrectReceiver):
    """Reads the body as text, dropping bytes that are not UTF-8
    (``body.decode(errors="ignore")``), and verifies and parses that text: bytes inserted after
    signing that are not UTF-8 go unnoticed."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        super().verify(self.text(body), headers)

    def parse(self, body: bytes) -> Any:
        return json.loads(self.text(body))

    @staticmethod
    def text(body: bytes) -> bytes:
        return body.decode("utf-8", errors="ignore").encode("utf-8")


class DedupesBeforeVerifying(CorrectReceiver):
    """Looks the event's id up before verifying, to answer retries fast: a request carrying
    the id of a delivered event gets the duplicate answer, whatever its signature."""

    def screen(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, object] | None:
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        known = isinstance(payload, dict)
        key = self.profile.idempotency_value(body, payload, headers) if known else None
        return self.duplicate() if key is not None and key in self.seen else None


class _OneSidedTolerance(CorrectReceiver):
    """Verifies the signature, then compares the timestamp's age with the tolerance on one
    side only (``past``: refuses stale timestamps only)."""

    past = True

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        verify(self.profile, self.secret, body, headers, tolerance=math.inf)
        text = _timestamp(self.profile, _lowered(headers))
        if text is not None:
            _check_age(self.profile, text, past=self.past, future=not self.past)


class RefusesOnlyStaleTimestamps(_OneSidedTolerance):
    """Checks only that the timestamp is not too old (``now - t > tolerance``), as
    stripe-python does: a timestamp far in the future passes."""

    past = True


class RefusesOnlyFutureTimestamps(_OneSidedTolerance):
    """The age comparison has its sign the wrong way round (``t - now > tolerance``): a
    timestamp far in the future is refused, a stale one passes."""

    past = False


class UnboundTimestamp(CorrectReceiver):
    """Checks that the header's timestamp is fresh, then accepts a signature made at any
    moment of the window: the header is not bound to the signature."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        spec = self.profile.signature.timestamp
        if spec is None:
            super().verify(body, headers)
            return
        lowered = _lowered(headers)
        try:
            sent = int(_timestamp(self.profile, lowered) or "")
        except ValueError:
            raise MissingHeader(spec.where) from None
        limit = spec.tolerance_seconds
        skew = time.time() - sent
        if abs(skew) > limit:
            raise StaleTimestamp(spec.where, skew_seconds=skew, tolerance_seconds=limit)
        sig = self.profile.signature
        # The header's own moment first: an honest delivery costs one verification.
        for moment in sorted(range(sent - limit, sent + limit + 1), key=lambda m: m != sent):
            if spec.header is not None:
                moved = {**lowered, spec.header.lower(): str(moment)}
            else:
                items = _signatures(self.profile, lowered)
                moved = {**lowered, sig.header.lower(): render_items(sig, items, str(moment))}
            try:
                verify(self.profile, self.secret, body, moved, tolerance=math.inf)
            except VerificationError:
                continue
            return
        raise SignatureMismatch(self.profile.signature.header)


class RefusesDuplicates(CorrectReceiver):
    """Answers 409 Conflict to an event it has seen before."""

    def duplicate(self) -> tuple[int, object]:
        return 409, {"error": "duplicate event"}


class OtherDuplicateAnswer(CorrectReceiver):
    """Acknowledges a duplicate like a first delivery, not with the profile's documented
    duplicate answer."""

    def duplicate(self) -> tuple[int, object]:
        return 200, {"received": True}


class RefusesUnknownEvents(CorrectReceiver):
    """Answers 400 to an event type outside the catalogue."""

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        if event_type not in self.profile.event_names:
            return 400, {"error": f"unknown event type {event_type!r}"}
        return await super().accept(key, event_type, payload)


class InsistsOnOrder(CorrectReceiver):
    """Tracks each object (job, document, analysis) through a state machine: a later event
    about an object it has not seen start (a completion first) creates it as finished, and the
    start that arrives afterwards is an illegal transition, answered 409."""

    def __init__(self, profile: Profile, secret: str) -> None:
        super().__init__(profile, secret)
        self.started: set[tuple[str, object]] = set()
        self.finished_first: set[tuple[str, object]] = set()

    def _links(self, event_type: str, payload: dict[str, Any]) -> set[tuple[str, object]]:
        """The (field, value) pairs naming the object: the data fields that the event and the
        events it is paired with (the ones it follows, or that follow it) require."""
        pairs = {e.follows for e in self.profile.events if e.name == event_type and e.follows}
        pairs |= {e.name for e in self.profile.events if e.follows == event_type}
        data = _data(self.profile, payload)
        kinds = {event_type, *pairs}
        keys = {k for kind in kinds for k in _data(self.profile, examples(self.profile, kind)[0])}
        return {(k, v) for k, v in data.items() if k in keys and isinstance(v, str | int)}

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        if event_type in self.profile.event_names:
            links = self._links(event_type, payload)
            if self.profile.event(event_type).follows is not None:
                self.finished_first |= links - self.started
            elif links & self.finished_first:
                return 409, {"error": f"{event_type} for an object that has already finished"}
            else:
                self.started |= links
        return await super().accept(key, event_type, payload)


def _data(profile: Profile, payload: Any) -> dict[str, Any]:
    node = payload
    for part in parts(profile.envelope.data):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


class NoSizeLimit(CorrectReceiver):
    """Reads bodies of any size."""

    @property
    def limit(self) -> int:
        return 1 << 40


class ForbiddenForBadSignatures(CorrectReceiver):
    """Answers 403 Forbidden, not 401, to a signature that does not verify."""

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, object]:
        status, answer = await super().handle(scope, receive)
        return (403, answer) if status == 401 else (status, answer)


class CrashesOnSignedMalformed(CorrectReceiver):
    """Verifies, then parses without handling errors: an authentic body that is not a JSON
    object with an event type is a 500."""

    def malformed(self, reason: str) -> tuple[int, object]:
        raise ValueError(reason)


class StoresSignedMalformed(CorrectReceiver):
    """Acknowledges an authentic body it cannot use, to look at it later, instead of
    refusing it."""

    def malformed(self, reason: str) -> tuple[int, object]:
        return 202, {"received": True, "stored_for_review": reason}


class AcknowledgesUnverifiableJunk(CorrectReceiver):
    """When a body that is not an event fails verification (no signature, or a wrong one), it
    logs it and answers 200, "so the sender stops retrying junk"; an event that fails
    verification is still refused."""

    def screen(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, object] | None:
        try:
            text = body.decode("utf-8")  # the junk is logged as text; other bytes fall through
        except UnicodeDecodeError:
            return None
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(
            self.profile.event_type_of(payload, headers), str
        ):
            return None
        try:
            self.verify(body, headers)
        except VerificationError:
            return 200, {"status": "ignored"}
        return None


class IntegerNumbersOnly(CorrectReceiver):
    """Its model of every event types numbers as integers (an old schema version): a payload
    with a fractional number is refused with 422."""

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        if has_float(payload):
            return 422, {"error": "expected an integer"}
        return await super().accept(key, event_type, payload)


def has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    return False


class IgnoresSignatureLabel(CorrectReceiver):
    """Takes whatever follows the first ``=`` or ``,`` of each signature as its value, so any
    label (``sha1=``, Stripe's ``v0=``), none, or one the scheme does not use passes with a
    right signature."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        scheme = self.profile.signature
        lowered = _lowered(headers)
        if scheme.header.lower() in lowered:
            primary = scheme.primary.label
            items = [
                (
                    primary,
                    re.split("[=,]", value if label is None else label + "=" + value, maxsplit=1)[
                        -1
                    ],
                )
                for label, value in _signatures(self.profile, lowered)
            ]
            lowered = _resigned(self.profile, lowered, items)
        super().verify(body, lowered)


class SkipsUnparsableSignature(CorrectReceiver):
    """Decodes the signature first and, when that fails, logs it and carries on without
    comparing: a signature that is not even hex passes."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        items = _signatures(self.profile, _lowered(headers))
        digest = items[-1][1] if items else ""
        try:
            if self.profile.signature.primary.encoding == "hex":
                bytes.fromhex(digest)
            else:
                base64.b64decode(digest, validate=True)
        except ValueError:
            return
        super().verify(body, headers)


class VerifiesFirstSignatureOnly(CorrectReceiver):
    """Splits the signature header and verifies only its first signature: during a key
    rotation, a header whose right signature comes second is refused."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        lowered = _lowered(headers)
        items = _signatures(self.profile, lowered)
        if items:
            lowered = _resigned(self.profile, lowered, items[:1])
        super().verify(body, lowered)


class AcceptsLegacyV0(CorrectReceiver):
    """Reads Stripe's ``v0`` signatures as ``v1`` ones, "for old test-mode endpoints"."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        lowered = _lowered(headers)
        if self.profile.signature.header.lower() in lowered:
            items = [
                ("v1" if label == "v0" else label, value)
                for label, value in _signatures(self.profile, lowered)
            ]
            lowered = _resigned(self.profile, lowered, items)
        super().verify(body, lowered)


class CachesVerifiedSignatures(CorrectReceiver):
    """Remembers the body and signature of each delivery it verified, and skips verification
    when both come again (a retry): the same body and signature under another, swapped id are
    taken as verified, so the id is not bound to the signature."""

    def __init__(self, profile: Profile, secret: str) -> None:
        super().__init__(profile, secret)
        self.verified: set[tuple[bytes, str]] = set()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        seen = (body, _lowered(headers).get(self.profile.signature.header.lower(), ""))
        if seen in self.verified:
            return
        super().verify(body, headers)
        self.verified.add(seen)


class VerifiesLegacyOnly(CorrectReceiver):
    """Verifies GitHub's legacy SHA-1 ``X-Hub-Signature`` and never ``X-Hub-Signature-256``."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        _verify_legacy(self.profile, self.secret, body, _lowered(headers))


class FallsBackToLegacy(CorrectReceiver):
    """Verifies ``X-Hub-Signature-256`` when it is there, and the legacy SHA-1
    ``X-Hub-Signature`` when it is not."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        lowered = _lowered(headers)
        if self.profile.signature.header.lower() in lowered:
            super().verify(body, headers)
        else:
            _verify_legacy(self.profile, self.secret, body, lowered)


def _verify_legacy(profile: Profile, secret: str, body: bytes, lowered: Mapping[str, str]) -> None:
    legacy = profile.signature.legacy[0]
    assert legacy.header is not None
    received = lowered.get(legacy.header.lower())
    if received is None:
        raise MissingHeader(legacy.header)
    digest = hmac.new(secret.encode(), body, legacy.hash_name).hexdigest()
    if not hmac.compare_digest(received, f"{legacy.label}={digest}"):
        raise SignatureMismatch(legacy.header)
