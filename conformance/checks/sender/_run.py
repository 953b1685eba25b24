"""One run of the sender suite: the scenarios it triggers, concurrently, and what the
capture server saw of each.

A *scenario* is one trigger (``POST <target-url>``: a capture URL of its own, a fresh
secret, an event type and its data) and a script telling the capture how to answer each
attempt (``200``; ``500`` every time; ``400``; a redirect; an answer held past the
timeout...). All scenarios start together when the run starts, so a profile's suite lasts
about as long as its longest scenario; a check asks for the scenario it judges and waits
for it to finish. A scenario is finished when the attempts the profile's policy expects
have arrived and then nothing more came for longer than the largest scaled retry delay
(or, if fewer arrive, when their deadline has passed).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from conformance._engine.config import SuiteConfig
from conformance._engine.exhibits import Arrival, Exhibit, Reproduction, Timeline, Verdict
from conformance._engine.failures import CheckFailure
from conformance._http import Delivery, Exchange, excerpt, printable, render_curl, send
from conformance._profile import DeliveryPolicy, Profile, resolve_pointer
from conformance._signing import generate_secret
from conformance.checks._capture import Attempt, Capture, Reply, capturing
from conformance.checks._payloads import fresh_example

__all__ = [
    "ABSOLUTE",
    "HIGH",
    "LOW",
    "SCENARIOS",
    "Captured",
    "Scenario",
    "ScenarioSpec",
    "SenderRun",
    "expected_due",
    "judge_delay",
]

#: Slack on every wait: loopback, the sender's own scheduling and a busy machine.
_SLACK = 3.0
#: A delay is on schedule when observed / expected lies within these bounds...
LOW, HIGH = 0.8, 1.6
#: ... or, for short delays, when it is off by no more than this many seconds (loopback and
#: a busy 2-core machine make a sender's timer fire up to a few hundred ms late).
ABSOLUTE = 0.25
#: Extra seconds an answer is held beyond the profile's timeout.
_HOLD_MARGIN = 2.0


@dataclass(frozen=True, kw_only=True)
class ScenarioSpec:
    """How the capture answers a scenario's attempts, and how many attempts the profile's
    policy expects before the delivery ends."""

    name: str
    what: str
    script: Callable[[Profile, str], tuple[Reply, ...]]
    expected: Callable[[DeliveryPolicy], int]
    applies: Callable[[Profile], bool] = lambda profile: True
    #: A second event is triggered to the same URL once the first delivery has ended.
    follow_up: bool = False


def _retried(policy: DeliveryPolicy, status: int) -> int:
    return policy.max_attempts if policy.retries_status(status) else 1


def _timeout_hold(profile: Profile) -> float:
    return profile.delivery.timeout_seconds + _HOLD_MARGIN


SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        name="delivered",
        what="the capture answers 200",
        script=lambda profile, url: (Reply(status=200),),
        expected=lambda policy: 1,
    ),
    ScenarioSpec(
        name="exhausted",
        what="the capture answers 500 to every attempt",
        script=lambda profile, url: (Reply(status=500),),
        expected=lambda policy: _retried(policy, 500),
    ),
    ScenarioSpec(
        name="client-error",
        what="the capture answers 400 to every attempt",
        script=lambda profile, url: (Reply(status=400),),
        expected=lambda policy: _retried(policy, 400),
    ),
    ScenarioSpec(
        name="redirect",
        what="the capture answers 307 with a Location, then 200",
        script=lambda profile, url: (
            Reply(status=307, headers=(("Location", url.rsplit("/", 1)[0] + "/moved"),)),
            Reply(status=200),
        ),
        expected=lambda policy: min(2, _retried(policy, 307)),
    ),
    ScenarioSpec(
        name="timeout",
        what="the capture holds its first answer past the profile's timeout, then answers 200",
        script=lambda profile, url: (Reply(status=200, hold=_timeout_hold(profile)), Reply()),
        expected=lambda policy: 2 if policy.retry_on_timeout and policy.max_attempts > 1 else 1,
    ),
    ScenarioSpec(
        name="gone",
        what="the capture answers 410, then a second event is triggered to the same URL",
        script=lambda profile, url: (Reply(status=410),),
        expected=lambda policy: 1,
        applies=lambda profile: 410 in profile.delivery.disable_on_status,
        follow_up=True,
    ),
    ScenarioSpec(
        name="retry-after",
        what="the capture answers 429 with Retry-After: 1, then 200",
        script=lambda profile, url: (
            Reply(status=429, headers=(("Retry-After", "1"),)),
            Reply(status=200),
        ),
        expected=lambda policy: min(2, policy.max_attempts),
        applies=lambda profile: profile.delivery.honours_retry_after,
    ),
)
_BY_NAME = {spec.name: spec for spec in SCENARIOS}


def expected_due(
    policy: DeliveryPolicy, attempts: list[Attempt], number: int, scale: float
) -> float:
    """When (monotonic) attempt ``number + 1`` is due by the schedule, given the first
    ``number`` attempts as captured."""
    return policy.due(
        number,
        first_started=attempts[0].arrived,
        previous_ended=attempts[number - 1].ended,
        scale=scale,
    )


def judge_delay(observed: float, expected: float) -> Verdict:
    """Whether a delay observed between two attempts keeps to the one expected, within the
    tolerance (``LOW``-``HIGH`` times it, or ``ABSOLUTE`` seconds)."""
    if abs(observed - expected) <= ABSOLUTE:
        return "on-time"
    if expected > 0 and LOW <= observed / expected <= HIGH:
        return "on-time"
    return "early" if observed < expected else "late"


def largest_delay(policy: DeliveryPolicy, scale: float) -> float:
    """The longest scaled wait between two attempts."""
    steps = list(policy.schedule_seconds)
    if policy.schedule_from == "first-attempt":
        steps = [b - a for a, b in zip([0.0, *steps], steps, strict=False)]
    return max(steps, default=0.0) * scale


@dataclass(kw_only=True)
class Scenario:
    """One triggered event and everything captured of it."""

    spec: ScenarioSpec
    policy: DeliveryPolicy = field(repr=False)
    token: str
    webhook_url: str
    secret: str = field(repr=False)
    event_type: str
    data: Any
    #: The time scale the trigger asked for.
    scale: float
    trigger: Exchange | None = None
    event_id: str | None = None
    started: float = 0.0
    finished: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    #: Requests at the redirect's Location (a sender that follows redirects).
    elsewhere: list[Attempt] = field(default_factory=list)
    follow_up: Exchange | None = None
    problem: str | None = None

    def timeline(self) -> Timeline:
        """The attempts against the scaled schedule: when each arrived, when it was due,
        how it was answered; the attempts expected that never came; any beyond them."""
        policy, origin = self.policy, self.started
        expected = self.spec.expected(policy)
        arrivals = []
        for index, attempt in enumerate(self.attempts):
            due = self._due(index)
            verdict: Verdict = "on-time"
            if attempt.number > expected:
                verdict = "extra"
            elif due is not None and index > 0:
                previous = self.attempts[index - 1].ended - origin
                verdict = judge_delay(attempt.arrived - origin - previous, due - previous)
            arrivals.append(_arrival(attempt, origin, due, verdict))
        arrivals += [_arrival(a, origin, None, "elsewhere") for a in self.elsewhere]
        missing = []
        first = self.attempts[0].arrived if self.attempts else origin
        ended = self.attempts[-1].ended if self.attempts else origin
        for number in range(len(self.attempts) + 1, expected + 1):
            # Where nothing came, count on from the last attempt as if each answered at once.
            if number > 1:
                ended = policy.due(
                    number - 1, first_started=first, previous_ended=ended, scale=self.scale
                )
            missing.append(ended - origin)
        return Timeline(
            scenario=self.spec.name,
            what=self.spec.what,
            scale=self.scale,
            expected=expected,
            arrivals=tuple(arrivals),
            missing=tuple(missing),
            watched=max(self.finished - origin, 0.0),
            problem=self.problem,
        )

    def _due(self, index: int) -> float | None:
        """When attempt ``index + 1`` was due, from the trigger: at once for the first; by
        the schedule (and a Retry-After the policy honours) for the rest."""
        if index == 0:
            return 0.0
        if index >= self.policy.max_attempts:
            return None
        due = expected_due(self.policy, self.attempts, index, self.scale)
        previous = self.attempts[index - 1]
        after = dict(previous.reply.headers).get("Retry-After")
        if self.policy.honours_retry_after and after is not None and after.isdigit():
            due = max(due, previous.ended + int(after))
        return due - self.started

    def fail(self, headline: str, *, expected: str, detail: str = "") -> CheckFailure:
        """A failure whose evidence is this scenario's trigger and capture."""
        return CheckFailure(
            headline, expected=expected, evidence=Captured(scenario=self), detail=detail
        )


@dataclass(frozen=True, kw_only=True)
class Captured:
    """The evidence a sender check shows: the trigger sent and its answer, how the capture
    answered, each captured attempt with its arrival time, headers and body, and the
    scenario's timeline."""

    scenario: Scenario

    def exhibit(self, *, replay_hint: str = "") -> Exhibit:
        s = self.scenario
        lines = [f"Scenario {s.spec.name}: {s.spec.what} (time scale {s.scale:g})"]
        if s.trigger is not None:
            answer = s.trigger.describe()
            if s.trigger.body:
                answer += f" {excerpt(s.trigger.body, 200)}"
            lines.append(f"Triggered: POST {s.trigger.request.url} -> {answer}")
        lines.append(f"Captured at {s.webhook_url}: {len(s.attempts)} attempt(s)")
        for attempt in [*s.attempts, *s.elsewhere]:
            lines += _attempt_lines(attempt, s.started)
        reproduction = None
        if s.trigger is not None:
            reproduction = Reproduction(
                command=render_curl(s.trigger.request),
                title="Reproduce (the trigger; point webhook_url at a capture of your own)",
                hint=replay_hint,
            )
        return Exhibit(lines=tuple(lines), reproduction=reproduction, timeline=s.timeline())


def _arrival(attempt: Attempt, origin: float, due: float | None, verdict: Verdict) -> Arrival:
    if attempt.abandoned is not None:
        answer = f"abandoned after {attempt.abandoned - attempt.arrived:.2f} s"
    else:
        answer = str(attempt.reply.status)
    return Arrival(
        number=attempt.number,
        at=attempt.arrived - origin,
        ended=attempt.ended - origin,
        answer=answer if attempt.path == "/hook" else f"{answer} at {attempt.path}",
        status=None if attempt.abandoned is not None else attempt.reply.status,
        due=due,
        verdict=verdict,
    )


def _attempt_lines(attempt: Attempt, started: float) -> list[str]:
    when = datetime.fromtimestamp(attempt.arrived_at, UTC).strftime("%H:%M:%S.%f")[:-3]
    if attempt.abandoned is not None:
        answer = f"abandoned by the sender after {attempt.abandoned - attempt.arrived:.2f} s"
    else:
        answer = f"answered {attempt.reply.describe()}"
    lines = [
        f"  #{attempt.number} at +{attempt.arrived - started:.3f} s ({when}Z): "
        f"{attempt.method} {attempt.path}, {answer}"
    ]
    lines += [f"      {printable(k)}: {printable(v)}" for k, v in attempt.headers]
    lines.append(f"      body ({len(attempt.body)} bytes): {excerpt(attempt.body)}")
    return lines


class SenderRun:
    """The sender suite's context: the capture server, the triggers, the scenarios."""

    def __init__(
        self,
        *,
        profile: Profile,
        target_url: str,
        time_scale: float,
        base_url: str,
        capture: Capture,
        client: httpx.Client,
    ) -> None:
        self.profile = profile
        self.target_url = target_url
        self.scale = time_scale
        self.base_url = base_url.rstrip("/")
        self.capture = capture
        self._client = client
        self._pool = ThreadPoolExecutor(max_workers=len(SCENARIOS), thread_name_prefix="scenario")
        self._futures: dict[str, Future[Scenario]] = {}
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def serving(cls, suite: SuiteConfig) -> Iterator[SenderRun]:
        """Start the capture server and yield a run; stops both on exit."""
        options = suite.sender
        with capturing(options.capture_host, options.timeout) as (capture, url, client):
            run = cls(
                profile=suite.profile,
                target_url=suite.target_url,
                time_scale=options.time_scale,
                base_url=options.public_url or url,
                capture=capture,
                client=client,
            )
            try:
                yield run
            finally:
                run.close()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def policy(self) -> DeliveryPolicy:
        return self.profile.delivery

    def applicable(self) -> list[ScenarioSpec]:
        return [spec for spec in SCENARIOS if spec.applies(self.profile)]

    def start(self, names: Collection[str] | None = None) -> None:
        """Trigger every scenario that applies to the profile (only those in ``names``, if
        given), all at once."""
        for index, spec in enumerate(self.applicable()):
            if names is None or spec.name in names:
                self._start(spec, index)

    def _start(self, spec: ScenarioSpec, index: int) -> Future[Scenario]:
        with self._lock:
            if spec.name not in self._futures:
                self._futures[spec.name] = self._pool.submit(self._play, spec, index)
            return self._futures[spec.name]

    def played(self) -> list[Scenario]:
        """The scenarios that have finished, in the order they are defined."""
        with self._lock:
            futures = dict(self._futures)
        done = {n: f.result() for n, f in futures.items() if f.done() and not f.exception()}
        return [done[spec.name] for spec in SCENARIOS if spec.name in done]

    def scenario(self, name: str) -> Scenario:
        """The finished scenario (started now if it was not yet)."""
        spec = _BY_NAME[name]
        return self._start(spec, len(self._futures)).result()

    # -- playing one scenario -----------------------------------------------------------

    def _event(self, index: int) -> tuple[str, Any]:
        """An event type and non-empty data for it, drawn from the event's schema."""
        names = self.profile.event_names
        for offset in range(len(names)):
            event = names[(index + offset) % len(names)]
            for example in range(3):
                payload = fresh_example(self.profile, event, example)
                data = resolve_pointer(payload, self.profile.envelope.data)
                if data not in ({}, [], None, ""):
                    return event, data
        raise RuntimeError(f"no event of {self.profile.name} has non-empty example data")

    def trigger(self, scenario: Scenario) -> Exchange:
        body = {
            "webhook_url": scenario.webhook_url,
            "secret": scenario.secret,
            "event_type": scenario.event_type,
            "data": scenario.data,
            "time_scale": self.scale,
        }
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        delivery = Delivery.of(
            self.target_url, {"Content-Type": "application/json"}, raw, note=scenario.spec.name
        )
        return send(self._client, delivery, timeout=self._client.timeout.read or 10.0)

    def _play(self, spec: ScenarioSpec, index: int) -> Scenario:
        token = secrets.token_hex(8)
        url = f"{self.base_url}/{token}/hook"
        event, data = self._event(index)
        scenario = Scenario(
            spec=spec,
            policy=self.policy,
            token=token,
            webhook_url=url,
            secret=generate_secret(self.profile.signature),
            event_type=event,
            data=data,
            scale=self.scale,
        )
        self.capture.expect(token, spec.script(self.profile, url))
        scenario.started = time.monotonic()
        scenario.trigger = self.trigger(scenario)
        scenario.problem = _trigger_problem(scenario.trigger)
        if scenario.problem is None:
            scenario.event_id = json.loads(scenario.trigger.body)["event_id"]
            self._observe(scenario, spec.expected(self.policy))
        scenario.finished = time.monotonic()
        return scenario

    def _deadline(self, scenario: Scenario, count: int) -> float:
        """How long the first ``count`` attempts may take at most, with slack: the whole
        scaled schedule up to them, twice over, and the answers the script holds."""
        steps = list(self.policy.schedule_seconds[:count])
        total = (
            max(steps, default=0.0) if self.policy.schedule_from == "first-attempt" else sum(steps)
        )
        script = scenario.spec.script(self.profile, scenario.webhook_url)
        held = sum(script[min(n, len(script) - 1)].hold for n in range(count))
        return scenario.started + 2 * total * self.scale + held + _SLACK

    def _observe(self, scenario: Scenario, expected: int) -> None:
        capture, token = self.capture, scenario.token
        got = capture.wait(token, expected, self._deadline(scenario, expected))
        quiet = largest_delay(self.policy, self.scale) * 1.25 + 0.3
        self._quiet(scenario, len(got), expected, quiet)
        if scenario.spec.follow_up and got:
            # Only once the first delivery has ended, as far as can be seen from here: a
            # sender that reads the answer later than it arrives must not be caught racing.
            scenario.follow_up = self.trigger(scenario)
            self._quiet(scenario, len(capture.attempts(token)), expected, max(quiet, 1.0))
        everything = capture.attempts(token)
        scenario.attempts = [a for a in everything if a.path == "/hook"]
        scenario.elsewhere = [a for a in everything if a.path != "/hook"]

    def _quiet(self, scenario: Scenario, seen: int, expected: int, quiet: float) -> None:
        """Watch for further attempts until none came for ``quiet`` seconds (a few extra
        attempts extend the watch, to count them; a flood does not)."""
        capture, token = self.capture, scenario.token
        until = time.monotonic() + quiet
        while time.monotonic() < until:
            time.sleep(0.02)
            now = len(capture.attempts(token))
            if now != seen:
                seen = now
                if seen <= expected + 3:
                    until = time.monotonic() + quiet
        capture.wait(token, seen, time.monotonic() + _timeout_hold(self.profile))


def _trigger_problem(exchange: Exchange) -> str | None:
    """Why the trigger's answer does not start a delivery, or ``None``."""
    if exchange.status is None:
        return f"the trigger got no answer: {exchange.describe()}"
    if exchange.status // 100 != 2:
        return f"the trigger was refused: {exchange.describe()} {excerpt(exchange.body, 200)}"
    try:
        answer = json.loads(exchange.body)
    except ValueError:
        return f"the trigger's answer is not JSON: {excerpt(exchange.body, 200)}"
    if not isinstance(answer, dict) or not isinstance(answer.get("event_id"), str):
        return f"the trigger's answer has no string event_id: {excerpt(exchange.body, 200)}"
    return None
