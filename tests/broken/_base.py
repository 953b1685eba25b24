"""A correct receiver for any profile, in memory, built from replaceable steps.

Each broken receiver in ``_defects`` overrides exactly one step, so the difference between a
broken receiver and this one is its defect and nothing else. ``test_broken_corpus`` also runs
the suite against this class unchanged, as the control: it must pass everything.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

from conformance import Profile, VerificationError, verify

logger = logging.getLogger(__name__)

ACK: dict[str, object] = {"received": True}


class TooLarge(Exception):
    """The body passed the size limit."""


class CorrectReceiver:
    """Verify, parse, deduplicate, acknowledge: a raw ASGI app."""

    def __init__(self, profile: Profile, secret: str) -> None:
        self.profile = profile
        self.secret = secret
        self.seen: set[str] = set()

    # -- the replaceable steps -----------------------------------------------------------------

    @property
    def limit(self) -> int:
        return self.profile.limits.payload_bytes

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise ``VerificationError`` unless the raw body is correctly signed and fresh (both
        ways, also where the provider's own verifier checks only the age, as Stripe's does)."""
        verify(self.profile, self.secret, body, headers, both_ways=True)

    def screen(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, object] | None:
        """A look at the request before it is verified: an answer ends the request there.
        The correct receiver answers nothing before verifying."""
        return None

    def parse(self, body: bytes) -> Any:
        return json.loads(body)

    def malformed(self, reason: str) -> tuple[int, object]:
        """The answer to an authentic body that is not a JSON object with an event type."""
        return 400, {"error": reason}

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        """Record the event: 200 for a new one, the duplicate answer for one seen before."""
        if key in self.seen:
            return self.duplicate()
        self.seen.add(key)
        return 200, ACK

    def duplicate(self) -> tuple[int, object]:
        return 200, self.profile.duplicate_response or {"received": True, "duplicate": True}

    # -- the fixed frame ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        try:
            status, answer = await self.handle(scope, receive)
        except Exception as exc:
            logger.warning("receiver crashed: %r", exc)
            status, answer = 500, {"error": "internal error"}
        body = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, object]:
        if scope["method"] != "POST":
            return 405, {"error": "method not allowed"}
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        try:
            if declared.isdigit() and int(declared) > self.limit:
                raise TooLarge
            body = await self.read(receive)
        except TooLarge:
            return 413, {"error": "payload too large"}
        screened = self.screen(body, headers)
        if screened is not None:
            return screened
        try:
            self.verify(body, headers)
        except VerificationError as exc:
            return 401, {"error": str(exc)}
        try:
            payload = self.parse(body)
        except (ValueError, RecursionError):
            return self.malformed("the body is not JSON")
        event_type = (
            self.profile.event_type_of(payload, headers) if isinstance(payload, dict) else None
        )
        if not isinstance(event_type, str):
            return self.malformed("the body is not an object with an event type")
        assert isinstance(payload, dict)
        key = self.profile.idempotency_value(body, payload, headers)
        key = key or hashlib.sha256(body).hexdigest()
        return await self.accept(key, event_type, payload)

    async def read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                raise TooLarge
            more = message.get("more_body", False)
        return b"".join(chunks)
