"""What a failure shows, in parts a report can lay out: the exchange or the capture as lines,
the reproduction, and for a sender scenario the timeline of its attempts.

The terminal and the JSON report print the parts one after another (``Exhibit.render``);
the HTML report puts the reproduction in a block of its own and draws the timeline.
Nothing here knows a role: the sender checks build their timelines from what the capture
saw, and this module only holds the numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Arrival", "Exhibit", "Reproduction", "Timeline", "Verdict"]

#: How an attempt stands against the schedule: in its slot, too early or too late, beyond
#: the attempts the policy allows, or sent somewhere else (a followed redirect).
Verdict = Literal["on-time", "early", "late", "extra", "elsewhere"]


@dataclass(frozen=True, kw_only=True)
class Reproduction:
    """A command that replays the exchange, and what to know before running it (``hint``:
    a timestamp's freshness, which option supplies a redacted key)."""

    command: str
    title: str = "Reproduce"
    hint: str = ""

    def render(self) -> list[str]:
        head = f"{self.title}:" + (f" ({self.hint})" if self.hint else "")
        return [head, *("  " + line for line in self.command.split("\n"))]


@dataclass(frozen=True, kw_only=True)
class Arrival:
    """One captured attempt; times are seconds after the trigger was sent."""

    number: int
    at: float
    #: When the attempt ended: its answer, or the sender closing the connection.
    ended: float
    #: The answer the capture gave (``500``, ``307 -> /moved``), or how it ended.
    answer: str
    status: int | None
    #: When the schedule had this attempt due (``None`` past the schedule's end).
    due: float | None
    verdict: Verdict


@dataclass(frozen=True, kw_only=True)
class Timeline:
    """A sender scenario's attempts against the profile's scaled schedule."""

    scenario: str
    what: str
    #: The run's time scale: 1 s on the timeline is ``1 / scale`` s of the real schedule.
    scale: float
    #: How many attempts the policy expects in this scenario.
    expected: int
    arrivals: tuple[Arrival, ...]
    #: When each expected attempt that never came was due.
    missing: tuple[float, ...] = ()
    #: How long the capture watched, from the trigger.
    watched: float = 0.0
    #: Why nothing could be delivered (the trigger was refused), if so.
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        arrivals = tuple(Arrival(**a) for a in data["arrivals"])
        return cls(**{**data, "arrivals": arrivals, "missing": tuple(data["missing"])})


@dataclass(frozen=True, kw_only=True)
class Exhibit:
    """The evidence behind one failure, in parts."""

    lines: tuple[str, ...]
    reproduction: Reproduction | None = None
    timeline: Timeline | None = None

    def render(self) -> list[str]:
        """Every part as text lines, the reproduction last."""
        tail = [] if self.reproduction is None else self.reproduction.render()
        return [*self.lines, *tail]
