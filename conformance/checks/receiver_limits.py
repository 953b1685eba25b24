"""Receiver checks on limits: answering in time under a burst, and payload sizes at and just
above the profile's limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conformance._http import Exchange
from conformance.checks._payloads import padded
from conformance.checks._registry import CHECKS, CheckFailure, NotApplicable
from conformance.checks._target import ACCEPTED, Target

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
        )
        for i in range(BURST)
    ]
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        exchanges = list(pool.map(target.send, deliveries))
    late = [e for e in exchanges if not _in_time(e, target.timeout)]
    if late:
        lines = [f"  {e.request.note}: {e.describe()} after {e.elapsed:.2f} s" for e in late]
        raise CheckFailure(
            f"{len(late)} of {BURST} concurrent deliveries were not acknowledged within "
            f"{target.timeout:g} s",
            expected=f"{ACCEPTED} within {target.timeout:g} s, for every delivery",
            exchange=late[0],
            detail="Late or refused:\n" + "\n".join(lines),
        )


def _in_time(exchange: Exchange, timeout: float) -> bool:
    status = exchange.status
    return status is not None and status // 100 == 2 and exchange.elapsed <= timeout


def _body_of(target: Target, size: int, *, validate: bool) -> tuple[str, Any, bytes]:
    found = padded(target.profile, size, validate=validate)
    if found is None:
        raise NotApplicable(f"no event's schema leaves room to pad a body to {size} bytes")
    return found


@CHECKS.register("receiver.accepts-max-payload", slow=True)
def accepts_max_payload(target: Target, case: str | None) -> None:
    limit = target.profile.limits.payload_bytes
    event, payload, body = _body_of(target, limit, validate=True)
    note = f"a valid {event} padded to exactly {limit} bytes"
    delivery = target.signed(payload, body=body, note=note)
    target.accepted(target.send(delivery))


@CHECKS.register("receiver.rejects-oversized")
def rejects_oversized(target: Target, case: str | None) -> None:
    size = target.profile.limits.payload_bytes + 1
    event, payload, body = _body_of(target, size, validate=False)
    note = f"a {event} padded to {size} bytes, one more than the limit"
    delivery = target.signed(payload, body=body, note=note)
    target.rejected(target.send(delivery, fresh_connection=True), refusal_ok=True)
