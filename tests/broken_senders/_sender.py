"""A correct webhook sender for any profile, small and in memory, built from replaceable steps.

It serves the trigger contract (``POST /conformance/trigger`` with ``{"webhook_url",
"secret", "event_type", "data", "time_scale"}``, answered ``202 {"event_id"}``) and delivers
each accepted event from a thread of its own, with httpx, as the profile says:

* the body: the event's minimal schema example as the frame, with exactly the triggered
  ``data`` at the envelope's data pointer, the event type and a new event id at theirs, and
  the envelope's time fields set to the time of the trigger; serialized once per attempt
  as compact UTF-8 JSON (so every attempt carries the same bytes);
* the headers: ``conformance.delivery_headers``, signed with the trigger's secret over the
  bytes sent, with a fresh timestamp on every attempt; the ids the profile carries in
  headers (``webhook-id``, ``X-GitHub-Delivery``) and its other generated headers
  (``X-Zaits-Delivery``) fixed per event, so every attempt has the same identity;
* the policy (``profile.delivery``): success classes end the delivery; a status in
  ``disable_on_status`` ends it and disables the URL (a later trigger to it is refused
  with 409, and an event accepted before is dropped unsent); retried statuses, timeouts
  and connection errors are retried while attempts remain, each when ``due`` says (the
  schedule times the trigger's ``time_scale``) and, where the profile honours it, not
  before the answer's Retry-After; the per-attempt timeout is the profile's, never
  scaled; redirects are never followed;
* one delivery at a time per URL: an event triggered while another to the same URL is
  still being delivered waits for it to end. So an event triggered the moment a 410 was
  answered is not sent, however late this sender's thread reads that answer.

Every step a defect changes is a method (or a class attribute) of ``CorrectSender``; each
broken sender in ``_defects`` overrides one of them, so the difference between a broken
sender and this one is its defect and nothing else.
"""

from __future__ import annotations

import copy
import email.utils
import json
import math
import secrets
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from conformance import ConformanceError, Profile, delivery_headers, iter_payload_errors, sign
from conformance._signing import fresh_header_value
from conformance.checks._payloads import compact, examples, parts

__all__ = ["TRIGGER_PATH", "Answer", "CorrectSender", "Delivery"]

TRIGGER_PATH = "/conformance/trigger"
#: The largest Unix time a JSON schema of the contract bounds its Unix-seconds integers by.
_UNIX_MAX = 253402300799
#: How long ``stop`` waits for the delivery threads to notice.
_JOIN_SECONDS = 2.0
#: One TLS context for every client: loading the CA bundle per delivery costs tens of ms.
_TLS = ssl.create_default_context()


@dataclass(kw_only=True)
class Delivery:
    """One accepted event: everything its attempts carry that stays the same."""

    event_id: str
    url: str
    secret: str = field(repr=False)
    event_type: str
    data: dict[str, Any]
    scale: float
    payload: Any
    #: The id the profile carries in a header (``webhook-id``, ``X-GitHub-Delivery``).
    header_id: str | None
    #: Fills the profile's other generated headers (``del_{token}``).
    token: str
    #: The wall-clock time of the first attempt (set when it is made).
    first_attempt_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """How one attempt ended: a status (and its Retry-After), or an error without one."""

    status: int | None = None
    error: str | None = None  # "timeout" or "connection"
    retry_after: str | None = None


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CorrectSender:
    """The trigger app (ASGI) and the deliveries it starts."""

    #: Whether an attempt follows a 3xx answer's Location (never, for a correct sender).
    follow_redirects = False

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.policy = profile.delivery
        self._disabled: set[str] = set()
        self._endpoints: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._time_fields = _time_fields(profile)
        self._app = Starlette(routes=[Route(TRIGGER_PATH, self._trigger, methods=["POST"])])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    def stop(self) -> None:
        """End every delivery (a thread waiting for its next attempt stops waiting)."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(_JOIN_SECONDS)

    # -- the replaceable steps: what is sent -----------------------------------------------

    def envelope(self, event_type: str, data: dict[str, Any], event_id: str) -> Any:
        """The payload: the event's minimal example as the frame, exactly ``data`` at the
        data pointer, the type and id at theirs, the time fields at the time of the event."""
        env = self.profile.envelope
        if env.data == "":
            return copy.deepcopy(data)
        payload = copy.deepcopy(examples(self.profile, event_type)[0])
        _put(payload, env.data, copy.deepcopy(data))
        if env.event_type is not None:
            _put(payload, env.event_type, event_type)
        if env.event_id is not None:
            _put(payload, env.event_id, event_id)
        now = time.time()
        for name, unix in self._time_fields.items():
            if name in payload:
                payload[name] = int(now) if unix else _rfc3339(now)
        return payload

    def body(self, delivery: Delivery, number: int) -> bytes:
        """The bytes attempt ``number`` sends."""
        return compact(delivery.payload)

    def signed_bytes(self, delivery: Delivery, body: bytes) -> bytes:
        """The bytes the signature is made over: the body sent."""
        return body

    def timestamp(self, delivery: Delivery, number: int) -> float:
        """The moment attempt ``number`` is signed at: now."""
        return time.time()

    def header_id(self, delivery: Delivery, number: int) -> str | None:
        """The header-borne id attempt ``number`` carries: the event's own."""
        return delivery.header_id

    def headers(self, delivery: Delivery, body: bytes, number: int) -> dict[str, str]:
        """Every header of attempt ``number``, signed afresh."""
        return delivery_headers(
            self.profile,
            delivery.secret,
            self.signed_bytes(delivery, body),
            delivery.payload,
            event_type=delivery.event_type,
            event_id=self.header_id(delivery, number),
            timestamp=self.timestamp(delivery, number),
            token=lambda: delivery.token,
        )

    # -- the replaceable steps: how an attempt is made and judged ---------------------------

    def timeout(self) -> float | None:
        """Seconds an attempt waits for its answer (the profile's; never scaled)."""
        return self.policy.timeout_seconds

    def succeeded(self, answer: Answer) -> bool:
        return answer.status is not None and self.policy.is_success(answer.status)

    def disables(self, answer: Answer) -> bool:
        """Whether the answer ends the delivery and disables the URL (Standard Webhooks' 410)."""
        return answer.status is not None and answer.status in self.policy.disable_on_status

    def disable(self, url: str) -> None:
        with self._lock:
            self._disabled.add(url)

    def retries(self, answer: Answer) -> bool:
        """Whether a failed attempt is retried (while attempts remain)."""
        if answer.status is not None:
            return self.policy.retries_status(answer.status)
        if answer.error == "timeout":
            return self.policy.retry_on_timeout
        return self.policy.retry_on_connection_error

    def attempt_limit(self) -> int:
        return self.policy.max_attempts

    def next_due(
        self, delivery: Delivery, number: int, *, first_started: float, ended: float, answer: Answer
    ) -> float:
        """When (monotonic) attempt ``number + 1`` is due: the scaled schedule, and where the
        profile honours Retry-After, not before the time it names."""
        due = self.policy.due(
            number, first_started=first_started, previous_ended=ended, scale=delivery.scale
        )
        if self.policy.honours_retry_after:
            due = max(due, ended + _retry_after_seconds(answer.retry_after))
        return due

    # -- the fixed frame ------------------------------------------------------------------

    async def _trigger(self, request: Request) -> JSONResponse:
        try:
            delivery = self._accept(await request.body())
        except _Refused as refusal:
            return JSONResponse({"message": str(refusal)}, status_code=refusal.status)
        thread = threading.Thread(
            target=self._deliver, args=(delivery,), name=f"deliver:{delivery.event_id}"
        )
        thread.daemon = True
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return JSONResponse({"event_id": delivery.event_id}, status_code=202)

    def _accept(self, raw: bytes) -> Delivery:
        try:
            trigger = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise _Refused(400, "the trigger is not JSON") from None
        if not isinstance(trigger, dict):
            raise _Refused(400, "the trigger is not a JSON object")
        for name in ("webhook_url", "secret", "event_type"):
            if not isinstance(trigger.get(name), str) or not trigger[name]:
                raise _Refused(400, f"{name} must be a non-empty string")
        url, secret, event_type = trigger["webhook_url"], trigger["secret"], trigger["event_type"]
        data = trigger.get("data")
        if not isinstance(data, dict):
            raise _Refused(400, "data must be an object")
        scale = trigger.get("time_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise _Refused(400, "time_scale must be a number")
        if not (math.isfinite(scale) and 0 < scale <= 1000):
            raise _Refused(400, "time_scale must be above 0 and at most 1000")
        if not url.startswith(("http://", "https://")):
            raise _Refused(400, "webhook_url must be an http(s) URL")
        if event_type not in self.profile.event_names:
            raise _Refused(422, f"unknown event type {event_type!r}")
        with self._lock:
            if url in self._disabled:
                raise _Refused(409, f"{url} is disabled: it answered a disabling status")
        event_id = "evt_" + secrets.token_hex(12)
        # The data is judged in the correct envelope, whatever this sender then sends.
        framed = CorrectSender.envelope(self, event_type, data, event_id)
        errors = list(iter_payload_errors(self.profile, framed, event_type))
        if errors:
            raise _Refused(422, f"invalid data: {errors[0]}")
        try:
            sign(self.profile, secret, b"")
        except ConformanceError as exc:
            raise _Refused(400, f"cannot sign with the secret: {exc}") from None
        env = self.profile.envelope
        header = env.event_id_header
        return Delivery(
            event_id=event_id,
            url=url,
            secret=secret,
            event_type=event_type,
            data=data,
            scale=float(scale),
            header_id=None if header is None else fresh_header_value(self.profile, header),
            token=secrets.token_hex(8),
            payload=self.envelope(event_type, data, event_id),
        )

    def _deliver(self, delivery: Delivery) -> None:
        with self._lock:
            endpoint = self._endpoints.setdefault(delivery.url, threading.Lock())
        with endpoint:
            with self._lock:
                if delivery.url in self._disabled:
                    return  # disabled while the event waited for the one before it
            self._attempts(delivery)

    def _attempts(self, delivery: Delivery) -> None:
        with httpx.Client(follow_redirects=self.follow_redirects, verify=_TLS) as client:
            first_started = time.monotonic()
            number = 0
            while not self._stop.is_set():
                number += 1
                started = time.monotonic()
                if number == 1:
                    first_started = started
                answer = self._attempt(client, delivery, number)
                ended = time.monotonic()
                if self.succeeded(answer):
                    return
                if self.disables(answer):
                    self.disable(delivery.url)
                    return
                if not self.retries(answer) or number >= self.attempt_limit():
                    return
                due = self.next_due(
                    delivery, number, first_started=first_started, ended=ended, answer=answer
                )
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return

    def _attempt(self, client: httpx.Client, delivery: Delivery, number: int) -> Answer:
        body = self.body(delivery, number)
        if delivery.first_attempt_at is None:
            delivery.first_attempt_at = time.time()
        headers = self.headers(delivery, body, number)
        seconds = self.timeout()
        try:
            response = client.request(
                self.policy.method,
                delivery.url,
                content=body,
                headers=headers,
                timeout=httpx.Timeout(seconds),
            )
        except httpx.TimeoutException:
            return Answer(error="timeout")
        except httpx.HTTPError:
            return Answer(error="connection")
        return Answer(status=response.status_code, retry_after=response.headers.get("retry-after"))


def _put(document: Any, pointer: str, value: object) -> None:
    """Set ``value`` at a JSON pointer whose parent exists."""
    *parents, last = parts(pointer)
    node = document
    for part in parents:
        node = node[part]
    node[last] = value


def _rfc3339(moment: float) -> str:
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _time_fields(profile: Profile) -> dict[str, bool]:
    """The envelope's top-level time properties: name -> whether it takes Unix seconds (an
    integer bounded by the last second of 9999) rather than an RFC 3339 date-time."""
    env = profile.envelope
    path = next(root / env.schema for root in profile.schema_roots if (root / env.schema).is_file())
    schema = json.loads(path.read_text(encoding="utf-8"))
    found: dict[str, bool] = {}
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, Mapping):
            continue
        for option in [prop, *prop.get("anyOf", ())]:
            if option.get("format") == "date-time":
                found[name] = False
                break
            if option.get("type") == "integer" and option.get("maximum") == _UNIX_MAX:
                found[name] = True
                break
    return found


def _retry_after_seconds(value: str | None) -> float:
    """Retry-After as seconds from now: a number of seconds or an HTTP date (0 if absent)."""
    if value is None:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, moment.timestamp() - time.time())
