"""What the delivery policy makes of each answer: which outcomes are retried, how often,
when, with what identity, and what ends a delivery.

Delays are judged as the schedule scaled by the run's time scale (the trigger's
``time_scale``), counted as the profile says (from the end of the previous attempt, or
from the first one), with a tolerance: a ratio for delays long enough to measure, an
absolute margin below that.
"""

from __future__ import annotations

import json

from conformance._engine.failures import NotApplicable
from conformance.checks._capture import Attempt
from conformance.checks.sender._checks import register
from conformance.checks.sender._run import (
    ABSOLUTE,
    HIGH,
    LOW,
    Scenario,
    SenderRun,
    expected_due,
    judge_delay,
)

#: An attempt abandoned this much before the profile's timeout gave the receiver too little.
EARLY = 0.5


def _played(run: SenderRun, name: str) -> Scenario:
    """The finished scenario; a trigger that failed or delivered nothing is a failure."""
    scenario = run.scenario(name)
    problem = scenario.problem or (None if scenario.attempts else "nothing was delivered")
    if problem is not None:
        raise scenario.fail(f"{name}: {problem}", expected="the triggered event, delivered")
    return scenario


def _count(n: int) -> str:
    return f"{n} attempt{'' if n == 1 else 's'}"


@register(
    "sender.retries-per-policy",
    scenarios=("exhausted", "client-error", "redirect", "delivered"),
    cases=("5xx", "4xx", "3xx", "2xx"),
    also={"sender.no-retry-on-4xx": ("4xx",), "sender.no-automatic-redelivery": None},
)
def retries_per_policy(run: SenderRun, case: str | None) -> None:
    """A retried outcome is retried until the attempts run out (3xx: the redirect scenario
    answers 200 to the retry); an outcome the policy does not retry (a 2xx always; a 4xx or
    3xx where the profile says so) ends the delivery."""
    policy = run.policy
    name, status = {
        "5xx": ("exhausted", 500),
        "4xx": ("client-error", 400),
        "3xx": ("redirect", 307),
        "2xx": ("delivered", 200),
    }[case or "5xx"]
    scenario = _played(run, name)
    got = len(scenario.attempts)
    if status == 307 and scenario.elsewhere:
        return  # it followed the redirect instead: sender.no-redirects reports that
    if status == 200 or not policy.retries_status(status):
        if got > 1:
            why = "a 2xx ends the delivery" if status == 200 else f"a {case} is not retried"
            raise scenario.fail(
                f"the capture answered {status} and the sender made {_count(got)}",
                expected=f"exactly 1 attempt: {why} under {run.profile.name}'s policy",
            )
        return
    wanted = 2 if status == 307 else policy.max_attempts
    if got < wanted:
        answered = "first attempt" if status == 307 else "every attempt"
        raise scenario.fail(
            f"the capture answered {status} to the {answered} and the sender made {_count(got)}",
            expected=f"{wanted} attempts: {case} is retried under {run.profile.name}'s policy"
            + ("" if status == 307 else f", until its {policy.max_attempts} attempts are made"),
        )


@register("sender.max-attempts", scenarios=("exhausted", "client-error"))
def max_attempts(run: SenderRun, case: str | None) -> None:
    """No attempt comes after the last one the policy allows (watched for longer than the
    largest scaled delay)."""
    policy = run.policy
    for name in ("exhausted", "client-error"):
        scenario = _played(run, name)
        got = len(scenario.attempts)
        if got > policy.max_attempts:
            raise scenario.fail(
                f"the sender made {_count(got)}",
                expected=f"at most {policy.max_attempts} attempts, then the delivery is "
                f"marked failed ({policy.after_last_attempt})",
            )


def _gap_problem(policy_due: float, attempt: Attempt, previous: Attempt) -> str | None:
    observed = attempt.arrived - previous.ended
    expected = policy_due - previous.ended
    if judge_delay(observed, expected) == "on-time":
        return None
    return (
        f"attempt #{attempt.number} came {observed:.3f} s after #{previous.number} ended; "
        f"the schedule says {expected:.3f} s"
    )


@register("sender.retry-schedule", scenarios=("exhausted",))
def retry_schedule(run: SenderRun, case: str | None) -> None:
    """Each retry comes when the scaled schedule says, within the tolerance."""
    policy = run.policy
    if policy.max_attempts < 2 or not policy.retries_status(500):
        raise NotApplicable(f"{run.profile.name}'s policy makes no retries")
    scenario = _played(run, "exhausted")
    attempts = scenario.attempts
    for number in range(1, min(len(attempts), policy.max_attempts)):
        due = expected_due(policy, attempts, number, run.scale)
        problem = _gap_problem(due, attempts[number], attempts[number - 1])
        if problem is not None:
            raise scenario.fail(
                problem,
                expected=f"delays of {list(policy.schedule_seconds)} s x {run.scale:g}, counted "
                f"from the {policy.schedule_from.replace('-', ' ')}, within x{LOW}-x{HIGH} "
                f"or {ABSOLUTE} s",
            )


@register("sender.stable-body-across-retries", scenarios=("exhausted",))
def stable_body(run: SenderRun, case: str | None) -> None:
    """Every attempt of one delivery carries byte-identical bodies."""
    scenario = _played(run, "exhausted")
    first = scenario.attempts[0]
    for attempt in scenario.attempts[1:]:
        if attempt.body != first.body:
            raise scenario.fail(
                f"attempt #{attempt.number}'s body differs from #1's",
                expected="the same bytes on every attempt",
                detail=f"  #1: {first.body[:200]!r}\n  #{attempt.number}: {attempt.body[:200]!r}",
            )


def _keys(run: SenderRun, scenario: Scenario) -> list[str | None]:
    """The idempotency key of each attempt (a body field, or a header)."""
    keys = []
    for attempt in scenario.attempts:
        headers = {k.lower(): v for k, v in attempt.headers}
        try:
            payload = json.loads(attempt.body)
        except ValueError:
            payload = None
        keys.append(run.profile.idempotency_value(attempt.body, payload, headers))
    return keys


@register(
    "sender.stable-event-id",
    scenarios=("exhausted", "delivered", "client-error"),
    cases=("retries", "distinct"),
    also={
        "sender.stable-webhook-id": None,
        "sender.one-terminal-event": ("retries",),
        "sender.delivery-guid": ("distinct",),
    },
)
def stable_event_id(run: SenderRun, case: str | None) -> None:
    """The key receivers deduplicate on is the same on every attempt of one event
    (``retries``) and differs between events (``distinct``)."""
    profile = run.profile
    if profile.idempotency_key == "body-digest" and profile.idempotency_header is None:
        raise NotApplicable(
            f"{profile.name} identifies an event by its body's digest "
            "(sender.stable-body-across-retries)"
        )
    where = profile.idempotency_header or profile.idempotency_key
    if case == "distinct":
        seen: dict[str | None, Scenario] = {}
        for name in ("delivered", "exhausted", "client-error"):
            scenario = _played(run, name)
            key = _keys(run, scenario)[0]
            if key in seen:
                raise scenario.fail(
                    f"the events of scenarios {seen[key].spec.name} and {name} both carry "
                    f"{where} {key!r}",
                    expected=f"a {where} of its own for every event",
                )
            seen[key] = scenario
        return
    scenario = _played(run, "exhausted")
    keys = _keys(run, scenario)
    if len(set(keys)) > 1:
        raise scenario.fail(
            f"the attempts carry {len(set(keys))} different keys at {where}: "
            + ", ".join(map(repr, keys)),
            expected=f"one {where} on every attempt",
        )


@register("sender.no-redirects", scenarios=("redirect",))
def no_redirects(run: SenderRun, case: str | None) -> None:
    """After a 3xx, nothing is requested at its Location."""
    scenario = _played(run, "redirect")
    if scenario.elsewhere:
        moved = scenario.elsewhere[0]
        raise scenario.fail(
            f"the sender requested the redirect's Location ({moved.method} {moved.path})",
            expected="a 3xx is a failed attempt; its Location is not followed",
        )


@register("sender.attempt-timeout", scenarios=("timeout",), slow=True)
def attempt_timeout(run: SenderRun, case: str | None) -> None:
    """An answer held past the profile's timeout is abandoned at that timeout (not before:
    the receiver has that long), and counted as failed: the next attempt follows where the
    policy retries timeouts, and none does where it does not."""
    policy = run.policy
    scenario = _played(run, "timeout")
    first = scenario.attempts[0]
    limit = policy.timeout_seconds
    if first.abandoned is None:
        raise scenario.fail(
            f"the sender waited {first.reply.hold:g} s for the held answer",
            expected=f"the attempt abandoned after the profile's {limit:g} s timeout",
        )
    waited = first.abandoned - first.arrived
    if waited < limit - EARLY:
        raise scenario.fail(
            f"the sender abandoned the attempt after {waited:.2f} s",
            expected=f"the receiver given the profile's {limit:g} s to answer",
        )
    retried = len(scenario.attempts) > 1
    if policy.retry_on_timeout and policy.max_attempts > 1 and not retried:
        raise scenario.fail(
            "no attempt followed the one that timed out",
            expected="a timed-out attempt counts as failed, and the next one follows",
        )
    if not policy.retry_on_timeout and retried:
        raise scenario.fail(
            f"the sender made {_count(len(scenario.attempts))} after the timeout",
            expected=f"no retry: {run.profile.name}'s policy does not retry a timeout",
        )


@register("sender.disables-on-410", scenarios=("gone",))
def disables_on_410(run: SenderRun, case: str | None) -> None:
    """A 410 ends the delivery and disables the endpoint: a later event is not sent."""
    scenario = _played(run, "gone")
    if len(scenario.attempts) > 1:
        raise scenario.fail(
            f"after a 410 the capture URL received {_count(len(scenario.attempts))}",
            expected="no further attempt or event after a 410 (the second event triggered "
            "to the same URL is not delivered)",
        )


@register("sender.honours-retry-after", scenarios=("retry-after",))
def honours_retry_after(run: SenderRun, case: str | None) -> None:
    """After an answer with Retry-After, the next attempt waits at least that long."""
    scenario = _played(run, "retry-after")
    attempts = scenario.attempts
    if len(attempts) < 2:
        raise scenario.fail("no attempt followed the 429", expected="a retry after Retry-After")
    waited = attempts[1].arrived - attempts[0].ended
    header = dict(attempts[0].reply.headers).get("Retry-After", "0")
    if waited < float(header) - 0.05:
        raise scenario.fail(
            f"attempt #2 came {waited:.3f} s after the answer with Retry-After: {header}",
            expected=f"attempt #2 at least {header} s after the 429",
        )
