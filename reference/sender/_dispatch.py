"""The dispatcher: a scheduler that wakes when the next attempt is due, and one task per
attempt over a shared httpx connection pool.

**Scheduling.** Pending events sit in a heap by due time (wall-clock Unix seconds, as stored
in the outbox). The scheduler sleeps until the earliest is due, or until ``schedule`` adds
one that is due sooner (an ``asyncio.Event`` wakes it), then starts every due attempt. No
polling: a scaled schedule holds to the event loop's timer resolution (about a millisecond),
plus the commit that records the attempt's start.

**One attempt.** At most ``max_concurrency`` attempts (64 by default) are in flight at
once, over one ``GuardedTransport`` whose pool keeps as many connections alive. Requests go
to the transport directly, not through an ``httpx.AsyncClient``: a sender needs none of a
client's redirects, cookies (a jar shared by every endpoint would be wrong) or default
headers, and their bookkeeping was a tenth of an attempt's cost. The attempt's start is
committed with the headers it sends (signed afresh: a new timestamp for timestamped
schemes; the stored body, event id and delivery token, so the identity is the same on every
attempt), then the request goes out with the profile's method and per-attempt timeout (never
scaled, and never a redirect followed). Its answer, timeout or connection error is
classified by the delivery policy:

* a status in a success class: delivered;
* a status in a retry class, a timeout (``retry_on_timeout``), a connection error
  (``retry_on_connection_error``) or a TLS error (``retry_on_tls_error``): the next attempt is
  due when ``DeliveryPolicy.due`` says, while attempts remain;
* anything else, a target the SSRF guard refused, or the last attempt: failed.

``due`` reads the profile's ``schedule_from``: ``schedule_seconds[n] * time_scale`` after
attempt n ended (its answer, its timeout or its error) for ``previous-attempt``, or after
attempt 1 started for ``first-attempt``. That start comes from the attempt log, so a schedule
resumed after a restart still counts from it.

**At least once.** The outbox is the truth; the heap is rebuilt from it at every start. An
attempt cut short by a stop is closed as interrupted and made again at the next start, with
the same number and identity; so is one left open by a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import heapq
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from conformance import Profile, delivery_headers
from reference._outbox import AttemptResult, Begun, Outbox, OutboxEvent
from reference.sender._guard import BlockedTarget, GuardedTransport

__all__ = ["EXCERPT_BYTES", "Classified", "Dispatcher"]

logger = logging.getLogger("reference.sender")

#: The most of an answer's body kept in the attempt log.
EXCERPT_BYTES = 1024
#: Read at most this much of an answer (so a small one leaves the connection reusable).
_READ_BYTES = 64 * 1024
_RETRY_AFTER_ERROR = 1.0
_DEFAULT_HEADERS = {"User-Agent": "webhook-conformance-reference-sender/0.1"}
#: Parsed target URLs kept (a sender usually delivers to a few endpoints, again and again).
_URL_CACHE = 1024
ErrorKind = Literal["timeout", "connection", "tls", "blocked", "request"]


async def _off_loop(function: Callable[[], None]) -> None:
    await asyncio.get_running_loop().run_in_executor(None, function)


@dataclass(frozen=True)
class Classified:
    """An attempt's result, and the kind of error where there was no answer."""

    result: AttemptResult
    kind: ErrorKind | None = None


def _has_ssl_cause(exc: BaseException) -> bool:
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        if isinstance(node, ssl.SSLError | ssl.CertificateError):
            return True
        seen.add(id(node))
        node = node.__cause__ or node.__context__
    return False


class Dispatcher:
    """Delivers one profile's pending events from ``outbox`` (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        outbox: Outbox,
        *,
        allow_private_targets: bool = False,
        clock: Callable[[], float] = time.time,
        max_concurrency: int = 64,
        stop_grace_seconds: float = 1.0,
    ) -> None:
        self.profile = profile
        self.outbox = outbox
        self.allow_private_targets = allow_private_targets
        self._clock = clock
        self._policy = profile.delivery
        self._method = self._policy.method.upper()
        self._timeout = float(self._policy.timeout_seconds)
        hours = self._policy.auto_disable_after_hours
        self._disable_after = None if hours is None else float(hours) * 3600.0
        self._retry_errors: dict[ErrorKind, bool] = {
            "timeout": self._policy.retry_on_timeout,
            "connection": self._policy.retry_on_connection_error,
            "tls": self._policy.retry_on_tls_error,
            "blocked": False,
            "request": False,
        }
        self._max_concurrency = max_concurrency
        self._grace = stop_grace_seconds
        self._heap: list[tuple[float, int, str]] = []
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._transport: GuardedTransport | None = None
        self._timeouts = {"timeout": httpx.Timeout(self._timeout).as_dict()}
        self._urls: dict[str, httpx.URL] = {}
        self._scheduler: asyncio.Task[None] | None = None
        self._start_lock: asyncio.Lock | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    async def start(self) -> None:
        """Open the outbox, recover what a previous run left, and start scheduling; run once
        (later calls return at once)."""
        if self._scheduler is not None:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._scheduler is not None:
                return
            await _off_loop(self.outbox.open)
            self._wake = asyncio.Event()
            self._slots = asyncio.Semaphore(self._max_concurrency)
            limits = httpx.Limits(
                max_connections=self._max_concurrency,
                max_keepalive_connections=self._max_concurrency,
            )
            self._transport = GuardedTransport(guard=not self.allow_private_targets, limits=limits)
            pending = await self.outbox.recover(self._clock())
            self._heap = list(pending)
            heapq.heapify(self._heap)
            self._scheduler = asyncio.get_running_loop().create_task(
                self._run(), name="sender-scheduler"
            )

    async def stop(self) -> None:
        """Stop scheduling; let attempts in flight finish for the grace period, cut the rest
        short (recorded as interrupted, made again at the next start); close the pool and
        the outbox."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduler
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self._grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None
        self._heap.clear()
        self._inflight.clear()
        await self.outbox.aclose()
        self._start_lock = None

    # -- scheduling ---------------------------------------------------------------------------

    def schedule(self, due: float, seq: int, event_id: str) -> None:
        """Make an attempt of ``event_id`` due at ``due`` (Unix seconds)."""
        entry = (due, seq, event_id)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry and self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                _, _, event_id = heapq.heappop(self._heap)
                if event_id in self._inflight:
                    continue
                self._inflight.add(event_id)
                task = loop.create_task(self._attempt(event_id), name=f"attempt:{event_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self._wake.clear()
            delay = self._heap[0][0] - self._clock() if self._heap else None
            if delay is not None and delay <= 0:
                continue
            # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a cancel that
            # arrives just as the event is set, and the scheduler would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    # -- one attempt ----------------------------------------------------------------------------

    def _sign(self, event: OutboxEvent, now: float) -> dict[str, str]:
        """The headers of one attempt: signed now, over the stored bytes, with the stored
        identity (event id for header-borne ids, token for generated headers)."""
        payload = json.loads(event.body)
        token = event.token
        headers = delivery_headers(
            self.profile,
            event.secret,
            event.body,
            payload,
            event_type=event.event_type,
            event_id=event.event_id if self.profile.envelope.event_id_header else None,
            now=now,
            token=lambda: token,
        )
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = self.profile.envelope.content_type
        return headers

    async def _attempt(self, event_id: str) -> None:
        assert self._slots is not None
        try:
            async with self._slots:
                await self._attempt_once(event_id)
        finally:
            self._inflight.discard(event_id)

    async def _attempt_once(self, event_id: str) -> None:
        try:
            begun = await self.outbox.begin_attempt(event_id, sign=self._sign, clock=self._clock)
        except Exception:
            logger.exception("could not start an attempt of %s; retrying shortly", event_id)
            self._retry_later(event_id)
            return
        if begun is None:
            return
        if isinstance(begun, float):
            self._inflight.discard(event_id)
            self.schedule(begun, 0, event_id)
            return
        try:
            classified = await self._send(begun)
        except asyncio.CancelledError:
            self.outbox.interrupt_nowait(begun.attempt_id, self._clock())
            raise
        ended = self._clock()
        outcome, next_at, error = self._decide(begun, classified, ended)
        status = classified.result.status
        disable_now = None
        if status is not None and status in self._policy.disable_on_status:
            disable_now = f"the endpoint answered {status}, which disables it"
        try:
            state, due = await self.outbox.finish_attempt(
                begun,
                classified.result,
                outcome=outcome,
                ended_at=ended,
                next_at=next_at,
                error=error,
                disable_after_seconds=self._disable_after,
                disable_now=disable_now,
            )
        except Exception:
            logger.exception("could not record attempt %d of %s", begun.number, event_id)
            self._retry_later(event_id)
            return
        if state == "pending" and due is not None:
            self._inflight.discard(event_id)
            self.schedule(due, begun.event.seq, event_id)

    def _retry_later(self, event_id: str) -> None:
        """After a storage error: try the event again soon (its row still says pending)."""
        self._inflight.discard(event_id)
        self.schedule(self._clock() + _RETRY_AFTER_ERROR, 0, event_id)

    def _decide(
        self, begun: Begun, classified: Classified, ended: float
    ) -> tuple[Literal["delivered", "retry", "failed"], float | None, str | None]:
        policy = self._policy
        result = classified.result
        if result.status is not None:
            if policy.is_success(result.status):
                return "delivered", None, None
            if result.status in policy.disable_on_status:
                return "failed", None, f"answered {result.status}; the endpoint is disabled"
            retryable = policy.retries_status(result.status)
            reason = f"answered {result.status}"
        else:
            retryable = classified.kind is not None and self._retry_errors[classified.kind]
            reason = result.error or "no answer"
        number = begun.number
        if retryable and number < policy.max_attempts:
            due = policy.due(
                number,
                first_started=begun.first_started_at,
                previous_ended=ended,
                scale=begun.event.time_scale,
            )
            if policy.honours_retry_after and result.retry_after is not None:
                # The receiver's own demand, in real seconds: never scaled.
                due = max(due, ended + result.retry_after)
                reason += f" (Retry-After: {result.retry_after:g} s)"
            return "retry", due, reason
        if retryable:
            return "failed", None, f"{reason}; no attempt left after {number}"
        if classified.kind == "blocked":
            return "failed", None, f"{reason}; a refused target is never retried"
        return "failed", None, f"{reason}; not retried under the profile's policy"

    def _request(self, begun: Begun) -> httpx.Request:
        """The attempt's request: its signed headers over a User-Agent, the stored body."""
        event = begun.event
        url = self._urls.get(event.url)
        if url is None:
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            url = self._urls[event.url] = httpx.URL(event.url)
        headers = httpx.Headers(_DEFAULT_HEADERS)
        headers.update(begun.headers)
        return httpx.Request(
            self._method, url, headers=headers, content=event.body, extensions=self._timeouts
        )

    async def _send(self, begun: Begun) -> Classified:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        started = time.perf_counter()
        try:
            request = self._request(begun)
            async with asyncio.timeout_at(deadline):
                response = await self._transport.handle_async_request(request)
            response.request = request
        except BlockedTarget as exc:
            return _error(f"blocked: {exc.reason}", "blocked")
        except (TimeoutError, httpx.TimeoutException):
            return _error(f"timeout: no answer within {self._timeout:g} s", "timeout")
        except httpx.ConnectError as exc:
            if _has_ssl_cause(exc):
                return _error(f"tls error: {exc}", "tls")
            return _error(f"connection error: {exc or type(exc).__name__}", "connection")
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            kind: ErrorKind = "tls" if _has_ssl_cause(exc) else "connection"
            return _error(f"{kind} error: {exc or type(exc).__name__}", kind)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return _error(f"could not send: {exc}", "request")
        response_ms = (time.perf_counter() - started) * 1000.0
        excerpt = bytearray()
        try:
            async with asyncio.timeout_at(deadline):
                async for chunk in response.aiter_raw():
                    excerpt += chunk
                    if len(excerpt) >= _READ_BYTES:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass  # the status is the answer; the body is only logged
        finally:
            await response.aclose()
        return Classified(
            AttemptResult(
                status=response.status_code,
                response_ms=response_ms,
                excerpt=bytes(excerpt[:EXCERPT_BYTES]),
                retry_after=retry_after(response.headers.get("retry-after"), self._clock()),
            )
        )


#: The longest Retry-After honoured: a receiver cannot park a delivery for longer than a day.
MAX_RETRY_AFTER = 86400.0


def retry_after(value: str | None, now: float) -> float | None:
    """The seconds a Retry-After header asks for: delay-seconds or an HTTP-date (RFC 9110,
    10.2.3), capped at a day; ``None`` when it is absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return min(max(moment.timestamp() - now, 0.0), MAX_RETRY_AFTER)


def _error(message: str, kind: ErrorKind) -> Classified:
    return Classified(AttemptResult(error=message), kind)
