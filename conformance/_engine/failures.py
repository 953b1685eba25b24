"""How a check reports its result, whatever the role: ``CheckFailure`` with the evidence
behind it, or ``NotApplicable``.

The evidence is anything that renders itself: what we sent and what the target answered
(a receiver check), what the target sent and what we captured (a sender check), or an API
exchange (a management check). The runner prints it under the requirement and the expected
behaviour, so every role's failures read the same way.
"""

from __future__ import annotations

from typing import Protocol

from conformance._engine.exhibits import Exhibit
from conformance._errors import ConformanceError

__all__ = ["CheckFailure", "Evidence", "NotApplicable"]


class Evidence(Protocol):
    """What a failure message shows below its expectation."""

    def exhibit(self, *, replay_hint: str = "") -> Exhibit:
        """The exchange or the capture, then a reproduction (``replay_hint`` says what a
        replay must take care of, such as a timestamp's freshness)."""
        ...


class CheckFailure(ConformanceError):
    """The target violated the requirement: what was expected, and the evidence that showed
    otherwise (``None`` when no single exchange tells the story)."""

    def __init__(
        self, headline: str, *, expected: str, evidence: Evidence | None, detail: str = ""
    ) -> None:
        self.headline = headline
        self.expected = expected
        self.evidence = evidence
        self.detail = detail
        super().__init__(headline)


class NotApplicable(ConformanceError):
    """The case cannot be run against this profile (the reason says why)."""
