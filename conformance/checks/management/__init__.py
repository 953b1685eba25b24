"""The management role's black-box checks, registered by requirement key in ``CHECKS``:
``endpoints`` (answers, client errors, limits, URLs, secrets, paging, the catalogue),
``access`` (authentication, tenants kept apart), ``deliveries`` (the test route and the
delivery log, judged against the capture server) and ``fuzz`` (requests generated from the
API's OpenAPI document). Each check is given a ``ManagementApi``.
"""

from conformance.checks.management import (  # noqa: F401 - registers checks
    access,
    deliveries,
    endpoints,
    fuzz,
)
from conformance.checks.management._api import REDACTED, ApiExchange, ManagementApi
from conformance.checks.management._checks import CHECKS
from conformance.checks.management._preflight import ManagementDiagnosis, preflight

__all__ = ["CHECKS", "REDACTED", "ApiExchange", "ManagementApi", "ManagementDiagnosis", "preflight"]
