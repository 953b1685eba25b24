"""Errors raised by the contract library.

Every error this package raises on purpose derives from ``ConformanceError``::

    ConformanceError
    ├── ProfileError                 a profile cannot be found, read or validated
    │   └── UnknownEventType         an event type the profile's catalogue does not hold
    ├── PayloadError                 a payload is not JSON or does not match its schema
    └── VerificationError            a delivery's signature does not verify
        ├── MissingHeader            a required header is absent
        ├── MalformedSignature       the signature header cannot be parsed
        ├── MalformedTimestamp       the timestamp header cannot be parsed
        ├── SignatureMismatch        well formed, but no signature matches
        └── TimestampOutOfTolerance  signed correctly, but too old or too new
            ├── StaleTimestamp
            └── FutureTimestamp

Errors carry fields as well as a message, so callers can react without parsing text.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConformanceError",
    "FutureTimestamp",
    "MalformedSignature",
    "MalformedTimestamp",
    "MissingHeader",
    "PayloadError",
    "ProfileError",
    "SignatureMismatch",
    "StaleTimestamp",
    "TimestampOutOfTolerance",
    "UnknownEventType",
    "VerificationError",
]


class ConformanceError(Exception):
    """Base of every error the contract library raises on purpose."""


class ProfileError(ConformanceError):
    """A profile cannot be found, read, or validated against the meta-schema."""


class UnknownEventType(ProfileError):
    """An event type that the profile's catalogue does not hold."""

    def __init__(self, profile: str, event_type: object, known: Sequence[str]) -> None:
        self.profile = profile
        self.event_type = event_type
        self.known = tuple(known)
        super().__init__(
            f"{event_type!r} is not an event type of profile {profile!r}; "
            f"known types: {', '.join(self.known)}"
        )


class PayloadError(ConformanceError):
    """A payload is not JSON, or does not match the schema of its event.

    ``path`` is the JSON path of the offending value (``$`` for the document itself).
    """

    def __init__(self, message: str, *, path: str = "$") -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class VerificationError(ConformanceError):
    """A delivery failed signature verification. ``header`` names the header at fault."""

    reason = "verification failed"

    def __init__(self, header: str, detail: str = "") -> None:
        self.header = header
        self.detail = detail
        text = f"{self.reason}: {header}"
        super().__init__(f"{text} ({detail})" if detail else text)


class MissingHeader(VerificationError):
    """A header the signature scheme needs is absent."""

    reason = "missing header"


class MalformedSignature(VerificationError):
    """The signature header is present but cannot be parsed (prefix, encoding or length)."""

    reason = "malformed signature header"


class MalformedTimestamp(VerificationError):
    """The timestamp header is present but is not a timestamp in the profile's format."""

    reason = "malformed timestamp header"


class SignatureMismatch(VerificationError):
    """The signature is well formed, but does not match the body, timestamp and secret."""

    reason = "signature does not match"


class TimestampOutOfTolerance(VerificationError):
    """The signature matches, but the signed timestamp is outside the tolerance."""

    reason = "timestamp outside tolerance"

    def __init__(self, header: str, *, skew_seconds: float, tolerance_seconds: float) -> None:
        self.skew_seconds = skew_seconds
        self.tolerance_seconds = tolerance_seconds
        super().__init__(
            header,
            f"{abs(skew_seconds):.0f} s {'old' if skew_seconds >= 0 else 'ahead'}, "
            f"tolerance {tolerance_seconds:.0f} s",
        )


class StaleTimestamp(TimestampOutOfTolerance):
    """The signed timestamp is older than the tolerance allows (a possible replay)."""

    reason = "stale timestamp"


class FutureTimestamp(TimestampOutOfTolerance):
    """The signed timestamp is further ahead than the tolerance allows."""

    reason = "timestamp in the future"
