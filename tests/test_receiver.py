"""The reference receiver, over real HTTP on loopback, for every bundled profile.

Each profile gets one long-lived server (module scope); tests that need their own (a restart,
an injected clock, a failing handler) start one with ``serve_in_thread``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from _suite_runner import fixed_secret

from conformance import Profile, delivery_headers, list_profiles, load_profile, sign
from conformance._signing import generate_secret, parse_items, render_items
from reference import (
    ACK,
    DUPLICATE_ACK,
    StoredEvent,
    create_app,
    read_events,
    serve_in_thread,
)
from reference._cli import register_serve

PROFILES = list_profiles()
TIMESTAMPED = [name for name in PROFILES if load_profile(name).signature.timestamp is not None]
_unique = itertools.count()


# ---------------------------------------------------------------------------------------
# Deliveries


def _set(document: dict[str, Any], pointer: str, value: object) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = document
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _delete(document: dict[str, Any], pointer: str) -> None:
    *parents, last = pointer.split("/")[1:]
    node = document
    for part in parents:
        node = node[part]
    del node[last]


#: The event type of each payload made for a profile that sends the type in a header
#: (GitHub), by the payload's unique note; ``signed`` puts it in the header.
_HEADER_TYPES: dict[str, str] = {}


def make_payload(
    profile: Profile, event_type: str | None = None, *, note: str = ""
) -> dict[str, Any]:
    """A minimal envelope for ``profile``: event type, a unique identity, and a data object."""
    unique = f"t{next(_unique)}_{time.time_ns()}"
    kind = event_type or profile.event_names[0]
    payload: dict[str, Any] = {}
    if profile.envelope.event_type is not None:
        _set(payload, profile.envelope.event_type, kind)
    if profile.envelope.data:
        _set(payload, profile.envelope.data, {"note": note or unique})
    else:
        payload["note"] = note or unique
    _HEADER_TYPES[note or unique] = kind
    if profile.envelope.event_id:
        _set(payload, profile.envelope.event_id, f"evt_{unique}")
    if profile.idempotency_key not in (None, "body-digest"):
        _set(payload, profile.idempotency_key, f"evt_{unique}")
    return payload


def secret_of(profile: Profile) -> str:
    return fixed_secret(profile, "reference-tests")


def _header_id(profile: Profile, body: bytes) -> str | None:
    """The id header's value for ``body``, derived from its bytes, so the same body sent
    twice is the same delivery (a duplicate) where the id travels in a header."""
    name = profile.envelope.event_id_header
    if name is None:
        return None
    digest = hashlib.sha256(body).digest()
    declared = next(h for h in profile.headers if h.name == name)
    template = declared.generate or "msg_{token}"
    return template.replace("{uuid}", str(uuid.UUID(bytes=digest[:16]))).replace(
        "{token}", digest.hex()[:24]
    )


def encode(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed(profile: Profile, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """Every header a conforming sender sends with ``body``."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    note = payload.get("note") if isinstance(payload, dict) else None
    return delivery_headers(
        profile,
        secret_of(profile),
        body,
        payload,
        event_type=_HEADER_TYPES.get(note, profile.event_names[0])
        if note
        else profile.event_names[0],
        event_id=_header_id(profile, body),
        now=now,
    )


def key_of(profile: Profile, body: bytes) -> str:
    value = profile.idempotency_value(body, json.loads(body), signed(profile, body))
    assert value is not None
    return value


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the receiver")
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------
# One server per profile


@dataclass
class Live:
    profile: Profile
    url: str
    db: Path
    client: httpx.Client
    handled: list[StoredEvent] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(
            "/webhook",
            content=body,
            headers=signed(self.profile, body) if headers is None else headers,
        )

    def stored(self, key: str) -> StoredEvent | None:
        found = [e for e in read_events(self.db, profile=self.profile.name) if e.key == key]
        return found[0] if found else None

    def handled_keys(self) -> list[str]:
        return [event.key for event in list(self.handled)]


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    profile = load_profile(request.param)
    db = tmp_path_factory.mktemp(profile.name) / "receiver.sqlite3"
    state = Live(profile=profile, url="", db=db, client=httpx.Client())
    state.gate.set()

    def handler(event: StoredEvent) -> None:
        state.gate.wait(10)
        state.handled.append(event)

    app = create_app(profile, secret_of(profile), db_path=db, handler=handler)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        state.url, state.client = url, client
        yield state


all_profiles = pytest.mark.parametrize("live", PROFILES, indirect=True)
timestamped_profiles = pytest.mark.parametrize("live", TIMESTAMPED, indirect=True)
#: Profiles whose body carries the event type (all but GitHub's, which sends X-GitHub-Event).
BODY_TYPED = [name for name in PROFILES if load_profile(name).envelope.event_type is not None]
body_typed_profiles = pytest.mark.parametrize("live", BODY_TYPED, indirect=True)
header_typed_profiles = pytest.mark.parametrize(
    "live", sorted(set(PROFILES) - set(BODY_TYPED)), indirect=True
)


# ---------------------------------------------------------------------------------------
# Accepting, storing, deduplicating


@all_profiles
def test_valid_delivery_is_acknowledged_and_stored(live: Live) -> None:
    """A correctly signed delivery is answered 200 {"received": true} and stored byte for byte."""
    body = encode(make_payload(live.profile))
    response = live.post(body)
    assert (response.status_code, response.json()) == (200, ACK)
    assert response.headers["content-type"] == "application/json"
    event = live.stored(key_of(live.profile, body))
    assert event is not None
    assert (event.body, event.event_type, event.known) == (body, live.profile.event_names[0], True)


@all_profiles
def test_duplicate_is_acknowledged_with_the_duplicate_body(live: Live) -> None:
    """The same delivery sent again is answered 200 with the profile's duplicate response."""
    body = encode(make_payload(live.profile))
    assert live.post(body).json() == ACK
    again = live.post(body)
    expected = live.profile.duplicate_response or DUPLICATE_ACK
    assert (again.status_code, again.json()) == (200, expected)
    key = key_of(live.profile, body)
    assert [e.key for e in read_events(live.db) if e.key == key] == [key]


@pytest.mark.parametrize("live", ["zupertry"], indirect=True)
def test_zupertry_duplicate_body_is_the_documented_one(live: Live) -> None:
    """Zupertry answers a duplicate with exactly its document's ``{"received": true, ...}``."""
    body = encode(make_payload(live.profile))
    live.post(body)
    assert live.post(body).content == b'{"received":true,"duplicate":true}'


@all_profiles
def test_unknown_event_type_is_acknowledged_and_flagged(live: Live) -> None:
    """An event type outside the catalogue is answered 200 and stored as unknown."""
    body = encode(make_payload(live.profile, "brand.new.event"))
    assert live.post(body).status_code == 200
    event = live.stored(key_of(live.profile, body))
    assert event is not None
    assert (event.event_type, event.known) == ("brand.new.event", False)


@all_profiles
def test_raw_bytes_are_verified_not_reserialized_json(live: Live) -> None:
    """Pretty-printed JSON with \\u escapes and non-ASCII text verifies over its own bytes."""
    payload = make_payload(live.profile)
    payload["extra"] = "Zoë ☕ 😀"
    body = json.dumps(payload, indent=4, ensure_ascii=True).encode("ascii")
    assert live.post(body).status_code == 200


@all_profiles
def test_concurrent_duplicates_are_stored_and_handled_once(live: Live) -> None:
    """Twenty simultaneous copies of a delivery get 2xx; one is new: one row, one handler call."""
    body = encode(make_payload(live.profile))
    headers = signed(live.profile, body)
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: live.post(body, headers), range(20)))
    assert {r.status_code for r in responses} == {200}
    assert sorted(r.json() == ACK for r in responses).count(True) == 1
    key = key_of(live.profile, body)
    wait_for(lambda: key in live.handled_keys())
    time.sleep(0.05)
    assert live.handled_keys().count(key) == 1
    assert [e.key for e in read_events(live.db)].count(key) == 1


@all_profiles
def test_handler_runs_after_the_response(live: Live) -> None:
    """The answer does not wait for the handler; the event is marked processed once it returns."""
    body = encode(make_payload(live.profile))
    key = key_of(live.profile, body)
    live.gate.clear()
    try:
        started = time.monotonic()
        assert live.post(body).status_code == 200
        assert time.monotonic() - started < 2
        event = live.stored(key)
        assert event is not None
        assert not event.processed
    finally:
        live.gate.set()
    wait_for(lambda: (stored := live.stored(key)) is not None and stored.processed)
    assert key in live.handled_keys()


# ---------------------------------------------------------------------------------------
# Rejecting


@all_profiles
def test_bad_signature_is_401_naming_the_header(live: Live) -> None:
    """A signature made with another secret is answered 401 with the reason and the header."""
    body = encode(make_payload(live.profile))
    headers = signed(live.profile, body)
    headers.update(sign(live.profile, generate_secret(live.profile.signature), body))
    response = live.post(body, headers)
    header = live.profile.signature.header
    assert response.status_code == 401
    assert response.json() == {
        "error": "signature does not match",
        "message": f"signature does not match: {header} (no signature matches the body and secret)",
        "header": header,
    }
    assert live.stored(key_of(live.profile, body)) is None


@all_profiles
def test_missing_signature_is_401(live: Live) -> None:
    """A delivery without the signature header is answered 401 "missing header"."""
    body = encode(make_payload(live.profile))
    headers = {"Content-Type": "application/json"}
    response = live.post(body, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "missing header"
    assert response.json()["header"] == live.profile.signature.header


@all_profiles
def test_tampered_body_is_401(live: Live) -> None:
    """A body changed by one byte after signing is answered 401."""
    body = encode(make_payload(live.profile))
    headers = signed(live.profile, body)
    assert live.post(body.replace(b"note", b"nose"), headers).status_code == 401


@timestamped_profiles
@pytest.mark.parametrize(
    ("offset", "error"), [(-330, "stale timestamp"), (330, "timestamp in the future")]
)
def test_timestamp_outside_tolerance_is_401(live: Live, offset: float, error: str) -> None:
    """A correctly signed delivery 330 s old or 330 s ahead (tolerance 300 s) is answered 401."""
    body = encode(make_payload(live.profile))
    response = live.post(body, signed(live.profile, body, now=time.time() + offset))
    assert response.status_code == 401
    assert response.json()["error"] == error
    spec = live.profile.signature.timestamp
    assert spec is not None
    assert response.json()["header"] == spec.where


@timestamped_profiles
def test_swapped_timestamp_is_401(live: Live) -> None:
    """A fresh timestamp that is not the one signed is answered 401."""
    body = encode(make_payload(live.profile))
    then = int(time.time()) - 10
    headers = signed(live.profile, body, now=then)
    sig = live.profile.signature
    assert sig.timestamp is not None
    if sig.timestamp.header is not None:
        headers[sig.timestamp.header] = str(then + 10)
    else:  # the timestamp is an item of the signature header (Stripe's t=)
        items = [
            (k, v) for k, v in parse_items(sig, headers[sig.header]) if k != sig.timestamp.item
        ]
        headers[sig.header] = render_items(sig, items, str(then + 10))
    assert live.post(body, headers).json()["error"] == "signature does not match"


MALFORMED = {
    "not-json": (b"{not json", "the body is not JSON (Expecting property name enclosed"),
    "truncated": (b'{"a": [1, 2', "the body is not JSON (Expecting"),
    "array": (b"[]", "the body is JSON but not an object (list)"),
    "string": (b'"hello"', "the body is JSON but not an object (str)"),
    "not-utf8": (b'{"a": "\xff"}', "the body is not JSON (invalid UTF-8 at byte 7)"),
    "nan": (b'{"a": NaN}', "the body is not JSON (NaN is not valid JSON)"),
    "empty": (b"", "the body is not JSON (Expecting value"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "the body is not JSON (nested too deeply)"),
    "utf16": ('{"a": 1}'.encode("utf-16"), "the body is not JSON (invalid UTF-8 at byte 0)"),
    "bom": (b'\xef\xbb\xbf{"a": 1}', "the body is not JSON (Unexpected UTF-8 BOM"),
    "encoded-surrogate": (
        b'{"a": "\xed\xa0\x80"}',
        "the body is not JSON (invalid UTF-8 at byte 7)",
    ),
}


@all_profiles
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_body_is_400(live: Live, case: str) -> None:
    """A correctly signed body that is not a JSON object is answered 400 naming the problem."""
    body, message = MALFORMED[case]
    response = live.post(body)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed body"
    assert response.json()["message"].startswith(message)


@body_typed_profiles
def test_event_type_with_a_lone_surrogate_is_400(live: Live) -> None:
    """A \\ud800 escape is valid JSON but no storable text: 400, not a 500 from SQLite."""
    pointer = live.profile.envelope.event_type.lstrip("/")
    body = b'{"%s": "x\\ud800", "data": {}}' % pointer.encode()
    # Only the signature headers: one mirroring the type could not carry a surrogate.
    response = live.post(
        body,
        {"Content-Type": "application/json", **sign(live.profile, secret_of(live.profile), body)},
    )
    assert response.status_code == 400
    assert response.json()["message"] == "the event type or id has a lone surrogate"


@header_typed_profiles
def test_missing_event_type_header_is_400(live: Live) -> None:
    """Where the event type travels in a header, a delivery without it is 400 naming it."""
    body = encode(make_payload(live.profile))
    name = live.profile.envelope.event_type_header
    assert name is not None
    headers = {k: v for k, v in signed(live.profile, body).items() if k != name}
    response = live.post(body, headers)
    assert response.status_code == 400
    assert response.json()["message"] == f"the delivery has no event type at {name}"


@body_typed_profiles
@pytest.mark.parametrize("value", [None, 42])
def test_missing_or_non_string_event_type_is_400(live: Live, value: object) -> None:
    """An object without an event type, or with a non-string one, is 400 naming the pointer."""
    payload = make_payload(live.profile)
    pointer = live.profile.envelope.event_type
    _set(payload, pointer, value)
    if value is None:
        _delete(payload, pointer)
    response = live.post(encode(payload))
    what = "has no event type" if value is None else "the event type"
    assert response.status_code == 400
    assert what in response.json()["message"]
    assert pointer in response.json()["message"]


@all_profiles
def test_wrong_method_is_405(live: Live) -> None:
    """GET on the delivery path is answered 405 with Allow: POST."""
    response = live.client.get("/webhook")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


# ---------------------------------------------------------------------------------------
# Size limit


def _padded(profile: Profile, size: int) -> bytes:
    payload = make_payload(profile)
    payload["pad"] = ""
    room = size - len(encode(payload))
    assert room >= 0
    payload["pad"] = "x" * room
    body = encode(payload)
    assert len(body) == size
    return body


@all_profiles
def test_body_exactly_at_the_limit_is_accepted(live: Live) -> None:
    """A signed body of exactly ``limits.payload_bytes`` bytes is answered 200."""
    body = _padded(live.profile, live.profile.limits.payload_bytes)
    assert live.post(body).status_code == 200


@all_profiles
def test_body_one_byte_over_the_limit_is_413(live: Live) -> None:
    """A body one byte over the limit is 413 by Content-Length; the connection stays usable."""
    body = _padded(live.profile, live.profile.limits.payload_bytes + 1)
    response = live.post(body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload too large"
    assert live.client.get("/healthz").status_code == 200


@all_profiles
def test_streamed_body_over_the_limit_is_413(live: Live) -> None:
    """A chunked body without Content-Length is cut off with 413 once it passes the limit."""
    limit = live.profile.limits.payload_bytes
    chunks = [b"x" * 65536] * (limit // 65536 + 1)
    response = live.client.post(
        "/webhook", content=iter(chunks), headers=signed(live.profile, b"x")
    )
    assert response.status_code == 413


def test_reading_stops_as_soon_as_the_limit_is_passed(tmp_path: Path) -> None:
    """Under a lying Content-Length, reading stops at the chunk that passes the limit."""
    profile = load_profile("zaits")
    app = create_app(profile, secret_of(profile), db_path=tmp_path / "r.sqlite3")
    endpoint = app.state.endpoint
    chunk = b"x" * 100_000
    given = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal given
        given += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhook",
        "headers": [(b"content-length", b"10")],
    }

    async def deliver() -> None:
        try:
            await endpoint(scope, receive, send)
        finally:
            await endpoint.shutdown()

    asyncio.run(deliver())
    assert sent[0]["status"] == 413
    assert given == profile.limits.payload_bytes // len(chunk) + 1


# ---------------------------------------------------------------------------------------
# Durability, clocks, failures


@pytest.mark.parametrize("name", PROFILES)
def test_restart_keeps_deduplication_and_retries_failed_processing(
    tmp_path: Path, name: str
) -> None:
    """After a restart on the same file, a stored delivery is a duplicate and an event whose
    handler failed is handed to the new handler."""
    profile = load_profile(name)
    db = tmp_path / "receiver.sqlite3"
    body = encode(make_payload(profile))
    key = key_of(profile, body)

    def failing(event: StoredEvent) -> None:
        raise RuntimeError("downstream is down")

    with serve_in_thread(
        create_app(profile, secret_of(profile), db_path=db, handler=failing)
    ) as url:
        assert (
            httpx.post(f"{url}/webhook", content=body, headers=signed(profile, body)).json() == ACK
        )
        wait_for(lambda: read_events(db)[0].attempts == 1)
    [event] = read_events(db)
    assert (event.processed, event.last_error) == (False, "RuntimeError: downstream is down")

    handled: list[str] = []
    app = create_app(
        profile, secret_of(profile), db_path=db, handler=lambda e: handled.append(e.key)
    )
    with serve_in_thread(app) as url:
        again = httpx.post(f"{url}/webhook", content=body, headers=signed(profile, body))
        assert (again.status_code, again.json()) == (
            200,
            profile.duplicate_response or DUPLICATE_ACK,
        )
        wait_for(lambda: handled == [key])
    [event] = read_events(db)
    assert (event.processed, event.attempts, event.last_error) == (True, 2, None)


def test_injected_clock_and_tolerance_decide_freshness(tmp_path: Path) -> None:
    """With ``clock`` and ``tolerance`` injected, a delivery 11 s old is stale under 10 s and
    stored with the injected time."""
    profile = load_profile(TIMESTAMPED[0])
    now = 1_800_000_000.0
    app = create_app(
        profile, secret_of(profile), db_path=tmp_path / "r.sqlite3", tolerance=10, clock=lambda: now
    )
    stale, fresh = encode(make_payload(profile)), encode(make_payload(profile))
    with serve_in_thread(app) as url:
        late = httpx.post(
            f"{url}/webhook", content=stale, headers=signed(profile, stale, now=now - 11)
        )
        ok = httpx.post(
            f"{url}/webhook", content=fresh, headers=signed(profile, fresh, now=now - 9)
        )
    assert (late.status_code, late.json()["error"], ok.status_code) == (401, "stale timestamp", 200)
    assert [e.received_at for e in read_events(tmp_path / "r.sqlite3")] == [now]


def test_an_internal_error_is_500_without_details(tmp_path: Path) -> None:
    """A bug inside the receiver answers 500 {"error": "internal error"} and leaks nothing."""
    profile = load_profile("zaits")
    app = create_app(profile, secret_of(profile), db_path=tmp_path / "r.sqlite3")

    async def broken_add(**_: object) -> None:
        raise RuntimeError("secret internals")

    app.state.endpoint.store.add = broken_add
    body = encode(make_payload(profile))
    with serve_in_thread(app) as url:
        response = httpx.post(f"{url}/webhook", content=body, headers=signed(profile, body))
    assert (response.status_code, response.content) == (500, b'{"error":"internal error"}')


def test_healthz_and_unknown_paths(tmp_path: Path) -> None:
    """GET /healthz answers 200; other paths 404, through Starlette's router."""
    app = create_app(
        "zaits",
        secret_of(load_profile("zaits")),
        db_path=tmp_path / "r.sqlite3",
        path="/hooks/zaits",
    )
    with serve_in_thread(app) as url:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.post(f"{url}/webhook", content=b"{}").status_code == 404
        assert httpx.get(f"{url}/hooks/zaits").status_code == 405


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret": ""}, "the webhook secret is empty"),
        ({"tolerance": -1}, "tolerance must be a finite number of seconds >= 0, not -1"),
        ({"tolerance": float("nan")}, "tolerance must be a finite number of seconds >= 0, not nan"),
        ({"tolerance": float("inf")}, "tolerance must be a finite number of seconds >= 0, not inf"),
    ],
)
def test_create_app_refuses_bad_options(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    """An empty secret, or a tolerance that is negative or not finite, fails at creation,
    not per request."""
    options: dict[str, Any] = {"secret": "whsec_reference-tests", **kwargs}
    secret = options.pop("secret")
    with pytest.raises(ValueError, match=message):
        create_app("zaits", secret, db_path=tmp_path / "r.sqlite3", **options)


# ---------------------------------------------------------------------------------------
# serve_in_thread and the CLI


def test_serve_in_thread_leaves_no_thread_or_socket(tmp_path: Path) -> None:
    """After the context exits, the server thread is gone and the port refuses connections."""
    before = set(threading.enumerate())
    with serve_in_thread(
        create_app("zaits", secret_of(load_profile("zaits")), db_path=tmp_path / "r.sqlite3")
    ) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
    assert set(threading.enumerate()) <= before
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz")


def test_serve_in_thread_reports_a_failed_startup() -> None:
    """An app whose lifespan startup fails raises RuntimeError instead of hanging."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no"})

    with pytest.raises(RuntimeError, match="failed to start"), serve_in_thread(app):
        pass


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webhook-conformance")
    register_serve(parser.add_subparsers(dest="command"))
    return parser


def test_cli_requires_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve receiver` without --secret or WEBHOOK_SECRET exits 2 with a message."""
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    args = _serve_parser().parse_args(["serve", "receiver", "--profile", "zaits"])
    assert args.func(args) == 2
    assert capsys.readouterr().err == "error: give --secret or set WEBHOOK_SECRET\n"


def test_cli_reports_an_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve receiver` with an unknown profile exits 2 naming the known ones."""
    args = _serve_parser().parse_args(["serve", "receiver", "--profile", "nope", "--secret", "s"])
    assert args.func(args) == 2
    assert capsys.readouterr().err.startswith("error: unknown profile 'nope'; known profiles: ")


def test_cli_defaults() -> None:
    """The defaults are loopback, port 8000, /webhook and ./webhook-receiver.sqlite3."""
    args = _serve_parser().parse_args(["serve", "receiver", "--profile", "zaits"])
    assert (args.host, args.port, args.path, args.db, args.tolerance) == (
        "127.0.0.1",
        8000,
        "/webhook",
        "./webhook-receiver.sqlite3",
        None,
    )


def test_public_surface() -> None:
    """``reference`` exports exactly its documented names, each of them defined."""
    import reference

    assert reference.__all__ == [
        "ACK",
        "DUPLICATE_ACK",
        "EventStore",
        "Handler",
        "StoreClosed",
        "StoredEvent",
        "WebhookEndpoint",
        "create_app",
        "read_events",
        "serve_in_thread",
    ]
    assert all(hasattr(reference, name) for name in reference.__all__)


@pytest.mark.parametrize("db", ["directory", "missing-folder", "not-sqlite"])
def test_serve_with_an_unusable_db_is_one_line(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve receiver` refuses a --db it cannot open before starting, in one line, exit 2."""
    from conformance._cli import main

    path = {
        "directory": tmp_path,
        "missing-folder": tmp_path / "no" / "such.db",
        "not-sqlite": tmp_path / "text.db",
    }[db]
    if db == "not-sqlite":
        path.write_text("not a database")
    argv = ["serve", "receiver", "--profile", "zaits", "--secret", "s", "--db", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --db {str(path)!r} cannot be used: ")
    assert len(err.strip().splitlines()) == 1


def test_serve_refuses_a_nan_tolerance(capsys: pytest.CaptureFixture[str]) -> None:
    """A NaN tolerance would switch replay protection off; it is refused."""
    from conformance._cli import main

    argv = ["serve", "receiver", "--profile", "ztrace", "--secret", "s", "--tolerance", "nan"]
    assert main(argv) == 2
    assert "finite number of seconds" in capsys.readouterr().err
