"""The capture server: it receives what the sender under test delivers, answers each
attempt as its scenario's script says, and records every request exactly as it arrived.

Each scenario owns one path prefix (``/<token>/``). Its script is a list of replies, one
per attempt (the last repeats): a status, headers, and how long to hold the answer back
(a held answer is how a timeout is provoked; a sender that gives up closes the connection,
and the capture records when). It is a bare ASGI app so that it sees exactly the bytes and
headers sent, and the moment a client disconnects.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from starlette.types import Receive, Scope, Send

from conformance._serving import serve_in_thread

__all__ = ["Attempt", "Capture", "Reply", "capturing"]


@dataclass(frozen=True, kw_only=True)
class Reply:
    """How the capture answers one attempt."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    #: Seconds to hold the answer back (to outlast the sender's timeout).
    hold: float = 0.0

    def describe(self) -> str:
        extra = "".join(f", {k}: {v}" for k, v in self.headers)
        held = f" after holding it {self.hold:g} s" if self.hold else ""
        return f"{self.status}{extra}{held}"


@dataclass(kw_only=True)
class Attempt:
    """One request the capture received, as it arrived."""

    number: int
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: Wall-clock arrival (Unix seconds: what a timestamp is judged against) and the
    #: monotonic clock's arrival and answer, for measuring gaps.
    arrived_at: float
    arrived: float
    answered: float | None = None
    #: The moment the sender closed the connection while the answer was held, if it did.
    abandoned: float | None = None
    reply: Reply = field(default_factory=Reply)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def ended(self) -> float:
        """When the attempt ended from the sender's side: its answer, or its abandonment."""
        for moment in (self.abandoned, self.answered):
            if moment is not None:
                return moment
        return self.arrived


class Capture:
    """The ASGI app and the record of every scenario's attempts, safe to read from other
    threads while the server runs."""

    def __init__(self) -> None:
        self._scripts: dict[str, tuple[Reply, ...]] = {}
        self._attempts: dict[str, list[Attempt]] = {}
        self._changed = threading.Condition()

    def expect(self, token: str, script: Sequence[Reply]) -> None:
        """Open the path ``/<token>/`` with its script of replies."""
        with self._changed:
            self._scripts[token] = tuple(script) or (Reply(),)
            self._attempts[token] = []

    def attempts(self, token: str, *, path: str | None = None) -> list[Attempt]:
        """What arrived under the token so far (only at ``path`` below it, if given)."""
        with self._changed:
            found = list(self._attempts.get(token, ()))
        return [a for a in found if path is None or a.path == path]

    def wait(self, token: str, count: int, deadline: float) -> list[Attempt]:
        """Wait (until the monotonic ``deadline``) for ``count`` answered or abandoned
        attempts under the token; return what arrived."""
        with self._changed:
            while True:
                done = [a for a in self._attempts[token] if a.answered or a.abandoned]
                left = deadline - time.monotonic()
                if len(done) >= count or left <= 0:
                    return list(self._attempts[token])
                self._changed.wait(min(left, 0.05))

    def _record(self, attempt: Attempt) -> None:
        with self._changed:
            self._changed.notify_all()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to set up
        arrived_at, arrived = time.time(), time.monotonic()
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        token, _, rest = scope["path"].lstrip("/").partition("/")
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        with self._changed:
            script = self._scripts.get(token)
            known = self._attempts.setdefault(token, [])
            reply = (
                Reply(status=404) if script is None else script[min(len(known), len(script) - 1)]
            )
            attempt = Attempt(
                number=len(known) + 1,
                method=scope["method"],
                path="/" + rest,
                headers=headers,
                body=b"".join(chunks),
                arrived_at=arrived_at,
                arrived=arrived,
                reply=reply,
            )
            known.append(attempt)
        if reply.hold and await _disconnected_within(receive, reply.hold):
            attempt.abandoned = time.monotonic()
            self._record(attempt)
            return
        body = b'{"received": true}' if reply.status // 100 == 2 else b""
        response_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
        response_headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        try:
            await send(
                {"type": "http.response.start", "status": reply.status, "headers": response_headers}
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            attempt.answered = time.monotonic()
            self._record(attempt)


async def _disconnected_within(receive: Receive, seconds: float) -> bool:
    """Hold for ``seconds``; True as soon as the client disconnects within them."""
    try:
        async with asyncio.timeout(seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


@contextmanager
def capturing(host: str, timeout: float) -> Iterator[tuple[Capture, str, httpx.Client]]:
    """A capture server on ``host`` (its base URL) and an HTTP client that never follows
    redirects, for a role's run; both are stopped on exit."""
    capture = Capture()
    with (
        serve_in_thread(capture, host=host) as url,
        httpx.Client(timeout=timeout, follow_redirects=False) as client,
    ):
        yield capture, url, client
