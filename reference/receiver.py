"""The reference webhook receiver: an ASGI app built from a profile.

One delivery, in order:

1. Wrong method: 405 with ``Allow``. A ``Content-Length`` above ``profile.limits.payload_bytes``:
   413 before any byte of the body is read. The body is then read in chunks and reading stops
   (413) as soon as it passes the limit, so a missing or lying length costs at most one chunk.
2. Signature over the raw bytes (``conformance.Verifier``: constant-time comparison, signed
   timestamp within the tolerance): 401 with the typed error's reason and header.
3. The body must be a JSON object with an event type at the profile's pointer: else 400.
4. One ``INSERT .. ON CONFLICT DO NOTHING`` keyed on the profile's idempotency value, committed
   before answering: 200 with ``{"received": true}`` for a new event (catalogued or not),
   200 with the profile's duplicate response for one already stored.
5. After the response is sent, a worker task hands new events to ``handler`` and marks them
   processed. Events stored but never processed (a crash, a handler error) are handed over
   again at the next start.

Stale and future timestamps answer 401, like every other verification failure: the request
is not authenticated for *now*. Client mistakes never get a 5xx; an unexpected bug answers
500 ``{"error": "internal error"}`` without details, and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from conformance import Profile, VerificationError, Verifier, load_profile
from conformance._signing import Secrets, verifying_keys
from reference._store import EventStore, StoredEvent, Synchronous

__all__ = ["ACK", "DUPLICATE_ACK", "Handler", "WebhookEndpoint", "create_app"]

logger = logging.getLogger("reference.receiver")

Handler = Callable[[StoredEvent], Awaitable[None] | None]

#: The body of a 2xx answer to a new delivery.
ACK: dict[str, object] = {"received": True}
#: The body of a 2xx answer to a duplicate, unless the profile sets ``duplicate_response``.
DUPLICATE_ACK: dict[str, object] = {"received": True, "duplicate": True}

_WORKER_BATCH = 64
_DRAIN_SECONDS = 5.0


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


async def _off_loop(function: Callable[[], None]) -> None:
    """Run blocking ``function`` in the loop's default executor, which ``asyncio.run`` joins
    when the loop ends (no worker thread outlives the server)."""
    await asyncio.get_running_loop().run_in_executor(None, function)


class _Rejection(Exception):
    """A delivery refused with a 4xx answer; the message is safe to show the sender."""

    def __init__(self, status: int, error: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": error, "message": message, **extra}


class _Worker:
    """Hands stored events to the handler one at a time, after their responses were sent."""

    def __init__(self, store: EventStore, handler: Handler, clock: Callable[[], float]) -> None:
        self._store = store
        self._handler = handler
        self._is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - callable objects' async __call__
        )
        self._clock = clock
        self._queue: asyncio.Queue[StoredEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-worker")

    def submit(self, event: StoredEvent) -> None:
        self._queue.put_nowait(event)

    async def stop(self, drain_seconds: float = _DRAIN_SECONDS) -> None:
        """Let queued events finish (bounded), then stop; the rest stay pending in the store."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _WORKER_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                done = [event.key for event in batch if await self._handle(event)]
                if done:
                    await self._store.mark_processed(done, self._clock())
            except Exception:
                logger.exception("could not record processing of %d event(s)", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _handle(self, event: StoredEvent) -> bool:
        try:
            if self._is_async:
                await self._handler(event)  # type: ignore[misc]
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(None, self._handler, event)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            logger.exception("handler failed on %s event %r", event.event_type, event.key)
            await self._store.mark_failed(event.key, f"{type(exc).__name__}: {exc}")
            return False
        return True


class WebhookEndpoint:
    """The delivery endpoint as a raw ASGI app (see the module docstring for the steps)."""

    def __init__(
        self,
        profile: Profile,
        verifier: Verifier,
        store: EventStore,
        *,
        handler: Handler | None,
        clock: Callable[[], float],
    ) -> None:
        self.profile = profile
        self.store = store
        self._verifier = verifier
        self._handler = handler
        self._clock = clock
        self._limit = profile.limits.payload_bytes
        self._method = profile.delivery.method.upper()
        scheme = profile.signature
        env = profile.envelope
        names = [scheme.header, *(s.header for s in scheme.legacy if s.header)]
        names += [scheme.timestamp.header] if scheme.timestamp and scheme.timestamp.header else []
        names += [h for h in (scheme.id_header, env.event_type_header, env.event_id_header) if h]
        names += [profile.idempotency_header] if profile.idempotency_header else []
        self._wanted = {name.lower().encode("latin-1"): name for name in names}
        self._ack = _json_bytes(ACK)
        duplicate = profile.duplicate_response
        self._duplicate_ack = _json_bytes(DUPLICATE_ACK if duplicate is None else duplicate)
        self._known = frozenset(profile.event_names)
        self._worker: _Worker | None = None
        self._started = False
        self._start_lock: asyncio.Lock | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def startup(self) -> None:
        """Open the store and start the worker; idempotent, and run lazily on the first
        delivery when the app is mounted somewhere that does not forward lifespan events."""
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            await _off_loop(self.store.open)
            if self._handler is not None:
                self._worker = _Worker(self.store, self._handler, self._clock)
                for event in await self.store.pending():
                    self._worker.submit(event)
                self._worker.start()
            self._started = True

    async def shutdown(self) -> None:
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None
        await _off_loop(self.store.close)
        self._started = False
        self._start_lock = None

    # -- one delivery -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != self._method:
            await _respond(
                send,
                405,
                _json_bytes({"error": "method not allowed", "message": f"use {self._method}"}),
                ((b"allow", self._method.encode("ascii")),),
            )
            return
        new: StoredEvent | None = None
        try:
            await self.startup()
            status, body, new = await self._accept(scope, receive)
        except _Rejection as rejection:
            status, body = rejection.status, _json_bytes(rejection.body)
        except _Disconnected:
            return
        except Exception:
            logger.exception("unexpected error while receiving a delivery")
            status, body = 500, _json_bytes({"error": "internal error"})
        try:
            await _respond(send, status, body)
        finally:
            if new is not None and self._worker is not None:
                self._worker.submit(new)

    async def _accept(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, StoredEvent | None]:
        headers: dict[str, str] = {}
        length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name in self._wanted and self._wanted[name] not in headers:
                headers[self._wanted[name]] = value.decode("latin-1")
        if length is not None:
            if not length.isdigit():
                raise _Rejection(400, "bad request", "Content-Length is not a number")
            if int(length) > self._limit:
                raise self._too_large()
        body = await self._read_body(receive)

        try:
            self._verifier(body, headers)
        except VerificationError as exc:
            raise _Rejection(401, exc.reason, str(exc), header=exc.header) from None

        payload = _parse(body)
        event_type = self.profile.event_type_of(payload, headers)
        where = self.profile.envelope.event_type or self.profile.envelope.event_type_header
        if event_type is None:
            raise _Rejection(400, "malformed body", f"the delivery has no event type at {where}")
        if not isinstance(event_type, str):
            raise _Rejection(400, "malformed body", f"the event type at {where} is not a string")
        key = self.profile.idempotency_value(body, payload, headers)
        key = key or hashlib.sha256(body).hexdigest()
        if _has_surrogates(event_type + key):
            # A \ud800 escape is valid JSON but not storable text.
            raise _Rejection(400, "malformed body", "the event type or id has a lone surrogate")
        new = await self.store.add(
            key=key,
            event_type=event_type,
            known=event_type in self._known,
            body=body,
            received_at=self._clock(),
            processed=self._handler is None,
        )
        if new is None:
            return 200, self._duplicate_ack, None
        return 200, self._ack, new

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                raise self._too_large()
            if not message.get("more_body", False):
                if not chunks:
                    return bytes(chunk)
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)

    def _too_large(self) -> _Rejection:
        return _Rejection(413, "payload too large", f"the body is larger than {self._limit} bytes")


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _Disconnected(Exception):
    """The sender went away before the body arrived; there is nobody to answer."""


def _parse(body: bytes) -> dict[str, Any]:
    """The body as a JSON object. JSON is UTF-8 (RFC 8259): the bytes are decoded strictly
    first, since ``json.loads(bytes)`` would also take UTF-16, a BOM, or encoded surrogates."""
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        detail = f"invalid UTF-8 at byte {exc.start}"
    except RecursionError:
        detail = "nested too deeply"
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers too long to convert
        detail = str(exc)
    else:
        if isinstance(payload, dict):
            return payload
        kind = type(payload).__name__
        raise _Rejection(400, "malformed body", f"the body is JSON but not an object ({kind})")
    raise _Rejection(400, "malformed body", f"the body is not JSON ({detail})")


async def _respond(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            *headers,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(
    profile: Profile | str,
    secret: Secrets,
    *,
    db_path: str | Path,
    tolerance: float | None = None,
    path: str = "/webhook",
    handler: Handler | None = None,
    clock: Callable[[], float] = time.time,
    synchronous: Synchronous = "NORMAL",
) -> Starlette:
    """A Starlette app receiving one profile's deliveries at ``path`` (POST), storing them in
    the SQLite file ``db_path``, with ``GET /healthz`` for readiness.

    ``tolerance`` overrides the profile's timestamp tolerance (seconds); ``clock`` returns
    Unix seconds; ``handler`` is called with each new event after its response was sent.
    The endpoint object is ``app.state.endpoint``.
    """
    resolved = profile if isinstance(profile, Profile) else load_profile(profile)
    if not secret:
        raise ValueError("the webhook secret is empty")
    if tolerance is not None and not 0 <= tolerance < math.inf:
        raise ValueError(f"tolerance must be a finite number of seconds >= 0, not {tolerance}")
    # A secret (or an Ed25519 public key) the key derivation refuses fails here, once.
    verifying_keys(resolved.signature, secret)
    # Timestamps too far ahead are refused even where the provider's own verifier checks only
    # their age (Stripe): a SHOULD the reference meets.
    verifier = Verifier(resolved, secret, tolerance=tolerance, clock=clock, both_ways=True)
    store = EventStore(db_path, profile=resolved.name, synchronous=synchronous)
    endpoint = WebhookEndpoint(resolved, verifier, store, handler=handler, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await endpoint.startup()
        try:
            yield
        finally:
            await endpoint.shutdown()

    app = _ReceiverApp(
        routes=[Route(path, endpoint), Route("/healthz", _healthz, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.endpoint = endpoint
    app.fast_path = (path, endpoint)
    return app


class _ReceiverApp(Starlette):
    """Starlette, with deliveries handed straight to the endpoint.

    Starlette's error and exception middleware and its router add a third to the cost of a
    request; the endpoint catches its own errors and needs no routing, so while no middleware
    was added to the app a request for the delivery path skips them. Everything else (other
    paths, lifespan, added middleware) goes through Starlette as usual.
    """

    fast_path: tuple[str, WebhookEndpoint] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is not None and scope["type"] == "http" and not self.user_middleware:
            path, endpoint = self.fast_path
            root = scope.get("root_path", "")
            full = scope["path"]
            if (full[len(root) :] if root and full.startswith(root) else full) == path:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
