"""webhook-conformance: executable webhook contracts.

The contract library: load a provider profile, validate payloads against its schemas, and
sign or verify deliveries over their raw bytes. The pytest plugin and the checks live in
``conformance.plugin`` and ``conformance.checks``; nothing here imports ``reference``.
"""

from conformance._errors import (
    ConformanceError,
    FutureTimestamp,
    MalformedSignature,
    MalformedTimestamp,
    MissingHeader,
    PayloadError,
    ProfileError,
    SignatureMismatch,
    StaleTimestamp,
    TimestampOutOfTolerance,
    UnknownEventType,
    VerificationError,
)
from conformance._profile import Event, Profile, list_profiles, load_profile
from conformance._requirements import Requirement, Source
from conformance._schemas import iter_payload_errors, payload_schema, validate_payload
from conformance._signing import (
    InvalidSecret,
    Verification,
    Verifier,
    delivery_headers,
    sign,
    verify,
)

__version__ = "0.1.0"

__all__ = [
    "ConformanceError",
    "Event",
    "FutureTimestamp",
    "InvalidSecret",
    "MalformedSignature",
    "MalformedTimestamp",
    "MissingHeader",
    "PayloadError",
    "Profile",
    "ProfileError",
    "Requirement",
    "SignatureMismatch",
    "Source",
    "StaleTimestamp",
    "TimestampOutOfTolerance",
    "UnknownEventType",
    "Verification",
    "VerificationError",
    "Verifier",
    "__version__",
    "delivery_headers",
    "iter_payload_errors",
    "list_profiles",
    "load_profile",
    "payload_schema",
    "sign",
    "validate_payload",
    "verify",
]
