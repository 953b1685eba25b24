"""The receiver-role suite: one test per case of each receiver requirement of the profile.

The test ids carry the requirement id (``test_receiver[zaits.receiver.raw-body-pretty]``).
"""

from __future__ import annotations

import pytest

from conformance._engine.config import SuiteConfig
from conformance._engine.registry import Case
from conformance._engine.report import Report
from conformance._suite._judging import run_case
from conformance.checks.receiver import Target


def test_receiver(
    receiver_case: Case,
    conformance_target: Target,
    conformance_config: SuiteConfig,
    conformance_report: Report,
    request: pytest.FixtureRequest,
) -> None:
    """The target meets the requirement in this case (graded: MUST fails, SHOULD not-strict)."""
    run_case(
        receiver_case,
        conformance_target,
        strict=conformance_config.strict,
        report=conformance_report,
        request=request,
        replay_hint=conformance_target.replay_hint,
    )
