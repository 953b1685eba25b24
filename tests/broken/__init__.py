"""Deliberately broken webhook receivers, each with exactly one defect, and the requirements
the conformance suite must find failing against each.

``BROKEN`` maps a defect's name to a factory ``(profile, secret) -> ASGI app``;
``EXPECTED_FAILURES`` maps it to requirement *keys* (``receiver.raw-body``, not
``zaits.receiver.raw-body``). A key that a profile does not have (the timestamp requirements
for an untimestamped profile) is simply not expected there; ``ALSO_FAILING`` adds keys that
fail only where the suite's own data sets the defect off (the documents' examples);
``expected_for`` combines both, and ``applies`` says whether a defect shows at all under a
profile. MUST requirements are expected as ``failed``, SHOULD ones as ``not-strict``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp

from conformance import Profile
from conformance._examples import document_examples

from . import _defects
from ._base import CorrectReceiver
from ._defects import SUITE_TIMEOUT

__all__ = [
    "BROKEN",
    "EXPECTED_FAILURES",
    "SUITE_TIMEOUT",
    "CorrectReceiver",
    "applies",
    "expected_for",
]

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
    *_TIMESTAMP,
}

BROKEN: dict[str, Callable[[Profile, str], ASGIApp]] = {
    "accepts-everything": _defects.AcceptsEverything,
    "signature-header-present-only": _defects.SignatureHeaderPresentOnly,
    "compares-signature-prefix": _defects.ComparesSignaturePrefix,
    "verifies-reserialized-json": _defects.VerifiesReserializedJson,
    "ignores-timestamp-tolerance": _defects.IgnoresTimestampTolerance,
    "blocks-while-processing": _defects.BlocksWhileProcessing,
    "crashes-on-unknown-event": _defects.CrashesOnUnknownEvent,
    "crashes-on-duplicate": _defects.CrashesOnDuplicate,
    "body-limit-too-small": _defects.BodyLimitTooSmall,
    "strips-secret-prefix": _defects.StripsSecretPrefix,
    "crashes-on-non-ascii": _defects.CrashesOnNonAscii,
}

EXPECTED_FAILURES: dict[str, set[str]] = {
    "accepts-everything": {"receiver.rejects-missing-signature", *_FORGERIES},
    # The headers are there in every forgery the suite sends, only wrong.
    "signature-header-present-only": set(_FORGERIES),
    # Only a signature cut short keeps its first 8 characters right.
    "compares-signature-prefix": {"receiver.rejects-bad-signature"},
    # Compact bodies survive a round trip; pretty-printed and \u-escaped ones do not.
    "verifies-reserialized-json": {"receiver.raw-body"},
    "ignores-timestamp-tolerance": {
        "receiver.rejects-stale-timestamp",
        "receiver.rejects-future-timestamp",
    },
    "blocks-while-processing": {"receiver.responds-in-time"},
    "crashes-on-unknown-event": {"receiver.unknown-event"},
    "crashes-on-duplicate": {"receiver.idempotent", "receiver.duplicate-response"},
    "body-limit-too-small": {"receiver.accepts-max-payload"},
    # The suite signs with a whsec_ secret, so nothing correctly signed verifies.
    "strips-secret-prefix": set(_ACKNOWLEDGING),
    # The suite's generated examples carry non-ASCII text too (its second example of every
    # event), so ordinary deliveries, and the burst made of them, crash as well.
    "crashes-on-non-ascii": {
        "receiver.raw-body",
        "receiver.accepts-valid",
        "receiver.responds-in-time",
    },
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


#: Keys that also fail under a defect where the suite's data sets it off, and when.
ALSO_FAILING: dict[str, list[tuple[str, Callable[[Profile], bool]]]] = {
    "verifies-reserialized-json": [("receiver.accepts-valid", _examples_change_when_reserialized)],
    "crashes-on-duplicate": [("receiver.accepts-valid", _examples_share_a_key)],
}


def expected_for(defect: str, profile: Profile) -> set[str]:
    """The keys expected to fail for ``defect`` under ``profile``: those of
    ``EXPECTED_FAILURES`` the profile has, plus any ``ALSO_FAILING`` entry whose condition
    holds for it."""
    keys = {r.key for r in profile.requirements if r.role == "receiver"}
    also = {key for key, holds in ALSO_FAILING.get(defect, []) if holds(profile)}
    return (EXPECTED_FAILURES[defect] | also) & keys


def applies(defect: str, profile: Profile) -> bool:
    """Whether the defect shows under this profile at all (a timestamp defect does not show
    where nothing is timestamped)."""
    return bool(expected_for(defect, profile))
