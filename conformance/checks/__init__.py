"""Black-box checks, one module per family, registered by requirement key in ``CHECKS``.

``receiver_signature`` (valid, missing, bad and tampered signatures; raw bytes),
``receiver_timestamps`` (replay tolerance), ``receiver_behaviour`` (duplicates, unknown and
out-of-order events, malformed bodies) and ``receiver_limits`` (burst timing, payload size).
"""

from conformance.checks import (  # noqa: F401 - imported to register their checks
    receiver_behaviour,
    receiver_limits,
    receiver_signature,
    receiver_timestamps,
)
from conformance.checks._registry import (
    CHECKS,
    Case,
    Check,
    CheckFailure,
    CheckFunction,
    NotApplicable,
    Registry,
    cases_for,
)
from conformance.checks._target import Target

__all__ = [
    "CHECKS",
    "Case",
    "Check",
    "CheckFailure",
    "CheckFunction",
    "NotApplicable",
    "Registry",
    "Target",
    "cases_for",
]
