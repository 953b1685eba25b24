"""The sender-role suite: one test per case of each sender requirement of the profile,
judged on the scenarios the run triggered concurrently at session start.

The test ids carry the requirement id (``test_sender[zaits.sender.retry-schedule]``).
"""

from __future__ import annotations

import pytest

from conformance._engine.config import SuiteConfig
from conformance._engine.registry import Case
from conformance._engine.report import Report
from conformance._suite._judging import run_case
from conformance.checks.sender import SenderRun


def test_sender(
    sender_case: Case,
    conformance_sender_run: SenderRun,
    conformance_config: SuiteConfig,
    conformance_report: Report,
    request: pytest.FixtureRequest,
) -> None:
    """The sender meets the requirement in this case (graded: MUST fails, SHOULD not-strict)."""
    run_case(
        sender_case,
        conformance_sender_run,
        strict=conformance_config.strict,
        report=conformance_report,
        request=request,
    )
