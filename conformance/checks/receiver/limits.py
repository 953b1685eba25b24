"""Receiver checks on limits: answering in time under a burst, and payload sizes at and just
above the profile's limit."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conformance._engine.failures import CheckFailure, NotApplicable
from conformance._http import Exchange
from conformance.checks._payloads import padded
from conformance.checks.receiver._checks import CHECKS
from conformance.checks.receiver._target import ACCEPTED, Target

__all__: list[str] = []

#: Deliveries sent at once by the burst check.
BURST = 20


@CHECKS.register("receiver.responds-in-time", slow=True)
def responds_in_time(target: Target, case: str | None) -> None:
    """``BURST`` concurrent valid deliveries, each acknowledged within the timeout. They are
    the minimal payloads of the catalogue's events (with fresh identities): this check is about
    time under load, and ``accepts-valid`` about the variety of payloads."""
    events = target.profile.event_names
    # Payloads are made here, not in the threads: hypothesis is not thread-safe.
    deliveries = [
        target.signed(
            target.example(events[i % len(events)]),
            note=f"delivery {i + 1} of a burst of {BURST}",
            event=events[i % len(events)],
        )
        for i in range(BURST)
    ]
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        exchanges = list(pool.map(target.send, deliveries))
    late = [e for e in exchanges if not _answered_in_time(e, target.timeout)]
    refused = [e for e in exchanges if e not in late and not _acknowledged(e)]
    if late or refused:
        parts = []
        if late:
            parts.append(f"{len(late)} got no answer within {target.timeout:g} s")
        if refused:
            statuses = Counter(e.describe() for e in refused)
            shown = ", ".join(f"{status}: {n}" for status, n in statuses.most_common())
            parts.append(f"{len(refused)} were answered in time but not with 2xx ({shown})")
        lines = [
            f"  {e.request.note}: {e.describe()} after {e.elapsed:.2f} s" for e in late + refused
        ]
        raise CheckFailure(
            f"of {BURST} concurrent deliveries, " + " and ".join(parts),
            expected=f"{ACCEPTED} within {target.timeout:g} s, for every delivery",
            evidence=(late + refused)[0],
            detail="Not acknowledged in time:\n" + "\n".join(lines),
        )


def _answered_in_time(exchange: Exchange, timeout: float) -> bool:
    return exchange.status is not None and exchange.elapsed <= timeout


def _acknowledged(exchange: Exchange) -> bool:
    return exchange.status is not None and exchange.status // 100 == 2


def _body_of(target: Target, size: int, *, validate: bool) -> tuple[str, Any, bytes]:
    found = padded(target.profile, size, validate=validate)
    if found is None:
        raise NotApplicable(f"no event's schema leaves room to pad a body to {size} bytes")
    return found


#: Bytes per second a receiver is allowed for reading, verifying and parsing a body of the
#: maximum size, on top of the timeout: GitHub's 25 MB is not read in a second on a loaded
#: machine, and this check is about the size, ``responds-in-time`` about time.
HANDLING_BYTES_PER_SECOND = 10_000_000


@CHECKS.register("receiver.accepts-max-payload", slow=True)
def accepts_max_payload(target: Target, case: str | None) -> None:
    limit = target.profile.limits.payload_bytes
    event, payload, body = _body_of(target, limit, validate=True)
    note = f"a valid {event} padded to exactly {limit} bytes"
    delivery = target.signed(payload, body=body, note=note, event=event)
    allowed = target.timeout + limit / HANDLING_BYTES_PER_SECOND
    target.accepted(target.send(delivery, timeout=allowed))


@CHECKS.register("receiver.rejects-oversized")
def rejects_oversized(target: Target, case: str | None) -> None:
    size = target.profile.limits.payload_bytes + 1
    event, payload, body = _body_of(target, size, validate=False)
    note = f"a {event} padded to {size} bytes, one more than the limit"
    delivery = target.signed(payload, body=body, note=note, event=event)
    target.rejected(target.send(delivery, fresh_connection=True), refusal_ok=True)
