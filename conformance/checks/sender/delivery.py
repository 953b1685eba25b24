"""What every attempt carries: headers, signature, timestamp and payload.

These checks judge every attempt of two scenarios, the event answered 200 at once
(``delivered``) and the one answered 500 until the policy gives up (``exhausted``), so a
retry that is built differently from the first attempt is caught too.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from typing import Any

from conformance._engine.failures import NotApplicable
from conformance._errors import ConformanceError, VerificationError
from conformance._profile import Profile, resolve_pointer
from conformance._schemas import iter_payload_errors
from conformance._signing import (
    format_timestamp,
    parse_timestamp,
    render_items,
    sign,
    split_header,
    verify,
)
from conformance.checks._capture import Attempt
from conformance.checks.sender._checks import register
from conformance.checks.sender._run import Scenario, SenderRun

_JUDGED = ("delivered", "exhausted")
#: Two attempts' timestamps may differ from their arrivals' distance by this much: whole
#: seconds on both ends.
STAMP_RESOLUTION = 1.5


def _attempts(run: SenderRun) -> Iterator[tuple[Scenario, Attempt]]:
    """Every attempt of the judged scenarios; a scenario that delivered nothing fails."""
    for name in _JUDGED:
        scenario = run.scenario(name)
        problem = scenario.problem or (None if scenario.attempts else "nothing was delivered")
        if problem is not None:
            raise scenario.fail(f"{name}: {problem}", expected="the triggered event, delivered")
        for attempt in scenario.attempts:
            yield scenario, attempt


def _headers(attempt: Attempt) -> dict[str, str]:
    return {k.lower(): v for k, v in attempt.headers}


def _payload(scenario: Scenario, attempt: Attempt, run: SenderRun) -> Any:
    try:
        return json.loads(attempt.body)
    except ValueError as exc:
        raise scenario.fail(
            f"attempt #{attempt.number}: the body is not JSON ({exc})",
            expected=f"a {run.profile.envelope.content_type} body",
        ) from None


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _header_cases(profile: Profile) -> list[str]:
    return [header.name.lower() for header in profile.headers]


_GITHUB_HOOK = ("x-github-hook-id", "x-github-hook-installation-target-type",
                "x-github-hook-installation-target-id")  # fmt: skip
_STANDARD_IDS = ("webhook-id", "webhook-timestamp")


@register(
    "sender.required-headers",
    scenarios=("delivered", "exhausted"),
    cases=_header_cases,
    also={
        "sender.headers-present": (*_STANDARD_IDS, "webhook-signature"),
        "sender.no-full-stop-in-id-or-timestamp": _STANDARD_IDS,
        "sender.user-agent": ("user-agent",),
        "sender.hook-headers": _GITHUB_HOOK,
    },
)
def required_headers(run: SenderRun, case: str | None) -> None:
    """One case per declared header: present on every attempt where it is required, and
    matching its declared pattern (Content-Type: the profile's media type)."""
    profile = run.profile
    header = next(h for h in profile.headers if h.name.lower() == case)
    for scenario, attempt in _attempts(run):
        value = _headers(attempt).get(header.name.lower())
        if value is None:
            if header.required:
                raise scenario.fail(
                    f"attempt #{attempt.number} has no {header.name} header",
                    expected=f"every attempt carries {header.name}",
                )
            continue
        if header.name.lower() == "content-type":
            if _media_type(value) != profile.envelope.content_type:
                raise scenario.fail(
                    f"attempt #{attempt.number}: Content-Type is {value!r}",
                    expected=f"Content-Type: {profile.envelope.content_type}",
                )
        elif header.pattern is not None and not re.search(header.pattern, value):
            raise scenario.fail(
                f"attempt #{attempt.number}: {header.name} {value!r} does not "
                f"match {header.pattern}",
                expected=f"{header.name} matching {header.pattern}",
            )


@register(
    "sender.event-header-matches-body",
    scenarios=("delivered", "exhausted"),
    also=("sender.event-header",),
)
def event_header(run: SenderRun, case: str | None) -> None:
    """The event type header names the triggered event, and every header that mirrors a
    body field equals it."""
    profile = run.profile
    mirrored = [h for h in profile.headers if h.equals is not None]
    if profile.envelope.event_type_header is None and not mirrored:
        raise NotApplicable(f"{profile.name} carries no header that names the event")
    for scenario, attempt in _attempts(run):
        got = _headers(attempt)
        named = profile.envelope.event_type_header
        if named is not None and got.get(named.lower()) != scenario.event_type:
            raise scenario.fail(
                f"attempt #{attempt.number}: {named} is {got.get(named.lower())!r}, "
                f"the event triggered is {scenario.event_type!r}",
                expected=f"{named}: {scenario.event_type}",
            )
        payload = _payload(scenario, attempt, run)
        for header in mirrored:
            assert header.equals is not None
            try:
                wanted = resolve_pointer(payload, header.equals)
            except KeyError:
                continue  # the payload check reports a missing field
            if got.get(header.name.lower()) != str(wanted):
                raise scenario.fail(
                    f"attempt #{attempt.number}: {header.name} is "
                    f"{got.get(header.name.lower())!r}, the body's {header.equals} is {wanted!r}",
                    expected=f"{header.name} equal to the body's {header.equals}",
                )


# -- signatures ---------------------------------------------------------------------------


def _sent_timestamp(profile: Profile, headers: dict[str, str]) -> str | None:
    spec = profile.signature.timestamp
    if spec is None:
        return None
    if spec.header is not None:
        return headers.get(spec.header.lower())
    value = headers.get(profile.signature.header.lower())
    return None if value is None else split_header(profile.signature, value)[0]


def _with_timestamp(profile: Profile, headers: dict[str, str], text: str) -> dict[str, str]:
    sig = profile.signature
    spec = sig.timestamp
    assert spec is not None
    out = dict(headers)
    if spec.header is not None:
        out[spec.header.lower()] = text
    else:
        items = split_header(sig, headers[sig.header.lower()])[1]
        out[sig.header.lower()] = render_items(sig, items, text)
    return out


def _verifies(run: SenderRun, secret: str, attempt: Attempt, headers: dict[str, str]) -> bool:
    try:
        verify(run.profile, secret, attempt.body, headers, tolerance=math.inf)
    except (VerificationError, ConformanceError):
        return False
    return True


def signed_timestamp(run: SenderRun, scenario: Scenario, attempt: Attempt) -> str | None:
    """The timestamp the attempt's signature was made with, if the body was signed at all:
    the one sent, else one within the profile's tolerance of it or of the arrival."""
    profile = run.profile
    headers = _headers(attempt)
    spec = profile.signature.timestamp
    sent = _sent_timestamp(profile, headers)
    if spec is None or sent is None:
        return "" if _verifies(run, scenario.secret, attempt, headers) else None
    if _verifies(run, scenario.secret, attempt, headers):
        return sent
    anchors = [attempt.arrived_at]
    with contextlib.suppress(ConformanceError):
        anchors.append(parse_timestamp(spec, sent).timestamp())
    for anchor in anchors:
        for offset in range(-spec.tolerance_seconds, spec.tolerance_seconds + 1):
            text = format_timestamp(spec, int(anchor) + offset)
            if _verifies(run, scenario.secret, attempt, _with_timestamp(profile, headers, text)):
                return text
    return None


@register(
    "sender.signs-raw-body", scenarios=("delivered", "exhausted"), also=("sender.sha256-signature",)
)
def signs_raw_body(run: SenderRun, case: str | None) -> None:
    """The signature, made with the trigger's secret, covers exactly the bytes received
    (for timestamped schemes: with the timestamp sent, or one near it, which
    ``sender.signs-timestamp-and-body`` judges)."""
    sig = run.profile.signature
    for scenario, attempt in _attempts(run):
        if signed_timestamp(run, scenario, attempt) is None:
            headers = _headers(attempt)
            wanted = sign(
                run.profile,
                scenario.secret,
                attempt.body,
                timestamp=_sent_timestamp(run.profile, headers),
                msg_id=headers.get(sig.id_header.lower()) if sig.id_header else None,
            )
            raise scenario.fail(
                f"attempt #{attempt.number}: the signature does not verify over "
                "the body received, with the trigger's secret",
                expected=f"{sig.header} signed over the exact bytes sent",
                detail=f"The bytes received, signed with the trigger's secret: {sig.header}: "
                f"{wanted.get(sig.header)}",
            )


@register(
    "sender.signs-timestamp-and-body",
    scenarios=("delivered", "exhausted"),
    also=("sender.signs-id-timestamp-body",),
)
def signs_sent_timestamp(run: SenderRun, case: str | None) -> None:
    """The timestamp sent is the one signed."""
    spec = run.profile.signature.timestamp
    if spec is None:
        raise NotApplicable(f"{run.profile.name} signs no timestamp")
    for scenario, attempt in _attempts(run):
        sent = _sent_timestamp(run.profile, _headers(attempt))
        signed = signed_timestamp(run, scenario, attempt)
        if signed is not None and signed != sent:
            raise scenario.fail(
                f"attempt #{attempt.number}: the {spec.where} sent is {sent!r}, "
                f"but the signature was made with {signed!r}",
                expected=f"the signature made over the {spec.where} as sent",
            )


@register("sender.fresh-timestamp", scenarios=("delivered", "exhausted"))
def fresh_timestamp(run: SenderRun, case: str | None) -> None:
    """Each attempt's timestamp is within the profile's tolerance of its arrival, and the
    attempts' timestamps are as far apart as their arrivals (a retry signed with the first
    attempt's time fails, even while that is still within the tolerance)."""
    spec = run.profile.signature.timestamp
    assert spec is not None, "the requirement applies to timestamped profiles only"
    first: dict[str, tuple[float, Attempt]] = {}
    for scenario, attempt in _attempts(run):
        sent = _sent_timestamp(run.profile, _headers(attempt))
        if sent is None:
            continue  # required-headers reports it
        try:
            moment = parse_timestamp(spec, sent).timestamp()
        except ConformanceError as exc:
            raise scenario.fail(
                f"attempt #{attempt.number}: {exc}",
                expected=f"a {spec.format} timestamp",
            ) from None
        skew = moment - attempt.arrived_at
        if abs(skew) > spec.tolerance_seconds:
            raise scenario.fail(
                f"attempt #{attempt.number}: its {spec.where} is {skew:+.0f} s from its arrival",
                expected=f"within {spec.tolerance_seconds} s of the attempt",
            )
        then, one = first.setdefault(scenario.spec.name, (moment, attempt))
        drift = (moment - then) - (attempt.arrived_at - one.arrived_at)
        if abs(drift) > STAMP_RESOLUTION:
            raise scenario.fail(
                f"attempt #{attempt.number} came {attempt.arrived_at - one.arrived_at:.1f} s "
                f"after #{one.number}, but its {spec.where} is {moment - then:+.0f} s from #"
                f"{one.number}'s",
                expected=f"each attempt signed with its own time ({spec.where} of the attempt)",
            )


@register("sender.legacy-sha1-signature", scenarios=("delivered", "exhausted"))
def legacy_signature(run: SenderRun, case: str | None) -> None:
    """Where an attempt carries a legacy signature header, it is valid."""
    legacy = [s for s in run.profile.signature.legacy if s.header]
    if not legacy:
        raise NotApplicable(f"{run.profile.name} has no legacy signature")
    for scenario, attempt in _attempts(run):
        got = _headers(attempt)
        wanted = sign(run.profile, scenario.secret, attempt.body)
        for scheme in legacy:
            assert scheme.header is not None
            value = got.get(scheme.header.lower())
            if value is not None and value != wanted.get(scheme.header):
                raise scenario.fail(
                    f"attempt #{attempt.number}: {scheme.header} does not verify",
                    expected=f"{scheme.header} absent, or valid over the body",
                )


# -- payloads ---------------------------------------------------------------------------


@register("sender.payload-matches-schema", scenarios=("delivered", "exhausted"))
def payload_matches_schema(run: SenderRun, case: str | None) -> None:
    for scenario, attempt in _attempts(run):
        payload = _payload(scenario, attempt, run)
        event = scenario.event_type if run.profile.envelope.event_type_header else None
        try:
            errors = list(iter_payload_errors(run.profile, payload, event))
        except ConformanceError as exc:
            errors = [exc]  # type: ignore[list-item]
        if errors:
            raise scenario.fail(
                f"attempt #{attempt.number}: {errors[0]}",
                expected="a payload valid against the envelope and the event's data schema",
                detail="\n".join(f"  {e}" for e in errors[1:6]),
            )


@register("sender.delivers-triggered-data", scenarios=("delivered", "exhausted"))
def delivers_triggered_data(run: SenderRun, case: str | None) -> None:
    """The envelope carries exactly the data, and the event type, that were triggered."""
    env = run.profile.envelope
    for scenario, attempt in _attempts(run):
        payload = _payload(scenario, attempt, run)
        try:
            data = resolve_pointer(payload, env.data)
        except KeyError:
            data = _MISSING
        if data != scenario.data:
            raise scenario.fail(
                f"attempt #{attempt.number}: the data differs from the data triggered",
                expected=f"the body's {env.data or 'whole body'} equal to the triggered data",
                detail=_difference(scenario.data, data),
            )
        if env.event_type is not None:
            try:
                declared = resolve_pointer(payload, env.event_type)
            except KeyError:
                declared = None
            if declared != scenario.event_type:
                raise scenario.fail(
                    f"attempt #{attempt.number}: the body's {env.event_type} is "
                    f"{declared!r}, the event triggered is {scenario.event_type!r}",
                    expected=f"{env.event_type} equal to the triggered event type",
                )


_MISSING = object()


def _difference(wanted: Any, got: Any) -> str:
    """The first place two JSON values differ, in words."""
    if got is _MISSING:
        return "the data field is missing"
    if isinstance(wanted, dict) and isinstance(got, dict):
        for key in wanted.keys() | got.keys():
            if key not in got:
                return f"data.{key} is missing"
            if key not in wanted:
                return f"data.{key} was not triggered"
            if wanted[key] != got[key]:
                return f"data.{key}: triggered {wanted[key]!r}, delivered {got[key]!r}"
    return f"triggered {json.dumps(wanted)[:200]}, delivered {json.dumps(got)[:200]}"
