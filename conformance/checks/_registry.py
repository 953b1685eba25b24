"""The check registry: requirement keys mapped to the checks that judge them.

A check is registered under a requirement *key* (``receiver.raw-body``), so one check serves
every profile that carries the requirement. It may split into named cases (``truncated``,
``pretty``), fixed or computed from the profile; each case is one pytest test whose id is
the requirement id plus the case name (``zaits.receiver.rejects-bad-signature-truncated``).

A check signals its result by returning (passed) or raising ``CheckFailure`` (violated) or
``NotApplicable`` (skipped, with the reason).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from conformance._errors import ConformanceError
from conformance._profile import Profile
from conformance._requirements import Requirement

if TYPE_CHECKING:
    from conformance._http import Exchange
    from conformance.checks._target import Target

__all__ = [
    "CHECKS",
    "Case",
    "Check",
    "CheckFailure",
    "CheckFunction",
    "NotApplicable",
    "Registry",
    "cases_for",
]


class CheckFunction(Protocol):
    """Runs one case against the target; returns when the requirement holds."""

    def __call__(self, target: Target, case: str | None) -> None: ...


CaseNames = Sequence[str] | Callable[[Profile], Sequence[str]]


class CheckFailure(ConformanceError):
    """The target violated the requirement: what was expected, and the exchange that showed
    otherwise (``None`` when no single request tells the story)."""

    def __init__(
        self, headline: str, *, expected: str, exchange: Exchange | None, detail: str = ""
    ) -> None:
        self.headline = headline
        self.expected = expected
        self.exchange = exchange
        self.detail = detail
        super().__init__(headline)


class NotApplicable(ConformanceError):
    """The case cannot be run against this profile (the reason says why)."""


@dataclass(frozen=True, kw_only=True)
class Check:
    key: str
    run: CheckFunction
    cases: CaseNames = ()
    slow: bool = False

    def case_names(self, profile: Profile) -> tuple[str | None, ...]:
        """The check's cases for a profile; ``(None,)`` when it is a single test."""
        names = self.cases(profile) if callable(self.cases) else self.cases
        return tuple(names) or (None,)


class Registry:
    """Checks by requirement key, each key registered once."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def register(
        self, key: str, *, cases: CaseNames = (), slow: bool = False
    ) -> Callable[[CheckFunction], CheckFunction]:
        """Decorator: register ``run`` as the check for requirement ``key``."""

        def decorate(run: CheckFunction) -> CheckFunction:
            if key in self._checks:
                raise ValueError(f"a check for {key!r} is already registered")
            self._checks[key] = Check(key=key, run=run, cases=cases, slow=slow)
            return run

        return decorate

    def get(self, key: str) -> Check | None:
        return self._checks.get(key)

    def keys(self) -> tuple[str, ...]:
        return tuple(self._checks)

    def __contains__(self, key: object) -> bool:
        return key in self._checks

    def __iter__(self) -> Iterator[Check]:
        return iter(self._checks.values())

    def __len__(self) -> int:
        return len(self._checks)


@dataclass(frozen=True, kw_only=True)
class Case:
    """One test: a requirement, its check (``None`` when it has none) and the case name."""

    requirement: Requirement
    check: Check | None
    name: str | None = None

    @property
    def id(self) -> str:
        return f"{self.requirement.id}-{self.name}" if self.name else self.requirement.id

    @property
    def skip_reason(self) -> str | None:
        """Why this case cannot run at all, or ``None``."""
        if self.requirement.verification == "inspection":
            return "verified by inspection: not observable from outside"
        if self.check is None:
            return f"no check is registered for {self.requirement.key}"
        return None


def cases_for(registry: Registry, profile: Profile, role: str) -> list[Case]:
    """Every case of the profile's requirements for ``role``, in catalogue order."""
    out: list[Case] = []
    for requirement in profile.requirements:
        if requirement.role != role:
            continue
        check = registry.get(requirement.key)
        probe = Case(requirement=requirement, check=check)
        if check is None or probe.skip_reason is not None:
            out.append(probe)
            continue
        out += [
            Case(requirement=requirement, check=check, name=n) for n in check.case_names(profile)
        ]
    return out


#: The checks this package ships; the ``receiver_*`` modules register into it on import.
CHECKS = Registry()
