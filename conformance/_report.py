"""Graded outcomes per requirement, the JSON report and the terminal summary.

Grades follow Autobahn's testsuite and h2spec: a MUST violation *fails*; a SHOULD (or MAY)
violation is *not-strict*, reported without failing the run unless ``--strict`` is on (a MAY
violation never fails the run);
a requirement that was not run (verified by inspection, deselected) is *skipped*. A
requirement checked by several cases takes its worst case's grade.
"""

from __future__ import annotations

import enum
import json
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance._config import SuiteConfig
from conformance._http import format_failure
from conformance._requirements import Requirement
from conformance.checks import Case, CheckFailure, NotApplicable, Target
from conformance.checks._preflight import Diagnosis

__all__ = ["CaseResult", "Outcome", "Report", "Verdict", "format_counts", "grade", "judge"]


class Outcome(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_STRICT = "not-strict"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        """Worse outcomes rank higher; a requirement takes its worst case's outcome."""
        return _RANK[self]

    @property
    def label(self) -> str:
        text: str = self.value
        return text.upper() if self in (Outcome.FAILED, Outcome.NOT_STRICT) else text


_RANK = {Outcome.SKIPPED: 0, Outcome.PASSED: 1, Outcome.NOT_STRICT: 2, Outcome.FAILED: 3}


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """How one case is graded, and whether its pytest test fails."""

    outcome: Outcome
    fails_test: bool


def grade(requirement: Requirement, *, violated: bool, strict: bool) -> Verdict:
    """A MUST violation fails; a SHOULD violation is not-strict, failing the test only in
    strict mode; a MAY violation is not-strict and never fails (MAY is optional behaviour:
    reported, never demanded)."""
    if not violated:
        return Verdict(outcome=Outcome.PASSED, fails_test=False)
    if requirement.level == "MUST":
        return Verdict(outcome=Outcome.FAILED, fails_test=True)
    return Verdict(outcome=Outcome.NOT_STRICT, fails_test=strict and requirement.level == "SHOULD")


def judge(case: Case, target: Target, *, strict: bool) -> tuple[CaseResult, bool]:
    """Run one case against the target and grade it: the result, and whether its pytest test
    fails."""
    if case.check is None or case.skip_reason is not None:
        return CaseResult(
            id=case.id, outcome=Outcome.SKIPPED, summary=case.skip_reason or ""
        ), False
    try:
        case.check.run(target, case.name)
    except NotApplicable as exc:
        return CaseResult(id=case.id, outcome=Outcome.SKIPPED, summary=str(exc)), False
    except CheckFailure as failure:
        verdict = grade(case.requirement, violated=True, strict=strict)
        message = format_failure(
            requirement=case.requirement,
            case_id=case.id,
            headline=failure.headline,
            expected=failure.expected,
            exchange=failure.exchange,
            detail=failure.detail,
            replay_hint=target.replay_hint,
        )
        summary = f"{case.name}: {failure.headline}" if case.name else failure.headline
        result = CaseResult(id=case.id, outcome=verdict.outcome, summary=summary, message=message)
        return result, verdict.fails_test
    except Exception as exc:  # a bug in a check must never pass as conformance
        summary = f"the check itself failed: {type(exc).__name__}: {exc}"
        message = f"{case.id}: {summary}\n{traceback.format_exc()}"
        return CaseResult(
            id=case.id, outcome=Outcome.FAILED, summary=summary, message=message
        ), True
    return CaseResult(id=case.id, outcome=Outcome.PASSED), False


@dataclass(frozen=True, kw_only=True)
class CaseResult:
    """One case of a requirement: ``summary`` is one line, ``message`` the full text."""

    id: str
    outcome: Outcome
    summary: str = ""
    message: str = ""


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
        self.diagnosis: Diagnosis | None = None

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
