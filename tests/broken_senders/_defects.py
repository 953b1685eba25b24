"""The broken senders: each overrides one step of ``CorrectSender`` with one defect.

The first group are defects the suite catches, each by one check alone under the profile
the corpus judges it with (``broken_senders.DEFECTS``); the last group are defects no check
catches yet (``broken_senders.GAPS``), kept so the gaps stay visible.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from conformance import Profile, sign
from conformance._signing import format_timestamp, fresh_header_value, parse_timestamp
from conformance.checks._payloads import is_valid

from ._sender import Answer, CorrectSender, Delivery

# -- retries ------------------------------------------------------------------------------


class NeverRetriesAnAnswer(CorrectSender):
    """Treats every answer as final: a failing status ends the delivery at once (only
    timeouts and connection errors are retried)."""

    def retries(self, answer: Answer) -> bool:
        return answer.status is None and super().retries(answer)


class RetriesClientErrors(CorrectSender):
    """Retries a 4xx as if it were a 5xx."""

    def retries(self, answer: Answer) -> bool:
        if answer.status is not None and answer.status // 100 == 4:
            return True
        return super().retries(answer)


class RetriesAfterSuccess(CorrectSender):
    """Does not take a 2xx as the end of the delivery: it goes on until the attempts run out."""

    def succeeded(self, answer: Answer) -> bool:
        return False

    def retries(self, answer: Answer) -> bool:
        if answer.status is not None and self.policy.is_success(answer.status):
            return True
        return super().retries(answer)


class OneAttemptTooMany(CorrectSender):
    """Makes one attempt more than the policy allows (the extra one after the last delay
    again)."""

    def attempt_limit(self) -> int:
        return super().attempt_limit() + 1

    def next_due(
        self, delivery: Delivery, number: int, *, first_started: float, ended: float, answer: Answer
    ) -> float:
        steps = self.policy.schedule_seconds
        if number < len(steps):
            return super().next_due(
                delivery, number, first_started=first_started, ended=ended, answer=answer
            )
        return ended + steps[-1] * delivery.scale


class DoubledDelays(CorrectSender):
    """Waits twice the scheduled delay before every retry."""

    def next_due(
        self, delivery: Delivery, number: int, *, first_started: float, ended: float, answer: Answer
    ) -> float:
        return self.policy.due(
            number, first_started=first_started, previous_ended=ended, scale=2 * delivery.scale
        )


class NoTimeout(CorrectSender):
    """Waits for an answer however long it takes."""

    def timeout(self) -> float | None:
        return None


class NeverRetriesATimeout(CorrectSender):
    """Gives up on a timeout as on a final failure, although the profile retries it."""

    def retries(self, answer: Answer) -> bool:
        return answer.error != "timeout" and super().retries(answer)


class FollowsRedirects(CorrectSender):
    """Follows a 3xx answer to its Location."""

    follow_redirects = True


class RetriesGone(CorrectSender):
    """Takes a 410 for an ordinary failure: retried like any other 4xx, the URL left on."""

    def disables(self, answer: Answer) -> bool:
        return False


class ForgetsDisabledUrls(CorrectSender):
    """Ends the delivery on a 410 but never disables the URL: the next event is sent."""

    def disable(self, url: str) -> None:
        pass


class IgnoresRetryAfter(CorrectSender):
    """Retries on its schedule, whatever Retry-After the answer carried."""

    def next_due(
        self, delivery: Delivery, number: int, *, first_started: float, ended: float, answer: Answer
    ) -> float:
        return self.policy.due(
            number, first_started=first_started, previous_ended=ended, scale=delivery.scale
        )


# -- identity -----------------------------------------------------------------------------


class NewHeaderIdPerAttempt(CorrectSender):
    """Gives every attempt a new header-borne id (Standard Webhooks' ``webhook-id``),
    signed with it; the body is the same."""

    def header_id(self, delivery: Delivery, number: int) -> str | None:
        header = self.profile.envelope.event_id_header
        return None if header is None else fresh_header_value(self.profile, header)


class OneDeliveryIdForAll(CorrectSender):
    """Gives every event the same header-borne delivery id (GitHub's ``X-GitHub-Delivery``):
    the first event's."""

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self._first: str | None = None
        self._first_lock = threading.Lock()

    def header_id(self, delivery: Delivery, number: int) -> str | None:
        with self._first_lock:
            if self._first is None:
                self._first = delivery.header_id
            return self._first


class ReformatsRetries(CorrectSender):
    """Serializes the payload again for every retry, with spaces after the separators (the
    same JSON value, signed as sent, but other bytes)."""

    def body(self, delivery: Delivery, number: int) -> bytes:
        if number == 1:
            return super().body(delivery, number)
        return json.dumps(delivery.payload, ensure_ascii=False).encode("utf-8")


# -- signatures and timestamps ------------------------------------------------------------


class SignsOtherBytes(CorrectSender):
    """Signs the payload serialized with spaces, but sends it compact."""

    def signed_bytes(self, delivery: Delivery, body: bytes) -> bytes:
        return json.dumps(delivery.payload, ensure_ascii=False).encode("utf-8")


class UnsignedTimestampHeader(CorrectSender):
    """Signs with the time of the attempt, then sends a timestamp header 5 s later."""

    def headers(self, delivery: Delivery, body: bytes, number: int) -> dict[str, str]:
        headers = super().headers(delivery, body, number)
        spec = self.profile.signature.timestamp
        assert spec is not None, "a timestamp to change"
        assert spec.header is not None, "in a header of its own"
        signed = parse_timestamp(spec, headers[spec.header]).timestamp()
        headers[spec.header] = format_timestamp(spec, signed + 5)
        return headers


class HourOldTimestamp(CorrectSender):
    """Signs every attempt (consistently) with a time an hour ago."""

    def timestamp(self, delivery: Delivery, number: int) -> float:
        return super().timestamp(delivery, number) - 3600


class WrongLegacySignature(CorrectSender):
    """Makes the legacy signature header (GitHub's ``X-Hub-Signature``) over the body with a
    trailing newline."""

    def headers(self, delivery: Delivery, body: bytes, number: int) -> dict[str, str]:
        headers = super().headers(delivery, body, number)
        other = sign(self.profile, delivery.secret, body + b"\n")
        for scheme in self.profile.signature.legacy:
            assert scheme.header is not None
            headers[scheme.header] = other[scheme.header]
        return headers


# -- headers and payloads -----------------------------------------------------------------


class TextPlain(CorrectSender):
    """Labels the JSON body ``text/plain``."""

    def headers(self, delivery: Delivery, body: bytes, number: int) -> dict[str, str]:
        headers = super().headers(delivery, body, number)
        headers["Content-Type"] = "text/plain"
        return headers


class WrongEventHeader(CorrectSender):
    """Fills the headers that mirror a body field (``X-Zaits-Event``) with another event's
    type."""

    def headers(self, delivery: Delivery, body: bytes, number: int) -> dict[str, str]:
        headers = super().headers(delivery, body, number)
        other = next(n for n in self.profile.event_names if n != delivery.event_type)
        for header in self.profile.headers:
            if header.equals is not None:
                headers[header.name] = other
        return headers


class TimeAsString(CorrectSender):
    """Writes the envelope's integer fields (Zaits' ``created``) as strings."""

    def envelope(self, event_type: str, data: dict[str, Any], event_id: str) -> Any:
        payload = super().envelope(event_type, data, event_id)
        for name, value in payload.items():
            if isinstance(value, int) and not isinstance(value, bool):
                payload[name] = str(value)
        return payload


class DropsOptionalData(CorrectSender):
    """Sends only the fields of ``data`` the event's schema cannot do without: every
    top-level field whose removal leaves a valid payload is dropped."""

    def envelope(self, event_type: str, data: dict[str, Any], event_id: str) -> Any:
        kept = dict(data)
        for name in list(kept):
            fewer = {k: v for k, v in kept.items() if k != name}
            if is_valid(self.profile, event_type, super().envelope(event_type, fewer, event_id)):
                kept = fewer
        return super().envelope(event_type, kept, event_id)


# -- defects no check catches yet (broken_senders.GAPS) -----------------------------------


class RetriesRedirects(CorrectSender):
    """Retries a 3xx answer where the profile makes it final (ZTA)."""

    def retries(self, answer: Answer) -> bool:
        if answer.status is not None and answer.status // 100 == 3:
            return True
        return super().retries(answer)


class RetriesTimeouts(CorrectSender):
    """Retries a timed-out attempt where the profile retries nothing (GitHub)."""

    def retries(self, answer: Answer) -> bool:
        return answer.error == "timeout" or super().retries(answer)

    def attempt_limit(self) -> int:
        return max(2, super().attempt_limit())

    def next_due(
        self, delivery: Delivery, number: int, *, first_started: float, ended: float, answer: Answer
    ) -> float:
        return ended


class NeverRetriesConnectionErrors(CorrectSender):
    """Gives up when the connection fails, although the profile retries it."""

    def retries(self, answer: Answer) -> bool:
        return answer.error != "connection" and super().retries(answer)


class GivesUpTooSoon(CorrectSender):
    """Abandons an attempt after 1 s, whatever the profile's timeout."""

    def timeout(self) -> float | None:
        return 1.0


class OneHeaderIdForAll(OneDeliveryIdForAll):
    """Gives every event the same header-borne id (Standard Webhooks' ``webhook-id``), each
    attempt of one event the same too: the first event's."""


class ReusesFirstTimestamp(CorrectSender):
    """Signs every retry with the first attempt's timestamp instead of its own."""

    def timestamp(self, delivery: Delivery, number: int) -> float:
        assert delivery.first_attempt_at is not None
        return delivery.first_attempt_at
