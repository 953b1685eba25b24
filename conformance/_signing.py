"""Signing and verifying deliveries with a profile's signature scheme.

Everything here works on the raw body bytes. The clock and the tolerance are parameters:
``now`` is Unix seconds (default: the current time) and ``tolerance`` overrides the
profile's ``tolerance_seconds``. Lower-level failures (``binascii.Error``, ``ValueError``,
``UnicodeError``) are translated at this boundary into the ``VerificationError`` tree.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets as _secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from conformance._errors import (
    ConformanceError,
    FutureTimestamp,
    MalformedSignature,
    MalformedTimestamp,
    MissingHeader,
    SignatureMismatch,
    StaleTimestamp,
)
from conformance._profile import Profile, SignatureScheme, TimestampSpec, resolve_pointer

__all__ = [
    "HeaderSource",
    "InvalidSecret",
    "Verification",
    "Verifier",
    "compute_signature",
    "delivery_headers",
    "derive_key",
    "format_timestamp",
    "parse_timestamp",
    "sign",
    "verify",
]

Secret = str | bytes


class HeaderSource(Protocol):
    """Anything with ``items()`` of name/value pairs: a dict, Starlette's or werkzeug's
    ``Headers``, httpx's. Names match case-insensitively; for a repeated name the last wins."""

    def items(self) -> Iterable[tuple[str, str]]: ...


TimestampLike = int | float | datetime | str
_HEX = re.compile(r"[0-9a-f]+")
_UNIX = re.compile(r"-?[0-9]{1,12}")
_ENCODING_NAMES = {"hex": "lowercase hex", "base64": "canonical base64"}


class InvalidSecret(ConformanceError):
    """The secret cannot be turned into a key by the profile's key derivation."""


@dataclass(frozen=True, kw_only=True)
class Verification:
    """A successful verification: the signature that matched and the signed timestamp."""

    profile: str
    signature: str
    timestamp: datetime | None = None


def derive_key(scheme: SignatureScheme, secret: Secret) -> bytes:
    """The HMAC key: the secret's UTF-8 bytes, or base64-decoded after a prefix."""
    if isinstance(secret, bytes):
        return secret
    if scheme.key.encoding == "utf-8":
        try:
            return secret.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidSecret("the secret is not valid Unicode text (a lone surrogate)") from exc
    text = secret.removeprefix(scheme.key.strip_prefix)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret(
            f"the secret must be base64 after {scheme.key.strip_prefix!r} for this profile"
        ) from exc


def format_timestamp(spec: TimestampSpec, value: TimestampLike) -> str:
    """The header text for a timestamp. A string is taken verbatim, but must be one line."""
    if isinstance(value, str):
        if any(ch in value for ch in "\r\n\0") or not value.isprintable():
            raise ConformanceError(f"timestamp {value!r} must be printable text on one line")
        return value
    seconds = value.timestamp() if isinstance(value, datetime) else float(value)
    if spec.emit == "iso8601":
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(int(seconds))


def parse_timestamp(spec: TimestampSpec, text: str) -> datetime:
    """Parse a timestamp header in the profile's format, or raise ``MalformedTimestamp``."""
    stripped = text.strip()
    if spec.format != "iso8601" and _UNIX.fullmatch(stripped):
        try:
            return datetime.fromtimestamp(int(stripped), UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MalformedTimestamp(spec.header, f"{text!r} is out of range") from exc
    if spec.format != "unix":
        try:
            parsed = datetime.fromisoformat(stripped.upper())
            if parsed.tzinfo is not None and "T" in stripped.upper():
                return parsed.astimezone(UTC)
        except (OverflowError, ValueError):  # unparsable, or out of range once in UTC
            pass
    expected = {
        "unix": "Unix seconds",
        "iso8601": "an ISO 8601 date-time with a UTC offset",
        "unix-or-iso8601": "Unix seconds or an ISO 8601 date-time with a UTC offset",
    }[spec.format]
    raise MalformedTimestamp(spec.header, f"{text!r} is not {expected}")


def _signed_content(scheme: SignatureScheme, body: bytes, values: Mapping[str, str]) -> bytes:
    out = bytearray()
    for index, part in enumerate(scheme.content_parts):
        if index % 2 == 0:
            out += part.encode("utf-8")
        elif part == "body":
            out += body
        else:
            out += _header_bytes(scheme, part, values[part])
    return bytes(out)


def _header_bytes(scheme: SignatureScheme, part: str, text: str) -> bytes:
    """The UTF-8 bytes of a signed header's text; text that has none is malformed."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        if part == "timestamp" and scheme.timestamp is not None:
            raise MalformedTimestamp(scheme.timestamp.header, "not valid Unicode text") from exc
        raise MalformedSignature(
            scheme.id_header or scheme.header, "not valid Unicode text"
        ) from exc


def compute_signature(
    scheme: SignatureScheme, secret: Secret, body: bytes, *, timestamp: str = "", msg_id: str = ""
) -> bytes:
    """The raw HMAC digest over the scheme's signed content."""
    content = _signed_content(scheme, body, {"timestamp": timestamp, "id": msg_id})
    return hmac.digest(derive_key(scheme, secret), content, scheme.hash_name)


def _encode(scheme: SignatureScheme, digest: bytes) -> str:
    if scheme.encoding == "hex":
        return digest.hex()
    return base64.b64encode(digest).decode("ascii")


def sign(
    profile: Profile,
    secret: Secret,
    body: bytes,
    *,
    timestamp: TimestampLike | None = None,
    msg_id: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """The signature headers for ``body``: the signature, plus the timestamp (and id) headers
    the scheme signs. ``timestamp`` defaults to ``now`` (default: the current time)."""
    scheme = profile.signature
    headers: dict[str, str] = {}
    ts_text = ""
    if scheme.timestamp is not None:
        moment = timestamp if timestamp is not None else (time.time() if now is None else now)
        ts_text = format_timestamp(scheme.timestamp, moment)
        headers[scheme.timestamp.header] = ts_text
    id_text = ""
    if scheme.id_header:
        id_text = msg_id if msg_id is not None else f"msg_{_secrets.token_hex(12)}"
        headers[scheme.id_header] = id_text
    digest = compute_signature(scheme, secret, body, timestamp=ts_text, msg_id=id_text)
    headers[scheme.header] = scheme.prefix + _encode(scheme, digest)
    return headers


def delivery_headers(
    profile: Profile,
    secret: Secret,
    body: bytes,
    payload: object,
    *,
    timestamp: TimestampLike | None = None,
    msg_id: str | None = None,
    now: float | None = None,
    token: Callable[[], str] = lambda: _secrets.token_hex(8),
) -> dict[str, str]:
    """Every header a conforming sender puts on this delivery: fixed values, headers that
    mirror body fields, generated ids, and the signature headers."""
    headers: dict[str, str] = {}
    for header in profile.headers:
        if header.value is not None:
            headers[header.name] = header.value
        elif header.equals is not None:
            try:
                value = resolve_pointer(payload, header.equals)
            except KeyError:
                continue
            headers[header.name] = value if isinstance(value, str) else str(value)
        elif header.generate is not None:
            headers[header.name] = header.generate.replace("{token}", token())
    headers.update(sign(profile, secret, body, timestamp=timestamp, msg_id=msg_id, now=now))
    return headers


def _decode_candidates(scheme: SignatureScheme, value: str) -> list[tuple[str, bytes]]:
    pieces = value.split(scheme.separator) if scheme.separator else [value]
    pieces = [p.strip() for p in pieces if p.strip()]
    if not pieces:
        raise MalformedSignature(scheme.header, "the header is empty")
    decoded: list[tuple[str, bytes]] = []
    problems: list[str] = []
    for piece in pieces:
        if not piece.startswith(scheme.prefix):
            problems.append(f"{_excerpt(piece)} does not start with {scheme.prefix!r}")
            continue
        text = piece[len(scheme.prefix) :]
        raw = _decode(scheme, text)
        if raw is None:
            problems.append(f"{_excerpt(piece)} is not {_ENCODING_NAMES[scheme.encoding]}")
        elif len(raw) != scheme.digest_size:
            problems.append(
                f"{_excerpt(piece)} has {len(raw)} bytes, an {scheme.algorithm} digest has "
                f"{scheme.digest_size}"
            )
        else:
            decoded.append((piece, raw))
    if not decoded:
        raise MalformedSignature(scheme.header, "; ".join(problems))
    return decoded


def _decode(scheme: SignatureScheme, text: str) -> bytes | None:
    """Decode strictly: lowercase hex, canonical base64. A lenient decoder would let some
    single-character changes (hex case, base64 padding bits) verify as the same bytes."""
    try:
        if scheme.encoding == "hex":
            return bytes.fromhex(text) if _HEX.fullmatch(text) and len(text) % 2 == 0 else None
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _excerpt(text: str, limit: int = 24) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def verify(
    profile: Profile,
    secret: Secret,
    body: bytes,
    headers: HeaderSource,
    *,
    now: float | None = None,
    tolerance: float | None = None,
) -> Verification:
    """Verify a delivery over its raw bytes, or raise a ``VerificationError`` naming what failed.

    Order: required headers, then parsing, then the signature (constant-time), then the
    timestamp tolerance, so a stale but authentic delivery is reported as stale.
    """
    scheme = profile.signature
    lowered = {k.lower(): v for k, v in headers.items()}

    def header(name: str) -> str:
        value = lowered.get(name.lower())
        if value is None:
            raise MissingHeader(name)
        return value

    candidates = _decode_candidates(scheme, header(scheme.header))
    ts_text = ""
    moment: datetime | None = None
    if scheme.timestamp is not None:
        ts_text = header(scheme.timestamp.header)
        moment = parse_timestamp(scheme.timestamp, ts_text)
    id_text = header(scheme.id_header) if scheme.id_header else ""

    expected = compute_signature(scheme, secret, body, timestamp=ts_text, msg_id=id_text)
    matched = None
    for text, raw in candidates:
        if hmac.compare_digest(raw, expected):
            matched = text
    if matched is None:
        raise SignatureMismatch(scheme.header, "no signature matches the body and secret")

    if scheme.timestamp is not None and moment is not None:
        limit = float(scheme.timestamp.tolerance_seconds if tolerance is None else tolerance)
        current = time.time() if now is None else now
        skew = current - moment.timestamp()
        # Written to fail closed: a NaN clock or tolerance makes both comparisons false, and
        # must not switch replay protection off.
        if not skew <= limit:
            raise StaleTimestamp(
                scheme.timestamp.header, skew_seconds=skew, tolerance_seconds=limit
            )
        if not skew >= -limit:
            raise FutureTimestamp(
                scheme.timestamp.header, skew_seconds=skew, tolerance_seconds=limit
            )
    return Verification(profile=profile.name, signature=matched, timestamp=moment)


@dataclass(frozen=True)
class Verifier:
    """A verifier bound to one profile and secret, for use inside any web framework.

    ``clock`` returns Unix seconds; inject a fake one in tests.
    """

    profile: Profile
    secret: Secret = field(repr=False)
    tolerance: float | None = None
    clock: Callable[[], float] = time.time

    def __call__(self, body: bytes, headers: HeaderSource) -> Verification:
        return verify(
            self.profile, self.secret, body, headers, now=self.clock(), tolerance=self.tolerance
        )
