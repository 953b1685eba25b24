"""The graded report of one run: outcomes per requirement, the JSON file and the terminal
summary (grading itself is ``conformance._engine.runner``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from conformance._engine.config import SuiteConfig
from conformance._engine.registry import Case
from conformance._engine.runner import CaseResult, Outcome
from conformance._requirements import Requirement

__all__ = ["Notice", "Report", "format_counts"]


class Notice(Protocol):
    """One reason, found before the checks, that explains a run failing everywhere (a wrong
    secret, a wrong URL): the terminal shows it first and the JSON report carries it."""

    def lines(self) -> list[str]: ...

    def as_dict(self) -> dict[str, Any]: ...


class Report:
    """Collects case results for one target, profile and role.

    ``requirements`` are every requirement of the role; ``reasons`` say why one that never
    runs is skipped (by default: not run, for example deselected with ``-m``).
    """

    def __init__(
        self,
        *,
        target: str,
        profile: str,
        role: str,
        strict: bool,
        requirements: Sequence[Requirement],
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        self.target = target
        self.profile = profile
        self.role = role
        self.strict = strict
        self.requirements = tuple(requirements)
        self._reasons = dict(reasons or {})
        self._cases: dict[str, list[CaseResult]] = {r.id: [] for r in self.requirements}
        #: Why the correctly signed delivery sent before the checks was not acknowledged.
        self.diagnosis: Notice | None = None

    @classmethod
    def for_suite(cls, suite: SuiteConfig, cases: Iterable[Case]) -> Report:
        """An empty report for every requirement of the suite's role; requirements whose
        cases cannot run (inspection, no check) carry the reason."""
        return cls(
            target=suite.target_url,
            profile=suite.profile.name,
            role=suite.role,
            strict=suite.strict,
            requirements=[r for r in suite.profile.requirements if r.role == suite.role],
            reasons={c.requirement.id: c.skip_reason for c in cases if c.skip_reason},
        )

    def record(self, requirement_id: str, result: CaseResult) -> None:
        self._cases[requirement_id].append(result)

    def cases(self, requirement_id: str) -> tuple[CaseResult, ...]:
        return tuple(self._cases[requirement_id])

    def outcome(self, requirement_id: str) -> Outcome:
        cases = self._cases[requirement_id]
        return max((c.outcome for c in cases), key=lambda o: o.rank, default=Outcome.SKIPPED)

    def message(self, requirement_id: str) -> str:
        """One line: the worst cases' summaries, or how many passed, or why it was skipped."""
        cases = self._cases[requirement_id]
        worst = self.outcome(requirement_id)
        if not cases:
            return self._reasons.get(requirement_id, "not run")
        if worst is Outcome.PASSED:
            return f"{len(cases)} case{'' if len(cases) == 1 else 's'} passed"
        return "; ".join(c.summary for c in cases if c.outcome is worst)

    def summary(self) -> dict[str, int]:
        counts = {outcome.value: 0 for outcome in Outcome}
        for requirement in self.requirements:
            counts[self.outcome(requirement.id).value] += 1
        return counts

    @property
    def must_failed(self) -> bool:
        return self.summary()[Outcome.FAILED.value] > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "profile": self.profile,
            "role": self.role,
            "strict": self.strict,
            "summary": self.summary(),
            "diagnosis": None if self.diagnosis is None else self.diagnosis.as_dict(),
            "requirements": [self._entry(r) for r in self.requirements],
        }

    def _entry(self, requirement: Requirement) -> dict[str, Any]:
        return {
            "id": requirement.id,
            "level": requirement.level,
            "role": requirement.role,
            "text": requirement.text,
            "outcome": self.outcome(requirement.id).value,
            "message": self.message(requirement.id),
            "cases": [
                {"id": c.id, "outcome": c.outcome.value, "message": c.message or c.summary}
                for c in self._cases[requirement.id]
            ],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.as_dict(), indent=2, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")

    def lines(self) -> list[str]:
        """The terminal summary: one line per requirement, then the counts."""
        rows = [(self.outcome(r.id), r.id, self.message(r.id)) for r in self.requirements]
        width = max((len(outcome.label) for outcome, _, _ in rows), default=0)
        out = [f"{outcome.label:<{width}}  {rid}: {message}" for outcome, rid, message in rows]
        out.append(format_counts(self.summary().items()))
        return out

    def styled_lines(self) -> list[tuple[str, dict[str, bool]]]:
        """``lines()`` with terminal markup: colour by outcome, the counts in bold."""
        lines = self.lines()
        styles = [_MARKUP[self.outcome(r.id)] for r in self.requirements] + [{"bold": True}]
        styled = list(zip(lines, styles, strict=True))
        if self.diagnosis is None:
            return styled
        return [(line, {"red": True}) for line in self.diagnosis.lines()] + styled


_MARKUP: Mapping[Outcome, dict[str, bool]] = {
    Outcome.FAILED: {"red": True},
    Outcome.NOT_STRICT: {"yellow": True},
    Outcome.PASSED: {"green": True},
    Outcome.SKIPPED: {},
}


def format_counts(counts: Iterable[tuple[str, int]]) -> str:
    """``12 passed, 1 failed, 0 not-strict, 2 skipped``."""
    return ", ".join(f"{n} {name}" for name, n in counts)
