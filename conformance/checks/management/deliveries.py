"""Checks that the API's test route and delivery log tell the truth: each is compared with
what the suite's capture server saw and answered.

The members read are those of the shared schemas the profiles' answers use
(``common/test-result.json``: ``test_sent``, ``response_status``; ``common/delivery-log.json``:
``status``, ``attempts``, ``response_status``).
"""

from __future__ import annotations

import time

from conformance._engine.failures import CheckFailure
from conformance.checks._capture import Reply
from conformance.checks.management._api import ApiExchange, ManagementApi
from conformance.checks.management._checks import CHECKS

__all__: list[str] = []

#: The capture's answer in each case: one the API must report as it is, 2xx or not.
_STATUSES = {"accepted": 202, "refused": 418}


def _endpoint_answering(api: ManagementApi, status: int) -> tuple[str, str]:
    """An endpoint whose URL is a capture path answering ``status``: its id and token."""
    url = api.fresh_url()
    token = api.token_of(url)
    api.capture.expect(token, [Reply(status=status)])
    endpoint, _ = api.create(payload=api.create_body(url=url))
    return api.id_of(endpoint), token


def _test(api: ManagementApi, identifier: str) -> ApiExchange:
    return api.call("test", ids=api.ids("test", identifier), body={}, note="a test delivery")


def _forget(api: ManagementApi, identifier: str) -> None:
    """Delete the endpoint now: its loopback http:// URL would not fit the list schemas
    other checks judge (they demand https://)."""
    if api.has("delete"):
        api.call("delete", ids=api.ids("delete", identifier))
        api.created = [entry for entry in api.created if entry[1] != identifier]


@CHECKS.register("management.test-delivers", cases=tuple(_STATUSES))
def test_delivers(api: ManagementApi, case: str | None) -> None:
    """The test route reaches the endpoint's URL and reports the status it answered."""
    assert case is not None
    identifier, token = _endpoint_answering(api, _STATUSES[case])
    try:
        _test_delivers(api, identifier, token, _STATUSES[case])
    finally:
        _forget(api, identifier)


def _test_delivers(api: ManagementApi, identifier: str, token: str, status: int) -> None:
    exchange = _test(api, identifier)
    result = api.at("test", exchange)
    arrived = api.capture.wait(token, 1, time.monotonic() + api.timeout)
    if not arrived:
        raise CheckFailure(
            "the test route reached nothing: the capture server received no request",
            expected="a test delivery at the endpoint's URL",
            evidence=exchange,
        )
    reported = result.get("response_status") if isinstance(result, dict) else None
    if reported != status:
        raise CheckFailure(
            f"the test route reported response_status {reported!r}; the endpoint answered {status}",
            expected=f"response_status {status}, as the endpoint answered",
            evidence=exchange,
        )


@CHECKS.register("management.deliveries-log", cases=("failed", "succeeded"))
def deliveries_log(api: ManagementApi, case: str | None) -> None:
    """After a test delivery the capture answered (500 or 200), the log lists a delivery
    with that answer, as many attempts as arrived, and a status that matches."""
    status = 500 if case == "failed" else 200
    identifier, token = _endpoint_answering(api, status)
    try:
        _deliveries_log(api, identifier, token, status, case == "failed")
    finally:
        _forget(api, identifier)


def _deliveries_log(
    api: ManagementApi, identifier: str, token: str, status: int, failed: bool
) -> None:
    _test(api, identifier)
    arrived = api.capture.wait(token, 1, time.monotonic() + api.timeout)
    exchange = api.call("deliveries", ids=api.ids("deliveries", identifier))
    rows = api.at("deliveries", exchange)
    rows = rows if isinstance(rows, list) else []
    matching = [r for r in rows if isinstance(r, dict) and r.get("response_status") == status]
    wanted = ("failed", "pending") if failed else ("success",)
    detail = f"the capture received {len(arrived)} attempt(s) and answered {status}"
    if not matching:
        raise CheckFailure(
            f"the log shows no delivery answered {status}",
            expected=f"a row with response_status {status} and status {' or '.join(wanted)}",
            evidence=exchange,
            detail=detail,
        )
    row = matching[0]
    attempts = row.get("attempts")
    if row.get("status") not in wanted or not isinstance(attempts, int) or attempts < 1:
        raise CheckFailure(
            f"the logged delivery says status {row.get('status')!r}, attempts {attempts!r}",
            expected=f"status {' or '.join(wanted)} and at least one attempt",
            evidence=exchange,
            detail=detail,
        )
    if attempts > len(api.capture.attempts(token)):
        raise CheckFailure(
            f"the log counts {attempts} attempts; the capture received {len(arrived)}",
            expected="no more attempts than arrived",
            evidence=exchange,
            detail=detail,
        )
