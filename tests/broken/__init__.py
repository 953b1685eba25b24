"""Deliberately broken webhook receivers, each with exactly one defect, and the requirements
the conformance suite must find failing against each.

``BROKEN`` maps a defect's name to a factory ``(profile, secret) -> ASGI app``;
``EXPECTED_FAILURES`` maps it to requirement *keys* (``receiver.raw-body``, not
``zaits.receiver.raw-body``). A key that a profile does not have (the timestamp requirements
for an untimestamped profile) is simply not expected there; ``ALSO_FAILING`` adds keys that
fail only where the suite's own data sets the defect off (the documents' examples);
``expected_for`` combines both, and ``applies`` says whether a defect shows at all under a
profile (``SHOWS_WHEN`` names the defects that need a profile feature). MUST requirements
are expected as ``failed``, SHOULD and MAY ones as ``not-strict``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from _suite_runner import fixed_secret
from starlette.types import ASGIApp

from conformance import Profile
from conformance._examples import document_examples
from conformance.checks._payloads import examples

from . import _defects
from ._base import CorrectReceiver
from ._defects import SUITE_TIMEOUT, has_float

__all__ = [
    "BROKEN",
    "EXPECTED_FAILURES",
    "SUITE_TIMEOUT",
    "CorrectReceiver",
    "applies",
    "expected_for",
    "secret_for",
]


def secret_for(profile: Profile) -> str:
    """A ``whsec_`` secret in the form the profile's key derivation takes: the prefix is what
    ``strips-secret-prefix`` mishandles where the whole text is the key."""
    return fixed_secret(profile, "broken-corpus-secret")


#: Every check that expects a correctly signed delivery to be acknowledged.
_ACKNOWLEDGING = {
    "receiver.accepts-valid",
    "receiver.raw-body",
    "receiver.idempotent",
    "receiver.duplicate-response",
    "receiver.unknown-event",
    "receiver.out-of-order",
    "receiver.responds-in-time",
    "receiver.accepts-max-payload",
    "receiver.signature-rotation",
}
_TIMESTAMP = {
    "receiver.rejects-stale-timestamp",
    "receiver.rejects-future-timestamp",
    "receiver.timestamp-is-signed",
}
_FORGERIES = {
    "receiver.rejects-bad-signature",
    "receiver.rejects-tampered-body",
    "receiver.invalid-signature-401",
    "receiver.signature-rotation",
    "receiver.id-is-signed",
    *_TIMESTAMP,
}

BROKEN: dict[str, Callable[[Profile, str], ASGIApp]] = {
    "accepts-everything": _defects.AcceptsEverything,
    "signature-header-present-only": _defects.SignatureHeaderPresentOnly,
    "accepts-missing-signature": _defects.AcceptsMissingSignature,
    "accepts-missing-timestamp": _defects.AcceptsMissingTimestamp,
    "accepts-empty-signature": _defects.AcceptsEmptySignature,
    "compares-signature-prefix": _defects.ComparesSignaturePrefix,
    "ignores-signature-label": _defects.IgnoresSignatureLabel,
    "skips-unparsable-signature": _defects.SkipsUnparsableSignature,
    "verifies-lossy-text": _defects.VerifiesLossyText,
    "dedupes-before-verifying": _defects.DedupesBeforeVerifying,
    "verifies-reserialized-json": _defects.VerifiesReserializedJson,
    "ignores-timestamp-tolerance": _defects.IgnoresTimestampTolerance,
    "refuses-only-stale-timestamps": _defects.RefusesOnlyStaleTimestamps,
    "refuses-only-future-timestamps": _defects.RefusesOnlyFutureTimestamps,
    "unbound-timestamp": _defects.UnboundTimestamp,
    "forbidden-for-bad-signatures": _defects.ForbiddenForBadSignatures,
    "blocks-while-processing": _defects.BlocksWhileProcessing,
    "refuses-unknown-events": _defects.RefusesUnknownEvents,
    "crashes-on-unknown-event": _defects.CrashesOnUnknownEvent,
    "insists-on-order": _defects.InsistsOnOrder,
    "refuses-duplicates": _defects.RefusesDuplicates,
    "crashes-on-duplicate": _defects.CrashesOnDuplicate,
    "other-duplicate-answer": _defects.OtherDuplicateAnswer,
    "body-limit-too-small": _defects.BodyLimitTooSmall,
    "no-size-limit": _defects.NoSizeLimit,
    "acknowledges-unverifiable-junk": _defects.AcknowledgesUnverifiableJunk,
    "crashes-on-signed-malformed": _defects.CrashesOnSignedMalformed,
    "stores-signed-malformed": _defects.StoresSignedMalformed,
    "strips-secret-prefix": _defects.StripsSecretPrefix,
    "crashes-on-non-ascii": _defects.CrashesOnNonAscii,
    "integer-numbers-only": _defects.IntegerNumbersOnly,
    "verifies-first-signature-only": _defects.VerifiesFirstSignatureOnly,
    "accepts-legacy-v0": _defects.AcceptsLegacyV0,
    "caches-verified-signatures": _defects.CachesVerifiedSignatures,
    "verifies-legacy-only": _defects.VerifiesLegacyOnly,
    "falls-back-to-legacy": _defects.FallsBackToLegacy,
}

_MALFORMED_UNSIGNED = "receiver.malformed-unsigned-4xx"

EXPECTED_FAILURES: dict[str, set[str]] = {
    # Its malformed, unauthenticated bodies are parsed (400), which refuses them too.
    "accepts-everything": {
        "receiver.rejects-missing-signature",
        "receiver.rejects-legacy-only",
        *_FORGERIES,
    },
    # The headers are there in every forgery the suite sends, only wrong.
    "signature-header-present-only": set(_FORGERIES),
    "accepts-missing-signature": {
        "receiver.rejects-missing-signature",
        "receiver.rejects-legacy-only",
    },
    "accepts-missing-timestamp": {"receiver.rejects-missing-signature"},
    "accepts-empty-signature": {"receiver.rejects-bad-signature"},
    # Only a signature cut short keeps its first 8 characters right.
    "compares-signature-prefix": {"receiver.rejects-bad-signature"},
    "ignores-signature-label": {"receiver.rejects-bad-signature"},
    "skips-unparsable-signature": {"receiver.rejects-bad-signature"},
    "verifies-lossy-text": {"receiver.rejects-tampered-body"},
    # Only where the idempotency key is in the body and survives a changed byte elsewhere.
    "dedupes-before-verifying": {"receiver.rejects-tampered-body"},
    # Compact bodies survive a round trip; pretty-printed and \u-escaped ones do not.
    "verifies-reserialized-json": {"receiver.raw-body"},
    "ignores-timestamp-tolerance": {
        "receiver.rejects-stale-timestamp",
        "receiver.rejects-future-timestamp",
    },
    "refuses-only-stale-timestamps": {"receiver.rejects-future-timestamp"},
    "refuses-only-future-timestamps": {"receiver.rejects-stale-timestamp"},
    "unbound-timestamp": {"receiver.timestamp-is-signed"},
    "forbidden-for-bad-signatures": {"receiver.invalid-signature-401"},
    "blocks-while-processing": {"receiver.responds-in-time"},
    "refuses-unknown-events": {"receiver.unknown-event"},
    "crashes-on-unknown-event": {"receiver.unknown-event"},
    "insists-on-order": {"receiver.out-of-order"},
    "refuses-duplicates": {"receiver.idempotent", "receiver.duplicate-response"},
    "crashes-on-duplicate": {"receiver.idempotent", "receiver.duplicate-response"},
    "other-duplicate-answer": {"receiver.duplicate-response"},
    "body-limit-too-small": {"receiver.accepts-max-payload"},
    "no-size-limit": {"receiver.rejects-oversized"},
    "acknowledges-unverifiable-junk": {_MALFORMED_UNSIGNED},
    "crashes-on-signed-malformed": {"receiver.malformed-signed-no-5xx"},
    "stores-signed-malformed": {"receiver.malformed-signed-refused"},
    # The suite signs with a whsec_ secret, so nothing correctly signed verifies.
    "strips-secret-prefix": set(_ACKNOWLEDGING),
    # The suite's generated examples carry non-ASCII text too (its second example of every
    # event), so ordinary deliveries crash as well.
    "crashes-on-non-ascii": {"receiver.raw-body", "receiver.accepts-valid"},
    # Generated examples past the minimal one carry fractional numbers.
    "integer-numbers-only": {"receiver.accepts-valid"},
    "verifies-first-signature-only": {"receiver.signature-rotation"},
    "accepts-legacy-v0": {"receiver.rejects-bad-signature"},
    "caches-verified-signatures": {"receiver.id-is-signed"},
    # Every forgery the suite sends keeps the legacy header right.
    "verifies-legacy-only": {"receiver.rejects-bad-signature", "receiver.rejects-legacy-only"},
    "falls-back-to-legacy": {"receiver.rejects-legacy-only"},
}


def _examples_change_when_reserialized(profile: Profile) -> bool:
    """Some of the document's own examples, which ``accepts-valid`` sends byte for byte as
    printed, are not compact JSON."""
    reserialize = _defects.VerifiesReserializedJson.reserialize
    return any(reserialize(e.body) != e.body for e in document_examples(profile) if e.event)


def _examples_share_a_key(profile: Profile) -> bool:
    """Two of the document's own examples, both sent by ``accepts-valid``, carry the same
    idempotency key (Zupertry's completed and failed examples are the same job)."""
    keys = [
        profile.idempotency_value(e.body, json.loads(e.body))
        for e in document_examples(profile)
        if e.event
    ]
    return len(keys) != len(set(keys))


def _minimal_has_float(profile: Profile) -> bool:
    """Some event's minimal payload, which the burst and the out-of-order pairs send, holds a
    fractional number."""
    return any(has_float(examples(profile, event)[0]) for event in profile.event_names)


def _minimal_pair_has_float(profile: Profile) -> bool:
    return any(
        has_float(examples(profile, name)[0])
        for event in profile.events
        if event.follows
        for name in (event.name, event.follows)
    )


#: Keys that also fail under a defect where the suite's data sets it off, and when.
def _timestamp_in_signature(profile: Profile) -> bool:
    """The timestamp is an item of the signature header (Stripe's ``t=``): a signature header
    that is there but empty, or without the item, lacks the timestamp as well."""
    spec = profile.signature.timestamp
    return spec is not None and spec.item is not None


ALSO_FAILING: dict[str, list[tuple[str, Callable[[Profile], bool]]]] = {
    "signature-header-present-only": [
        ("receiver.rejects-missing-signature", _timestamp_in_signature)
    ],
    "accepts-missing-timestamp": [("receiver.rejects-bad-signature", _timestamp_in_signature)],
    "verifies-reserialized-json": [("receiver.accepts-valid", _examples_change_when_reserialized)],
    "crashes-on-duplicate": [("receiver.accepts-valid", _examples_share_a_key)],
    "refuses-duplicates": [("receiver.accepts-valid", _examples_share_a_key)],
    "integer-numbers-only": [
        ("receiver.responds-in-time", _minimal_has_float),
        ("receiver.out-of-order", _minimal_pair_has_float),
    ],
}


def _timestamped(profile: Profile) -> bool:
    return profile.signature.timestamp is not None


def _key_in_body(profile: Profile) -> bool:
    return profile.idempotency_key != "body-digest"


def _has_duplicate_answer(profile: Profile) -> bool:
    return profile.duplicate_response is not None


#: Defects that only show under some profiles: a defect of the timestamp check shows only
#: where deliveries are timestamped.
SHOWS_WHEN: dict[str, Callable[[Profile], bool]] = {
    "strips-secret-prefix": lambda p: p.signature.primary.key.encoding == "utf-8",
    "accepts-legacy-v0": lambda p: "v1" in p.signature.labels,
    "verifies-legacy-only": lambda p: bool(p.signature.legacy),
    "accepts-missing-timestamp": _timestamped,
    "dedupes-before-verifying": _key_in_body,
    "other-duplicate-answer": _has_duplicate_answer,
    "insists-on-order": lambda p: any(e.follows for e in p.events),
}


def expected_for(defect: str, profile: Profile) -> set[str]:
    """The keys expected to fail for ``defect`` under ``profile``: those of
    ``EXPECTED_FAILURES`` the profile has, plus any ``ALSO_FAILING`` entry whose condition
    holds for it."""
    if not SHOWS_WHEN.get(defect, lambda _: True)(profile):
        return set()
    keys = {r.key for r in profile.requirements if r.role == "receiver"}
    also = {key for key, holds in ALSO_FAILING.get(defect, []) if holds(profile)}
    return (EXPECTED_FAILURES[defect] | also) & keys


def applies(defect: str, profile: Profile) -> bool:
    """Whether the defect shows under this profile at all (a timestamp defect does not show
    where nothing is timestamped)."""
    return bool(expected_for(defect, profile))
