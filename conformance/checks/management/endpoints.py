"""Checks on registering endpoints: answers against their schemas, client errors, limits,
URLs, secrets, paging and the event catalogue."""

from __future__ import annotations

from typing import Any

from conformance._engine.failures import CheckFailure, NotApplicable
from conformance._profile import Profile, resolve_pointer
from conformance.checks.management._api import ApiExchange, ManagementApi
from conformance.checks.management._checks import CHECKS

__all__: list[str] = []

#: A public host: refused as plain http:// whatever SSRF policy the API has for loopback.
PUBLIC_HTTP = "http://example.com/webhook"
UNKNOWN_EVENT = "wc.not-an-event"


def _routes(profile: Profile) -> tuple[str, ...]:
    return () if profile.management is None else profile.management.operations


@CHECKS.register("management.responses-match-schema", cases=_routes)
def responses_match_schema(api: ManagementApi, case: str | None) -> None:
    """Each declared route, called correctly, answers its status with a body that fits its
    response schema."""
    assert case is not None
    route = api.route(case)
    endpoint, created = api.create()
    if case == "create":
        exchange = created
    else:
        ids = api.ids(case, api.id_of(endpoint))
        body: object = None
        if case == "update":
            body = {api.field("events"): [api.profile.event_names[-1]]}
        elif route.request is not None and route.method != "GET":
            body = {}
        exchange = api.call(case, ids=ids, body=body)
        if case == "delete":
            api.created = [c for c in api.created if c[1] != api.id_of(endpoint)]
    _fits(api, exchange, route.status, route.response, f"{route.method} {route.path}")


def _fits(api: ManagementApi, exchange: ApiExchange, status: int, ref: str, what: str) -> None:
    if exchange.status != status:
        raise CheckFailure(
            f"{what} was answered {exchange.exchange.describe()}",
            expected=f"{status} with a body that fits {ref}",
            evidence=exchange,
        )
    problems = api.schema_errors(ref, exchange)
    if problems:
        raise CheckFailure(
            f"{what}: the answer does not fit {ref}",
            expected=f"{status} with a body that fits {ref}",
            evidence=exchange,
            detail="; ".join(problems),
        )


_MALFORMED = ("not-json", "array", "wrong-types", "unknown-event", "unknown-id")


@CHECKS.register("management.client-errors-4xx", cases=_MALFORMED)
def client_errors_4xx(api: ManagementApi, case: str | None) -> None:
    """Malformed bodies, wrong types, an unknown event type and an unknown id are refused
    with 4xx and the error body, never 5xx."""
    body = api.create_body()
    if case == "not-json":
        exchange = api.call("create", raw=b'{"url": ', note="truncated JSON")
    elif case == "array":
        exchange = api.call("create", body=[body], note="a JSON array instead of an object")
    elif case == "wrong-types":
        body[api.field("url")] = 42
        body[api.field("events")] = "not-a-list"
        exchange = api.call("create", body=body, note="the URL a number, the events a string")
    elif case == "unknown-event":
        body[api.field("events")] = [UNKNOWN_EVENT]
        exchange = api.call("create", body=body, note="an event type outside the catalogue")
    else:
        operation = next(
            (op for op in ("update", "delete", "test", "deliveries") if api.has(op)), None
        )
        if operation is None:
            raise NotApplicable("the profile declares no route that names an endpoint")
        ids = api.ids(operation, _unknown_id(api))
        payload = {api.field("events"): [api.profile.event_names[0]]}
        exchange = api.call(
            operation,
            ids=ids,
            body=payload if operation == "update" else None,
            note="an unknown id",
        )
    what = "a request with an unknown id" if case == "unknown-id" else "a create request"
    api.expect_error(exchange, what=f"{what} ({exchange.exchange.request.note})")


def _unknown_id(api: ManagementApi) -> str:
    return api.management.id_prefixes.get("endpoint", "") + "wcunknown0000000000000000"


@CHECKS.register("management.enforces-limits", cases=("webhooks-per-site", "events-per-webhook"))
def enforces_limits(api: ManagementApi, case: str | None) -> None:
    """One webhook beyond the per-site limit, and one event type beyond the per-webhook
    limit, are refused with 4xx."""
    limits = api.profile.limits
    if case == "events-per-webhook":
        limit = limits.events_per_webhook
        if limit is None:
            raise NotApplicable("the profile sets no event-types-per-webhook limit")
        names = list(api.profile.event_names)
        if len(names) <= limit:
            # ZTA: 5 event types per webhook, and its catalogue has exactly 5: the limit
            # cannot be exceeded with distinct catalogued types.
            raise NotApplicable(
                f"the catalogue has {len(names)} event types, so a webhook cannot name more "
                f"than the limit of {limit} distinct ones"
            )
        body = api.create_body(events=names[: limit + 1])
        exchange = api.call("create", body=body, note=f"{limit + 1} event types")
        if exchange.status is not None and exchange.status // 100 == 2:
            endpoint = api.endpoint_in("create", exchange)
            if endpoint is not None:
                api.created.append(("main", api.id_of(endpoint)))
        api.expect_error(exchange, what=f"a create request with {limit + 1} event types")
        return
    limit = limits.webhooks_per_site
    if limit is None:
        raise NotApplicable("the profile sets no webhooks-per-site limit")
    try:
        existing, _ = api.listed()
        for _ in range(max(limit - len(existing), 0)):
            api.create()
        note = f"webhook {limit + 1} of a site"
        exchange = api.call("create", body=api.create_body(), note=note)
        if exchange.status is not None and exchange.status // 100 == 2:
            endpoint = api.endpoint_in("create", exchange)
            if endpoint is not None:
                api.created.append(("main", api.id_of(endpoint)))
        api.expect_error(exchange, what=f"creating webhook {limit + 1} on one site")
    finally:
        api.clean_up()  # free the site again for the checks that follow


@CHECKS.register(
    "management.secret-shown-once",
    cases=("list", "update", "delete"),
    also={"management.secret-not-listed": ("list",)},
)
def secret_shown_once(api: ManagementApi, case: str | None) -> None:
    """Create answers the secret; no later answer (list, update, delete) carries it."""
    assert case is not None
    secret_field = api.management.secret_response_field
    endpoint, created = api.create()
    secret = endpoint.get(secret_field)
    if not isinstance(secret, str) or not secret:
        raise CheckFailure(
            f"the create answer has no {secret_field!r}",
            expected=f"the endpoint's secret in {secret_field!r}",
            evidence=created,
        )
    if not api.has(case):
        raise NotApplicable(f"the profile declares no {case} route")
    identifier = api.id_of(endpoint)
    if case == "list":
        exchange = api.call("list")
    else:
        body = {api.field("events"): [api.profile.event_names[-1]]} if case == "update" else None
        exchange = api.call(case, ids=api.ids(case, identifier), body=body)
    if secret.encode() in exchange.exchange.body:
        raise CheckFailure(
            f"the {case} answer contains the endpoint's secret",
            expected="the secret in the create answer only",
            evidence=exchange,
        )


@CHECKS.register("management.https-only", cases=lambda p: _url_operations(p))
def https_only(api: ManagementApi, case: str | None) -> None:
    """A public http:// URL is refused on create (and on update)."""
    if case == "create":
        body = api.create_body(url=PUBLIC_HTTP)
        exchange = api.call("create", body=body, note="a plain http:// URL")
    else:
        endpoint, _ = api.create()
        body = {api.field("url"): PUBLIC_HTTP}
        exchange = api.call(
            "update", ids=api.ids("update", api.id_of(endpoint)), body=body, note="http:// URL"
        )
    if exchange.status is not None and exchange.status // 100 == 2 and case == "create":
        created = api.endpoint_in("create", exchange)
        if created is not None:
            api.created.append(("main", api.id_of(created)))
    api.expect_error(exchange, what=f"{case} with the URL {PUBLIC_HTTP}")


def _url_operations(profile: Profile) -> tuple[str, ...]:
    return tuple(op for op in ("create", "update") if op in _routes(profile))


@CHECKS.register("management.invalid-event-type-400")
def invalid_event_type_400(api: ManagementApi, case: str | None) -> None:
    """An event type outside the catalogue: 400 with the error body."""
    body = api.create_body(events=[UNKNOWN_EVENT])
    exchange = api.call("create", body=body, note="an unknown event type")
    api.expect_error(exchange, statuses=(400,), what="a create with an unknown event type")


@CHECKS.register("management.foreign-site-403", cases=("list", "create"))
def foreign_site_403(api: ManagementApi, case: str | None) -> None:
    """Another tenant's site, listed or created on: 403 with the error body."""
    foreign = api.sites.get("other")
    if foreign is None:
        raise NotApplicable("needs --other-site-id (a site the --api-key tenant does not own)")
    site_query = api.management.site_query or api.field("site")
    if case == "list":
        exchange = api.call("list", query={site_query: foreign}, note="another tenant's site")
    else:
        body = api.create_body()
        body[api.field("site")] = foreign
        exchange = api.call("create", body=body, note="another tenant's site")
        endpoint = api.endpoint_in("create", exchange)
        if exchange.status is not None and exchange.status // 100 == 2 and endpoint:
            api.created.append(("other", api.id_of(endpoint)))
    api.expect_error(exchange, statuses=(403,), what=f"{case} on another tenant's site")


@CHECKS.register("management.unknown-webhook-404")
def unknown_webhook_404(api: ManagementApi, case: str | None) -> None:
    """Deleting an id that does not exist: 404 with the error body."""
    exchange = api.call("delete", ids=api.ids("delete", _unknown_id(api)), note="an unknown id")
    api.expect_error(exchange, statuses=(404,), what="deleting an unknown webhook")


@CHECKS.register("management.secret-round-trip", cases=("given", "generated"))
def secret_round_trip(api: ManagementApi, case: str | None) -> None:
    """A secret sent on create comes back as the signing secret; without one, a generated
    non-empty one comes back."""
    management = api.management
    request_field = management.secret_request_field
    if request_field is None:
        raise NotApplicable("the profile's create request takes no secret")
    body = api.create_body()
    chosen = "wc-chosen-secret-0123456789"
    if case == "given":
        body[request_field] = chosen
    endpoint, exchange = api.create(payload=body)
    returned = endpoint.get(management.secret_response_field)
    if case == "given" and returned != chosen:
        raise CheckFailure(
            f"{management.secret_response_field} is {returned!r}, not the secret sent",
            expected=f"{management.secret_response_field} equal to the request's {request_field}",
            evidence=exchange,
        )
    if case == "generated" and (not isinstance(returned, str) or not returned):
        raise CheckFailure(
            f"no generated {management.secret_response_field}",
            expected=f"a non-empty {management.secret_response_field}",
            evidence=exchange,
        )


@CHECKS.register("management.pagination-consistent")
def pagination_consistent(api: ManagementApi, case: str | None) -> None:
    """Pages of 2 cover every endpoint once; the total counts them."""
    paging = api.management.pagination
    if paging is None:
        raise NotApplicable("the profile's lists do not page")
    mine = {api.id_of(api.create()[0]) for _ in range(5)}
    seen: list[str] = []
    total: object = None
    last: ApiExchange | None = None
    for number in range(1, 50):
        items, last = api.listed(query={paging.page: str(number), paging.per_page: "2"})
        try:
            total = resolve_pointer(last.json(), paging.total)
        except KeyError:
            total = None
        if not items:
            break
        seen += [api.id_of(item) for item in items if isinstance(item, dict)]
    repeated = sorted({i for i in seen if seen.count(i) > 1})
    lost = sorted(mine - set(seen))
    problems = []
    if repeated:
        problems.append(f"repeated across pages: {', '.join(repeated)}")
    if lost:
        problems.append(f"on no page: {', '.join(lost)}")
    if total != len(set(seen)):
        problems.append(f"{paging.total} is {total!r}, {len(set(seen))} endpoints were listed")
    if problems:
        raise CheckFailure(
            "walking the list 2 at a time did not list each endpoint once",
            expected="every endpoint on exactly one page, and the total counting them",
            evidence=last,
            detail="; ".join(problems),
        )


@CHECKS.register("management.catalogue")
def catalogue(api: ManagementApi, case: str | None) -> None:
    """The events route lists exactly the profile's event types."""
    exchange = api.call("events")
    listed = api.at("events", exchange)
    names: list[Any] = []
    if isinstance(listed, list):
        names = [item.get("name") if isinstance(item, dict) else item for item in listed]
    want = set(api.profile.event_names)
    if set(names) != want or len(names) != len(want):
        raise CheckFailure(
            "the catalogue differs from the profile's events",
            expected=f"exactly: {', '.join(sorted(want))}",
            evidence=exchange,
            detail=f"missing: {sorted(want - set(map(str, names)))}; "
            f"extra: {sorted(set(map(str, names)) - want)}",
        )
