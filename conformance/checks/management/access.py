"""Checks on who may call the API: authentication on every route, and tenants kept apart."""

from __future__ import annotations

from conformance._engine.failures import CheckFailure, NotApplicable
from conformance._profile import Profile
from conformance.checks.management._api import Caller, ManagementApi
from conformance.checks.management._checks import CHECKS

__all__: list[str] = []

_CALLERS: dict[str, Caller] = {"no-key": "none", "bad-key": "bad"}


def _auth_cases(profile: Profile) -> tuple[str, ...]:
    if profile.management is None or profile.management.auth == "none":
        return ()
    return tuple(f"{op}-{who}" for op in profile.management.operations for who in _CALLERS)


@CHECKS.register("management.requires-auth", cases=_auth_cases)
def requires_auth(api: ManagementApi, case: str | None) -> None:
    """Each route, called without a key or with a key no tenant holds: 401."""
    assert case is not None
    who = next(name for name in _CALLERS if case.endswith("-" + name))
    operation = case.removesuffix("-" + who)
    endpoint_id = api.id_of(api.create()[0]) if _names_endpoint(api, operation) else ""
    ids = api.ids(operation, endpoint_id) if endpoint_id else None
    body = api.create_body() if operation in ("create", "update") else None
    if operation == "update":
        body = {api.field("events"): [api.profile.event_names[0]]}
    exchange = api.call(operation, as_=_CALLERS[who], ids=ids, body=body, note=who)
    if exchange.status != 401:
        raise CheckFailure(
            f"{operation} with {who.replace('-', ' ')} was answered {exchange.exchange.describe()}",
            expected="401",
            evidence=exchange,
        )


def _names_endpoint(api: ManagementApi, operation: str) -> bool:
    route = api.route(operation)
    return "{" in route.path or any(q != api.management.site_query for q in route.query)


_FOREIGN = ("read", "update", "delete", "test", "deliveries")


def _tenant_cases(profile: Profile) -> tuple[str, ...]:
    if profile.management is None:
        return ()
    operations = profile.management.operations
    return tuple(c for c in _FOREIGN if (c == "read" and "list" in operations) or c in operations)


@CHECKS.register("management.tenant-isolation", cases=_tenant_cases)
def tenant_isolation(api: ManagementApi, case: str | None) -> None:
    """The other tenant's requests on an endpoint of --api-key's: 403 or 404, and the
    endpoint unchanged (a list of the other tenant's never shows it)."""
    if case is None:
        raise NotApplicable("the profile declares no route that reads or names an endpoint")
    if api.keys.get("other") is None:
        raise NotApplicable("needs --other-api-key (a second tenant's key)")
    endpoint, _ = api.create()
    identifier = api.id_of(endpoint)
    if case == "read":
        items, exchange = api.listed(as_="other")
        if any(api.id_of(item) == identifier for item in items if isinstance(item, dict)):
            raise CheckFailure(
                "another tenant's list shows the endpoint",
                expected="only the caller's own endpoints",
                evidence=exchange,
            )
        if identifier.encode() in exchange.exchange.body:
            raise CheckFailure(
                "another tenant's list answer contains the endpoint's id",
                expected="only the caller's own endpoints",
                evidence=exchange,
            )
        return
    body = {api.field("events"): [api.profile.event_names[-1]]} if case == "update" else None
    exchange = api.call(
        case, as_="other", ids=api.ids(case, identifier), body=body, note="another tenant's id"
    )
    if exchange.status not in (403, 404):
        raise CheckFailure(
            f"{case} of another tenant's endpoint was answered {exchange.exchange.describe()}",
            expected="403 or 404",
            evidence=exchange,
        )
    if case in ("update", "delete") and api.has("list"):
        items, listing = api.listed()
        mine = [i for i in items if isinstance(i, dict) and api.id_of(i) == identifier]
        if not mine or mine[0].get(api.field("events")) != endpoint.get(api.field("events")):
            raise CheckFailure(
                f"the refused {case} changed the endpoint anyway",
                expected="the endpoint as it was",
                evidence=listing,
            )
