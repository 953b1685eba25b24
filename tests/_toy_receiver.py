"""A small webhook receiver for testing the suite, built on ``conformance.verify`` and the
standard library's HTTP server, with switchable defects.

With no defects it is correct for any profile; each ``Defects`` field breaks one behaviour,
so a test can check that the suite catches it with the check named for it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conformance import Profile, VerificationError, verify


@dataclass(frozen=True)
class Defects:
    ignore_signature: bool = False  # accepts anything
    reserialize: bool = False  # verifies json.dumps(json.loads(body)), not the raw bytes
    accept_oversized: bool = False  # no size limit (a SHOULD violation)
    limit: int | None = None  # a limit below the profile's
    reject_duplicates: bool = False  # 409 for a delivery seen before
    reject_unknown: bool = False  # 400 for event types outside the catalogue
    crash_on_malformed: bool = False  # 500 for bodies that are not a JSON object
    no_tolerance: bool = False  # any timestamp age is fine
    unbound_timestamp: bool = False  # the signature may cover any fresh timestamp, not the header's
    strict_order: bool = False  # 409 for an event whose predecessor was not seen
    serial_delay: float = 0.0  # one request at a time, each taking this long
    rejection_status: int = 401  # status for signatures that do not verify
    duplicate_body: Any = None  # answer to duplicates, instead of the profile's


class ToyReceiver:
    def __init__(self, profile: Profile, secret: str, defects: Defects) -> None:
        self.profile = profile
        self.secret = secret
        self.defects = defects
        self.seen: set[str] = set()
        self.types: set[str] = set()
        self.lock = threading.Lock()
        self.serial = threading.Lock()

    @property
    def limit(self) -> int | None:
        if self.defects.accept_oversized:
            return None
        return self.defects.limit or self.profile.limits.payload_bytes

    def _verified(self, body: bytes, headers: Mapping[str, str]) -> bool:
        if self.defects.ignore_signature:
            return True
        scheme = self.profile.signature
        if self.defects.unbound_timestamp and scheme.timestamp is not None:
            return self._any_fresh_timestamp(body, headers)
        signed = body
        if self.defects.reserialize:
            try:
                signed = json.dumps(json.loads(body), separators=(",", ":")).encode()
            except ValueError:
                return False
        tolerance = 1e12 if self.defects.no_tolerance else None
        try:
            verify(self.profile, self.secret, signed, headers, tolerance=tolerance)
        except VerificationError:
            return False
        return True

    def _any_fresh_timestamp(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Checks that the header's timestamp is fresh, then accepts a signature over any
        timestamp in the window: the header is not bound to the signature."""
        spec = self.profile.signature.timestamp
        assert spec is not None
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            sent = int(lowered.get(spec.header.lower(), ""))
        except ValueError:
            return False
        tolerance = spec.tolerance_seconds
        if abs(time.time() - sent) > tolerance:
            return False
        for moment in range(sent - tolerance, sent + tolerance + 1):
            try:
                verify(
                    self.profile,
                    self.secret,
                    body,
                    {**headers, spec.header: str(moment)},
                    tolerance=1e12,
                )
            except VerificationError:
                continue
            return True
        return False

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, object]:
        if self.defects.serial_delay:
            with self.serial:
                time.sleep(self.defects.serial_delay)
        if not self._verified(body, headers):
            return self.defects.rejection_status, {"error": "invalid signature"}
        try:
            payload = json.loads(body)
        except ValueError:
            return self._malformed()
        event_type = self.profile.event_type_of(payload)
        if not isinstance(payload, dict) or not isinstance(event_type, str):
            return self._malformed()
        names = self.profile.event_names
        if event_type not in names and self.defects.reject_unknown:
            return 400, {"error": "unknown event type"}
        if event_type in names and self.defects.strict_order:
            follows = self.profile.event(event_type).follows
            if follows is not None and follows not in self.types:
                return 409, {"error": f"{event_type} before {follows}"}
        key = self.profile.idempotency_value(body, payload) or hashlib.sha256(body).hexdigest()
        with self.lock:
            duplicate = key in self.seen
            self.seen.add(key)
            self.types.add(event_type)
        if duplicate:
            if self.defects.reject_duplicates:
                return 409, {"error": "duplicate"}
            answer = self.defects.duplicate_body or self.profile.duplicate_response
            return 200, answer if answer is not None else {"received": True}
        return 200, {"received": True}

    def _malformed(self) -> tuple[int, object]:
        if self.defects.crash_on_malformed:
            return 500, {"error": "internal error"}
        return 400, {"error": "malformed body"}


def _handler(receiver: ToyReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, payload: object, *, close: bool = False) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            limit = receiver.limit
            if limit is not None and length > limit:
                # Refuse before reading: the client may see the 413 or a reset.
                self._answer(413, {"error": "payload too large"}, close=True)
                return
            body = self.rfile.read(length)
            status, payload = receiver.handle(dict(self.headers.items()), body)
            self._answer(status, payload)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 resets connections under the burst check


@contextmanager
def serve(profile: Profile, secret: str, defects: Defects = Defects()) -> Iterator[str]:
    """Serve a toy receiver on a free loopback port; yields the delivery URL."""
    server = _Server(("127.0.0.1", 0), _handler(ToyReceiver(profile, secret, defects)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
