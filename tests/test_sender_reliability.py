"""A bounded fault campaign against the reference sender, on loopback, with a kill -9 halfway.

Three ``serve sender`` processes (ZTA: retries only 5xx, timeouts and connection errors, 3
attempts; Zaits: retries every non-2xx, 5 attempts; Standard Webhooks: every non-2xx, 10
attempts, timestamped signatures) deliver to one ``FaultReceiver`` (``tests/_faults.py``),
which answers each event's requests from a plan of its own: 2xx, 4xx, 5xx, 3xx, connection
resets and answers held past the sender's timeout (few: they cost real seconds), some by a
receiver that has already taken the event, so that the kill makes a duplicate delivery.

Half the events are triggered; once some attempts are held in flight, every sender is killed
with SIGKILL, started again on the same outbox file and port, and the other half is
triggered. When every event has reached a final state:

* none is lost: every event id a trigger returned is delivered or failed, and reached the
  receiver at least once;
* each ended as its policy says, judged from the wire alone: the answers the receiver gave,
  minus those whose attempt the kill cut short, lead to exactly that state after exactly
  that many attempts, and nothing came after the last; the sender's attempt log tells the
  same story, attempt by attempt;
* every request verifies with its event's secret (at its arrival time);
* every request of one event carries the same identity (body bytes, event id, delivery id):
  duplicates after the kill are allowed (at least once) but byte-identical.

The summary line (``reliability: ...``) is printed; run with ``-s`` to see it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _faults import Capture, FaultReceiver, SenderProcess, free_port, wait_for

from conformance import Profile, VerificationError, load_profile, verify
from conformance._examples import document_examples
from conformance._profile import resolve_pointer
from conformance._signing import generate_secret

PROFILES = ("zta", "zaits", "standard-webhooks")
#: Events per profile triggered before the kill, and as many after it.
PER_PHASE = 50
#: The whole test must end well within a minute.
BUDGET_SECONDS = 55.0
#: Every retry schedule is scaled to last about this long in all.
SCHEDULE_SECONDS = 1.0

#: Plans without held answers, and how often each is drawn.
PATTERNS: list[tuple[tuple[str, ...], int]] = [
    (("200",), 6),
    (("201",), 2),
    (("204",), 2),
    (("500", "200"), 4),
    (("503", "502", "200"), 3),
    (("reset", "200"), 4),
    (("reset", "reset", "201"), 2),
    (("400", "200"), 3),  # ZTA: failed at once; the others deliver on the second attempt
    (("302", "200"), 2),  # a redirect is an answer, never followed: ZTA fails at once
    (("429", "500", "reset", "200"), 2),  # ZTA: 429 is final; the others deliver on the 4th
    (("500", "reset", "410"), 2),  # ZTA: failed on its 3rd and last; the others on their last
    (("500",), 2),  # failed after every attempt
    (("reset",), 2),  # failed after every attempt, on connection errors
    (("410",), 1),  # ZTA: one attempt; the others all of theirs
]
#: Plans with held answers. The last events triggered before the kill are held when it
#: comes; made again after it, ZTA's are held past its 5 s timeout. Those held by a receiver
#: that already took the event (``ackslow``) are delivered twice. After the kill, a few more
#: of ZTA's are held: the others' timeouts (10 s, 15 s) would cost too long.
HELD_BEFORE_KILL: dict[str, list[tuple[str, ...]]] = {
    "zta": [("slow", "slow", "200"), ("ackslow",)],
    "zaits": [("slow", "200"), ("ackslow",)],
    "standard-webhooks": [("slow", "200"), ("ackslow",)],
}
HELD_AFTER_KILL: dict[str, list[tuple[str, ...]]] = {
    "zta": [("slow", "500", "200"), ("reset", "slow", "503")]
}


@dataclass
class Triggered:
    profile: Profile
    phase: int
    path: str
    plan: tuple[str, ...]
    secret: str
    event_type: str
    data: dict[str, Any]
    event_id: str = ""


# ---------------------------------------------------------------------------------------
# The campaign


def _scale(profile: Profile) -> float:
    policy = profile.delivery
    total = sum(policy.schedule_seconds[1 : policy.max_attempts])
    return min(0.001, SCHEDULE_SECONDS / max(total, 1.0))


def _inputs(profile: Profile) -> list[tuple[str, dict[str, Any]]]:
    """Event types and data to trigger: the data of the provider's own examples, or for a
    profile without any (an open catalogue), an uncatalogued type."""
    found: list[tuple[str, dict[str, Any]]] = []
    for example in document_examples(profile):
        if example.event is not None:
            data = resolve_pointer(json.loads(example.body), profile.envelope.data)
            assert isinstance(data, dict)
            found.append((example.event, data))
    return found or [("reliability.probe", {})]


def _plans(name: str, phase: int) -> list[tuple[str, ...]]:
    rng = random.Random(f"{name}-{phase}")
    patterns = [plan for plan, _ in PATTERNS]
    weights = [weight for _, weight in PATTERNS]
    held = (HELD_BEFORE_KILL if phase == 1 else HELD_AFTER_KILL).get(name, [])
    drawn = rng.choices(patterns, weights, k=PER_PHASE - len(held))
    # Before the kill the held ones come last, to be in flight when it comes.
    return [*drawn, *held] if phase == 1 else [*held, *drawn]


def _events(phase: int) -> list[Triggered]:
    events = []
    plans = {name: _plans(name, phase) for name in PROFILES}
    for i in range(PER_PHASE):
        for name in PROFILES:
            profile = load_profile(name)
            inputs = _inputs(profile)
            event_type, data = inputs[i % len(inputs)]
            if not data and event_type == "reliability.probe":
                data = {"probe": f"{phase}-{i}"}
            plan = plans[name][i]
            events.append(
                Triggered(
                    profile=profile,
                    phase=phase,
                    path=f"/{name}/{phase}-{i}/{','.join(plan)}",
                    plan=plan,
                    secret=generate_secret(profile.signature),
                    event_type=event_type,
                    data=data,
                )
            )
    return events


def _trigger(clients: dict[str, httpx.Client], base: str, events: list[Triggered]) -> None:
    for event in events:
        response = clients[event.profile.name].post(
            "/conformance/trigger",
            json={
                "webhook_url": base + event.path,
                "secret": event.secret,
                "event_type": event.event_type,
                "data": event.data,
                "time_scale": _scale(event.profile),
            },
        )
        assert response.status_code == 202, (event.path, response.text)
        event.event_id = response.json()["event_id"]
        assert isinstance(event.event_id, str)
        assert event.event_id


@contextlib.contextmanager
def _clients(senders: dict[str, SenderProcess]) -> Iterator[dict[str, httpx.Client]]:
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(httpx.Client(base_url=sender.base, timeout=10))
            for name, sender in senders.items()
        }


def _start(senders: dict[str, SenderProcess]) -> None:
    for sender in senders.values():
        sender.launch()
    for sender in senders.values():
        sender.wait_ready()


def _final_views(
    clients: dict[str, httpx.Client], events: list[Triggered], deadline: float
) -> dict[str, dict[str, Any]]:
    """Every event's delivery view once it is delivered or failed (polled, bounded)."""
    views: dict[str, dict[str, Any]] = {}
    waiting = list(events)
    while True:
        still = []
        for event in waiting:
            response = clients[event.profile.name].get(f"/conformance/deliveries/{event.event_id}")
            assert response.status_code == 200, (event.event_id, event.path, response.text)
            view = response.json()
            if view["state"] == "pending":
                still.append(event)
            else:
                views[event.event_id] = view
        waiting = still
        if not waiting:
            return views
        if time.monotonic() > deadline:
            shown = "\n".join(_describe(clients, e) for e in waiting[:10])
            raise AssertionError(
                f"lost: {len(waiting)} of {len(events)} events never reached a final state "
                f"(delivered or failed) within the budget:\n{shown}"
            )
        time.sleep(0.05)


def _describe(clients: dict[str, httpx.Client], event: Triggered) -> str:
    view = clients[event.profile.name].get(f"/conformance/deliveries/{event.event_id}").json()
    log = [(a["attempt"], a["outcome"], a["status"], a["error"]) for a in view["attempts"]]
    return f"  {event.profile.name} {event.event_id} {event.path}: {view['state']} {log}"


# ---------------------------------------------------------------------------------------
# Judging one event


def _retryable(profile: Profile, status: int | None, error: str | None) -> bool:
    policy = profile.delivery
    if status is not None:
        if status in policy.disable_on_status:
            return False  # it disables the endpoint instead (Standard Webhooks' 410)
        return not policy.is_success(status) and policy.retries_status(status)
    if error is not None and error.startswith("timeout"):
        return bool(policy.retry_on_timeout)
    if error is not None and error.startswith("connection error"):
        return bool(policy.retry_on_connection_error)
    return False


def _wire_result(step: str) -> tuple[int | None, str]:
    """What the sender should have seen for a step: a status, or the start of its error."""
    if step == "reset":
        return None, "connection error"
    if step in ("slow", "ackslow"):
        return None, "timeout"
    return int(step), ""


def _same_request(attempt: dict[str, Any], capture: Capture) -> bool:
    return all(capture.headers.get(k.lower()) == v for k, v in attempt["headers"].items())


def _same_result(attempt: dict[str, Any], capture: Capture) -> bool:
    status, error = _wire_result(capture.step)
    if status is not None:
        return bool(attempt["status"] == status)
    return attempt["status"] is None and (attempt["error"] or "").startswith(error)


def _match(
    log: list[dict[str, Any]], captures: list[Capture]
) -> list[tuple[dict[str, Any], Capture | None]] | None:
    """Pair the attempt log with the requests that arrived, in order: a completed attempt
    is one request with the answer it recorded; an interrupted one is one request (any
    answer: the sender never learned it) or none (killed before it went out)."""

    def go(i: int, j: int) -> list[tuple[dict[str, Any], Capture | None]] | None:
        if i == len(log):
            return [] if j == len(captures) else None
        attempt = log[i]
        here = captures[j] if j < len(captures) else None
        if attempt["outcome"] == "interrupted":
            if here is not None and _same_request(attempt, here):
                rest = go(i + 1, j + 1)
                if rest is not None:
                    return [(attempt, here), *rest]
            rest = go(i + 1, j)
            return None if rest is None else [(attempt, None), *rest]
        if here is None or not _same_request(attempt, here) or not _same_result(attempt, here):
            return None
        rest = go(i + 1, j + 1)
        return None if rest is None else [(attempt, here), *rest]

    return go(0, 0)


def _policy_outcome(profile: Profile, steps: list[str]) -> tuple[str, int]:
    """The state and attempt count the policy gives for these answers, in order: the first
    success delivers; a failure not retried, or the last attempt's, fails."""
    policy = profile.delivery
    for number, step in enumerate(steps, 1):
        status, error = _wire_result(step)
        if status is not None and policy.is_success(status):
            return "delivered", number
        if not _retryable(profile, status, error) or number == policy.max_attempts:
            return "failed", number
    return "pending", len(steps)


def _identity_headers(profile: Profile) -> list[str]:
    names = [profile.envelope.event_id_header, profile.signature.id_header]
    names += [h.name for h in profile.headers if h.generate]
    return sorted({n.lower() for n in names if n})


@dataclass
class Judged:
    problems: dict[str, list[str]]
    redone: int = 0  # requests of attempts the kill cut short, made again
    acknowledged: int = 0  # requests of the event taken by the receiver
    interrupted: int = 0


def _judge(event: Triggered, view: dict[str, Any], captures: list[Capture]) -> Judged:
    profile, policy = event.profile, event.profile.delivery
    judged = Judged(problems={})
    where = f"{profile.name} {event.event_id} {event.path}"

    def problem(kind: str, text: str) -> None:
        judged.problems.setdefault(kind, []).append(f"{where}: {text}")

    log = view["attempts"]
    summary = [(a["attempt"], a["outcome"], a["status"], a["error"]) for a in log]
    wire = [c.step for c in captures]
    judged.interrupted = sum(a["outcome"] == "interrupted" for a in log)
    judged.acknowledged = sum(
        c.step == "ackslow" or (c.status is not None and 200 <= c.status < 300) for c in captures
    )
    if not captures:
        problem("lost", f"ended {view['state']} without reaching the receiver; log {summary}")
    if view["state"] not in ("delivered", "failed"):
        problem("lost", f"state {view['state']!r}")
    answered_2xx = [c for c in captures if c.status is not None and policy.is_success(c.status)]
    if view["state"] == "delivered" and not answered_2xx:
        problem("policy", f"delivered, but the receiver answered no request 2xx: {wire}")

    # The log and the wire tell one story; the wire alone says how it must have ended.
    pairs = _match(log, captures)
    if pairs is None:
        problem("policy", f"the attempt log {summary} does not match the requests {wire}")
    else:
        judged.redone = sum(1 for a, c in pairs if a["outcome"] == "interrupted" and c)
        answered = [c.step for a, c in pairs if a["outcome"] != "interrupted" and c]
        state, count = _policy_outcome(profile, answered)
        if (state, count) != (view["state"], len(answered)):
            problem(
                "policy",
                f"answers {answered} make {state} after {count} attempts under the policy; "
                f"the sender says {view['state']} after {len(answered)} (log {summary})",
            )
    done = [a for a in log if a["outcome"] != "interrupted"]
    if [a["attempt"] for a in done] != list(range(1, len(done) + 1)):
        problem("policy", f"completed attempts are not numbered 1..n: {summary}")
    if view["attempt_count"] != len(done):
        problem("policy", f"attempt_count {view['attempt_count']} for {len(done)} in {summary}")
    for before, attempt in enumerate(log):
        if attempt["outcome"] == "interrupted":
            completed = sum(a["outcome"] != "interrupted" for a in log[:before])
            if attempt["attempt"] != completed + 1:
                problem("policy", f"an interrupted attempt is not made again: {summary}")
    for attempt in done[:-1]:
        if attempt["outcome"] != "retry" or not _retryable(
            profile, attempt["status"], attempt["error"]
        ):
            problem("policy", f"attempt {attempt['attempt']} is not a retry: {summary}")
    if done:
        last = done[-1]
        if view["state"] == "delivered" and not (
            last["outcome"] == "delivered" and policy.is_success(last["status"] or 0)
        ):
            problem("policy", f"delivered, but its last attempt was not a success: {summary}")
        if view["state"] == "failed":
            retried = _retryable(profile, last["status"], last["error"])
            if last["outcome"] != "failed" or (retried and last["attempt"] < policy.max_attempts):
                problem("policy", f"failed with attempts left: {summary}")
            if last["status"] in policy.disable_on_status:
                expected = "the endpoint is disabled"
            else:
                expected = "no attempt left" if retried else "not retried"
            if expected not in (view["last_error"] or ""):
                problem("policy", f"last_error {view['last_error']!r} does not say {expected!r}")

    # Signatures, at each request's arrival.
    for capture in captures:
        try:
            verify(profile, event.secret, capture.body, capture.headers, now=capture.arrived)
        except VerificationError as exc:
            problem("signature", f"request {capture.index} ({capture.step}): {exc}")

    # One identity, one body.
    body = view["body"].encode("utf-8")
    for capture in captures:
        if capture.body != body:
            kind = "duplicate" if capture.index else "identity"
            problem(kind, f"request {capture.index} carries other bytes than the stored body")
        if capture.method != policy.method:
            problem("identity", f"request {capture.index} is a {capture.method}")
    for header in _identity_headers(profile):
        values = {c.headers.get(header) for c in captures}
        if len(values) > 1:
            problem("identity", f"{header} changes across attempts: {sorted(map(str, values))}")
    if captures:
        payload = json.loads(captures[0].body)
        if resolve_pointer(payload, profile.envelope.data) != event.data:
            problem("identity", "the payload does not hold the triggered data")
        if profile.event_type_of(payload, captures[0].headers) != event.event_type:
            problem("identity", "the payload is not of the triggered event type")
        env = profile.envelope
        if env.event_id is not None and resolve_pointer(payload, env.event_id) != event.event_id:
            problem("identity", "the payload's event id is not the one the trigger returned")
        if (
            env.event_id_header is not None
            and captures[0].headers.get(env.event_id_header.lower()) != event.event_id
        ):
            problem("identity", f"{env.event_id_header} is not the event id")
    return judged


# ---------------------------------------------------------------------------------------
# The test


def test_fault_campaign_with_a_kill_9_halfway(tmp_path: Path, record_property: Any) -> None:
    """Every event triggered around a kill -9 is delivered or failed as its policy says,
    none is lost, and every request verifies and carries its event's one identity."""
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS
    senders = {
        name: SenderProcess(name, tmp_path / f"{name}.sqlite3", free_port()) for name in PROFILES
    }
    with FaultReceiver() as receiver, contextlib.ExitStack() as stack:
        for sender in senders.values():
            stack.callback(sender.stop)
        first, second = _events(1), _events(2)

        _start(senders)
        marks = {"up": time.monotonic()}
        with _clients(senders) as clients:
            _trigger(clients, receiver.base, first)
        held = {name: len(HELD_BEFORE_KILL.get(name, [])) for name in PROFILES}
        wait_for(
            lambda: all(receiver.holding(f"/{n}/1-") >= k for n, k in held.items()),
            10,
            f"held attempts in flight ({held})",
        )
        at_kill = len(receiver.captures())
        for sender in senders.values():
            sender.kill9()
        marks["killed"] = time.monotonic()

        _start(senders)
        marks["restarted"] = time.monotonic()
        with _clients(senders) as clients:
            _trigger(clients, receiver.base, second)
            views = _final_views(clients, first + second, deadline)
            marks["final"] = time.monotonic()
            settled = len(receiver.captures())
            time.sleep(0.3)  # nothing comes after a final state
            late = receiver.captures()[settled:]
        for sender in senders.values():
            sender.stop()
        logs = {name: sender.log_text() for name, sender in senders.items()}
    elapsed = time.monotonic() - started

    events = first + second
    problems: dict[str, list[str]] = {}
    redone = duplicate_deliveries = interrupted = 0
    for event in events:
        judged = _judge(event, views[event.event_id], receiver.at(event.path))
        for kind, found in judged.problems.items():
            problems.setdefault(kind, []).extend(found)
        redone += judged.redone
        interrupted += judged.interrupted
        duplicate_deliveries += judged.acknowledged > 1
    captures = receiver.captures("/")
    steps = Counter(c.step for c in captures)
    states = Counter(v["state"] for v in views.values())
    timeouts = sum(
        1 for v in views.values() for a in v["attempts"] if (a["error"] or "").startswith("timeout")
    )
    counts = {
        "profiles": ",".join(PROFILES),
        "events": len(events),
        "delivered": states["delivered"],
        "failed": states["failed"],
        "attempts_captured": len(captures),
        "captured_before_kill": at_kill,
        "interrupted": interrupted,
        "duplicates_after_kill": redone,
        "duplicate_deliveries": duplicate_deliveries,
        "resets": steps["reset"],
        "slow": steps["slow"] + steps["ackslow"],
        "timeouts": timeouts,
        "seconds": round(elapsed, 1),
        # where they went: starting the senders, the first half until the kill, starting
        # them again, and the second half until every event was final
        "phases": "/".join(
            f"{b - a:.1f}"
            for a, b in itertools.pairwise(
                [started, marks["up"], marks["killed"], marks["restarted"], marks["final"]]
            )
        ),
    }
    for key, value in counts.items():
        record_property(key, value)
    print("\nreliability: " + " ".join(f"{k}={v}" for k, v in counts.items()))

    def shown(kind: str) -> str:
        found = problems.get(kind, [])
        return f"{len(found)} problem(s):\n  " + "\n  ".join(found[:15])

    assert not problems.get("lost"), f"lost events: {shown('lost')}"
    assert not problems.get("policy"), f"not ended as the policy says: {shown('policy')}"
    assert not problems.get("signature"), f"bad signatures: {shown('signature')}"
    assert not problems.get("identity"), f"identity changes: {shown('identity')}"
    assert not problems.get("duplicate"), f"duplicates not byte-identical: {shown('duplicate')}"
    assert not late, f"{len(late)} requests after every event was final: {late[:5]}"
    assert receiver.captures("/landing") == [], "a redirect was followed"
    assert not receiver.malformed, receiver.malformed[:5]
    assert states["delivered"] + states["failed"] == len(events)
    # The campaign did what it is for: faults of every kind, in flight at the kill.
    assert steps["reset"] > 0
    assert steps["slow"] > 0
    assert timeouts > 0
    assert interrupted > 0, "no attempt was in flight at the kill"
    assert duplicate_deliveries > 0, "no event taken before the kill was delivered again"
    for name, text in logs.items():
        assert "Traceback" not in text, f"the {name} sender logged an error:\n{text[-3000:]}"
    assert elapsed < BUDGET_SECONDS + 5
