"""Check registries: requirement keys mapped to the checks that judge them, one registry
per role, generic over what that role's checks are given (the role's *context*: a receiver
target, a sender capture run, a management API client).

A check is registered under a requirement *key* (``receiver.raw-body``), so one check serves
every profile that carries the requirement. It may split into named cases (``truncated``,
``pretty``), fixed or computed from the profile; each case is one pytest test whose id is
the requirement id plus the case name (``zaits.receiver.rejects-bad-signature-truncated``).

A check signals its result by returning (passed) or raising ``CheckFailure`` (violated) or
``NotApplicable`` (skipped, with the reason): see ``conformance._engine.failures``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from conformance._profile import Profile
from conformance._requirements import Requirement
from conformance._roles import Role

__all__ = ["Case", "CaseNames", "Check", "CheckFunction", "Registry", "cases_for"]

Context = TypeVar("Context", contravariant=True)
C = TypeVar("C")


class CheckFunction(Protocol[Context]):
    """Runs one case against the role's context; returns when the requirement holds."""

    def __call__(self, context: Context, case: str | None, /) -> None: ...


CaseNames = Sequence[str] | Callable[[Profile], Sequence[str]]


@dataclass(frozen=True, kw_only=True)
class Check(Generic[C]):
    """A check: the requirement key it is registered under, and the keys of requirements
    that restate it for one provider (``also``: GitHub's ``sender.sha256-signature`` is
    ``sender.signs-raw-body`` for GitHub), which it judges the same way."""

    key: str
    run: CheckFunction[C]
    cases: CaseNames = ()
    slow: bool = False
    #: The other keys, each with the cases it is judged by (``None``: all of them).
    also: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *self.also)

    def case_names(self, profile: Profile, key: str | None = None) -> tuple[str | None, ...]:
        """The check's cases for a profile (for the requirement ``key``, which may judge only
        some of them); ``(None,)`` when it is a single test."""
        names = tuple(self.cases(profile) if callable(self.cases) else self.cases)
        only = self.also.get(key) if key is not None else None
        if only is not None:
            names = tuple(n for n in names if n in only)
            if not names:
                raise ValueError(f"{key} judges cases {only}, which {profile.name} lacks")
        return names or (None,)


class Registry(Generic[C]):
    """One role's checks by requirement key, each key registered once; every key starts
    with the role's name (``receiver.``)."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self._checks: list[Check[C]] = []
        self._by_key: dict[str, Check[C]] = {}

    def register(
        self,
        key: str,
        *,
        cases: CaseNames = (),
        slow: bool = False,
        also: Sequence[str] | Mapping[str, Sequence[str] | None] = (),
    ) -> Callable[[CheckFunction[C]], CheckFunction[C]]:
        """Decorator: register ``run`` as the check for requirement ``key``, and for the keys
        in ``also``: requirements that restate it for one provider, judged by the same check
        (by all its cases, or by the cases a mapping names for the key)."""
        others = dict.fromkeys(also) if not isinstance(also, Mapping) else dict(also)
        for name in (key, *others):
            if not name.startswith(f"{self.role}."):
                raise ValueError(f"{name!r} is not a {self.role} requirement key")

        def decorate(run: CheckFunction[C]) -> CheckFunction[C]:
            restricted = {k: None if v is None else tuple(v) for k, v in others.items()}
            check = Check(key=key, run=run, cases=cases, slow=slow, also=restricted)
            for name in check.keys:
                if name in self._by_key:
                    raise ValueError(f"a check for {name!r} is already registered")
            for name in check.keys:
                self._by_key[name] = check
            self._checks.append(check)
            return run

        return decorate

    def get(self, key: str) -> Check[C] | None:
        return self._by_key.get(key)

    @contextmanager
    def replaced(self, key: str, run: CheckFunction[C]) -> Iterator[Check[C]]:
        """The check for ``key`` (under all its keys) runs ``run`` instead for as long as the
        block runs; yields the original. Meta-tests gut or weaken checks this way to prove
        that a corpus of broken implementations notices."""
        original = self._by_key[key]
        mutant = replace(original, run=run)
        self._swap(original, mutant)
        try:
            yield original
        finally:
            self._swap(mutant, original)

    def _swap(self, old: Check[C], new: Check[C]) -> None:
        self._checks[self._checks.index(old)] = new
        for name in old.keys:
            self._by_key[name] = new

    def keys(self) -> tuple[str, ...]:
        """The primary key of every check, in registration order."""
        return tuple(check.key for check in self._checks)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[Check[C]]:
        return iter(self._checks)

    def __len__(self) -> int:
        return len(self._checks)


@dataclass(frozen=True, kw_only=True)
class Case:
    """One test: a requirement, its check (``None`` when it has none) and the case name."""

    requirement: Requirement
    check: Check[Any] | None
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


def cases_for(registry: Registry[Any], profile: Profile) -> list[Case]:
    """Every case of the profile's requirements for the registry's role, in catalogue
    order."""
    out: list[Case] = []
    for requirement in profile.requirements:
        if requirement.role != registry.role:
            continue
        check = registry.get(requirement.key)
        probe = Case(requirement=requirement, check=check)
        if check is None or probe.skip_reason is not None:
            out.append(probe)
            continue
        names = check.case_names(profile, requirement.key)
        out += [Case(requirement=requirement, check=check, name=n) for n in names]
    return out
