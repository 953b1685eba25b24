"""Grading one case inside a suite test, the same way for every role."""

from __future__ import annotations

from typing import Any

import pytest

from conformance._engine.registry import Case
from conformance._engine.report import Report
from conformance._engine.runner import Outcome, judge
from conformance.plugin import NOT_STRICT_PROPERTY


def run_case(
    case: Case,
    context: Any,
    *,
    strict: bool,
    report: Report,
    request: pytest.FixtureRequest,
    replay_hint: str = "",
) -> None:
    """Judge the case, record it in the report, and end the pytest test accordingly."""
    result, fails = judge(case, context, strict=strict, replay_hint=replay_hint)
    report.record(case.requirement.id, result)
    if result.outcome is Outcome.SKIPPED:
        pytest.skip(result.summary)
    if fails:
        pytest.fail(result.message, pytrace=False)
    if result.outcome is Outcome.NOT_STRICT:
        request.node.user_properties.append((NOT_STRICT_PROPERTY, result.summary))
