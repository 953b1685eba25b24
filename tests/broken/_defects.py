"""The broken receivers: each overrides one step of ``CorrectReceiver`` with one defect."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from conformance import (
    FutureTimestamp,
    MissingHeader,
    SignatureMismatch,
    StaleTimestamp,
    sign,
    verify,
)
from conformance._signing import parse_timestamp

from ._base import CorrectReceiver

#: The per-attempt timeout (seconds) ``test_broken_corpus`` gives the suite (``--timeout``);
#: the slow receiver is tuned against it.
SUITE_TIMEOUT = 1.0


class AcceptsEverything(CorrectReceiver):
    """Never verifies the signature."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        pass


class SignatureHeaderPresentOnly(CorrectReceiver):
    """Checks that the signature headers are there, not what they say."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        scheme = self.profile.signature
        needed = [scheme.header] + ([scheme.timestamp.header] if scheme.timestamp else [])
        present = {name.lower() for name in headers}
        for name in needed:
            if name.lower() not in present:
                raise MissingHeader(name)


class ComparesSignaturePrefix(CorrectReceiver):
    """Compares only the first 8 characters of the signature after its prefix (timestamps are
    still checked)."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        scheme = self.profile.signature
        lowered = {k.lower(): v for k, v in headers.items()}
        received = lowered.get(scheme.header.lower())
        if received is None:
            raise MissingHeader(scheme.header)
        timestamp = None
        if scheme.timestamp is not None:
            timestamp = lowered.get(scheme.timestamp.header.lower())
            if timestamp is None:
                raise MissingHeader(scheme.timestamp.header)
        expected = sign(self.profile, self.secret, body, timestamp=timestamp)[scheme.header]
        shown = len(scheme.prefix) + 8
        if received[:shown] != expected[:shown]:  # the defect: the rest is never compared
            raise SignatureMismatch(scheme.header)
        if scheme.timestamp is not None and timestamp is not None:
            skew = time.time() - parse_timestamp(scheme.timestamp, timestamp).timestamp()
            limit = scheme.timestamp.tolerance_seconds
            if skew > limit:
                raise StaleTimestamp(
                    scheme.timestamp.header, skew_seconds=skew, tolerance_seconds=limit
                )
            if skew < -limit:
                raise FutureTimestamp(
                    scheme.timestamp.header, skew_seconds=skew, tolerance_seconds=limit
                )


class VerifiesReserializedJson(CorrectReceiver):
    """Verifies the parsed body serialized again (compactly, like ``JSON.stringify``), not the
    bytes that arrived."""

    @staticmethod
    def reserialize(body: bytes) -> bytes:
        return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        super().verify(self.reserialize(body), headers)


class IgnoresTimestampTolerance(CorrectReceiver):
    """Verifies the signature, timestamp included, but accepts a timestamp of any age."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        verify(self.profile, self.secret, body, headers, tolerance=math.inf)


#: How long the slow receiver blocks per delivery. A burst of 20 then takes 1.5 timeouts, so
#: its last third is late, while what is left of it when the suite gives up on the burst
#: (half a timeout) still leaves the next check's single delivery time to be answered.
BLOCKING_SECONDS = SUITE_TIMEOUT * 3 / 40


class BlocksWhileProcessing(CorrectReceiver):
    """Processes each event before answering, with blocking code in an async app, so
    deliveries that arrive together wait for each other: one alone is answered in time, a
    burst is not."""

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        time.sleep(BLOCKING_SECONDS)  # the defect: blocks the event loop
        return await super().accept(key, event_type, payload)


class CrashesOnUnknownEvent(CorrectReceiver):
    """Dispatches on the event type through a table of the catalogued types: 500 for others."""

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        handlers = {name: (lambda data: None) for name in self.profile.event_names}
        handlers[event_type](payload)  # KeyError for an event type outside the catalogue
        return await super().accept(key, event_type, payload)


class CrashesOnDuplicate(CorrectReceiver):
    """Inserts every event as new, so a duplicate raises (500) like a unique constraint."""

    def duplicate(self) -> tuple[int, object]:
        raise RuntimeError("UNIQUE constraint failed: events.key")


class BodyLimitTooSmall(CorrectReceiver):
    """Refuses bodies over 64 KiB, below the profile's limit."""

    @property
    def limit(self) -> int:
        return 64 * 1024


class StripsSecretPrefix(CorrectReceiver):
    """Takes ``whsec_`` off the secret before using it as the key, which no profile asks for."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        verify(self.profile, self.secret.removeprefix("whsec_"), body, headers)


class CrashesOnNonAscii(CorrectReceiver):
    """Writes each event to an ASCII-only log before answering: 500 for non-ASCII text."""

    async def accept(
        self, key: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[int, object]:
        json.dumps(payload, ensure_ascii=False).encode("ascii")  # UnicodeEncodeError
        return await super().accept(key, event_type, payload)
