"""The receiver-role suite: one test per case of each receiver requirement of the profile.

The test ids carry the requirement id (``test_receiver[zaits.receiver.raw-body-pretty]``).
"""

from __future__ import annotations

import pytest

from conformance._config import SuiteConfig
from conformance._report import Outcome, Report, judge
from conformance.checks import Case, Target
from conformance.plugin import NOT_STRICT_PROPERTY


def test_receiver(
    receiver_case: Case,
    conformance_target: Target,
    conformance_config: SuiteConfig,
    conformance_report: Report,
    request: pytest.FixtureRequest,
) -> None:
    """The target meets the requirement in this case (graded: MUST fails, SHOULD not-strict)."""
    result, fails = judge(receiver_case, conformance_target, strict=conformance_config.strict)
    conformance_report.record(receiver_case.requirement.id, result)
    if result.outcome is Outcome.SKIPPED:
        pytest.skip(result.summary)
    if fails:
        pytest.fail(result.message, pytrace=False)
    if result.outcome is Outcome.NOT_STRICT:
        request.node.user_properties.append((NOT_STRICT_PROPERTY, result.summary))
