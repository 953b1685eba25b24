"""The sender role's check registry, and the scenarios each check judges: a run starts
only the scenarios its selected checks need (``-m "not slow"`` leaves out the one that
holds an answer past the timeout)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from conformance._engine.registry import CaseNames, CheckFunction, Registry
from conformance.checks.sender._run import SenderRun

__all__ = ["CHECKS", "NEEDS", "register", "scenarios_for"]

CHECKS: Registry[SenderRun] = Registry("sender")
#: The scenarios each check (by its primary key) judges.
NEEDS: dict[str, tuple[str, ...]] = {}


def register(
    key: str,
    *,
    scenarios: Sequence[str],
    cases: CaseNames = (),
    slow: bool = False,
    also: Sequence[str] | Mapping[str, Sequence[str] | None] = (),
) -> Callable[[CheckFunction[SenderRun]], CheckFunction[SenderRun]]:
    """``CHECKS.register``, recording the scenarios the check judges."""

    def decorate(run: CheckFunction[SenderRun]) -> CheckFunction[SenderRun]:
        CHECKS.register(key, cases=cases, slow=slow, also=also)(run)
        NEEDS[key] = tuple(scenarios)
        return run

    return decorate


def scenarios_for(keys: Iterable[str]) -> set[str]:
    """The scenarios the checks with these requirement keys judge."""
    out: set[str] = set()
    for key in keys:
        check = CHECKS.get(key)
        if check is not None:
            out.update(NEEDS[check.key])
    return out
