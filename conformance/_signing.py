"""Signing and verifying deliveries with a profile's signature section.

Everything here works on the raw body bytes. A signature header holds one or more *items*
(``t=…,v1=…,v1=…``; ``v1,… v1a,…``; ``sha256=…``), each under the label of a scheme in the
profile; a verifier ignores labels the profile does not list. Several secrets may be given
at once (key rotation): ``sign`` writes one item per secret, ``verify`` accepts when any
item matches any secret.

A secret is a shared HMAC secret (text or raw key bytes) or, for Ed25519 schemes, a key:
``whsk_…`` text (the base64 32-byte seed) or a ``cryptography`` private key to sign with,
``whpk_…`` text or a public key to verify with. The scheme a secret serves follows from it.

The clock and the tolerance are parameters: ``now`` is Unix seconds (default: the current
time) and ``tolerance`` overrides the profile's ``tolerance_seconds``. Lower-level failures
(``binascii.Error``, ``ValueError``, ``UnicodeError``) are translated at this boundary into
the ``VerificationError`` tree.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import secrets as _secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance._errors import (
    ConformanceError,
    FutureTimestamp,
    MalformedSignature,
    MalformedTimestamp,
    MissingHeader,
    SignatureMismatch,
    StaleTimestamp,
)
from conformance._profile import Profile, Scheme, SignatureScheme, TimestampSpec, resolve_pointer

__all__ = [
    "HeaderSource",
    "InvalidSecret",
    "Item",
    "Secret",
    "Secrets",
    "Verification",
    "Verifier",
    "compute_signature",
    "delivery_headers",
    "derive_key",
    "format_timestamp",
    "fresh_header_value",
    "generate_secret",
    "parse_items",
    "parse_timestamp",
    "public_key_text",
    "render_items",
    "scheme_for",
    "sign",
    "signature_items",
    "split_header",
    "verify",
    "verifying_keys",
]

Secret = str | bytes | Ed25519PrivateKey | Ed25519PublicKey
#: One secret, or several (key rotation).
Secrets = Secret | Sequence[Secret]
#: A signature header item: its label (``None`` where items carry none) and its value.
Item = tuple[str | None, str]


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
    """A successful verification: the item that matched, its label, and the signed
    timestamp."""

    profile: str
    signature: str
    label: str | None = None
    timestamp: datetime | None = None


# ---------------------------------------------------------------------------------------
# Secrets and keys


def _as_tuple(secrets: Secrets) -> tuple[Secret, ...]:
    if isinstance(secrets, str | bytes | Ed25519PrivateKey | Ed25519PublicKey):
        return (secrets,)
    found = tuple(secrets)
    if not found:
        raise InvalidSecret("no secret given")
    return found


def scheme_for(signature: SignatureScheme, secret: Secret) -> Scheme | None:
    """The scheme a secret serves: an Ed25519 key (object, or text under the scheme's
    private or public prefix) serves the Ed25519 scheme; anything else the HMAC one.

    Where a profile has both kinds (Standard Webhooks), an HMAC secret must carry its
    scheme's prefix (``whsec_``): an unprefixed key or raw bytes could be a public key given
    in another form, and a public key used as an HMAC key lets anyone forge signatures."""
    if isinstance(secret, bytearray | memoryview):
        raise InvalidSecret("give a secret as str or bytes")
    both = any(s.asymmetric for s in signature.schemes) and any(
        not s.asymmetric for s in signature.schemes
    )
    for scheme in signature.schemes:
        if not scheme.asymmetric:
            continue
        if isinstance(secret, Ed25519PrivateKey | Ed25519PublicKey):
            return scheme
        prefixes = (scheme.key.private_prefix or "", scheme.key.public_prefix or "")
        if isinstance(secret, str) and any(p and secret.startswith(p) for p in prefixes):
            return scheme
    if isinstance(secret, Ed25519PrivateKey | Ed25519PublicKey):
        return None
    shared = next((s for s in signature.schemes if not s.asymmetric), None)
    if both and shared is not None:
        prefix = shared.key.strip_prefix
        if not (prefix and isinstance(secret, str) and secret.startswith(prefix)):
            keys = [s.key for s in signature.schemes if s.asymmetric]
            named = ", ".join(f"{k.private_prefix}…/{k.public_prefix}…" for k in keys)
            raise InvalidSecret(
                f"ambiguous secret: this profile takes {prefix}… shared secrets and {named} "
                "Ed25519 keys; give the secret with its prefix"
            )
    return shared


def derive_key(scheme: Scheme, secret: Secret) -> bytes:
    """The HMAC key: raw bytes as given, the secret's UTF-8 bytes, or base64-decoded after a
    prefix."""
    if isinstance(secret, bytes):
        return secret
    if not isinstance(secret, str):
        raise InvalidSecret(f"an Ed25519 key cannot make an {scheme.algorithm} signature")
    if scheme.key.encoding == "utf-8":
        try:
            return secret.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidSecret("the secret is not valid Unicode text (a lone surrogate)") from exc
    return _b64_key(secret, scheme.key.strip_prefix, "secret")


def _b64_key(secret: str, prefix: str, what: str, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(secret.removeprefix(prefix), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret(f"the {what} must be base64 after {prefix!r} for this profile") from exc
    if size is not None and len(raw) != size:
        raise InvalidSecret(f"the {what} must be {size} bytes after {prefix!r}, not {len(raw)}")
    return raw


def _private_key(scheme: Scheme, secret: Secret) -> Ed25519PrivateKey:
    if isinstance(secret, Ed25519PrivateKey):
        return secret
    prefix = scheme.key.private_prefix or ""
    if not isinstance(secret, str) or not secret.startswith(prefix):
        raise InvalidSecret(f"signing with {scheme.algorithm} takes a private key ({prefix}…)")
    return Ed25519PrivateKey.from_private_bytes(_b64_key(secret, prefix, "private key", 32))


def _public_key(scheme: Scheme, secret: Secret) -> Ed25519PublicKey:
    if isinstance(secret, Ed25519PublicKey):
        return secret
    if isinstance(secret, Ed25519PrivateKey):
        return secret.public_key()
    public = scheme.key.public_prefix or ""
    if isinstance(secret, str) and secret.startswith(public):
        return Ed25519PublicKey.from_public_bytes(_b64_key(secret, public, "public key", 32))
    return _private_key(scheme, secret).public_key()


def generate_secret(signature: SignatureScheme, *, asymmetric: bool = False) -> str:
    """A new random secret in the profile's format (for Ed25519: a private key)."""
    if asymmetric:
        scheme = next((s for s in signature.schemes if s.asymmetric), None)
        if scheme is None:
            raise InvalidSecret("this profile has no Ed25519 scheme")
        seed = _secrets.token_bytes(32)
        return (scheme.key.private_prefix or "") + base64.b64encode(seed).decode("ascii")
    hmac_scheme = signature.primary
    if hmac_scheme.asymmetric:
        raise InvalidSecret("this profile has no shared-secret scheme; generate an Ed25519 key")
    raw = _secrets.token_bytes(24)
    if hmac_scheme.key.encoding == "base64":
        return hmac_scheme.key.strip_prefix + base64.b64encode(raw).decode("ascii")
    return raw.hex()


def public_key_text(signature: SignatureScheme, private: Secret) -> str:
    """The ``whpk_…`` text of the public half of an Ed25519 private key."""
    scheme = next((s for s in signature.schemes if s.asymmetric), None)
    if scheme is None:
        raise InvalidSecret("this profile has no Ed25519 scheme")
    raw = _public_key(scheme, private).public_bytes_raw()
    return (scheme.key.public_prefix or "") + base64.b64encode(raw).decode("ascii")


# ---------------------------------------------------------------------------------------
# Timestamps


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
    """Parse a timestamp in the profile's format, or raise ``MalformedTimestamp``."""
    stripped = text.strip()
    if spec.format != "iso8601" and _UNIX.fullmatch(stripped):
        try:
            return datetime.fromtimestamp(int(stripped), UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MalformedTimestamp(spec.where, f"{text!r} is out of range") from exc
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
    raise MalformedTimestamp(spec.where, f"{text!r} is not {expected}")


# ---------------------------------------------------------------------------------------
# Header items


def render_items(
    signature: SignatureScheme, items: Sequence[Item], timestamp: str | None = None
) -> str:
    """The signature header's text: the timestamp item (where the timestamp is one and
    ``timestamp`` is given), then each item, joined by the profile's separators."""
    spec = signature.timestamp
    pieces: list[Item] = []
    if spec is not None and spec.item is not None and timestamp is not None:
        pieces.append((spec.item, timestamp))
    pieces += list(items)
    texts = [
        value
        if label is None or signature.label_separator is None
        else label + signature.label_separator + value
        for label, value in pieces
    ]
    if len(texts) > 1 and signature.item_separator is None:
        raise ConformanceError(f"{signature.header} holds one signature only; got {len(texts)}")
    return (signature.item_separator or "").join(texts)


def parse_items(signature: SignatureScheme, value: str) -> list[Item]:
    """The header's items in order, each split at its first label separator. An item
    without one has the label ``None`` (and the whole text as its value)."""
    pieces = value.split(signature.item_separator) if signature.item_separator else [value]
    found: list[Item] = []
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        if signature.label_separator is None:
            found.append((None, piece))
            continue
        label, sep, rest = piece.partition(signature.label_separator)
        found.append((label, rest) if sep else (None, piece))
    return found


def split_header(signature: SignatureScheme, value: str) -> tuple[str | None, list[Item]]:
    """The signature header's timestamp item's text (``None`` where the timestamp is not an
    item, or the item is absent) and its other items, in order."""
    spec = signature.timestamp
    stamp = spec.item if spec is not None else None
    items = parse_items(signature, value)
    texts = [text for label, text in items if stamp is not None and label == stamp]
    rest = [(label, text) for label, text in items if stamp is None or label != stamp]
    return (texts[0] if texts else None), rest


def _signed_content(sig: SignatureScheme, body: bytes, values: Mapping[str, str]) -> bytes:
    out = bytearray()
    for index, part in enumerate(sig.content_parts):
        if index % 2 == 0:
            out += part.encode("utf-8")
        elif part == "body":
            out += body
        else:
            out += _text_bytes(sig, part, values[part])
    return bytes(out)


def _text_bytes(sig: SignatureScheme, part: str, text: str) -> bytes:
    """The UTF-8 bytes of a signed header's text; text that has none is malformed."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        if part == "timestamp" and sig.timestamp is not None:
            raise MalformedTimestamp(sig.timestamp.where, "not valid Unicode text") from exc
        raise MalformedSignature(sig.id_header or sig.header, "not valid Unicode text") from exc


def compute_signature(
    signature: SignatureScheme,
    secret: Secret,
    body: bytes,
    *,
    timestamp: str = "",
    msg_id: str = "",
    scheme: Scheme | None = None,
) -> bytes:
    """The raw signature over the signed content: an HMAC digest, or an Ed25519 signature.
    ``scheme`` defaults to the one the secret serves."""
    chosen = scheme or scheme_for(signature, secret)
    if chosen is None:
        raise InvalidSecret("no scheme of this profile takes that key")
    content = _signed_content(signature, body, {"timestamp": timestamp, "id": msg_id})
    if chosen.asymmetric:
        return _private_key(chosen, secret).sign(content)
    return hmac.digest(derive_key(chosen, secret), content, chosen.hash_name)


def _encode(scheme: Scheme, raw: bytes) -> str:
    if scheme.encoding == "hex":
        return raw.hex()
    return base64.b64encode(raw).decode("ascii")


def signature_items(
    profile: Profile, secrets: Secrets, body: bytes, *, timestamp: str = "", msg_id: str = ""
) -> list[Item]:
    """One item per secret, in order, each under the label of the scheme it serves."""
    sig = profile.signature
    items: list[Item] = []
    for secret in _as_tuple(secrets):
        scheme = scheme_for(sig, secret)
        if scheme is None:
            raise InvalidSecret(f"profile {profile.name!r} has no scheme for that key")
        raw = compute_signature(
            sig, secret, body, timestamp=timestamp, msg_id=msg_id, scheme=scheme
        )
        items.append((scheme.label, _encode(scheme, raw)))
    return items


def sign(
    profile: Profile,
    secrets: Secrets,
    body: bytes,
    *,
    timestamp: TimestampLike | None = None,
    msg_id: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """The signature headers for ``body``: the signature header with one item per secret,
    the timestamp and id headers the scheme signs, and any legacy signature headers.
    ``timestamp`` defaults to ``now`` (default: the current time)."""
    sig = profile.signature
    headers: dict[str, str] = {}
    ts_text = ""
    if sig.timestamp is not None:
        moment = timestamp if timestamp is not None else (time.time() if now is None else now)
        ts_text = format_timestamp(sig.timestamp, moment)
        if sig.timestamp.header is not None:
            headers[sig.timestamp.header] = ts_text
    id_text = ""
    if sig.id_header:
        id_text = msg_id if msg_id is not None else _generated(profile, sig.id_header)
        headers[sig.id_header] = id_text
    items = signature_items(profile, secrets, body, timestamp=ts_text, msg_id=id_text)
    headers[sig.header] = render_items(sig, items, ts_text)
    shared = [s for s in _as_tuple(secrets) if isinstance(s, str | bytes)]
    for legacy in sig.legacy if shared else ():
        assert legacy.header is not None
        raw = compute_signature(
            sig, shared[0], body, timestamp=ts_text, msg_id=id_text, scheme=legacy
        )
        value = _encode(legacy, raw)
        label = legacy.label if sig.label_separator else None
        headers[legacy.header] = value if label is None else f"{label}{sig.label_separator}{value}"
    return headers


def fresh_header_value(profile: Profile, name: str) -> str:
    """A never-seen value for a header a sender generates (an id), as the profile's
    declaration of it says."""
    return _generated(profile, name)


def _generated(profile: Profile, name: str, token: Callable[[], str] | None = None) -> str:
    """A fresh value for a generated header, as its declaration says (``msg_{token}``
    where it says nothing)."""
    make = token or (lambda: _secrets.token_hex(8))
    declared = next((h for h in profile.headers if h.name.lower() == name.lower()), None)
    template = declared.generate if declared and declared.generate else "msg_{token}"
    return template.replace("{uuid}", str(uuid.uuid4())).replace("{token}", make())


def delivery_headers(
    profile: Profile,
    secrets: Secrets,
    body: bytes,
    payload: object,
    *,
    event_type: str | None = None,
    event_id: str | None = None,
    timestamp: TimestampLike | None = None,
    msg_id: str | None = None,
    now: float | None = None,
    token: Callable[[], str] = lambda: _secrets.token_hex(8),
) -> dict[str, str]:
    """Every header a conforming sender puts on this delivery: fixed values, headers that
    mirror body fields, the event type and id where the profile carries them in headers,
    generated ids, and the signature headers.

    ``event_type`` is needed where the profile carries the type in a header (GitHub's
    ``X-GitHub-Event``); ``event_id`` (default: a fresh one) fills a header-borne id, which
    is also the signed ``msg_id`` where the two are one header."""
    env = profile.envelope
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
            headers[header.name] = _generated(profile, header.name, token)
    if env.event_type_header is not None:
        if event_type is None:
            raise ConformanceError(
                f"profile {profile.name!r} carries the event type in {env.event_type_header}: "
                "give the event type"
            )
        headers[env.event_type_header] = event_type
    if env.event_id_header is not None:
        if event_id is None:
            event_id = msg_id or headers.get(env.event_id_header)
        event_id = event_id or _generated(profile, env.event_id_header, token)
        headers[env.event_id_header] = event_id
        if profile.signature.id_header and (
            profile.signature.id_header.lower() == env.event_id_header.lower()
        ):
            msg_id = event_id
    headers.update(sign(profile, secrets, body, timestamp=timestamp, msg_id=msg_id, now=now))
    return headers


# ---------------------------------------------------------------------------------------
# Verifying


def _candidates(sig: SignatureScheme, value: str) -> list[tuple[Scheme, str, bytes]]:
    """The items under the profile's labels, decoded; items under other labels are
    ignored (Stripe's ``v0``)."""
    if not parse_items(sig, value):
        raise MalformedSignature(sig.header, "the header is empty")
    _, items = split_header(sig, value)
    decoded: list[tuple[Scheme, str, bytes]] = []
    problems: list[str] = []
    for label, text in items:
        scheme = sig.scheme(label)
        shown = text if label is None else f"{label}{sig.label_separator}{text}"
        if scheme is None:
            wanted = ", ".join(repr(known) for known in sig.labels)
            problems.append(f"{_excerpt(shown)} is not under a label this profile uses ({wanted})")
            continue
        raw = _decode(scheme, text)
        if raw is None:
            problems.append(f"{_excerpt(shown)} is not {_ENCODING_NAMES[scheme.encoding]}")
        elif len(raw) != scheme.digest_size:
            problems.append(
                f"{_excerpt(shown)} has {len(raw)} bytes, an {scheme.algorithm} signature has "
                f"{scheme.digest_size}"
            )
        else:
            decoded.append((scheme, shown, raw))
    if not decoded:
        if not problems:
            raise MalformedSignature(sig.header, "no signature item, only the timestamp")
        lead = "" if len(problems) == 1 else f"no usable signature among {len(problems)}: "
        raise MalformedSignature(sig.header, lead + "; ".join(problems))
    return decoded


def _decode(scheme: Scheme, text: str) -> bytes | None:
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


def _timestamp_text(sig: SignatureScheme, value: str, header: Callable[[str], str]) -> str:
    spec = sig.timestamp
    assert spec is not None
    if spec.header is not None:
        return header(spec.header)
    texts = [text for label, text in parse_items(sig, value) if label == spec.item]
    if not texts:
        raise MissingHeader(spec.where)
    if len(texts) > 1:
        raise MalformedTimestamp(spec.where, f"{len(texts)} timestamp items")
    return texts[0]


@dataclass(frozen=True)
class _Key:
    """A secret made ready to verify with: its scheme and its HMAC key or public key."""

    scheme: Scheme
    shared: bytes | None = None
    public: Ed25519PublicKey | None = None

    def matches(self, raw: bytes, content: bytes, expected: bytes | None) -> bool:
        if self.public is not None:
            try:
                self.public.verify(raw, content)
            except InvalidSignature:
                return False
            return True
        assert expected is not None
        return hmac.compare_digest(raw, expected)


def verifying_keys(signature: SignatureScheme, secrets: Secrets) -> tuple[_Key, ...]:
    """Every secret made ready to verify with, or ``InvalidSecret`` for the first one no
    scheme of the profile takes: decided before any header is read, so the outcome never
    depends on what a request carries."""
    keys: list[_Key] = []
    for secret in _as_tuple(secrets):
        scheme = scheme_for(signature, secret)
        if scheme is None:
            raise InvalidSecret("no scheme of this profile takes an Ed25519 key")
        if scheme.asymmetric:
            keys.append(_Key(scheme=scheme, public=_public_key(scheme, secret)))
        else:
            keys.append(_Key(scheme=scheme, shared=derive_key(scheme, secret)))
    return tuple(keys)


def verify(
    profile: Profile,
    secrets: Secrets,
    body: bytes,
    headers: HeaderSource,
    *,
    now: float | None = None,
    tolerance: float | None = None,
    both_ways: bool | None = None,
) -> Verification:
    """Verify a delivery over its raw bytes, or raise a ``VerificationError`` naming what failed.

    ``secrets`` may hold several secrets (rotation): the delivery verifies when any item
    under the profile's labels matches any secret. Order: required headers, then parsing,
    then the signatures (constant-time), then the timestamp tolerance, so a stale but
    authentic delivery is reported as stale. ``both_ways`` overrides the profile's
    tolerance direction (``True`` also refuses timestamps too far ahead).
    """
    sig = profile.signature
    keys = verifying_keys(sig, secrets)
    lowered = {k.lower(): v for k, v in headers.items()}

    def header(name: str) -> str:
        value = lowered.get(name.lower())
        if value is None:
            raise MissingHeader(name)
        return value

    value = header(sig.header)
    candidates = _candidates(sig, value)
    ts_text = ""
    moment: datetime | None = None
    if sig.timestamp is not None:
        ts_text = _timestamp_text(sig, value, header)
        moment = parse_timestamp(sig.timestamp, ts_text)
    id_text = header(sig.id_header) if sig.id_header else ""
    content = _signed_content(sig, body, {"timestamp": ts_text, "id": id_text})

    matched: tuple[Scheme, str] | None = None
    for key in keys:
        expected = None
        if key.shared is not None:  # one digest per secret, however many items
            expected = hmac.digest(key.shared, content, key.scheme.hash_name)
        for scheme, text, raw in candidates:
            if scheme is key.scheme and key.matches(raw, content, expected):
                matched = matched or (scheme, text)
    if matched is None:
        secret = "secrets" if len(keys) > 1 else "secret"
        raise SignatureMismatch(sig.header, f"no signature matches the body and {secret}")

    if sig.timestamp is not None and moment is not None:
        spec = sig.timestamp
        limit = float(spec.tolerance_seconds if tolerance is None else tolerance)
        current = time.time() if now is None else now
        skew = current - moment.timestamp()
        check_future = spec.direction == "both" if both_ways is None else both_ways
        # Written to fail closed: a NaN clock or tolerance makes both comparisons false, and
        # must not switch replay protection off; nor must a clock at minus infinity where only
        # the age is checked.
        if not (skew <= limit and math.isfinite(current)):
            raise StaleTimestamp(spec.where, skew_seconds=skew, tolerance_seconds=limit)
        if check_future and not skew >= -limit:
            raise FutureTimestamp(spec.where, skew_seconds=skew, tolerance_seconds=limit)
    scheme, text = matched
    return Verification(profile=profile.name, signature=text, label=scheme.label, timestamp=moment)


@dataclass(frozen=True)
class Verifier:
    """A verifier bound to one profile and its secrets, for use inside any web framework.

    ``clock`` returns Unix seconds; inject a fake one in tests.
    """

    profile: Profile
    secret: Secrets = field(repr=False)
    tolerance: float | None = None
    clock: Callable[[], float] = time.time
    both_ways: bool | None = None

    def __call__(self, body: bytes, headers: HeaderSource) -> Verification:
        return verify(
            self.profile,
            self.secret,
            body,
            headers,
            now=self.clock(),
            tolerance=self.tolerance,
            both_ways=self.both_ways,
        )
