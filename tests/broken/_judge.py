"""Judge a receiver with the suite's checks in this process, case by case, exactly as the
plugin's test does (``conformance._engine.runner.judge``), without a pytest run per receiver.

The corpus tests run every broken receiver this way; one control run per profile goes through
the plugin in a subprocess (``tests/_suite_runner.py``), so the plugin path is covered too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from conformance import Profile
from conformance._engine.registry import Case, Check, CheckFunction, cases_for
from conformance._engine.runner import CaseResult, Outcome, judge
from conformance.checks.receiver import CHECKS, Target, make_client

__all__ = ["VIOLATED", "Verdicts", "disabled", "judge_receiver", "replaced"]

VIOLATED = frozenset({Outcome.FAILED, Outcome.NOT_STRICT})
_CRASHED = "the check itself failed"


@dataclass(frozen=True)
class Verdicts:
    """Every case's result against one receiver, in catalogue order."""

    profile: Profile
    results: tuple[tuple[Case, CaseResult], ...]

    def violated(self) -> dict[str, set[str | None]]:
        """Requirement key -> the names of its violated cases."""
        out: dict[str, set[str | None]] = {}
        for case, result in self.results:
            if result.outcome in VIOLATED:
                out.setdefault(case.requirement.key, set()).add(case.name)
        return out

    def outcome(self, key: str) -> Outcome:
        """The requirement's grade: its worst case's outcome."""
        outcomes = [r.outcome for c, r in self.results if c.requirement.key == key]
        return max(outcomes, key=lambda o: o.rank, default=Outcome.SKIPPED)

    def describe(self, keys: set[str]) -> str:
        return "\n".join(
            f"  {case.id}: {result.outcome.value}: {result.message[:800] or result.summary}"
            for case, result in self.results
            if case.requirement.key in keys and result.outcome is not Outcome.PASSED
        )


def judge_receiver(url: str, profile: Profile, secret: str, *, timeout: float) -> Verdicts:
    """Run every receiver case of the profile against ``url``. A check that crashes (a bug in
    the suite, not in the receiver) raises instead of counting as a catch."""
    results = []
    with make_client(timeout) as client:
        target = Target(url=url, profile=profile, secret=secret, timeout=timeout, client=client)
        for case in cases_for(CHECKS, profile):
            result, _ = judge(case, target, strict=False)
            if result.summary.startswith(_CRASHED):
                raise AssertionError(result.message)
            results.append((case, result))
    return Verdicts(profile, tuple(results))


def _passes(target: Target, case: str | None) -> None:
    """A check gutted to pass whatever the receiver does."""


@contextmanager
def replaced(key: str, run: CheckFunction, case: str | None = None) -> Iterator[Check]:
    """The check for ``key`` replaced by ``run`` (only for ``case`` when one is named) for as
    long as the block runs; yields the original check. The meta-tests weaken checks this way
    and prove that the corpus notices."""
    original = CHECKS.get(key)
    assert original is not None, f"no check is registered for {key}"
    kept = original.run

    def mutant(target: Target, name: str | None) -> None:
        return run(target, name) if case is None or name == case else kept(target, name)

    with CHECKS.replaced(key, mutant):
        yield original


def disabled(key: str, case: str | None = None) -> AbstractContextManager[Check]:
    """The check for ``key`` gutted to always pass (only for ``case`` when one is named)."""
    return replaced(key, _passes, case)
