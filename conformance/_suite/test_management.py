"""The management-role suite: one test per case of each management requirement of the
profile, judged against the API at ``--target-url``.

The test ids carry the requirement id (``test_management[zta.management.https-only-create]``).
"""

from __future__ import annotations

import pytest

from conformance._engine.config import SuiteConfig
from conformance._engine.registry import Case
from conformance._engine.report import Report
from conformance._suite._judging import run_case
from conformance.checks.management import ManagementApi


def test_management(
    management_case: Case,
    conformance_management_api: ManagementApi,
    conformance_config: SuiteConfig,
    conformance_report: Report,
    request: pytest.FixtureRequest,
) -> None:
    """The API meets the requirement in this case (graded: MUST fails, SHOULD not-strict).
    What the case created is deleted after it, so that a site-scoped limit (ZTA: 10 per
    site) is never reached by the suite's own leftovers."""
    try:
        run_case(
            management_case,
            conformance_management_api,
            strict=conformance_config.strict,
            report=conformance_report,
            request=request,
        )
    finally:
        conformance_management_api.clean_up()
