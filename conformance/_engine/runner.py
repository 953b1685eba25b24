"""Running one case and grading it, for any role.

Grades follow Autobahn's testsuite and h2spec: a MUST violation *fails*; a SHOULD (or MAY)
violation is *not-strict*, reported without failing the run unless ``--strict`` is on (a MAY
violation never fails the run); a requirement that was not run (verified by inspection,
deselected) is *skipped*. A requirement checked by several cases takes its worst case's
grade.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass
from typing import Any

from conformance._engine.exhibits import Exhibit
from conformance._engine.failures import CheckFailure, NotApplicable
from conformance._engine.registry import Case
from conformance._requirements import Requirement

__all__ = ["CaseResult", "Outcome", "Verdict", "format_failure", "grade", "judge"]


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


@dataclass(frozen=True, kw_only=True)
class CaseResult:
    """One case of a requirement: ``summary`` is one line, ``message`` the full text; a
    failure also keeps its parts for reports that lay them out (``expected``, ``detail``
    and the ``exhibit``)."""

    id: str
    outcome: Outcome
    summary: str = ""
    message: str = ""
    expected: str = ""
    detail: str = ""
    exhibit: Exhibit | None = None


def grade(requirement: Requirement, *, violated: bool, strict: bool) -> Verdict:
    """A MUST violation fails; a SHOULD violation is not-strict, failing the test only in
    strict mode; a MAY violation is not-strict and never fails (MAY is optional behaviour:
    reported, never demanded)."""
    if not violated:
        return Verdict(outcome=Outcome.PASSED, fails_test=False)
    if requirement.level == "MUST":
        return Verdict(outcome=Outcome.FAILED, fails_test=True)
    return Verdict(outcome=Outcome.NOT_STRICT, fails_test=strict and requirement.level == "SHOULD")


def format_failure(
    *,
    requirement: Requirement,
    case_id: str,
    headline: str,
    expected: str,
    exhibit: Exhibit | None,
    detail: str = "",
) -> str:
    """The message a failed check shows: the requirement, what was expected, the detail,
    then the evidence (an exchange or a capture) with its reproduction."""
    lines = [
        f"{case_id}: {headline}",
        f"Requirement {requirement.id} [{requirement.level}]: {requirement.text}",
        f"Expected: {expected}",
    ]
    if detail:
        lines.append(detail)
    if exhibit is not None:
        lines += exhibit.render()
    return "\n".join(lines)


def judge(
    case: Case, context: Any, *, strict: bool, replay_hint: str = ""
) -> tuple[CaseResult, bool]:
    """Run one case against the role's context and grade it: the result, and whether its
    pytest test fails. ``replay_hint`` goes with every reproduction the failure shows."""
    if case.check is None or case.skip_reason is not None:
        return CaseResult(
            id=case.id, outcome=Outcome.SKIPPED, summary=case.skip_reason or ""
        ), False
    try:
        case.check.run(context, case.name)
    except NotApplicable as exc:
        return CaseResult(id=case.id, outcome=Outcome.SKIPPED, summary=str(exc)), False
    except CheckFailure as failure:
        verdict = grade(case.requirement, violated=True, strict=strict)
        evidence = failure.evidence
        exhibit = None if evidence is None else evidence.exhibit(replay_hint=replay_hint)
        message = format_failure(
            requirement=case.requirement,
            case_id=case.id,
            headline=failure.headline,
            expected=failure.expected,
            exhibit=exhibit,
            detail=failure.detail,
        )
        summary = f"{case.name}: {failure.headline}" if case.name else failure.headline
        result = CaseResult(
            id=case.id,
            outcome=verdict.outcome,
            summary=summary,
            message=message,
            expected=failure.expected,
            detail=failure.detail,
            exhibit=exhibit,
        )
        return result, verdict.fails_test
    except Exception as exc:  # a bug in a check must never pass as conformance
        summary = f"the check itself failed: {type(exc).__name__}: {exc}"
        message = f"{case.id}: {summary}\n{traceback.format_exc()}"
        return CaseResult(
            id=case.id, outcome=Outcome.FAILED, summary=summary, message=message
        ), True
    return CaseResult(id=case.id, outcome=Outcome.PASSED), False
