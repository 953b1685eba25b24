"""The reference sender, over real HTTP on loopback, for every bundled profile.

A capture app (served with ``serve_in_thread``) is the receiving endpoint. Its path says how
it answers: ``/c/<unique>/<plan>``, where the plan is a comma-separated list, one entry per
request to that path (the last one repeats): a status code (``500``), ``302`` with a
``Location`` on the capture itself, ``h<ms>`` to hold the answer that long and then answer
200 (``h<ms>x<status>``: then answer that status), ``big`` for a 200 with a 5,000-byte
body, or ``close`` for a 200 that closes the connection. Every request is recorded with the times it
arrived and was answered.

Schedules run scaled by a small ``time_scale`` so that each test lasts a second or two.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml
from _polling import wait_for

from conformance import (
    Profile,
    ProfileError,
    list_profiles,
    load_profile,
    validate_payload,
    verify,
)
from conformance._profile import DeliveryPolicy, resolve_pointer
from conformance._signing import generate_secret, parse_timestamp, public_key_text
from conformance.checks._payloads import examples
from reference import serve_in_thread
from reference._cli import register_serve
from reference.sender import (
    EXCERPT_BYTES,
    BlockedTarget,
    EnvelopeBuilder,
    GuardedTransport,
    blocked_reason,
    create_sender_app,
)

PROFILES = list_profiles()
TIMESTAMPED = [n for n in PROFILES if load_profile(n).signature.timestamp is not None]
EVENTS = [(n, e) for n in PROFILES for e in load_profile(n).event_names]
ROOT = Path(__file__).resolve().parents[1]
_unique = itertools.count()
ScheduleFrom = Literal["previous-attempt", "first-attempt"]


# ---------------------------------------------------------------------------------------
# The capture endpoint


@dataclass
class Captured:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    arrived: float
    answered: float = 0.0
    peer: int = 0  # the client's port: one per connection


class Capture:
    """A tiny ASGI app that records every request and answers as its path's plan says."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self._lock = threading.Lock()

    def at(self, path: str) -> list[Captured]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def under(self, prefix: str) -> list[Captured]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        record = Captured(
            path=scope["path"],
            method=scope["method"],
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
            arrived=time.time(),
            peer=scope["client"][1] if scope.get("client") else 0,
        )
        with self._lock:
            index = sum(1 for r in self.requests if r.path == record.path)
            self.requests.append(record)
        plan = record.path.rsplit("/", 1)[-1].split(",")
        step = plan[min(index, len(plan) - 1)]
        status, extra, answer = 200, [], b'{"ok":true}'
        if step.startswith("h"):
            hold, _, then = step[1:].partition("x")
            await asyncio.sleep(int(hold) / 1000)
            if then:
                status = int(then)
                answer = json.dumps({"status": status}).encode()
        elif step.startswith("ra"):  # "ra1x429": 429 with Retry-After: 1
            wait, _, then = step[2:].partition("x")
            status = int(then)
            extra = [(b"retry-after", wait.encode())]
        elif step == "big":
            answer = b"x" * 5000
        elif step == "close":
            extra = [(b"connection", b"close")]
        elif step.isdigit():
            status = int(step)
            answer = json.dumps({"status": status}).encode()
        if status in (301, 302, 303, 307, 308):
            extra = [(b"location", f"/landing{record.path}".encode())]

        record.answered = time.time()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def capture() -> Iterator[tuple[Capture, str]]:
    app = Capture()
    with serve_in_thread(app) as url:
        yield app, url


def _path(plan: str) -> str:
    return f"/c/{next(_unique)}-{uuid.uuid4().hex[:8]}/{plan}"


# ---------------------------------------------------------------------------------------
# Senders and triggers


@contextlib.contextmanager
def sender(
    profile: str | Profile, db: Path, *, allow_private_targets: bool = True, **kwargs: Any
) -> Iterator[httpx.Client]:
    app = create_sender_app(
        profile, db_path=db, allow_private_targets=allow_private_targets, **kwargs
    )
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _data(profile: Profile, event: str, which: int = -1) -> dict[str, Any]:
    """Data generated from the event's schema: the data part of a valid whole payload."""
    value = resolve_pointer(examples(profile, event)[which], profile.envelope.data)
    assert isinstance(value, dict)
    return value


def _secret(profile: Profile) -> str:
    return generate_secret(profile.signature)


def trigger(client: httpx.Client, **fields: Any) -> httpx.Response:
    return client.post("/conformance/trigger", json=fields)


def triggered(client: httpx.Client, **fields: Any) -> str:
    response = trigger(client, **fields)
    assert response.status_code == 202, response.text
    assert set(response.json()) == {"event_id"}
    event_id = response.json()["event_id"]
    assert isinstance(event_id, str)
    assert event_id
    return event_id


def delivery(client: httpx.Client, event_id: str) -> dict[str, Any]:
    response = client.get(f"/conformance/deliveries/{event_id}")
    assert response.status_code == 200, response.text
    result = response.json()
    assert isinstance(result, dict)
    return result


def finished(client: httpx.Client, event_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The delivery once it is delivered or failed."""

    def done() -> dict[str, Any] | None:
        view = delivery(client, event_id)
        return view if view["state"] != "pending" else None

    result = wait_for(done, timeout, f"event {event_id} to finish")
    assert isinstance(result, dict)
    return result


def _scale_for(profile: Profile, total: float = 0.8) -> float:
    """A time scale that fits the whole schedule into about ``total`` seconds."""
    return min(0.01, total / max(sum(profile.delivery.schedule_seconds), 1.0))


def _identity_headers(profile: Profile) -> list[str]:
    """Headers that must not change across attempts: the event or message id, and the
    generated ones (a delivery id)."""
    names = [profile.envelope.event_id_header, profile.signature.id_header]
    names += [h.name for h in profile.headers if h.generate]
    return sorted({n.lower() for n in names if n})


def _header(record: Captured, name: str) -> str | None:
    return record.headers.get(name.lower())


def _payload_checks(profile: Profile, record: Captured, secret: str, data: dict[str, Any]) -> Any:
    """A delivery as the profile says: signature over the exact bytes, headers, schema,
    and exactly the triggered data. Returns the payload."""
    assert record.method == profile.delivery.method
    verify(profile, secret, record.body, record.headers, now=record.arrived)
    payload = json.loads(record.body)
    assert record.body == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    event_type = profile.event_type_of(payload, record.headers)
    assert isinstance(event_type, str)
    validate_payload(profile, payload, event_type)
    assert resolve_pointer(payload, profile.envelope.data) == data
    for header in profile.headers:
        value = _header(record, header.name)
        if header.required:
            assert value is not None, header.name
        if value is None:
            continue
        if header.value is not None:
            assert value == header.value, header.name
        if header.pattern is not None:
            assert re.search(header.pattern, value), (header.name, value)
        if header.equals is not None:
            assert value == str(resolve_pointer(payload, header.equals)), header.name
    return payload


def _event_id_of(profile: Profile, record: Captured, payload: Any) -> str | None:
    env = profile.envelope
    if env.event_id_header is not None:
        return _header(record, env.event_id_header)
    if env.event_id is not None:
        value = resolve_pointer(payload, env.event_id)
        assert isinstance(value, str)
        return value
    return None


# ---------------------------------------------------------------------------------------
# Payloads: the envelope around exactly the data, valid for every event


@pytest.mark.parametrize(("name", "event"), EVENTS)
def test_payload_is_valid_for_every_event(name: str, event: str) -> None:
    """The envelope built around schema-generated data validates, and holds the data as
    given; event ids follow the envelope's id format."""
    profile = load_profile(name)
    builder = EnvelopeBuilder(profile)
    for example in examples(profile, event):
        data = resolve_pointer(example, profile.envelope.data)
        assert isinstance(data, dict)
        event_id = builder.new_event_id()
        payload = builder.build(event, data, event_id=event_id, created_at=time.time())
        validate_payload(profile, payload, event)
        assert resolve_pointer(payload, profile.envelope.data) == data
        if profile.envelope.event_id is not None:
            assert resolve_pointer(payload, profile.envelope.event_id) == event_id
        if profile.envelope.event_type is not None:
            assert resolve_pointer(payload, profile.envelope.event_type) == event


def test_envelope_defaults_are_sensible() -> None:
    """Required envelope fields get values of their meaning, from the schema alone."""
    moment = 1_764_583_200.0
    zaits = load_profile("zaits")
    payload = EnvelopeBuilder(zaits).build(
        "document.signed", {"k": 1}, event_id="evt_1", created_at=moment
    )
    assert payload["created"] == 1_764_583_200
    assert list(payload) == ["id", "type", "created", "data"]
    stripe = load_profile("stripe")
    builder = EnvelopeBuilder(stripe)
    assert re.fullmatch(r"evt_[0-9a-f]{24}", builder.new_event_id())
    payload = builder.build("invoice.paid", {"id": "in_1"}, event_id="evt_2", created_at=moment)
    assert payload["object"] == "event"
    assert payload["livemode"] is False
    assert payload["created"] == 1_764_583_200
    assert payload["data"] == {"object": {"id": "in_1"}}
    sw = load_profile("standard-webhooks")
    payload = EnvelopeBuilder(sw).build("a.b", {}, event_id="msg_1", created_at=moment)
    assert payload == {"type": "a.b", "timestamp": "2025-12-01T10:00:00.000Z", "data": {}}
    assert re.fullmatch(r"msg_[0-9a-f]+", EnvelopeBuilder(sw).new_event_id())
    github = load_profile("github")
    assert EnvelopeBuilder(github).build("ping", {"zen": "z"}, event_id="x", created_at=0) == {
        "zen": "z"
    }
    assert uuid.UUID(EnvelopeBuilder(github).new_event_id())


# ---------------------------------------------------------------------------------------
# One delivery per profile


@pytest.mark.parametrize("name", PROFILES)
def test_delivers_the_triggered_event(
    name: str, capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """One trigger, one delivery: signed over the exact bytes with the trigger's secret,
    valid against the schema, with exactly the triggered data; the attempt log shows it."""
    app, base = capture
    profile = load_profile(name)
    event = profile.event_names[0]
    data = _data(profile, event)
    secret = _secret(profile)
    path = _path("big")
    with sender(name, tmp_path / "outbox.sqlite3") as client:
        event_id = triggered(
            client, webhook_url=base + path, secret=secret, event_type=event, data=data
        )
        view = finished(client, event_id)
        time.sleep(0.05)
        (record,) = app.at(path)
    payload = _payload_checks(profile, record, secret, data)
    assert profile.event_type_of(payload, record.headers) == event
    if profile.envelope.event_id or profile.envelope.event_id_header:
        assert _event_id_of(profile, record, payload) == event_id
    assert view["state"] == "delivered"
    assert view["attempt_count"] == 1
    assert view["body"].encode() == record.body
    (attempt,) = view["attempts"]
    assert attempt["attempt"] == 1
    assert attempt["status"] == 200
    assert attempt["outcome"] == "delivered"
    assert attempt["error"] is None
    assert attempt["response_ms"] > 0
    assert attempt["response_excerpt"] == "x" * EXCERPT_BYTES
    assert attempt["ended_at"] >= attempt["started_at"]
    sent = {k.lower(): v for k, v in attempt["headers"].items()}
    for key, value in sent.items():
        assert record.headers[key] == value
    assert secret not in json.dumps(view)


def test_standard_webhooks_ed25519(capture: tuple[Capture, str], tmp_path: Path) -> None:
    """A whsk_ private key signs v1a; the receiver verifies with the public key."""
    app, base = capture
    profile = load_profile("standard-webhooks")
    private = generate_secret(profile.signature, asymmetric=True)
    path = _path("200")
    with sender(profile.name, tmp_path / "o.sqlite3") as client:
        event_id = triggered(
            client, webhook_url=base + path, secret=private, event_type="user.created", data={}
        )
        assert finished(client, event_id)["state"] == "delivered"
    (record,) = app.at(path)
    assert record.headers["webhook-signature"].startswith("v1a,")
    verify(profile, public_key_text(profile.signature, private), record.body, record.headers)
    assert record.headers["webhook-id"] == event_id


def test_full_synchronous_outbox_delivers(capture: tuple[Capture, str], tmp_path: Path) -> None:
    """synchronous="FULL" commits on the writer thread (fsync off the loop); same result."""
    app, base = capture
    profile = load_profile("zupertry")
    path = _path("500,200")
    secret = _secret(profile)
    data = _data(profile, "job.failed")
    with sender("zupertry", tmp_path / "o.sqlite3", synchronous="FULL") as client:
        event_id = triggered(
            client,
            webhook_url=base + path,
            secret=secret,
            event_type="job.failed",
            data=data,
            time_scale=0.0005,
        )
        view = finished(client, event_id)
    assert [a["status"] for a in view["attempts"]] == [500, 200]
    for record in app.at(path):
        _payload_checks(profile, record, secret, data)


def test_many_events_are_all_delivered(capture: tuple[Capture, str], tmp_path: Path) -> None:
    """Concurrent triggers: every event arrives once."""
    app, base = capture
    profile = load_profile("zaits")
    secret = _secret(profile)
    prefix = f"/c/many-{uuid.uuid4().hex[:8]}/"
    with sender("zaits", tmp_path / "o.sqlite3") as client:
        ids = [
            triggered(
                client,
                webhook_url=f"{base}{prefix}{i}-200",
                secret=secret,
                event_type="user.credits.low",
                data=_data(profile, "user.credits.low"),
            )
            for i in range(60)
        ]
        wait_for(lambda: len(app.under(prefix)) >= 60, what="60 deliveries")
        states = {delivery(client, i)["state"] for i in ids}
    assert states == {"delivered"}
    records = app.under(prefix)
    assert len(records) == 60
    assert {json.loads(r.body)["id"] for r in records} == set(ids)


# ---------------------------------------------------------------------------------------
# Retries


def _lateness(
    policy: DeliveryPolicy,
    scale: float,
    starts: list[float],
    ends: list[float],
    first_started: float | None = None,
) -> list[float]:
    """How late each attempt after the first started, against when ``policy.due`` says it
    was due given the attempts before it (as the attempt log or the capture saw them; the
    first attempt's start is ``starts[0]`` unless given)."""
    first = starts[0] if first_started is None else first_started
    return [
        starts[number]
        - policy.due(number, first_started=first, previous_ended=ends[number - 1], scale=scale)
        for number in range(1, len(starts))
    ]


def _assert_on_schedule(
    policy: DeliveryPolicy,
    scale: float,
    view: dict[str, Any],
    records: list[Captured],
    *,
    median: float = 0.03,
) -> None:
    """Never early; late by a few ms as a rule (the median: a few ms on a quiet machine, up
    to tens of ms when the test run shares both cores; a coarse poll would be late by its
    whole period). A single attempt may be late by
    a pause of the test process (a full garbage collection of hypothesis's heap, in the
    thread that runs the sender); the wire view adds both requests' travel. Offsets from the
    first attempt count from its logged start in both views (its arrival also carries the
    set-up of a connection, which later attempts reuse)."""
    attempts = view["attempts"]
    starts = [a["started_at"] for a in attempts]
    logged = _lateness(policy, scale, starts, [a["ended_at"] for a in attempts])
    wire = _lateness(
        policy,
        scale,
        [r.arrived for r in records],
        [r.answered for r in records],
        first_started=starts[0],
    )
    for late_log, late_wire in zip(logged, wire, strict=True):
        assert -0.0005 <= late_log <= 0.25, logged
        assert -0.002 <= late_wire <= 0.3, wire
    if logged:
        assert statistics.median(logged) < median, logged


@pytest.mark.parametrize("name", PROFILES)
def test_retries_after_5xx_follow_the_scaled_schedule(
    name: str, capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """Against a 500: exactly the attempts the policy allows, each one due when the scaled
    schedule says (counted as the profile's schedule_from says), the same body and identity
    every time, and nothing after the last one."""
    app, base = capture
    profile = load_profile(name)
    policy = profile.delivery
    scale = _scale_for(profile)
    secret = _secret(profile)
    event = profile.event_names[-1]
    data = _data(profile, event)
    path = _path("500")
    expected_attempts = policy.max_attempts if policy.retries_status(500) else 1
    with sender(name, tmp_path / "o.sqlite3") as client:
        event_id = triggered(
            client,
            webhook_url=base + path,
            secret=secret,
            event_type=event,
            data=data,
            time_scale=scale,
        )
        view = finished(client, event_id)
        time.sleep(0.1 + max(policy.schedule_seconds) * scale)  # nothing comes after the last
        records = app.at(path)
    assert view["state"] == "failed"
    assert view["attempt_count"] == expected_attempts
    assert [a["attempt"] for a in view["attempts"]] == list(range(1, expected_attempts + 1))
    assert all(a["status"] == 500 for a in view["attempts"])
    assert [a["outcome"] for a in view["attempts"]] == ["retry"] * (expected_attempts - 1) + [
        "failed"
    ]
    assert len(records) == expected_attempts
    _assert_on_schedule(policy, scale, view, records)
    assert len({r.body for r in records}) == 1
    for header in _identity_headers(profile):
        assert len({_header(r, header) for r in records}) == 1, header
    for record in records:
        _payload_checks(profile, record, secret, data)
    if expected_attempts > 1:
        assert "no attempt left" in view["last_error"]


def _with_schedule(name: str, schedule: tuple[float, ...], schedule_from: ScheduleFrom) -> Profile:
    """A bundled profile with another schedule (and as many attempts as it has entries)."""
    profile = load_profile(name)
    policy = dataclasses.replace(
        profile.delivery,
        schedule_seconds=schedule,
        schedule_from=schedule_from,
        max_attempts=len(schedule),
    )
    return dataclasses.replace(profile, delivery=policy)


def _signed_document(profile: Profile, scale: float) -> dict[str, Any]:
    """The trigger fields, but the URL, of a Zaits ``document.signed`` event."""
    return {
        "secret": _secret(profile),
        "event_type": "document.signed",
        "data": _data(profile, "document.signed"),
        "time_scale": scale,
    }


#: Four attempts whose answers are held 80 ms: the two readings of one schedule differ by
#: the holds (previous-attempt: 80 ms + wait between starts; first-attempt: the offsets).
READINGS = {
    "previous-attempt": (0.0, 2.0, 3.0, 4.0),
    "first-attempt": (0.0, 2.0, 5.0, 9.0),
}


@pytest.mark.parametrize("schedule_from", list(READINGS))
def test_a_scaled_schedule_holds_under_each_reading(
    schedule_from: ScheduleFrom, capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """previous-attempt counts each wait from the end of the attempt before (its held 500);
    first-attempt counts each offset from the start of attempt 1. Each attempt starts within
    a few tens of ms of when ``DeliveryPolicy.due`` says."""
    app, base = capture
    profile = _with_schedule("zaits", READINGS[schedule_from], schedule_from)
    scale = 0.1
    path = _path("h80x500")
    with sender(profile, tmp_path / "o.sqlite3") as client:
        event_id = triggered(client, webhook_url=base + path, **_signed_document(profile, scale))
        view = finished(client, event_id)
        records = app.at(path)
    attempts = view["attempts"]
    assert [a["status"] for a in attempts] == [500] * 4
    starts = [a["started_at"] for a in attempts]
    if schedule_from == "first-attempt":
        offsets = [b - starts[0] for b in starts[1:]]
        assert offsets == pytest.approx([0.2, 0.5, 0.9], abs=0.05)
    else:
        waits = [b["started_at"] - a["ended_at"] for a, b in itertools.pairwise(attempts)]
        assert waits == pytest.approx([0.2, 0.3, 0.4], abs=0.05)
        assert all(a["ended_at"] - a["started_at"] >= 0.08 for a in attempts)
    late = _lateness(profile.delivery, scale, starts, [a["ended_at"] for a in attempts])
    assert all(-0.0005 <= x <= 0.05 for x in late), late
    _assert_on_schedule(profile.delivery, scale, view, records, median=0.02)


@pytest.mark.parametrize(
    ("schedule_from", "number", "previous_ended", "due"),
    [
        ("previous-attempt", 1, 100.5, 100.5 + 6.0),
        ("previous-attempt", 3, 130.0, 130.0 + 72.0),
        ("first-attempt", 1, 100.5, 100.0 + 6.0),
        ("first-attempt", 3, 130.0, 100.0 + 72.0),
        ("first-attempt", 2, 140.0, 140.0),  # its offset passed during attempt 2: at once
    ],
)
def test_due_counts_from_what_schedule_from_says(
    schedule_from: ScheduleFrom, number: int, previous_ended: float, due: float
) -> None:
    """``due(n)``: ``schedule_seconds[n] * scale`` after attempt n ended, or after attempt 1
    started, and never before attempt n ended."""
    policy = _with_schedule("zaits", (0.0, 60.0, 300.0, 720.0), schedule_from).delivery
    found = policy.due(number, first_started=100.0, previous_ended=previous_ended, scale=0.1)
    assert found == pytest.approx(due)


def test_due_refuses_an_attempt_the_schedule_does_not_have() -> None:
    """There is no attempt before the first, nor after the last."""
    policy = load_profile("zta").delivery
    for number in (0, policy.max_attempts):
        with pytest.raises(ValueError, match=f"no attempt is due after attempt {number}"):
            policy.due(number, first_started=0.0, previous_ended=1.0)


def test_schedule_from_defaults_to_previous_attempt_and_offsets_never_decrease(
    tmp_path: Path,
) -> None:
    """A profile without schedule_from counts from the previous attempt; under first-attempt
    a schedule whose offsets decrease is refused."""
    raw = yaml.safe_load((ROOT / "spec" / "profiles" / "zaits.yaml").read_text(encoding="utf-8"))
    del raw["delivery"]["schedule_from"]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    assert load_profile(plain).delivery.schedule_from == "previous-attempt"
    raw["delivery"]["schedule_from"] = "first-attempt"
    raw["delivery"]["schedule_seconds"] = [0, 60, 30, 1800, 7200]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(ProfileError, match="decreases, but under schedule_from first-attempt"):
        load_profile(broken)


def test_zta_does_not_retry_4xx(capture: tuple[Capture, str], tmp_path: Path) -> None:
    """ZTA retries only 5xx and timeouts: a 400 ends the delivery; Zaits retries it."""
    app, base = capture
    zta, zaits = load_profile("zta"), load_profile("zaits")
    zta_path, zaits_path = _path("400"), _path("400")
    with sender("zta", tmp_path / "zta.sqlite3") as client:
        event_id = triggered(
            client,
            webhook_url=base + zta_path,
            secret=_secret(zta),
            event_type="pageview",
            data=_data(zta, "pageview"),
            time_scale=0.001,
        )
        view = finished(client, event_id)
        time.sleep(0.1)
    assert view["state"] == "failed"
    assert view["attempt_count"] == 1
    assert "not retried" in view["last_error"]
    assert len(app.at(zta_path)) == 1
    with sender("zaits", tmp_path / "zaits.sqlite3") as client:
        event_id = triggered(
            client,
            webhook_url=base + zaits_path,
            secret=_secret(zaits),
            event_type="document.signed",
            data=_data(zaits, "document.signed"),
            time_scale=_scale_for(zaits, 0.5),
        )
        view = finished(client, event_id)
    assert view["attempt_count"] == zaits.delivery.max_attempts
    assert len(app.at(zaits_path)) == zaits.delivery.max_attempts


@pytest.mark.parametrize("name", ["zta", "zaits"])
def test_redirects_are_never_followed(
    name: str, capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """A 302 is an answer: nothing is requested at its Location; whether it is retried is
    the profile's retry classes' call (ZTA: no; Zaits: yes)."""
    app, base = capture
    profile = load_profile(name)
    path = _path("302")
    event = profile.event_names[0]
    with sender(name, tmp_path / "o.sqlite3") as client:
        event_id = triggered(
            client,
            webhook_url=base + path,
            secret=_secret(profile),
            event_type=event,
            data=_data(profile, event),
            time_scale=_scale_for(profile, 0.5),
        )
        view = finished(client, event_id)
        time.sleep(0.05)
    expected = profile.delivery.max_attempts if profile.delivery.retries_status(302) else 1
    assert view["attempt_count"] == expected
    assert {a["status"] for a in view["attempts"]} == {302}
    assert len(app.at(path)) == expected
    assert app.under("/landing" + path) == []


def test_a_2xx_ends_the_delivery(capture: tuple[Capture, str], tmp_path: Path) -> None:
    """500, 500, then 200: delivered on the third attempt, and no fourth."""
    app, base = capture
    profile = load_profile("zaits")
    path = _path("500,503,201")
    with sender("zaits", tmp_path / "o.sqlite3") as client:
        event_id = triggered(
            client,
            webhook_url=base + path,
            secret=_secret(profile),
            event_type="document.completed",
            data=_data(profile, "document.completed"),
            time_scale=0.0005,
        )
        view = finished(client, event_id)
        time.sleep(0.3)
        assert delivery(client, event_id)["attempt_count"] == 3
    assert view["state"] == "delivered"
    assert [a["status"] for a in view["attempts"]] == [500, 503, 201]
    assert len(app.at(path)) == 3


def test_connection_errors_are_retried(tmp_path: Path) -> None:
    """Nothing listening: each attempt is a connection error, retried as the policy says."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    profile = load_profile("zta")
    with sender("zta", tmp_path / "o.sqlite3") as client:
        event_id = triggered(
            client,
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret=_secret(profile),
            event_type="goal",
            data=_data(profile, "goal"),
            time_scale=0.001,
        )
        view = finished(client, event_id)
    assert view["attempt_count"] == 3
    assert all(a["error"].startswith("connection error") for a in view["attempts"])
    assert all(a["status"] is None for a in view["attempts"])


@pytest.mark.parametrize("name", TIMESTAMPED)
def test_each_attempt_is_signed_afresh(
    name: str, capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """Timestamped schemes: each attempt carries a timestamp of its own moment (the second
    attempt comes a little over a second later), verified at its arrival; body and identity
    stay the same."""
    app, base = capture
    profile = load_profile(name)
    spec = profile.signature.timestamp
    assert spec is not None
    scale = 1.1 / profile.delivery.schedule_seconds[1]
    secret = _secret(profile)
    event = profile.event_names[0]
    data = _data(profile, event)
    path = _path("500,200")
    with sender(name, tmp_path / "o.sqlite3") as client:
        event_id = triggered(
            client,
            webhook_url=base + path,
            secret=secret,
            event_type=event,
            data=data,
            time_scale=scale,
        )
        view = finished(client, event_id, timeout=5)
    first, second = app.at(path)
    assert view["state"] == "delivered"
    assert first.body == second.body
    stamps = []
    for record in (first, second):
        _payload_checks(profile, record, secret, data)
        if spec.header is not None:
            text = record.headers[spec.header.lower()]
        else:
            items = record.headers[profile.signature.header.lower()].split(",")
            text = next(i.split("=", 1)[1] for i in items if i.startswith(f"{spec.item}="))
        moment = parse_timestamp(spec, text).timestamp()
        assert abs(record.arrived - moment) < 1.5
        stamps.append(moment)
    assert stamps[1] > stamps[0]
    sig = profile.signature.header.lower()
    assert first.headers[sig] != second.headers[sig]
    for header in _identity_headers(profile):
        assert _header(first, header) == _header(second, header)


@pytest.mark.slow
def test_a_timeout_is_a_failed_attempt(capture: tuple[Capture, str], tmp_path: Path) -> None:
    """ZTA (5 s timeout, not scaled): an answer held past it is a failed attempt, and the
    next one follows the scaled delay."""
    app, base = capture
    profile = load_profile("zta")
    path = _path("h6500,200")
    data = _data(profile, "alert")
    with sender("zta", tmp_path / "o.sqlite3") as client:
        started = time.monotonic()
        event_id = triggered(
            client,
            webhook_url=base + path,
            secret=_secret(profile),
            event_type="alert",
            data=data,
            time_scale=0.01,
        )
        view = finished(client, event_id, timeout=15)
        elapsed = time.monotonic() - started
    first, second = view["attempts"]
    assert first["error"].startswith("timeout")
    assert first["outcome"] == "retry"
    assert 4.9 <= first["ended_at"] - first["started_at"] <= 5.5
    assert second["status"] == 200
    assert 0.05 - 0.001 <= second["started_at"] - first["ended_at"] <= 0.05 + 0.025
    assert elapsed < 6.5
    assert len(app.at(path)) == 2


# ---------------------------------------------------------------------------------------
# Durability


def test_restart_resumes_the_schedule(capture: tuple[Capture, str], tmp_path: Path) -> None:
    """Stopped mid-schedule, a new sender on the same file makes the remaining attempts,
    with the same body and numbers going on from where they stopped."""
    app, base = capture
    profile = load_profile("ztrace")
    db = tmp_path / "o.sqlite3"
    path = _path("500")
    scale = 0.002  # 0, 60, 120, 240, 480, 960 ms
    with sender("ztrace", db) as client:
        event_id = triggered(
            client,
            webhook_url=base + path,
            secret=_secret(profile),
            event_type="batch.progress",
            data=_data(profile, "batch.progress"),
            time_scale=scale,
        )
        wait_for(lambda: len(app.at(path)) >= 2, what="two attempts")
    before = len(app.at(path))
    assert before < profile.delivery.max_attempts
    time.sleep(0.3)
    assert len(app.at(path)) == before  # stopped: nothing is sent
    with sender("ztrace", db) as client:
        view = finished(client, event_id)
    records = app.at(path)
    interrupted = [a for a in view["attempts"] if a["outcome"] == "interrupted"]
    done = [a for a in view["attempts"] if a["outcome"] != "interrupted"]
    assert [a["attempt"] for a in done] == list(range(1, profile.delivery.max_attempts + 1))
    assert view["state"] == "failed"
    assert len(records) == profile.delivery.max_attempts + len(interrupted)
    assert len({r.body for r in records}) == 1


def test_restart_keeps_counting_from_the_first_attempt(
    capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """first-attempt: stopped after attempt 2, a new sender on the same file makes attempts
    3 and 4 at their offsets from attempt 1's start, which it reads from the attempt log."""
    app, base = capture
    profile = _with_schedule("zaits", (0.0, 2.0, 10.0, 14.0), "first-attempt")
    scale = 0.1  # attempts at 0, 200, 1000 and 1400 ms
    db = tmp_path / "o.sqlite3"
    path = _path("500")
    with sender(profile, db) as client:
        event_id = triggered(client, webhook_url=base + path, **_signed_document(profile, scale))
        wait_for(lambda: len(app.at(path)) >= 2, what="two attempts")
    assert len(app.at(path)) == 2
    with sender(profile, db) as client:
        view = finished(client, event_id)
    attempts = view["attempts"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [
        (1, "retry"),
        (2, "retry"),
        (3, "retry"),
        (4, "failed"),
    ]
    offsets = [a["started_at"] - attempts[0]["started_at"] for a in attempts[1:]]
    assert offsets == pytest.approx([0.2, 1.0, 1.4], abs=0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def _sender_process(profile: str, db: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        sys.executable,
        "-c",
        "import sys; from conformance._cli import main; sys.exit(main())",
        "serve",
        "sender",
        "--profile",
        profile,
        "--port",
        str(port),
        "--db",
        str(db),
        "--allow-private-targets",
    ]
    process = subprocess.Popen(
        command, cwd=db.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 20, "the sender process")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.mark.slow
def test_kill_9_in_flight_attempt_is_made_again(
    capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """`serve sender` killed with SIGKILL while an attempt waits for its answer: the next
    start makes that attempt again, with the same body and delivery id."""
    app, base = capture
    profile = load_profile("zaits")
    secret = _secret(profile)
    db = tmp_path / "outbox.sqlite3"
    path = _path("h1500,200")
    port = _free_port()
    with _sender_process("zaits", db, port) as process:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        event_id = triggered(
            client,
            webhook_url=base + path,
            secret=secret,
            event_type="ocr.completed",
            data=_data(profile, "ocr.completed"),
        )
        wait_for(lambda: len(app.at(path)) == 1, what="the first attempt")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        client.close()
    with (
        _sender_process("zaits", db, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        view = finished(client, event_id)
    first, again = app.at(path)
    assert first.body == again.body
    assert first.headers["x-zaits-delivery"] == again.headers["x-zaits-delivery"]
    assert json.loads(again.body)["id"] == event_id
    verify(profile, secret, again.body, again.headers)
    assert view["state"] == "delivered"
    assert [(a["attempt"], a["outcome"]) for a in view["attempts"]] == [
        (1, "interrupted"),
        (1, "delivered"),
    ]
    assert view["attempts"][0]["error"].startswith("interrupted")


def test_auto_disable_after_failing_for_the_profiles_period(
    capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """ZTA: an endpoint whose every attempt failed for 24 h is disabled; its delivery fails
    and further triggers are refused with 409. A success in between resets the period."""
    _, base = capture
    profile = load_profile("zta")
    assert profile.delivery.auto_disable_after_hours == 24
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    failing, recovering = base + _path("500"), base + _path("500,500,500,200,500")
    fields = {
        "secret": _secret(profile),
        "event_type": "event",
        "data": _data(profile, "event"),
        "time_scale": 0.001,
    }
    with sender("zta", tmp_path / "o.sqlite3", clock=clock) as client:
        first = triggered(client, webhook_url=failing, **fields)
        assert finished(client, first)["attempt_count"] == 3
        other = triggered(client, webhook_url=recovering, **fields)
        finished(client, other)
        assert (
            finished(client, triggered(client, webhook_url=recovering, **fields))["state"]
            == "delivered"
        )
        offset[0] += 25 * 3600
        second = triggered(client, webhook_url=failing, **fields)
        view = finished(client, second)
        refused = trigger(client, webhook_url=failing, **fields)
        kept = finished(client, triggered(client, webhook_url=recovering, **fields))
    assert view["state"] == "failed"
    assert view["attempt_count"] == 1
    assert "endpoint disabled" in view["last_error"]
    assert view["endpoint"]["disabled_at"] is not None
    assert "24 h" in view["endpoint"]["disabled_reason"]
    assert refused.status_code == 409
    assert refused.json()["error"] == "endpoint disabled"
    assert kept["endpoint"]["disabled_at"] is None  # it succeeded less than 24 h ago
    assert kept["attempt_count"] == 3


# ---------------------------------------------------------------------------------------
# The trigger's validation


@pytest.fixture(scope="module")
def zaits_sender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with sender("zaits", tmp_path_factory.mktemp("zaits") / "o.sqlite3") as client:
        yield client


@pytest.fixture(scope="module")
def sw_sender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = tmp_path_factory.mktemp("sw") / "o.sqlite3"
    with sender("standard-webhooks", db) as client:
        yield client


def _valid(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "webhook_url": "http://127.0.0.1:9/hook",
        "secret": "s3cret",
        "event_type": "user.credits.low",
        "data": _data(load_profile("zaits"), "user.credits.low"),
        "time_scale": 1000.0,
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not _DROP}


_DROP = object()

BAD_TRIGGERS: list[tuple[str, Any, int, str | None]] = [
    ("missing webhook_url", {"webhook_url": _DROP}, 400, "webhook_url"),
    ("missing secret", {"secret": _DROP}, 400, "secret"),
    ("missing event_type", {"event_type": _DROP}, 400, "event_type"),
    ("missing data", {"data": _DROP}, 400, "data"),
    ("url not a string", {"webhook_url": 5}, 400, "webhook_url"),
    ("url empty", {"webhook_url": ""}, 400, "webhook_url"),
    ("url ftp", {"webhook_url": "ftp://example.com/x"}, 400, "webhook_url"),
    ("url relative", {"webhook_url": "/hook"}, 400, "webhook_url"),
    ("url without host", {"webhook_url": "http:///x"}, 400, "webhook_url"),
    ("url broken", {"webhook_url": "http://exa mple.com:99999/"}, 400, "webhook_url"),
    ("secret not a string", {"secret": 7}, 400, "secret"),
    ("secret empty", {"secret": ""}, 400, "secret"),
    ("event_type not a string", {"event_type": ["a"]}, 400, "event_type"),
    ("event_type unknown", {"event_type": "no.such.event"}, 422, "event_type"),
    ("data an array", {"data": []}, 400, "data"),
    ("data a string", {"data": "x"}, 400, "data"),
    ("data null", {"data": None}, 400, "data"),
    ("data against the schema", {"event_type": "document.signed", "data": {}}, 422, "data"),
    ("data too large", {"data": {"blob": "x" * (1024 * 1024)}}, 413, "data"),
    ("time_scale zero", {"time_scale": 0}, 400, "time_scale"),
    ("time_scale negative", {"time_scale": -1}, 400, "time_scale"),
    ("time_scale a string", {"time_scale": "1"}, 400, "time_scale"),
    ("time_scale a boolean", {"time_scale": True}, 400, "time_scale"),
    ("time_scale null", {"time_scale": None}, 400, "time_scale"),
    ("time_scale huge", {"time_scale": 1e300}, 400, "time_scale"),
]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [pytest.param(c, s, f, id=i) for i, c, s, f in BAD_TRIGGERS],
)
def test_invalid_triggers_are_4xx_naming_the_field(
    zaits_sender: httpx.Client, change: dict[str, Any], status: int, field: str | None
) -> None:
    response = zaits_sender.post("/conformance/trigger", json=_valid(**change))
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message"}
    assert body["field"] == field
    assert field in body["message"]


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'"text"', b"{", b'{"time_scale": NaN}', b"\xff\xfe{}", b"1e999"],
)
def test_malformed_trigger_bodies_are_400(zaits_sender: httpx.Client, raw: bytes) -> None:
    response = zaits_sender.post(
        "/conformance/trigger", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed trigger"
    assert response.json()["message"]


def test_a_lone_surrogate_in_data_is_400(zaits_sender: httpx.Client) -> None:
    fields = json.dumps(_valid()).replace('"data": {', '"data": {"x": "\\ud800", ', 1)
    response = zaits_sender.post("/conformance/trigger", content=fields.encode())
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "data"


def test_secrets_the_profile_cannot_use_are_400(sw_sender: httpx.Client) -> None:
    profile = load_profile("standard-webhooks")
    private = generate_secret(profile.signature, asymmetric=True)
    for secret in ("whsec_not base64!", "no-prefix", public_key_text(profile.signature, private)):
        response = trigger(
            sw_sender,
            webhook_url="http://127.0.0.1:9/",
            secret=secret,
            event_type="user.created",
            data={},
        )
        assert response.status_code == 400, (secret, response.text)
        assert response.json()["error"] == "invalid secret"
        assert "secret" in response.json()["message"]


def test_open_catalogue_takes_uncatalogued_types(sw_sender: httpx.Client) -> None:
    """Standard Webhooks: any dot-delimited type is an event type, else 422."""
    secret = generate_secret(load_profile("standard-webhooks").signature)
    ok = trigger(
        sw_sender,
        webhook_url="http://127.0.0.1:9/",
        secret=secret,
        event_type="custom.thing_happened",
        data={"any": "thing"},
        time_scale=1000,
    )
    assert ok.status_code == 202, ok.text
    bad = trigger(
        sw_sender, webhook_url="http://127.0.0.1:9/", secret=secret, event_type="nodot", data={}
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "event_type"


def test_unknown_delivery_is_404_and_methods_are_checked(zaits_sender: httpx.Client) -> None:
    response = zaits_sender.get("/conformance/deliveries/evt_nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not found"
    assert zaits_sender.get("/conformance/trigger").status_code == 405
    assert zaits_sender.get("/healthz").json() == {"status": "ok"}


def test_the_event_is_committed_before_the_answer(tmp_path: Path) -> None:
    """The row is in the file (read over a separate connection) when the trigger answers."""
    profile = load_profile("zupertry")
    db = tmp_path / "o.sqlite3"
    with sender("zupertry", db) as client:
        event_id = triggered(
            client,
            webhook_url="http://127.0.0.1:9/",
            secret="s",
            event_type="job.completed",
            data=_data(profile, "job.completed"),
            time_scale=1000,
        )
        conn = sqlite3.connect(db)
        try:
            row = conn.execute(
                "SELECT state, body FROM events WHERE event_id = ?", (event_id,)
            ).fetchone()
        finally:
            conn.close()
    assert row is not None
    assert row[0] in ("pending", "failed")
    assert json.loads(row[1])["type"] == "job.completed"


# ---------------------------------------------------------------------------------------
# The SSRF guard


BLOCKED_LITERALS = [
    "http://127.0.0.1/hook",
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:10.0.0.1]/",
    "https://100.64.0.1/hook",
    "https://0.0.0.0/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://192.0.2.10/",
    "https://[fe80::1]/",
    "https://[fd00::1]/",
    "https://[2002:7f00:1::1]/",
    "https://[64:ff9b::a00:1]/",
    "http://example.com/hook",
]


@pytest.fixture(scope="module")
def guarded_sender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = tmp_path_factory.mktemp("guarded") / "o.sqlite3"
    with sender("zaits", db, allow_private_targets=False) as client:
        yield client


@pytest.mark.parametrize("url", BLOCKED_LITERALS)
def test_blocked_literal_targets_are_refused_at_trigger(
    guarded_sender: httpx.Client, url: str
) -> None:
    response = trigger(guarded_sender, **_valid(webhook_url=url))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "blocked target"
    assert body["field"] == "webhook_url"
    assert "--allow-private-targets" in body["message"]


@pytest.mark.parametrize(
    ("host", "why"),
    [("localhost", "localhost resolves to"), ("2130706433", "resolves to 127.0.0.1")],
)
def test_names_resolving_to_blocked_addresses_are_refused_at_connect(
    guarded_sender: httpx.Client, capture: tuple[Capture, str], host: str, why: str
) -> None:
    """A name is accepted by the trigger, then refused at connect time on the address it
    resolves to: the attempt is recorded as blocked, final, and nothing reaches the port."""
    app, base = capture
    port = httpx.URL(base).port
    path = _path("200")
    event_id = triggered(guarded_sender, **_valid(webhook_url=f"https://{host}:{port}{path}"))
    view = finished(guarded_sender, event_id)
    assert view["state"] == "failed"
    (attempt,) = view["attempts"]
    assert attempt["error"].startswith("blocked: ")
    assert why in attempt["error"]
    assert "loopback" in attempt["error"]
    assert app.at(path) == []


def test_the_guard_is_in_the_transport(capture: tuple[Capture, str]) -> None:
    """The connect-time check stands on its own: literals and names, whatever the caller."""
    app, base = capture
    port = httpx.URL(base).port

    async def attempt(url: str) -> str:
        async with httpx.AsyncClient(transport=GuardedTransport()) as client:
            try:
                await client.post(url, content=b"{}")
            except BlockedTarget as exc:
                return exc.reason
        return "sent"

    for url, why in [
        (f"https://127.0.0.1:{port}/x", "127.0.0.1 is loopback"),
        (f"https://[::ffff:127.0.0.1]:{port}/x", "IPv4-mapped"),
        (f"https://localhost:{port}/x", "localhost resolves to"),
        (f"http://127.0.0.1:{port}/x", "only https://"),
        ("http://93.184.215.14/x", "only https://"),
    ]:
        assert why in asyncio.run(attempt(url)), url
    assert app.under("/x") == []


def _posts(base: str, paths: list[str], *, limit: int, together: bool) -> None:
    """POST to each path over one client on the sender's transport (guard off), one after
    another or all at once."""
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)

    async def run() -> None:
        transport = GuardedTransport(guard=False, limits=limits)
        async with httpx.AsyncClient(transport=transport) as client:
            if together:
                answers = await asyncio.gather(*(client.post(base + p) for p in paths))
            else:
                answers = [await client.post(base + p) for p in paths]
        assert {a.status_code for a in answers} == {200}

    asyncio.run(run())


def test_the_pool_reuses_connections_within_its_limit(capture: tuple[Capture, str]) -> None:
    """Requests one after another share one connection; twelve at once over a pool of four
    use four connections, the others waiting for one of them."""
    app, base = capture
    prefix = f"/c/pool-{uuid.uuid4().hex[:8]}"
    _posts(base, [f"{prefix}/one/200"] * 10, limit=4, together=False)
    assert len({r.peer for r in app.under(f"{prefix}/one/")}) == 1
    _posts(base, [f"{prefix}/many/h50"] * 12, limit=4, together=True)
    assert len({r.peer for r in app.under(f"{prefix}/many/")}) == 4


def test_the_pool_never_reuses_a_closed_connection(capture: tuple[Capture, str]) -> None:
    """A connection the server closed after its answer is not used again."""
    app, base = capture
    path = _path("close")
    _posts(base, [path] * 3, limit=4, together=False)
    records = app.at(path)
    assert len(records) == 3
    assert len({r.peer for r in records}) == 3


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.251",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",
        "::127.0.0.1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "2001::1",
        "100::1",
        "64:ff9b:1::1",
        "64:ff9b::7f00:1",
        "2002:a00:1::1",
    ],
)
def test_blocked_ranges(address: str) -> None:
    reason = blocked_reason(address)
    assert reason is not None
    assert reason.startswith(str(__import__("ipaddress").ip_address(address)))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700::1111", "2002:808:808::1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(address) is None


# ---------------------------------------------------------------------------------------
# The command


def test_serve_sender_is_registered_beside_receiver(tmp_path: Path, capsys: Any) -> None:
    parser = argparse.ArgumentParser(prog="webhook-conformance")
    register_serve(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["serve", "sender", "--profile", "zta", "--port", "0", "--db", "x.sqlite3"]
    )
    assert (args.profile, args.port, args.db, args.host) == ("zta", 0, "x.sqlite3", "127.0.0.1")
    assert args.allow_private_targets is False
    assert parser.parse_args(["serve", "sender", "--profile", "zta", "--allow-private-targets"])
    receiver = parser.parse_args(["serve", "receiver", "--profile", "zta", "--secret", "s"])
    assert receiver.func is not args.func
    bad = parser.parse_args(
        ["serve", "sender", "--profile", "zta", "--db", str(tmp_path / "no" / "such" / "db")]
    )
    assert bad.func(bad) == 2
    assert "--db" in capsys.readouterr().err
    unknown = parser.parse_args(["serve", "sender", "--profile", "nope"])
    assert unknown.func(unknown) == 2
    assert "unknown profile" in capsys.readouterr().err


def test_sender_module_names_no_provider() -> None:
    """The sender reads profile fields; no provider's name appears in its code."""
    names = [*PROFILES, "svix", "hookshot"]
    for path in [*(ROOT / "reference" / "sender").glob("*.py"), ROOT / "reference/_outbox.py"]:
        text = path.read_text(encoding="utf-8").lower()
        code = "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith(("#", '"'))
        )
        for name in names:
            assert f'"{name}"' not in code, (path.name, name)
            assert f"== '{name}'" not in code, (path.name, name)


# ---------------------------------------------------------------------------------------
# Declared status semantics (Standard Webhooks: 410 disables, Retry-After is honoured)


def test_a_410_ends_the_delivery_and_disables_the_endpoint(
    capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """Under a profile whose delivery.disable_on_status holds 410, a 410 is not retried: the
    delivery fails, the endpoint is disabled, and a later trigger to it is refused (409)."""
    app, base = capture
    profile = load_profile("standard-webhooks")
    assert 410 in profile.delivery.disable_on_status
    path = _path("410")
    fields = {"webhook_url": base + path, "secret": _secret(profile), "event_type": "a.b",
              "data": {"x": 1}, "time_scale": _scale_for(profile)}  # fmt: skip
    with sender(profile, tmp_path / "sw.sqlite3") as client:
        view = finished(client, triggered(client, **fields))
        again = trigger(client, **fields)
        time.sleep(0.2)
    assert (view["state"], view["attempt_count"]) == ("failed", 1)
    assert "disabled" in view["last_error"]
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "endpoint disabled"
    assert len(app.at(path)) == 1


def test_a_410_is_an_ordinary_failure_where_the_profile_declares_nothing(
    capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """Zaits retries every non-2xx answer, a 410 included."""
    app, base = capture
    profile = load_profile("zaits")
    path = _path("410")
    with sender(profile, tmp_path / "z.sqlite3") as client:
        view = finished(client, triggered(
            client, webhook_url=base + path, secret=_secret(profile),
            event_type="document.signed", data=_data(profile, "document.signed"),
            time_scale=_scale_for(profile, 0.3),
        ))  # fmt: skip
    assert view["attempt_count"] == profile.delivery.max_attempts
    assert len(app.at(path)) == profile.delivery.max_attempts


def test_retry_after_delays_the_next_attempt_unscaled(
    capture: tuple[Capture, str], tmp_path: Path
) -> None:
    """A 429 with Retry-After: 1 puts the next attempt at least 1 s later, though the scaled
    schedule would retry within milliseconds."""
    app, base = capture
    profile = load_profile("standard-webhooks")
    path = _path("ra1x429,200")
    with sender(profile, tmp_path / "sw.sqlite3") as client:
        view = finished(client, triggered(
            client, webhook_url=base + path, secret=_secret(profile), event_type="a.b",
            data={"x": 1}, time_scale=_scale_for(profile),
        ))  # fmt: skip
    first, second = app.at(path)
    assert view["state"] == "delivered"
    assert second.arrived - first.answered >= 0.95


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("999999", 86400.0),
        ("Wed, 02 Dec 2026 00:00:10 GMT", 10.0),
        ("Wed, 02 Dec 2026 00:00:00 GMT", 0.0),
        ("Tue, 01 Dec 2026 00:00:00 GMT", 0.0),
        ("soon", None),
        ("-1", None),
        (None, None),
    ],
)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    """Delay-seconds or an HTTP-date, capped at a day; anything else is ignored."""
    from reference.sender._dispatch import retry_after

    now = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC).timestamp()
    assert retry_after(value, now) == seconds
