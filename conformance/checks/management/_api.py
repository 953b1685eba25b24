"""The management role's context: a client for the API under test, the capture server its
test deliveries reach, and the evidence of every call (``ApiExchange``).

A check calls an operation by the name the profile's ``management.routes`` gives it
(``create``, ``list``, ...); the route says the method, the path and its query; the
profile's ``fields`` and ``answers`` say what the bodies hold. Everything the suite creates
is remembered and deleted when the run ends, where the profile declares a delete route.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from conformance._engine.config import API_KEY, OTHER_API_KEY, SuiteConfig
from conformance._engine.exhibits import Exhibit
from conformance._engine.failures import CheckFailure, NotApplicable
from conformance._http import Delivery, Exchange, send
from conformance._profile import Management, Profile, Route, resolve_pointer
from conformance._schemas import json_path, schema_validator
from conformance.checks._capture import Capture, Reply, capturing

__all__ = ["REDACTED", "ApiExchange", "Caller", "ManagementApi"]

#: What the curl line shows in place of an API key.
REDACTED = "<redacted>"
#: Who a request is sent as: the tenant of --api-key, of --other-api-key, a key no tenant
#: has, or no key at all.
Caller = Literal["main", "other", "bad", "none"]
#: The base of the URLs of endpoints the suite never delivers to.
UNREACHED = "https://webhook-conformance.example/unreached"
_PARAM = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True, kw_only=True)
class ApiExchange:
    """One API call and its answer (``Evidence``): the request is shown, and replayed, with
    the key redacted; the reproduction says which option supplies it."""

    exchange: Exchange
    key_option: str | None = None

    @property
    def status(self) -> int | None:
        return self.exchange.status

    def json(self) -> object:
        """The answer's body as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.exchange.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def exhibit(self, *, replay_hint: str = "") -> Exhibit:
        request = self.exchange.request
        headers = tuple(
            (name, f"Bearer {REDACTED}" if name.lower() == "authorization" else value)
            for name, value in request.headers
        )
        shown = replace(self.exchange, request=replace(request, headers=headers))
        hints = [replay_hint] if replay_hint else []
        if self.key_option is not None:
            hints.append(f"put the value of {self.key_option} in place of {REDACTED}")
        return shown.exhibit(replay_hint="; ".join(hints))


@dataclass(kw_only=True)
class ManagementApi:
    """What every management check is given."""

    profile: Profile
    api_base: str
    keys: Mapping[Caller, str | None] = field(repr=False)
    sites: Mapping[Caller, str | None]
    client: httpx.Client
    timeout: float
    capture: Capture
    capture_url: str
    created: list[tuple[Caller, str]] = field(default_factory=list)
    #: What a check computes once for all its cases (the fuzzing's findings).
    memo: dict[str, object] = field(default_factory=dict)

    @classmethod
    @contextmanager
    def serving(cls, suite: SuiteConfig) -> Iterator[ManagementApi]:
        """Start the capture server and yield the context; on exit, delete what the run
        created and stop the server."""
        options = suite.management
        with capturing(options.capture_host, options.timeout) as (capture, url, client):
            api = cls(
                profile=suite.profile,
                api_base=options.api_base,
                keys={
                    "main": options.api_key,
                    "other": options.other_api_key,
                    "bad": "wc-not-a-key-" + secrets.token_hex(8),
                    "none": None,
                },
                sites={"main": options.site_id, "other": options.other_site_id},
                client=client,
                timeout=options.timeout,
                capture=capture,
                capture_url=options.public_url or url,
            )
            try:
                yield api
            finally:
                api.clean_up()

    # -- the profile's table ------------------------------------------------------------

    @property
    def management(self) -> Management:
        assert self.profile.management is not None, "the config requires a management API"
        return self.profile.management

    def has(self, operation: str) -> bool:
        return operation in self.management.operations

    def route(self, operation: str) -> Route:
        if not self.has(operation):
            raise NotApplicable(f"profile {self.profile.name} declares no {operation} route")
        return self.management.route(operation)

    def field(self, name: str) -> str:
        return self.management.fields[name]

    # -- calls ------------------------------------------------------------------------

    def call(
        self,
        operation: str,
        *,
        as_: Caller = "main",
        ids: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        body: object = None,
        raw: bytes | None = None,
        note: str = "",
    ) -> ApiExchange:
        """Send the operation's request: ``ids`` fill the path's ``{...}`` or, for a route
        whose endpoint is a query parameter, that parameter; ``body`` is sent as JSON,
        ``raw`` as given."""
        route = self.route(operation)
        path, params = route.path, dict(query or {})
        for name, value in (ids or {}).items():
            if "{" + name + "}" in path:
                path = path.replace("{" + name + "}", value)
        missing = _PARAM.findall(path)
        if missing:
            raise ValueError(f"{operation} needs {missing}")
        for name in route.query:
            if name == self.management.site_query and name not in params:
                site = self.sites.get(as_) or self.sites.get("main")
                if site:
                    params[name] = site
            elif name not in params and ids:
                params[name] = next(iter(ids.values()))
        url = self.api_base + path + (("?" + urlencode(params)) if params else "")
        headers: dict[str, str] = {"Accept": "application/json"}
        key = self.keys.get(as_)
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        content = raw if raw is not None else b""
        if raw is None and body is not None:
            content = json.dumps(body).encode()
        if content:
            headers["Content-Type"] = "application/json"
        delivery = Delivery(
            url=url, headers=tuple(headers.items()), body=content, method=route.method, note=note
        )
        option = {"main": API_KEY, "other": OTHER_API_KEY}.get(as_)
        return ApiExchange(
            exchange=send(self.client, delivery, timeout=self.timeout), key_option=option
        )

    # -- endpoints --------------------------------------------------------------------

    def create_body(
        self, *, url: str | None = None, events: list[str] | None = None, as_: Caller = "main"
    ) -> dict[str, Any]:
        """A valid create body: a fresh public https:// URL (or ``url``: the capture's, for
        the checks that need deliveries), the first event (or ``events``), and the caller's
        site where the API is site-scoped. The default URL is never delivered to: no check
        triggers an event for it, and a loopback http:// URL would not fit response schemas
        that demand https://."""
        body: dict[str, Any] = {
            self.field("url"): url or f"{UNREACHED}/{secrets.token_hex(6)}",
            self.field("events"): events or [self.profile.event_names[0]],
        }
        site = self.management.fields.get("site")
        if site:
            body[site] = self.sites.get(as_) or self.sites["main"]
        return body

    def fresh_url(self) -> str:
        token = secrets.token_hex(6)
        self.capture.expect(token, [Reply()])
        return f"{self.capture_url}/{token}/hook"

    def token_of(self, url: str) -> str:
        return url.removeprefix(self.capture_url + "/").partition("/")[0]

    def create(self, *, as_: Caller = "main", **body: Any) -> tuple[dict[str, Any], ApiExchange]:
        """Create an endpoint (remembered for clean-up); the endpoint object and the call.
        Raises ``CheckFailure`` when the API refuses a valid create."""
        payload = body.pop("payload", None) or self.create_body(as_=as_)
        exchange = self.call("create", as_=as_, body=payload, note="a valid create request")
        endpoint = self.endpoint_in("create", exchange)
        if exchange.status != self.route("create").status or endpoint is None:
            raise CheckFailure(
                "a valid create request was not answered with an endpoint",
                expected=f"{self.route('create').status} with the endpoint at "
                f"{self.management.answers.get('create', '')!r}",
                evidence=exchange,
            )
        identifier = endpoint.get(self.field("id"))
        if isinstance(identifier, str):
            self.created.append((as_, identifier))
        return endpoint, exchange

    def endpoint_in(self, operation: str, exchange: ApiExchange) -> dict[str, Any] | None:
        found = self.at(operation, exchange)
        return found if isinstance(found, dict) else None

    def at(self, operation: str, exchange: ApiExchange) -> object:
        """What the answer holds at the profile's pointer for the operation (``None``)."""
        pointer = self.management.answers.get(operation, "")
        try:
            return resolve_pointer(exchange.json(), pointer)
        except KeyError:
            return None

    def id_of(self, endpoint: Mapping[str, Any]) -> str:
        value = endpoint.get(self.field("id"))
        return value if isinstance(value, str) else ""

    def ids(self, operation: str, endpoint_id: str) -> dict[str, str]:
        """The path or query parameter that names the endpoint in the operation's route."""
        route = self.route(operation)
        site = self.management.site_query
        names = _PARAM.findall(route.path) or [q for q in route.query if q != site]
        return dict.fromkeys(names, endpoint_id)

    def listed(
        self, *, as_: Caller = "main", query: Mapping[str, str] | None = None
    ) -> tuple[list[Any], ApiExchange]:
        exchange = self.call("list", as_=as_, query=query)
        items = self.at("list", exchange)
        return (items if isinstance(items, list) else []), exchange

    # -- judging ----------------------------------------------------------------------

    def schema_errors(self, ref: str | None, exchange: ApiExchange) -> list[str]:
        """Where the answer's body breaks the schema (an empty list when it fits)."""
        if ref is None:
            return []
        document = exchange.json()
        if document is None:
            return ["the body is not JSON"]
        validator = schema_validator(self.profile, ref)
        return [f"{json_path(e)}: {e.message}" for e in validator.iter_errors(document)][:5]

    def expect_error(
        self, exchange: ApiExchange, *, statuses: tuple[int, ...] | None = None, what: str
    ) -> None:
        """The call was refused as a client error (one of ``statuses``, or any 4xx), with
        the profile's error body."""
        wanted = "/".join(map(str, statuses)) if statuses else "4xx"
        expected = f"{wanted} with the profile's error body"
        status = exchange.status
        ok = status is not None and (status in statuses if statuses else status // 100 == 4)
        if not ok:
            raise CheckFailure(
                f"{what} was answered {exchange.exchange.describe()}",
                expected=expected,
                evidence=exchange,
            )
        problems = self.schema_errors(self.management.error_schema, exchange)
        if problems:
            raise CheckFailure(
                f"{what}: the error body does not fit {self.management.error_schema}",
                expected=expected,
                evidence=exchange,
                detail="; ".join(problems),
            )

    def clean_up(self) -> None:
        """Delete every endpoint the run created, where the API has a delete route."""
        if not self.has("delete"):
            return
        for caller, identifier in self.created:
            self.call("delete", as_=caller, ids=self.ids("delete", identifier))
        self.created.clear()
