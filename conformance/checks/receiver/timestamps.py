"""Receiver checks for timestamped schemes: replays outside the tolerance are refused, and
the timestamp is covered by the signature."""

from __future__ import annotations

from conformance._profile import TimestampSpec
from conformance.checks._payloads import compact
from conformance.checks.receiver._checks import CHECKS
from conformance.checks.receiver._target import Target

__all__: list[str] = []

#: How far outside the tolerance the stale and future timestamps are.
MARGIN_SECONDS = 60


def _spec(target: Target) -> TimestampSpec:
    spec = target.profile.signature.timestamp
    assert spec is not None, "timestamp checks only apply to timestamped profiles"
    return spec


def _signed_at(target: Target, moment: float, note: str) -> None:
    payload = target.example()
    body = compact(payload)
    delivery = target.delivery(body, target.headers(body, payload, timestamp=moment), note=note)
    target.rejected(target.send(delivery))


@CHECKS.register("receiver.rejects-stale-timestamp")
def rejects_stale_timestamp(target: Target, case: str | None) -> None:
    age = _spec(target).tolerance_seconds + MARGIN_SECONDS
    _signed_at(target, target.clock() - age, f"correctly signed {age} s ago")


@CHECKS.register("receiver.rejects-future-timestamp")
def rejects_future_timestamp(target: Target, case: str | None) -> None:
    ahead = _spec(target).tolerance_seconds + MARGIN_SECONDS
    _signed_at(target, target.clock() + ahead, f"correctly signed {ahead} s in the future")


@CHECKS.register("receiver.timestamp-is-signed")
def timestamp_is_signed(target: Target, case: str | None) -> None:
    """Signed at T1, sent with another fresh timestamp T2 in the header."""
    spec = _spec(target)
    now = target.clock()
    shift = max(1, min(MARGIN_SECONDS, spec.tolerance_seconds // 2))
    payload = target.example()
    body = compact(payload)
    signed = target.headers(body, payload, timestamp=now)
    headers = target.with_timestamp(signed, now - shift)
    sent = target.timestamp_of(headers)
    note = f"signed with {spec.where} {target.timestamp_of(signed)}, sent with {sent}"
    target.rejected(target.send(target.delivery(body, headers, note=note)))
