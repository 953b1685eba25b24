"""The sender's HTTP face: the trigger, the read-only attempt log, and readiness.

``POST /conformance/trigger`` takes ``{"webhook_url", "secret", "event_type", "data",
"time_scale"?}``, checks every field, builds the payload around exactly ``data``, serializes
it once (compact JSON, UTF-8), commits the event to the outbox and only then answers
``202 {"event_id": ...}``. A client mistake is a 4xx ``{"error", "message", "field"}``:

* 400: not JSON, not an object, a field missing or of the wrong type, a URL that is not
  http(s), a secret the profile cannot sign with, a target the SSRF guard refuses by its
  literal (a non-https URL, an IP address in a blocked range);
* 413: a trigger body, or the payload it makes, larger than the profile allows;
* 422: an event type that is not the profile's, or ``data`` its schema does not accept;
* 409: the endpoint was disabled after failing for the profile's ``auto_disable`` period.

``GET /conformance/deliveries/{event_id}`` returns the event's state and attempt log as JSON
(never the secret); ``GET /healthz`` answers ``{"status": "ok"}``.

**With the management API** (``api_keys``, see ``reference.management``), the profile's
management routes are mounted too, and the trigger also *publishes*: a body without
``webhook_url``, sent with ``Authorization: Bearer KEY``, takes ``{"event_type", "data",
"time_scale"?}`` and fans the event out to every active endpoint of the key's tenant
subscribed to its type, each signed with its own secret. One event id, one delivery (an
outbox row of its own) per endpoint: ``202 {"event_id", "deliveries": [{"endpoint_id",
"delivery_id"}]}``; ``GET /conformance/deliveries/{delivery_id}`` shows each, to its tenant
only. A body with ``webhook_url`` is the trigger above, unchanged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from conformance import ConformanceError, PayloadError, Profile, load_profile, sign
from conformance import validate_payload as _validate_payload
from reference._outbox import (
    AttemptRecord,
    EndpointDisabled,
    EndpointState,
    NewEvent,
    Outbox,
    OutboxEvent,
)
from reference.sender._dispatch import Dispatcher
from reference.sender._envelope import EnvelopeBuilder
from reference.sender._guard import literal_block

if TYPE_CHECKING:
    from reference.management import ApiKeys, EndpointStore, ManagementAPI

__all__ = ["TRIGGER_PATH", "SenderService", "create_sender_app", "delivery_view"]

logger = logging.getLogger("reference.sender")

TRIGGER_PATH = "/conformance/trigger"
DELIVERIES_PATH = "/conformance/deliveries/{event_id}"
#: The largest ``time_scale`` taken (a day's schedule stretched a thousand times is plenty).
MAX_TIME_SCALE = 1000.0
#: How many accepted URLs, and secrets, are remembered (then forgotten all at once).
_ACCEPTED_KEPT = 256
#: A host name (IDNA-encoded) or an IP address, as the URL carries it.
_HOST = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+")


class _Refusal(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, object] = {"error": error, "message": message}
        if field is not None:
            self.body["field"] = field
        self.headers = headers


def _unauthorized() -> _Refusal:
    return _Refusal(
        401,
        "unauthorized",
        "the Authorization header carries no configured API key (Authorization: Bearer KEY)",
        headers={"WWW-Authenticate": 'Bearer realm="webhooks"'},
    )


@dataclass(frozen=True, kw_only=True)
class _Prepared:
    """A triggered event, checked and serialized: what every delivery of it sends."""

    event_id: str
    event_type: str
    body: bytes
    time_scale: float
    created_at: float
    next_at: float


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class SenderService:
    """The trigger and the views over one profile's outbox and dispatcher."""

    def __init__(
        self,
        profile: Profile,
        outbox: Outbox,
        dispatcher: Dispatcher,
        *,
        allow_private_targets: bool,
        clock: Callable[[], float],
    ) -> None:
        self.profile = profile
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.builder = EnvelopeBuilder(profile)
        self.allow_private_targets = allow_private_targets
        self._clock = clock
        self._limit = profile.limits.payload_bytes
        # A trigger body carries the data as JSON text; \\u escapes can make it six times
        # the UTF-8 bytes of the payload, plus the other fields.
        self._trigger_limit = 6 * self._limit + 64 * 1024
        self._urls: set[str] = set()
        self._secrets: set[str] = set()
        #: The management API, when the sender serves one (``create_sender_app(api_keys=)``).
        self.management: ManagementAPI | None = None

    # -- the trigger ----------------------------------------------------------------------

    async def trigger(self, request: Request) -> Response:
        try:
            await self.dispatcher.start()
            fields = _parse(await self._read(request))
            if (
                self.management is not None
                and "webhook_url" not in fields
                and "authorization" in request.headers
            ):
                return await self._publish(request, fields)
            event_id = await self._accept(fields)
        except _Refusal as refusal:
            return JSONResponse(refusal.body, status_code=refusal.status, headers=refusal.headers)
        except ClientDisconnect:  # gone before its body arrived: nothing was stored
            return JSONResponse({"error": "client disconnected"}, status_code=400)
        except Exception:
            logger.exception("unexpected error while accepting a trigger")
            return JSONResponse({"error": "internal error"}, status_code=500)
        return JSONResponse({"event_id": event_id}, status_code=202)

    async def _read(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._trigger_limit:
            raise self._too_large_trigger()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._trigger_limit:
                raise self._too_large_trigger()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large_trigger(self) -> _Refusal:
        return _Refusal(
            413, "payload too large", f"the trigger body is larger than {self._trigger_limit} bytes"
        )

    async def _accept(self, fields: dict[str, Any]) -> str:
        url = self._accepted(self._urls, fields.get("webhook_url", _MISSING), self._url)
        secret = self._accepted(self._secrets, fields.get("secret", _MISSING), self._secret)
        prepared = self._prepare(fields)
        event = NewEvent(
            event_id=prepared.event_id,
            event_type=prepared.event_type,
            url=url,
            secret=secret,
            body=prepared.body,
            token=secrets.token_hex(8),
            time_scale=prepared.time_scale,
            created_at=prepared.created_at,
            next_at=prepared.next_at,
        )
        try:
            seq = await self.outbox.add(event)
        except EndpointDisabled as exc:
            raise _Refusal(409, "endpoint disabled", str(exc), "webhook_url") from None
        self.dispatcher.schedule(prepared.next_at, seq, prepared.event_id)
        return prepared.event_id

    async def _publish(self, request: Request, fields: dict[str, Any]) -> Response:
        """The trigger without ``webhook_url``: fan the event out to the tenant's endpoints."""
        assert self.management is not None
        tenant = self.management.keys.authenticate(request.headers.get("authorization"))
        if tenant is None:
            raise _unauthorized()
        if "secret" in fields:
            raise _Refusal(
                400,
                "invalid trigger",
                "secret is not taken when publishing: each endpoint signs with its own",
                "secret",
            )
        prepared = self._prepare(fields)
        fanned = await self.management.publish(
            tenant,
            event_id=prepared.event_id,
            event_type=prepared.event_type,
            body=prepared.body,
            time_scale=prepared.time_scale,
            created_at=prepared.created_at,
            next_at=prepared.next_at,
        )
        deliveries = [{"endpoint_id": f.endpoint_id, "delivery_id": f.delivery_id} for f in fanned]
        return JSONResponse(
            {"event_id": prepared.event_id, "deliveries": deliveries}, status_code=202
        )

    def _prepare(self, fields: dict[str, Any]) -> _Prepared:
        """Check the event's type, data and time scale, and serialize its payload once."""
        event_type = self._event_type(fields.get("event_type", _MISSING))
        data = fields.get("data", _MISSING)
        if data is _MISSING:
            raise _missing("data")
        if not isinstance(data, dict):
            raise _Refusal(400, "invalid trigger", "data must be a JSON object", "data")
        scale = self._time_scale(fields.get("time_scale", 1.0))

        now = self._clock()
        event_id = self.builder.new_event_id()
        payload = self.builder.build(event_type, data, event_id=event_id, created_at=now)
        try:
            body = _json_bytes(payload)
        except UnicodeEncodeError:
            raise _Refusal(
                400, "invalid trigger", "data holds a lone surrogate (\\ud800-\\udfff)", "data"
            ) from None
        if len(body) > self._limit:
            raise _Refusal(
                413,
                "payload too large",
                f"data makes a payload of {len(body)} bytes; profile {self.profile.name!r} "
                f"allows {self._limit}",
                "data",
            )
        try:
            _validate_payload(self.profile, payload, event_type)
        except PayloadError as exc:
            raise _Refusal(
                422,
                "invalid data",
                f"data does not make a valid {event_type} payload: {exc}",
                "data",
            ) from None
        return _Prepared(
            event_id=event_id,
            event_type=event_type,
            body=body,
            time_scale=scale,
            created_at=now,
            next_at=now + self.profile.delivery.schedule_seconds[0] * scale,
        )

    @staticmethod
    def _accepted(seen: set[str], value: object, check: Callable[[object], str]) -> str:
        """``check(value)``, skipped for a value it accepted before: a sender is triggered
        for a few endpoints and secrets again and again, and both checks depend on the value
        alone (a URL's text, not what its host resolves to, which is checked at connect
        time)."""
        if isinstance(value, str) and value in seen:
            return value
        accepted = check(value)
        if len(seen) >= _ACCEPTED_KEPT:
            seen.clear()
        seen.add(accepted)
        return accepted

    def _url(self, value: object) -> str:
        if value is _MISSING:
            raise _missing("webhook_url")
        if not isinstance(value, str) or not value or not _encodable(value):
            raise _Refusal(400, "invalid trigger", "webhook_url must be a URL", "webhook_url")
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, ValueError) as exc:
            raise _Refusal(
                400, "invalid trigger", f"webhook_url is not a URL: {exc}", "webhook_url"
            ) from None
        if (
            url.scheme not in ("http", "https")
            or not url.host
            or not _HOST.fullmatch(url.raw_host.decode("ascii", "replace"))
        ):
            raise _Refusal(
                400,
                "invalid trigger",
                f"webhook_url must be an http:// or https:// URL with a host, not {value!r}",
                "webhook_url",
            )
        if url.port is not None and not 0 < url.port < 65536:
            raise _Refusal(
                400, "invalid trigger", f"webhook_url has no valid port: {url.port}", "webhook_url"
            )
        if not self.allow_private_targets:
            reason = literal_block(url)
            if reason is not None:
                raise _Refusal(
                    400,
                    "blocked target",
                    f"webhook_url is blocked: {reason} (the SSRF guard; "
                    "--allow-private-targets lifts it for local testing)",
                    "webhook_url",
                )
        return value

    def _secret(self, value: object) -> str:
        if value is _MISSING:
            raise _missing("secret")
        if not isinstance(value, str) or not value:
            raise _Refusal(400, "invalid trigger", "secret must be a non-empty string", "secret")
        if not _encodable(value):
            raise _Refusal(400, "invalid trigger", "secret holds a lone surrogate", "secret")
        try:
            sign(self.profile, value, b"", now=0)
        except (ConformanceError, ValueError) as exc:
            raise _Refusal(
                400,
                "invalid secret",
                f"secret cannot sign for profile {self.profile.name!r}: {exc}",
                "secret",
            ) from None
        return value

    def _event_type(self, value: object) -> str:
        if value is _MISSING:
            raise _missing("event_type")
        if not isinstance(value, str) or not _encodable(value):
            raise _Refusal(400, "invalid trigger", "event_type must be a string", "event_type")
        try:
            return self.profile.event_name(value)
        except ConformanceError as exc:
            raise _Refusal(422, "unknown event type", f"event_type: {exc}", "event_type") from None

    @staticmethod
    def _time_scale(value: object) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value <= MAX_TIME_SCALE
        ):
            raise _Refusal(
                400,
                "invalid trigger",
                f"time_scale must be a number above 0 and at most {MAX_TIME_SCALE:g}, "
                f"not {value!r}",
                "time_scale",
            )
        return float(value)

    # -- the attempt log --------------------------------------------------------------------

    async def delivery(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        try:
            await self.dispatcher.start()
            found = await self.outbox.delivery(event_id)
            hidden = await self._hidden(request, event_id)
        except _Refusal as refusal:
            return JSONResponse(refusal.body, status_code=refusal.status, headers=refusal.headers)
        except Exception:
            logger.exception("unexpected error while reading delivery %r", event_id)
            return JSONResponse({"error": "internal error"}, status_code=500)
        if found is None or hidden:
            return JSONResponse(
                {"error": "not found", "message": f"no event {event_id!r}"}, status_code=404
            )
        event, attempts, endpoint = found
        return JSONResponse(delivery_view(event, attempts, endpoint))

    async def _hidden(self, request: Request, event_id: str) -> bool:
        """Whether a published delivery belongs to another tenant than the request's key
        (no key or a wrong one: 401). Triggered events are shown to anyone, as before."""
        if self.management is None:
            return False
        owner = await self.management.store.delivery_tenant(event_id)
        if owner is None:
            return False
        tenant = self.management.keys.authenticate(request.headers.get("authorization"))
        if tenant is None:
            raise _unauthorized()
        return tenant.id != owner


_MISSING: Any = object()


def _missing(name: str) -> _Refusal:
    return _Refusal(400, "invalid trigger", f"{name} is required", name)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(
            raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError as exc:
        raise _Refusal(400, "malformed trigger", f"invalid UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise _Refusal(400, "malformed trigger", "the JSON is nested too deeply") from None
    except ValueError as exc:
        raise _Refusal(400, "malformed trigger", f"the body is not JSON ({exc})") from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise _Refusal(400, "malformed trigger", f"the body must be a JSON object, not {kind}")
    return value


def _excerpt_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def delivery_view(
    event: OutboxEvent, attempts: list[AttemptRecord], endpoint: EndpointState | None
) -> dict[str, object]:
    """The JSON shape of ``GET /conformance/deliveries/{event_id}``."""
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "webhook_url": event.url,
        "state": event.state,
        "attempt_count": event.attempts,
        "next_attempt_at": event.next_at,
        "created_at": event.created_at,
        "finished_at": event.finished_at,
        "last_error": event.last_error,
        "time_scale": event.time_scale,
        "body": event.body.decode("utf-8"),
        "attempts": [
            {
                "attempt": a.number,
                "started_at": a.started_at,
                "ended_at": a.ended_at,
                "outcome": a.outcome,
                "status": a.status,
                "error": a.error,
                "response_ms": a.response_ms,
                "response_excerpt": _excerpt_text(a.excerpt),
                "headers": dict(a.headers),
            }
            for a in attempts
        ],
        "endpoint": None
        if endpoint is None
        else {
            "failing_since": endpoint.failing_since,
            "last_success_at": endpoint.last_success_at,
            "disabled_at": endpoint.disabled_at,
            "disabled_reason": endpoint.disabled_reason,
        },
    }


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_sender_app(
    profile: Profile | str,
    *,
    db_path: str | Path,
    allow_private_targets: bool = False,
    api_keys: Sequence[str] = (),
    sites: Mapping[str, Sequence[str]] | None = None,
    clock: Callable[[], float] = time.time,
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    max_concurrency: int = 64,
    stop_grace_seconds: float = 1.0,
) -> Starlette:
    """A Starlette app that sends one profile's webhooks: the trigger at
    ``/conformance/trigger``, the attempt log at ``/conformance/deliveries/{event_id}``,
    ``GET /healthz``. Its lifespan starts and stops the dispatcher (the first request starts
    it too, where no lifespan runs); events live in the SQLite file ``db_path``.

    The SSRF guard is on unless ``allow_private_targets``. ``clock`` returns Unix seconds and
    drives timestamps, schedules and the auto-disable period. ``app.state.sender`` is the
    ``SenderService``.

    ``api_keys`` (one tenant each) also serve the profile's management API
    (``reference.management``), its endpoints in the same SQLite file, and let the trigger
    publish to them; ``sites`` gives keys their sites, for a site-scoped API. A profile with
    no management API, or keys that cannot be used, raise ``ValueError``.
    """
    resolved = profile if isinstance(profile, Profile) else load_profile(profile)
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
    keys: ApiKeys | None = None
    store: EndpointStore | None = None
    if api_keys or sites:
        # Imported here: reference.management builds on this package's dispatcher.
        from reference.management import ApiKeys, EndpointStore

        keys = ApiKeys(api_keys, sites)
        store = EndpointStore(db_path, profile=resolved.name, synchronous=synchronous)
    outbox: Outbox = store or Outbox(db_path, profile=resolved.name, synchronous=synchronous)
    dispatcher = Dispatcher(
        resolved,
        outbox,
        allow_private_targets=allow_private_targets,
        clock=clock,
        max_concurrency=max_concurrency,
        stop_grace_seconds=stop_grace_seconds,
    )
    service = SenderService(
        resolved, outbox, dispatcher, allow_private_targets=allow_private_targets, clock=clock
    )
    routes: list[BaseRoute] = [
        Route(TRIGGER_PATH, service.trigger, methods=["POST"]),
        Route(DELIVERIES_PATH, service.delivery, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
    ]
    if store is not None and keys is not None:
        from reference.management import ManagementAPI

        service.management = ManagementAPI(
            resolved,
            store,
            dispatcher,
            service.builder,
            keys,
            allow_private_targets=allow_private_targets,
            clock=clock,
        )
        routes += service.management.routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sender = service
    return app
