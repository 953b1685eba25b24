"""Requests generated from the API's OpenAPI document by Schemathesis, judged by five of
its checks, one case each.

The document is the one the profile writes (``conformance._openapi.openapi_document``); the
base URL and the ``Authorization`` header are set at run time. Every operation is fuzzed in
both of Schemathesis's modes (valid and invalid bodies, query and path parameters), bounded
by ``EXAMPLES`` per operation and mode and by ``BUDGET_SECONDS`` in all. The requests are
made once, on the first case, and every check is applied to each answer; each case then
reports its own check's failures (and how many requests were made). Endpoints the fuzzer
creates are deleted afterwards, where the API has a delete route.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance._engine.failures import CheckFailure
from conformance._openapi import openapi_document
from conformance._profile import resolve_pointer
from conformance.checks.management._api import ManagementApi
from conformance.checks.management._checks import CHECKS

__all__ = ["BUDGET_SECONDS", "CHECK_NAMES", "EXAMPLES", "FuzzResult", "fuzz"]

#: Examples drawn per operation and generation mode, and the time the whole fuzzing may take.
EXAMPLES = 8
BUDGET_SECONDS = 30.0
#: The Schemathesis checks, in the order the cases run.
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
)


@dataclass(kw_only=True)
class FuzzResult:
    """What the fuzzing found: the requests made, and each check's failures (a title and
    the curl command that replays it, the key redacted)."""

    requests: int = 0
    failures: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def _checks() -> dict[str, Callable[..., Any]]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        ignored_auth,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    return {
        "not_a_server_error": not_a_server_error,
        "status_code_conformance": status_code_conformance,
        "response_schema_conformance": response_schema_conformance,
        "negative_data_rejection": negative_data_rejection,
        "ignored_auth": ignored_auth,
    }


def fuzz(api: ManagementApi) -> FuzzResult:
    """Fuzz every operation of the API (see the module docstring)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.core.failures import Failure, FailureGroup
    from schemathesis.core.result import Err

    checks = _checks()
    result = FuzzResult(failures={name: [] for name in CHECK_NAMES})
    schema = schemathesis.openapi.from_dict(openapi_document(api.profile))
    key = api.keys["main"]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + BUDGET_SECONDS
    created_by = api.route("create") if api.has("create") else None

    def record(name: str, title: str, curl: str) -> None:
        found = result.failures[name]
        if len(found) < 5 and all(title != seen for seen, _ in found):
            found.append((title, curl.replace(str(key), "<redacted>") if key else curl))

    for each in schema.get_all_operations():
        if isinstance(each, Err):  # the profile's own document: a bug here, not the API's
            raise each.err()
        operation = each.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                if time.monotonic() > deadline:
                    return
                response = case.call(base_url=api.api_base, headers=headers, timeout=api.timeout)
                result.requests += 1
                if (
                    created_by is not None
                    and case.method.upper() == created_by.method
                    and case.path == created_by.path
                    and response.status_code // 100 == 2
                ):
                    _remember(api, response)
                curl = case.as_curl_command(headers=headers)
                for name in CHECK_NAMES:
                    try:
                        case.validate_response(response, checks=[checks[name]], headers=headers)
                    except FailureGroup as group:
                        for failure in group.exceptions:
                            record(name, f"{case.method} {case.path}: {failure.title}", curl)
                    except Failure as failure:
                        record(name, f"{case.method} {case.path}: {failure.title}", curl)

            run()
    api.clean_up()
    return result


def _remember(api: ManagementApi, response: Any) -> None:
    try:
        document = response.json()
    except ValueError:
        return
    pointer = api.management.answers.get("create", "")
    try:
        endpoint = resolve_pointer(document, pointer)
    except KeyError:
        return
    if isinstance(endpoint, dict) and isinstance(endpoint.get(api.field("id")), str):
        api.created.append(("main", endpoint[api.field("id")]))


@CHECKS.register("management.fuzz", cases=CHECK_NAMES)
def fuzzed(api: ManagementApi, case: str | None) -> None:
    """The answers to the generated requests pass the Schemathesis check of this case."""
    assert case is not None
    result = api.memo.get("fuzz")
    if not isinstance(result, FuzzResult):
        result = api.memo["fuzz"] = fuzz(api)
    failures = result.failures[case]
    if failures:
        _, curl = failures[0]
        raise CheckFailure(
            f"{len(failures)} distinct failure(s) of {case} in {result.requests} requests",
            expected=f"every answer passes Schemathesis's {case}",
            evidence=None,
            detail="\n".join(t for t, _ in failures)
            + f"\nReproduce the first (put the value of --api-key in place of <redacted>):\n{curl}",
        )
