"""The sender role's black-box checks, registered by requirement key in ``CHECKS``:
``delivery`` (headers, signature, timestamp and payload of every attempt) and ``retries``
(what the policy makes of each answer). Each check is given a ``SenderRun``: the capture
server and the scenarios triggered through the sender's trigger URL.
"""

from conformance.checks._capture import Attempt, Capture, Reply
from conformance.checks.sender import delivery, retries  # noqa: F401 - registers checks
from conformance.checks.sender._checks import CHECKS, scenarios_for
from conformance.checks.sender._run import SCENARIOS, Captured, Scenario, SenderRun

__all__ = [
    "CHECKS",
    "SCENARIOS",
    "Attempt",
    "Capture",
    "Captured",
    "Reply",
    "Scenario",
    "SenderRun",
    "scenarios_for",
]
