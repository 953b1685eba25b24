"""The management API of one profile, served beside the reference sender's trigger.

The profile's ``management:`` block is the table: every route it declares (and, for an
operation it declares no route for, its dialect's extra route) is mounted at ``base_path +
path`` and answered by the handler of the route's ``operation`` (``_HANDLERS``: create,
list, update, delete, test, deliveries, events). The route's request schema checks every
body; its status is the success status; the endpoint a route names is its path parameter
(``{endpoint_id}``) or, without one, its query parameter (``?id=``). The dialect
(``_dialects``) words the answers.

Every request needs a configured bearer key (``_auth``), and sees only its tenant's
endpoints: another tenant's endpoint is answered as unknown (404), a site the tenant does
not own with 403. Every mistake is a 4xx with the profile's error body; an unexpected fault
a 500 with the same body, never a traceback.

The endpoints are the dispatcher's targets: ``publish`` (the trigger without
``webhook_url``) commits one outbox row per receiving endpoint subscribed to the event's
type, and the test route delivers one test event through the dispatcher, waits for its first
attempt (at most the profile's timeout, plus a margin) and answers what the endpoint said.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from conformance import Profile, UnknownEventType
from conformance._examples import document_examples
from conformance._profile import Management, resolve_pointer
from conformance._schemas import BASE_URI, resolved_schema
from conformance._signing import generate_secret
from reference._outbox import AttemptRecord, EndpointDisabled
from reference.management._auth import ApiKeys, Tenant
from reference.management._dialects import DIALECTS, STATUSES, Dialect, render
from reference.management._requests import (
    MAX_DESCRIPTION,
    Refusal,
    check_events,
    check_metadata,
    check_schema,
    check_secret,
    check_text,
    check_url,
    choice,
    flag,
    invalid,
    page,
    parse_object,
    read_body,
)
from reference.management._store import (
    Changes,
    DeliveryRecord,
    DeliveryStatus,
    Endpoint,
    EndpointStore,
    Fanned,
    NewEndpoint,
    Outgoing,
    SiteFull,
)
from reference.sender import Dispatcher, EnvelopeBuilder, EnvelopeError, default_value

__all__ = ["ManagementAPI", "Operation"]

logger = logging.getLogger("reference.sender.management")

_PATH_PARAMETER = re.compile(r"\{([^{}]+)\}")
#: What an endpoint id may look like; anything else names no endpoint.
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_NAMES_ENDPOINT = frozenset({"update", "delete", "test", "deliveries"})
_STATUS_FILTER: tuple[DeliveryStatus, ...] = ("success", "failed", "pending")
#: How long a test waits for its attempt beyond the profile's per-attempt timeout.
_TEST_MARGIN = 2.0


@dataclass(frozen=True, kw_only=True)
class Operation:
    """A mounted route: the profile's (or the dialect's extra one), and where it names its
    endpoint."""

    operation: str
    method: str
    path: str
    status: int
    request: str | None = None
    query: tuple[str, ...] = ()
    path_id: str | None = None
    query_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class _Call:
    op: Operation
    tenant: Tenant
    request: Request
    ident: str | None


def _required(body: Mapping[str, Any], name: str) -> Any:
    if name not in body:
        raise invalid(f"{name} is required")
    return body[name]


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ManagementAPI:
    """The management routes of one profile over its sender's store and dispatcher."""

    def __init__(
        self,
        profile: Profile,
        store: EndpointStore,
        dispatcher: Dispatcher,
        builder: EnvelopeBuilder,
        keys: ApiKeys,
        *,
        allow_private_targets: bool,
        clock: Callable[[], float],
        dialect: Dialect | None = None,
    ) -> None:
        if profile.management is None:
            raise ValueError(f"profile {profile.name!r} documents no management API")
        found = dialect or DIALECTS.get(profile.name)
        if found is None:
            raise ValueError(
                f"profile {profile.name!r} has a management API but no dialect: add one to "
                "reference.management.DIALECTS"
            )
        self.profile = profile
        self.management: Management = profile.management
        self.dialect = found
        self.store = store
        self.dispatcher = dispatcher
        self.builder = builder
        self.keys = keys
        self.allow_private_targets = allow_private_targets
        self._clock = clock
        self._check_sites()
        prefixes = self.management.id_prefixes
        self._endpoint_prefix = prefixes.get("endpoint", "")
        self._delivery_prefix = prefixes.get("delivery", "del_")
        # A generated header of the form <endpoint prefix>{token} names the endpoint (ZTA's
        # X-ZTA-Webhook-ID): its token is the endpoint id's; otherwise each delivery's own.
        self._header_names_endpoint = bool(self._endpoint_prefix) and any(
            header.generate == self._endpoint_prefix + "{token}" for header in profile.headers
        )
        self.operations = self._operations()

    # -- set-up -------------------------------------------------------------------------------

    def _check_sites(self) -> None:
        owned = [site for tenant in self.keys.tenants for site in tenant.sites]
        if owned and self.dialect.site_field is None:
            raise ValueError(f"profile {self.profile.name!r}'s management API has no sites")
        prefix = self.management.id_prefixes.get("site", "")
        pattern = re.compile(re.escape(prefix) + r"[A-Za-z0-9_]+")
        for site in owned:
            if not pattern.fullmatch(site):
                raise ValueError(
                    f"site {site!r} is not a site id of profile {self.profile.name!r} "
                    f"({prefix}<letters, digits, _>)"
                )

    def _operations(self) -> tuple[Operation, ...]:
        routes: list[Operation] = [
            self._operation(r.operation, r.method, r.path, r.status, r.request, r.query)
            for r in self.management.routes
        ]
        declared = {op.operation for op in routes}
        routes += [
            self._operation(r.operation, r.method, r.path, r.status, None, r.query)
            for r in self.dialect.extra_routes
            if r.operation not in declared
        ]
        for op in routes:
            if op.operation not in _HANDLERS:
                raise ValueError(f"no handler for management operation {op.operation!r}")
            if op.operation not in self.dialect.answers:
                raise ValueError(f"the dialect has no answer for operation {op.operation!r}")
        return tuple(routes)

    def _operation(
        self,
        operation: str,
        method: str,
        path: str,
        status: int,
        request: str | None,
        query: tuple[str, ...],
    ) -> Operation:
        parameters = _PATH_PARAMETER.findall(path)
        if len(parameters) > 1:
            raise ValueError(f"route {operation} has more than one path parameter")
        path_id = parameters[0] if parameters else None
        query_id = None
        if path_id is None and operation in _NAMES_ENDPOINT:
            rest = [name for name in query if name != self.dialect.site_field]
            if len(rest) != 1:
                raise ValueError(f"route {operation} names no endpoint (path or query)")
            query_id = rest[0]
        return Operation(
            operation=operation,
            method=method.upper(),
            path=path,
            status=status,
            request=request,
            query=query,
            path_id=path_id,
            query_id=query_id,
        )

    def routes(self) -> list[BaseRoute]:
        """The Starlette routes: one per path (its methods dispatched here, so that a wrong
        method gets the profile's error body), then a catch-all under ``base_path``."""
        base = self.management.base_path.rstrip("/")
        by_path: dict[str, dict[str, Operation]] = {}
        for op in self.operations:
            by_path.setdefault(base + op.path, {})[op.method] = op
        routes: list[BaseRoute] = [
            Route(path, functools.partial(self._serve, methods), methods=_METHODS)
            for path, methods in by_path.items()
        ]
        for path in (base or "/", base + "/{rest:path}"):
            routes.append(Route(path, functools.partial(self._serve, {}), methods=_METHODS))
        return routes

    # -- serving ------------------------------------------------------------------------------

    async def _serve(self, methods: Mapping[str, Operation], request: Request) -> Response:
        try:
            tenant = self.keys.authenticate(request.headers.get("authorization"))
            if tenant is None:
                raise Refusal("unauthorized")
            if not methods:
                raise Refusal("no_route", method=request.method, path=request.url.path)
            op = methods.get(request.method)
            if op is None:
                raise Refusal("method", method=request.method, allowed=", ".join(methods))
            await self.dispatcher.start()
            call = _Call(op=op, tenant=tenant, request=request, ident=self._ident(op, request))
            return await _HANDLERS[op.operation](self, call)
        except Refusal as refusal:
            return self.refused(refusal, allowed=methods)
        except ClientDisconnect:
            return self.refused(invalid("the client disconnected before its body arrived"))
        except Exception:
            logger.exception("unexpected error in %s %s", request.method, request.url.path)
            return self.refused(Refusal("internal"))

    def refused(
        self, refusal: Refusal, *, allowed: Mapping[str, Operation] | None = None
    ) -> Response:
        """The profile's error body for a refusal, with its status."""
        message = self.dialect.message(refusal.kind).format(**refusal.values)
        headers: dict[str, str] = {}
        if refusal.kind == "unauthorized":
            headers["WWW-Authenticate"] = 'Bearer realm="webhooks"'
        if refusal.kind == "method" and allowed:
            headers["Allow"] = ", ".join(allowed)
        return JSONResponse(
            render(self.dialect.error, {"message": message}),
            status_code=STATUSES[refusal.kind],
            headers=headers,
        )

    def _ident(self, op: Operation, request: Request) -> str | None:
        if op.path_id is not None:
            value = request.path_params[op.path_id]
        elif op.query_id is not None:
            value = request.query_params.get(op.query_id)
            if value is None:
                raise invalid(f"{op.query_id} is required")
        else:
            return None
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise Refusal("not_found")
        return value

    def _answer(self, op: Operation, **values: object) -> Response:
        return JSONResponse(render(self.dialect.answers[op.operation], values), op.status)

    # -- the operations -----------------------------------------------------------------------

    async def _create(self, call: _Call) -> Response:
        body = parse_object(await read_body(call.request))
        site = self._owned_site(call.tenant, body)
        url = check_url(_required(body, "url"), allow_private_targets=self.allow_private_targets)
        events = check_events(
            _required(body, "events"), self.profile, limit=self.profile.limits.events_per_webhook
        )
        self._check_schema(call.op, body)
        active = body.get("active", True)
        if not isinstance(active, bool):
            raise invalid("active must be true or false")
        new = NewEndpoint(
            endpoint_id=self._endpoint_prefix + secrets.token_hex(12),
            tenant=call.tenant.id,
            site=site,
            url=url,
            events=events,
            description=check_text(body.get("description"), "description", MAX_DESCRIPTION),
            metadata=check_metadata(body.get("metadata")),
            secret=self._secret(body),
            active=active,
            created_at=self._clock(),
        )
        try:
            endpoint = await self.store.create_endpoint(
                new, per_site=self.profile.limits.webhooks_per_site
            )
        except SiteFull as exc:
            raise Refusal("too_many_webhooks", limit=exc.limit) from None
        return self._answer(call.op, endpoint=self._view(endpoint, secret=True))

    async def _list(self, call: _Call) -> Response:
        params = call.request.query_params
        site = None
        field = self.dialect.site_field
        if field is not None and field in call.op.query:
            site = params.get(field)
            if site is None:
                raise invalid(f"{field} is required")
            if site not in call.tenant.sites:
                raise Refusal("forbidden")
        active = flag(params, self.dialect.active_filter) if self.dialect.active_filter else None
        number, size, offset = self._page(params)
        endpoints, total = await self.store.list_endpoints(
            call.tenant.id, site=site, receiving=active, offset=offset, limit=size
        )
        return self._answer(
            call.op,
            endpoints=[self._view(endpoint) for endpoint in endpoints],
            pagination={"page": number, "per_page": size, "total": total},
        )

    async def _update(self, call: _Call) -> Response:
        assert call.ident is not None
        body = parse_object(await read_body(call.request))
        if not body:
            raise invalid("the body must set at least one field")
        url = None
        if "url" in body:
            url = check_url(body["url"], allow_private_targets=self.allow_private_targets)
        events = None
        if "events" in body:
            events = check_events(
                body["events"], self.profile, limit=self.profile.limits.events_per_webhook
            )
        self._check_schema(call.op, body)
        active = body.get("active")
        if active is not None and not isinstance(active, bool):
            raise invalid("active must be true or false")
        changes = Changes(
            url=url,
            events=events,
            description=check_text(body.get("description"), "description", MAX_DESCRIPTION),
            active=active,
        )
        endpoint = await self.store.update_endpoint(
            call.tenant.id, call.ident, changes, at=self._clock()
        )
        if endpoint is None:
            raise Refusal("not_found")
        return self._answer(call.op, endpoint=self._view(endpoint))

    async def _delete(self, call: _Call) -> Response:
        assert call.ident is not None
        if not await self.store.delete_endpoint(call.tenant.id, call.ident, at=self._clock()):
            raise Refusal("not_found")
        return self._answer(call.op, id=call.ident)

    async def _test(self, call: _Call) -> Response:
        assert call.ident is not None
        body = parse_object(await read_body(call.request), empty=True)
        self._check_schema(call.op, body)
        event_type = self._event_type(body.get("event_type", self.dialect.test_event_type))
        now = self._clock()
        event_id = self.builder.new_event_id()
        payload = self.builder.build(
            event_type, self._sample(event_type, now), event_id=event_id, created_at=now
        )
        outgoing = Outgoing(
            event_id=event_id,
            event_type=event_type,
            body=_json_bytes(payload),
            time_scale=1.0,
            created_at=now,
            next_at=now + self.profile.delivery.schedule_seconds[0],
            kind="test",
        )
        try:
            fanned = await self.store.fan_out(
                call.tenant.id, outgoing, ids=self._ids, endpoint_id=call.ident
            )
        except EndpointDisabled as exc:
            raise Refusal("disabled", detail=str(exc)) from None
        if fanned is None:
            raise Refusal("not_found")
        self._schedule(fanned)
        attempt = await self._first_attempt(fanned[0].delivery_id)
        return self._answer(call.op, result=self._test_result(attempt))

    async def _deliveries(self, call: _Call) -> Response:
        assert call.ident is not None
        params = call.request.query_params
        status: Any = choice(params, "status", _STATUS_FILTER)
        event_type = params.get("event_type")
        if event_type is not None:
            event_type = self._event_type(event_type)
        number, size, offset = self._page(params)
        found = await self.store.deliveries(
            call.tenant.id,
            call.ident,
            status=status,
            event_type=event_type,
            offset=offset,
            limit=size,
        )
        if found is None:
            raise Refusal("not_found")
        records, total = found
        return self._answer(
            call.op,
            deliveries=[self._delivery_view(record) for record in records],
            pagination={"page": number, "per_page": size, "total": total},
        )

    async def _events(self, call: _Call) -> Response:
        events = [
            {"name": e.name, "description": e.description, "category": e.category}
            for e in self.profile.events
        ]
        return self._answer(call.op, events=events)

    # -- publishing ---------------------------------------------------------------------------

    async def publish(
        self,
        tenant: Tenant,
        *,
        event_id: str,
        event_type: str,
        body: bytes,
        time_scale: float,
        created_at: float,
        next_at: float,
    ) -> list[Fanned]:
        """Commit and schedule one delivery of the event per receiving endpoint of the
        tenant that subscribes to its type (none: nothing is stored)."""
        outgoing = Outgoing(
            event_id=event_id,
            event_type=event_type,
            body=body,
            time_scale=time_scale,
            created_at=created_at,
            next_at=next_at,
        )
        fanned = await self.store.fan_out(tenant.id, outgoing, ids=self._ids)
        assert fanned is not None
        self._schedule(fanned)
        return fanned

    def _schedule(self, fanned: list[Fanned]) -> None:
        for delivery in fanned:
            self.dispatcher.schedule(delivery.next_at, delivery.seq, delivery.delivery_id)

    def _ids(self, endpoint_id: str) -> tuple[str, str]:
        """A delivery's id and the token of its generated headers (see ``__init__``)."""
        fresh = secrets.token_hex(12)
        if self._header_names_endpoint:
            return self._delivery_prefix + fresh, endpoint_id.removeprefix(self._endpoint_prefix)
        return self._delivery_prefix + fresh, fresh

    async def _first_attempt(self, delivery_id: str) -> AttemptRecord | None:
        """The delivery's first completed attempt, polled from the outbox until the profile's
        timeout (plus a margin) has passed; None when none completed by then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.profile.delivery.timeout_seconds + _TEST_MARGIN
        pause = 0.002
        while True:
            found = await self.store.delivery(delivery_id)
            if found is not None:
                event, attempts, _ = found
                for attempt in attempts:
                    if attempt.ended_at is not None and attempt.outcome != "interrupted":
                        return attempt
                if event.state != "pending":
                    return None
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    # -- fields and views ---------------------------------------------------------------------

    def _owned_site(self, tenant: Tenant, body: Mapping[str, Any]) -> str | None:
        field = self.dialect.site_field
        if field is None:
            return None
        site = _required(body, field)
        if not isinstance(site, str):
            raise invalid(f"{field} must be a string")
        if site not in tenant.sites:
            raise Refusal("forbidden")
        return site

    def _check_schema(self, op: Operation, body: Mapping[str, Any]) -> None:
        """The route's request schema over the body; the URL, already checked by the rules
        of ``_requests`` (which also admit local ``http://`` targets for testing), stands in
        as an https one."""
        if op.request is None:
            return
        checked = {**body, "url": "https://example.com/"} if "url" in body else body
        check_schema(self.profile, op.request, checked)

    def _secret(self, body: Mapping[str, Any]) -> str:
        field = self.management.secret_request_field
        if field is not None and field in body:
            return check_secret(self.profile, body[field], field)
        secret = generate_secret(self.profile.signature)
        prefix = self.management.secret_prefix
        if prefix and not secret.startswith(prefix):
            secret = prefix + secret
        return secret

    def _event_type(self, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise invalid("event_type must be a non-empty string")
        if value == self.dialect.test_event_type:
            return value
        try:
            return self.profile.event_name(value)
        except UnknownEventType:
            raise Refusal("event_type", value=value[:120]) from None

    def _page(self, params: Mapping[str, str]) -> tuple[int, int | None, int]:
        """``(page, per_page, offset)``; without pagination, one page of everything."""
        if self.dialect.pagination is None:
            return 1, None, 0
        number, size = page(params, self.dialect.pagination)
        return number, size, (number - 1) * size

    def _sample(self, event_type: str, moment: float) -> dict[str, Any]:
        """Data for a test event: the document's own example of the type, else a value made
        from its schema; ``{}`` for the uncatalogued test type."""
        if event_type not in self.profile.event_names:
            return {}
        for example in document_examples(self.profile, event=event_type):
            try:
                data = resolve_pointer(json.loads(example.body), self.profile.envelope.data)
            except (ValueError, KeyError):
                continue
            if isinstance(data, dict):
                return copy.deepcopy(data)
        schema = resolved_schema(
            self.profile, {"$ref": BASE_URI + self.profile.event(event_type).schema}
        )
        try:
            value = default_value(schema, moment)
        except EnvelopeError:
            return {}
        return value if isinstance(value, dict) else {}

    def _time(self, moment: float | None) -> str | None:
        if moment is None:
            return None
        text = datetime.fromtimestamp(moment, UTC).isoformat(timespec=self.dialect.timestamps)
        return text.replace("+00:00", "Z")

    def _view(self, endpoint: Endpoint, *, secret: bool = False) -> dict[str, object]:
        """An endpoint as this API shows it; the secret only when ``secret`` (create)."""
        rate = endpoint.success_rate
        values: dict[str, object] = {
            "id": endpoint.endpoint_id,
            "url": endpoint.url,
            "events": list(endpoint.events),
            "description": endpoint.description,
            "metadata": endpoint.metadata,
            "active": endpoint.receiving,
            "created_at": self._time(endpoint.created_at),
            "updated_at": self._time(endpoint.updated_at),
            "last_delivery": self._time(endpoint.last_delivery),
            "success_rate": None if rate is None else round(rate, 4),
        }
        view = {
            wire: values[name]
            for name, wire in self.dialect.fields.items()
            if values[name] is not None or name in self.dialect.nullable
        }
        if secret:
            view[self.management.secret_response_field] = endpoint.secret
        return view

    def _delivery_view(self, record: DeliveryRecord) -> dict[str, object]:
        """A row of the delivery log (``schemas/common/delivery-log.json``). ``attempts``
        counts the one under way too: the first attempt is due at once, so a pending row's
        count is 1."""
        view: dict[str, object] = {
            "id": record.delivery_id,
            "event_id": record.event_id,
            "event_type": record.event_type,
            "status": record.status,
            "attempts": max(1, record.attempts),
            "response_status": record.response_status,
            "response_time": None if record.response_ms is None else round(record.response_ms),
            "error_message": record.error,
            "created_at": self._time(record.created_at),
        }
        if record.last_attempt_at is not None:
            view["last_attempt"] = self._time(record.last_attempt_at)
        return view

    def _test_result(self, attempt: AttemptRecord | None) -> dict[str, object]:
        """``schemas/common/test-result.json``: what the endpoint answered; ``test_sent`` is
        whether it answered at all (``error_message`` says why not)."""
        if attempt is None or attempt.status is None:
            error = (
                f"no attempt completed within {self.profile.delivery.timeout_seconds:g} s"
                if attempt is None
                else attempt.error
            )
            return {
                "test_sent": False,
                "response_status": None,
                "response_time": None,
                "response_body": None,
                "error_message": error,
            }
        return {
            "test_sent": True,
            "response_status": attempt.status,
            "response_time": round(attempt.response_ms or 0.0),
            "response_body": attempt.excerpt.decode("utf-8", "replace"),
        }


#: The engine's table: a route's ``operation`` names its handler.
_HANDLERS: Mapping[str, Callable[[ManagementAPI, _Call], Awaitable[Response]]] = {
    "create": ManagementAPI._create,
    "list": ManagementAPI._list,
    "update": ManagementAPI._update,
    "delete": ManagementAPI._delete,
    "test": ManagementAPI._test,
    "deliveries": ManagementAPI._deliveries,
    "events": ManagementAPI._events,
}
