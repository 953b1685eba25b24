"""One correctly signed, minimal delivery before the checks, so that a run which fails
everywhere for one reason (a wrong secret, a wrong path) says that reason once, up front.

The diagnosis does not replace any check: every check still runs and is graded as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance._engine.config import SECRET, TARGET_URL
from conformance._http import Exchange, excerpt, render_curl
from conformance._profile import Scheme, SignatureScheme
from conformance._signing import scheme_for
from conformance.checks.receiver._target import Target

__all__ = ["Diagnosis", "preflight"]


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """Why a correctly signed, valid delivery was not acknowledged, and what to check."""

    headline: str
    advice: str
    exchange: Exchange

    def lines(self) -> list[str]:
        """The diagnosis as the terminal shows it, the reproduction last."""
        sent = self.exchange.request
        out = [
            f"DIAGNOSIS: {self.headline}",
            f"  {self.advice}",
            f"  Sent: {sent.method} {sent.url} ({sent.note})",
        ]
        if self.exchange.body:
            out.append(f"  Answer body: {excerpt(self.exchange.body, 200)}")
        out.append("  Reproduce:")
        out += ["    " + line for line in render_curl(sent).split("\n")]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "headline": self.headline,
            "advice": self.advice,
            "status": self.exchange.status,
            "answer": excerpt(self.exchange.body, 200),
            "reproduce": render_curl(self.exchange.request),
        }


def _key_advice(scheme: SignatureScheme, used: Scheme | None) -> str:
    if used is not None and used.asymmetric:
        return (
            f"check {SECRET} (or $WEBHOOK_SECRET): it must be the Ed25519 private key "
            f"({used.key.private_prefix}…) whose public key ({used.key.public_prefix}…) the "
            "receiver verifies with."
        )
    key = scheme.primary.key
    if key.encoding == "base64":
        how = f"strips {key.strip_prefix!r} and base64-decodes the rest"
    else:
        how = "uses the whole secret as UTF-8 text, prefix included"
    return (
        f"check {SECRET} (or $WEBHOOK_SECRET): it must be the receiver's signing secret. For "
        f"whsec_ secrets, check whether the receiver strips or decodes the prefix: this profile "
        f"{how}."
    )


def _diagnose(
    exchange: Exchange, scheme: SignatureScheme, used: Scheme | None = None
) -> tuple[str, str]:
    """The headline and the advice for an answer that is not 2xx."""
    got = exchange.describe()
    status = exchange.status
    if status is None and exchange.error == "timeout":
        return (
            f"the receiver accepted the connection but sent no answer ({got})",
            "check that it answers at all, and within the profile's per-attempt timeout: a "
            "sender gives up then and retries (--conformance-timeout sets the suite's wait).",
        )
    if status is None:
        return (
            f"a correctly signed, valid delivery got {got}",
            f"check that the receiver at {TARGET_URL} is up and answers POST requests.",
        )
    if status in (401, 403):
        return f"the receiver refused a correctly signed delivery ({got})", _key_advice(
            scheme, used
        )
    if status in (404, 405):
        return (
            f"the receiver answered a delivery with {got}",
            f"check the path in {TARGET_URL}: it must be the URL the receiver takes "
            "deliveries on (method POST).",
        )
    if status // 100 == 3:
        location = {k.lower(): v for k, v in exchange.response_headers}.get("location")
        where = f" to {location}" if location else ""
        return (
            f"the URL redirects{where} ({got})",
            f"senders do not follow redirects: give {TARGET_URL} the final URL"
            f"{f' ({location})' if location else ''}.",
        )
    if status // 100 == 5:
        return (
            f"the receiver fails on a valid, correctly signed delivery ({got})",
            "look at the receiver's log for this request: every check that sends a valid "
            "delivery will fail the same way.",
        )
    return (
        f"the receiver did not acknowledge a valid, correctly signed delivery ({got})",
        "a receiver answers 2xx to a valid delivery; the answer body may say why it did not.",
    )


def preflight(target: Target) -> Diagnosis | None:
    """Send one correctly signed, minimal delivery of the catalogue's first event; ``None``
    when it is acknowledged (2xx), else the diagnosis."""
    note = f"a correctly signed, minimal {target.first_event}, sent before the checks"
    exchange = target.send(target.signed(target.example(), note=note))
    if exchange.status is not None and exchange.status // 100 == 2:
        return None
    signature = target.profile.signature
    headline, advice = _diagnose(exchange, signature, scheme_for(signature, target.secret))
    return Diagnosis(headline=headline, advice=advice, exchange=exchange)
