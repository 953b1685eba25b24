"""The graded report of one run: outcomes per requirement, the JSON and HTML files and the
terminal summary (grading itself is ``conformance._engine.runner``).

The files are redacted (``conformance._engine.redaction``): the secrets and keys the run
was told of, and the credentials the target's answers hold, never reach them. The
terminal shows everything: it is the screen of whoever ran the suite.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from conformance import __version__
from conformance._engine.config import SuiteConfig
from conformance._engine.exhibits import Exhibit, Timeline
from conformance._engine.redaction import Redactor
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
        #: The sender scenarios' timelines, in the order they were defined.
        self.timelines: list[Timeline] = []
        self.started = datetime.now(UTC)
        self._secrets: set[str] = set()

    @classmethod
    def for_suite(cls, suite: SuiteConfig, cases: Iterable[Case]) -> Report:
        """An empty report for every requirement of the suite's role; requirements whose
        cases cannot run (inspection, no check) carry the reason. The suite's credentials
        are redacted from its files."""
        report = cls(
            target=suite.target_url,
            profile=suite.profile.name,
            role=suite.role,
            strict=suite.strict,
            requirements=[r for r in suite.profile.requirements if r.role == suite.role],
            reasons={c.requirement.id: c.skip_reason for c in cases if c.skip_reason},
        )
        report.redact(*suite.secrets())
        return report

    def redact(self, *values: str | None) -> None:
        """Keep these values out of the report's files."""
        self._secrets.update(v for v in values if v)

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

    def verdict(self) -> str:
        """The run in one sentence, as the report's header gives it."""
        counts = self.summary()
        if counts[Outcome.FAILED.value]:
            n = counts[Outcome.FAILED.value]
            return f"not conformant: {n} MUST requirement{'' if n == 1 else 's'} failed"
        if self.diagnosis is not None:
            return "inconclusive: see the diagnosis"
        n = counts[Outcome.NOT_STRICT.value]
        if n and self.strict:
            return f"not conformant under --strict: {n} SHOULD/MAY requirement(s) not met"
        if n:
            return f"conformant: every MUST requirement passes; {n} SHOULD/MAY not met"
        return "conformant: every requirement checked passes"

    def as_dict(self) -> dict[str, Any]:
        """The report as the JSON file holds it (redacted)."""
        data = {
            "target": self.target,
            "profile": self.profile,
            "role": self.role,
            "strict": self.strict,
            "date": self.started.isoformat(timespec="seconds"),
            "version": _version(),
            "verdict": self.verdict(),
            "summary": self.summary(),
            "diagnosis": _notice(self.diagnosis),
            "requirements": [self._entry(r) for r in self.requirements],
            "scenarios": [t.as_dict() for t in self.timelines],
        }
        redacted: dict[str, Any] = Redactor(self._secrets).data(data)
        return redacted

    def _entry(self, requirement: Requirement) -> dict[str, Any]:
        source = requirement.source
        return {
            "id": requirement.id,
            "key": requirement.key,
            "level": requirement.level,
            "role": requirement.role,
            "text": requirement.text,
            "source": {"document": source.origin, "url": source.url, "quote": source.quote},
            "outcome": self.outcome(requirement.id).value,
            "message": self.message(requirement.id),
            "cases": [_case(c) for c in self._cases[requirement.id]],
        }  # fmt: skip

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.as_dict(), indent=2, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")

    def write_html(self, path: Path) -> None:
        """The self-contained HTML page of this report."""
        from conformance._engine.html import render_report  # Jinja2 only when asked for

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_report(self.as_dict()), encoding="utf-8")

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


def _notice(notice: Notice | None) -> dict[str, Any] | None:
    """The diagnosis's own fields, and the lines the terminal showed."""
    return None if notice is None else {**notice.as_dict(), "lines": notice.lines()}


def _case(result: CaseResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "outcome": result.outcome.value,
        "summary": result.summary,
        "message": result.message or result.summary,
        "expected": result.expected,
        "detail": result.detail,
        **_exhibit(result.exhibit),
    }


def _exhibit(exhibit: Exhibit | None) -> dict[str, Any]:
    if exhibit is None:
        return {"evidence": [], "reproduction": None, "timeline": None}
    reproduction = exhibit.reproduction
    return {
        "evidence": list(exhibit.lines),
        "reproduction": None if reproduction is None else {
            "title": reproduction.title, "hint": reproduction.hint,
            "command": reproduction.command,
        },
        "timeline": None if exhibit.timeline is None else exhibit.timeline.as_dict(),
    }  # fmt: skip


def _version() -> str:
    try:
        return metadata.version("webhook-conformance")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return __version__


def format_counts(counts: Iterable[tuple[str, int]]) -> str:
    """``12 passed, 1 failed, 0 not-strict, 2 skipped``."""
    return ", ".join(f"{n} {name}" for name, n in counts)
