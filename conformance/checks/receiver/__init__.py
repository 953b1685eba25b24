"""The receiver role's black-box checks, one module per family, registered by requirement
key in ``CHECKS``: ``signature`` (valid, missing, bad and tampered signatures; raw bytes),
``timestamps`` (replay tolerance), ``behaviour`` (duplicates, unknown and out-of-order
events, malformed bodies) and ``limits`` (burst timing, payload size). Each check is given
a ``Target``: where to send, how to sign, how to judge an answer.
"""

from conformance.checks.receiver import (  # noqa: F401 - imported to register their checks
    behaviour,
    limits,
    signature,
    timestamps,
)
from conformance.checks.receiver._checks import CHECKS
from conformance.checks.receiver._preflight import Diagnosis, preflight
from conformance.checks.receiver._target import Target, make_client

__all__ = ["CHECKS", "Diagnosis", "Target", "make_client", "preflight"]
