"""The part of an oracle receiver that is the team's own, not the verification library's: read
the raw body within the profile's size limit, parse it, deduplicate, acknowledge.

An oracle module supplies one function, ``handle(body, headers)``, that calls its library and
either refuses the request (returns a ``Response``) or names the verified delivery (returns a
``Delivery``: its idempotency key and event type). ``receiver`` wraps it in a Starlette app.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conformance import load_profile

__all__ = ["PATH", "Delivery", "Handler", "json_object", "receiver", "refuse"]

#: Where every oracle receives its deliveries.
PATH = "/webhook"


@dataclass(frozen=True)
class Delivery:
    """A delivery the library verified: the key to deduplicate on, and its event type."""

    key: str
    event_type: str


#: Verify and parse one request: a ``Response`` refuses it, a ``Delivery`` is acknowledged.
Handler = Callable[[bytes, Headers], Delivery | Response]


def refuse(status: int, reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=status)


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not UTF-8 JSON or not an object.
    Decoded as UTF-8 explicitly: ``json.loads`` on bytes would also take UTF-16 and UTF-32."""
    try:
        value = json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and json.JSONDecodeError are both ValueErrors
        return None
    return value if isinstance(value, dict) else None


async def _read_within(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to be longer than ``limit`` bytes (from
    Content-Length, or counted while reading when there is none or it is wrong)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def receiver(profile: str, handle: Handler) -> Starlette:
    """A Starlette app taking POSTs at ``PATH``: 413 above the profile's payload limit, then
    ``handle``; each verified delivery is acknowledged with 200, a repeated key too (and
    processed once: processing is leaving it in ``seen`` here). Unknown event types are
    acknowledged like any other: nothing here dispatches on them."""
    limit = load_profile(profile).limits.payload_bytes
    seen: set[str] = set()  # in memory: one event loop thread, so no lock is needed

    async def webhook(request: Request) -> Response:
        body = await _read_within(request, limit)
        if body is None:
            return refuse(413, f"the body is larger than {limit} bytes")
        outcome = handle(body, request.headers)
        if isinstance(outcome, Response):
            return outcome
        if outcome.key in seen:
            return JSONResponse({"received": True, "duplicate": True})
        seen.add(outcome.key)
        return JSONResponse({"received": True})

    return Starlette(routes=[Route(PATH, webhook, methods=["POST"])])
