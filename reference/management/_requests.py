"""Reading management requests: bodies, query parameters and the fields they carry.

Every mistake a client can make raises ``Refusal`` with an error kind of
``_dialects.STATUSES`` (all 4xx), never a lower-level exception: a body that is not UTF-8
JSON, or not an object; a member of the wrong type (the route's request schema says which
members there are and what they hold); an event type outside the catalogue; a value longer
than the bounds below; a URL the rules refuse. The rules for a URL:

* ``https://`` to a host name or a public address: accepted;
* ``https://`` to a loopback, private or otherwise reserved IP literal, or to ``localhost``:
  accepted only with ``allow_private_targets`` (the SSRF guard also checks every resolved
  address when connecting, so a name that points inward is refused then);
* ``http://``: accepted only with ``allow_private_targets`` and only to such a local target
  (a suite's capture server); a public ``http://`` URL is always refused, HTTPS only.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from starlette.requests import Request

from conformance import ConformanceError, Profile, UnknownEventType, sign
from conformance._schemas import json_path, schema_validator
from reference.management._dialects import Pagination
from reference.sender import blocked_reason, literal_block

__all__ = [
    "MAX_BODY",
    "MAX_DESCRIPTION",
    "MAX_METADATA",
    "MAX_SECRET",
    "MAX_URL",
    "Refusal",
    "check_events",
    "check_metadata",
    "check_schema",
    "check_secret",
    "check_text",
    "check_url",
    "choice",
    "flag",
    "invalid",
    "page",
    "parse_object",
    "read_body",
]

#: Bounds on what a request may carry (a longer value is refused, never truncated).
MAX_BODY = 64 * 1024
MAX_URL = 2048
MAX_DESCRIPTION = 1024
MAX_METADATA = 8192
MAX_SECRET = 512
#: The most of a client's value quoted back in a message.
_SHOWN = 120
_HOST = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+")
_PAGE_MAX = 1_000_000


class Refusal(Exception):
    """A request refused: the error kind (``_dialects.STATUSES``) and the values its message
    is formatted with."""

    def __init__(self, kind: str, **values: object) -> None:
        super().__init__(kind, values)
        self.kind = kind
        self.values = values


def invalid(detail: str) -> Refusal:
    return Refusal("invalid", detail=detail)


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused (``too_large``) as soon as it passes ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Refusal("too_large", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal("too_large", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def parse_object(raw: bytes, *, empty: bool = False) -> dict[str, Any]:
    """The JSON object a body holds; with ``empty``, no body at all is ``{}``."""
    if empty and not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError as exc:
        raise invalid(f"the body is not UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise invalid("the body's JSON is nested too deeply") from None
    except ValueError as exc:
        raise invalid(f"the body is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise invalid(f"the body must be a JSON object, not {type(value).__name__}")
    return value


def _local(url: httpx.URL) -> bool:
    """Whether the host is ``localhost`` or an IP literal the SSRF guard would refuse."""
    host = url.host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return blocked_reason(ip) is not None


def check_url(value: object, *, allow_private_targets: bool) -> str:
    """A webhook URL the rules of the module docstring accept."""
    if not isinstance(value, str) or not value:
        raise invalid("url must be a non-empty string")
    if len(value) > MAX_URL:
        raise invalid(f"url is longer than {MAX_URL} characters")
    if not value.isascii() or not value.isprintable():
        raise invalid("url must be printable ASCII (percent-encode anything else)")
    try:
        url = httpx.URL(value)
        port = url.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise invalid(f"url is not a URL: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise Refusal("https")
    if not url.host or not _HOST.fullmatch(url.raw_host.decode("ascii", "replace")):
        raise invalid(f"url has no valid host: {_shown(value)}")
    if port is not None and not 0 < port < 65536:
        raise invalid(f"url has no valid port: {port}")
    local = _local(url)
    if url.scheme == "http":
        if not (allow_private_targets and local):
            raise Refusal("https")
    elif not allow_private_targets:
        reason = literal_block(url) or ("a loopback host name" if local else None)
        if reason is not None:
            raise Refusal("blocked", detail=f"{reason} (allowed only for local testing)")
    return value


def check_events(value: object, profile: Profile, *, limit: int | None) -> tuple[str, ...]:
    """Subscribed event types: a non-empty array of the profile's types, at most ``limit``.
    Repeats are kept once (the request schema says whether a repeat is refused instead)."""
    if not isinstance(value, list) or not value:
        raise invalid("events must be a non-empty array of event types")
    for item in value:
        if not isinstance(item, str):
            raise invalid(f"events must hold strings, not {_shown(item)}")
        try:
            profile.event_name(item)
        except UnknownEventType:
            raise Refusal("event_type", value=_shown(item)) from None
    if limit is not None and len(value) > limit:
        raise Refusal("too_many_events", limit=limit)
    return tuple(dict.fromkeys(value))


@cache
def _validator(profile: Profile, schema: str) -> Draft202012Validator:
    return schema_validator(profile, schema)


def check_schema(profile: Profile, schema: str, body: Mapping[str, Any]) -> None:
    """Refuse a body the route's request schema does not accept, naming the first error."""
    error = best_match(_validator(profile, schema).iter_errors(dict(body)))
    if error is not None:
        raise invalid(f"{json_path(error)}: {_shown(error.message)}")


def check_text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    if len(value) > limit:
        raise invalid(f"{name} is longer than {limit} characters")
    return value


def check_metadata(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("metadata must be a JSON object")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA:
        raise invalid(f"metadata is larger than {MAX_METADATA} bytes")
    return value


def check_secret(profile: Profile, value: object, field: str) -> str:
    """A client-chosen signing secret: one the profile can sign with."""
    if not isinstance(value, str) or not value:
        raise invalid(f"{field} must be a non-empty string")
    if len(value) > MAX_SECRET:
        raise invalid(f"{field} is longer than {MAX_SECRET} characters")
    try:
        value.encode("utf-8")
        sign(profile, value, b"", now=0)
    except (ConformanceError, ValueError) as exc:
        raise invalid(f"{field} cannot sign for this profile: {exc}") from None
    return value


def page(params: Mapping[str, str], pagination: Pagination) -> tuple[int, int]:
    """``(page, per_page)`` from the query, each defaulted and bounded."""
    number = _whole(params.get(pagination.page), pagination.page, 1, _PAGE_MAX)
    size = _whole(params.get(pagination.per_page), pagination.per_page, pagination.default,
                  pagination.maximum)  # fmt: skip
    return number, size


def _whole(text: str | None, name: str, default: int, maximum: int) -> int:
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= maximum:
        raise invalid(f"{name} must be a whole number from 1 to {maximum}, not {_shown(text)}")
    return int(text)


def flag(params: Mapping[str, str], name: str) -> bool | None:
    """A ``true``/``false`` query parameter, or None when absent."""
    text = params.get(name)
    if text is None:
        return None
    if text not in ("true", "false"):
        raise invalid(f"{name} must be true or false, not {_shown(text)}")
    return text == "true"


def choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    """A query parameter that must be one of ``allowed``, or None when absent."""
    text = params.get(name)
    if text is None:
        return None
    if text not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}, not {_shown(text)}")
    return text
