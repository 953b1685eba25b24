"""The system under test as the checks see it: where to send, how to sign, how to judge.

A ``Target`` builds deliveries exactly as a conforming sender would (every profile header,
a fresh identity, the profile's signature), sends them, and turns an answer that breaks an
expectation into a ``CheckFailure``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance._engine.config import SuiteConfig
from conformance._engine.failures import CheckFailure
from conformance._http import Delivery, Exchange, send
from conformance._profile import Profile
from conformance._signing import (
    Secrets,
    TimestampLike,
    delivery_headers,
    format_timestamp,
    generate_secret,
    render_items,
    scheme_for,
    split_header,
)
from conformance.checks._payloads import compact, fresh_example

__all__ = ["ACCEPTED", "REJECTED", "Target", "make_client"]

ACCEPTED = "2xx (the delivery is acknowledged)"
REJECTED = "4xx (the delivery is refused)"


def make_client(timeout: float) -> httpx.Client:
    """An HTTP client that never follows redirects (a 3xx is an answer, not a detour)."""
    return httpx.Client(timeout=timeout, follow_redirects=False)


@dataclass(frozen=True, kw_only=True)
class Target:
    url: str
    profile: Profile
    secret: str = field(repr=False)
    timeout: float
    client: httpx.Client = field(repr=False)
    clock: Callable[[], float] = time.time

    @classmethod
    def of(cls, suite: SuiteConfig, client: httpx.Client) -> Target:
        """The target a run's validated options name, sending through ``client``."""
        return cls(
            url=suite.target_url,
            profile=suite.profile,
            secret=suite.receiver.secret,
            timeout=suite.receiver.timeout,
            client=client,
        )

    # -- building deliveries ----------------------------------------------------------------

    @property
    def first_event(self) -> str:
        return self.profile.event_names[0]

    def example(self, event: str | None = None, index: int = 0) -> Any:
        """A valid payload of ``event`` (default: the first in the catalogue), fresh id."""
        return fresh_example(self.profile, event or self.first_event, index)

    def headers(
        self,
        body: bytes,
        payload: object,
        *,
        secret: Secrets | None = None,
        timestamp: TimestampLike | None = None,
        event: str | None = None,
    ) -> dict[str, str]:
        """Every header a conforming sender sends with ``body``, signed now. ``event`` is
        the event type where the profile carries it in a header (default: the type the
        payload declares, else the catalogue's first)."""
        declared = self.profile.event_type_of(payload)
        return delivery_headers(
            self.profile,
            self.secret if secret is None else secret,
            body,
            payload,
            event_type=event or (declared if isinstance(declared, str) else self.first_event),
            timestamp=timestamp,
            now=self.clock(),
        )

    def other_secret(self) -> str:
        """A fresh secret of the same kind as the target's (an Ed25519 key for an Ed25519
        key): one the target does not hold."""
        sig = self.profile.signature
        scheme = scheme_for(sig, self.secret)
        return generate_secret(sig, asymmetric=scheme is not None and scheme.asymmetric)

    def delivery(self, body: bytes, headers: Mapping[str, str], *, note: str = "") -> Delivery:
        return Delivery.of(self.url, headers, body, note=note)

    def signed(
        self,
        payload: object,
        *,
        body: bytes | None = None,
        note: str = "",
        event: str | None = None,
    ) -> Delivery:
        """A correctly signed delivery of ``payload`` (serialized compactly unless ``body``)."""
        raw = compact(payload) if body is None else body
        return self.delivery(raw, self.headers(raw, payload, event=event), note=note)

    # -- editing signature headers ----------------------------------------------------------

    def timestamp_of(self, headers: Mapping[str, str]) -> str:
        """The signed timestamp's text, from its header or its item."""
        spec = self.profile.signature.timestamp
        assert spec is not None, "only timestamped profiles have a timestamp"
        if spec.header is not None:
            return headers[spec.header]
        stamp, _ = split_header(self.profile.signature, headers[self.profile.signature.header])
        assert stamp is not None, "the signature header has no timestamp item"
        return stamp

    def with_timestamp(self, headers: Mapping[str, str], moment: float | None) -> dict[str, str]:
        """The headers with the timestamp replaced by ``moment`` (``None``: removed), the
        signature left as it was."""
        sig = self.profile.signature
        spec = sig.timestamp
        assert spec is not None, "only timestamped profiles have a timestamp"
        out = dict(headers)
        if spec.header is not None:
            out.pop(spec.header)
            if moment is not None:
                out[spec.header] = format_timestamp(spec, moment)
            return out
        stamp = None if moment is None else format_timestamp(spec, moment)
        out[sig.header] = render_items(sig, self.signatures(out), stamp)
        return out

    def signatures(self, headers: Mapping[str, str]) -> list[tuple[str | None, str]]:
        """The signature header's items, the timestamp item left out."""
        return split_header(self.profile.signature, headers[self.profile.signature.header])[1]

    def with_signatures(
        self, headers: Mapping[str, str], items: list[tuple[str | None, str]]
    ) -> dict[str, str]:
        """The headers with the signature items replaced (the timestamp item kept)."""
        sig = self.profile.signature
        out = dict(headers)
        stamp = self.timestamp_of(headers) if sig.timestamp and sig.timestamp.item else None
        out[sig.header] = render_items(sig, items, stamp)
        return out

    def unsigned(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers without any signature header (legacy ones included)."""
        sig = self.profile.signature
        names = {sig.header.lower(), *(s.header.lower() for s in sig.legacy if s.header)}
        return {k: v for k, v in headers.items() if k.lower() not in names}

    # -- sending ---------------------------------------------------------------------------

    def send(
        self, delivery: Delivery, *, fresh_connection: bool = False, timeout: float | None = None
    ) -> Exchange:
        """Send once; ``fresh_connection`` uses a connection of its own (for requests the
        server may cut short, so the shared pool never holds a half-closed connection).
        ``timeout`` overrides the target's, for one request."""
        wait = self.timeout if timeout is None else timeout
        if not fresh_connection:
            return send(self.client, delivery, timeout=wait)
        with make_client(wait) as own:
            return send(own, delivery, timeout=wait)

    @property
    def replay_hint(self) -> str:
        spec = self.profile.signature.timestamp
        if spec is None:
            return ""
        return (
            f"the signed {spec.where} is only fresh for {spec.tolerance_seconds} s; "
            "re-sign with 'webhook-conformance sign' to replay later"
        )

    # -- judging ---------------------------------------------------------------------------

    def accepted(self, exchange: Exchange, *, what: str = "") -> None:
        """Raise unless the answer is 2xx."""
        if exchange.status is not None and exchange.status // 100 == 2:
            return
        raise CheckFailure(_headline(what, "2xx", exchange), expected=ACCEPTED, evidence=exchange)

    def rejected(self, exchange: Exchange, *, what: str = "", refusal_ok: bool = False) -> None:
        """Raise unless the answer is 4xx (or, with ``refusal_ok``, the server cut the
        connection while the request was being sent)."""
        if exchange.status is not None and exchange.status // 100 == 4:
            return
        if refusal_ok and exchange.error == "reset":
            return
        raise CheckFailure(_headline(what, "4xx", exchange), expected=REJECTED, evidence=exchange)

    def status(self, exchange: Exchange, expected: int, *, what: str = "") -> None:
        """Raise unless the answer has exactly ``expected`` status."""
        if exchange.status == expected:
            return
        raise CheckFailure(
            _headline(what, str(expected), exchange),
            expected=f"{expected}",
            evidence=exchange,
        )


def _headline(what: str, wanted: str, exchange: Exchange) -> str:
    got = exchange.describe()
    if exchange.status is not None and exchange.status >= 500:
        got += " (a server error)"
    elif exchange.status is not None and exchange.status // 100 == 2 and wanted != "2xx":
        got += " (accepted)"
    lead = f"{what}: " if what else ""
    return f"{lead}expected {wanted}, got {got}"
