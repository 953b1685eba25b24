"""Payloads from a profile's envelope schema: the triggered ``data`` at the envelope's data
pointer, the event type and a fresh event id at theirs, and every other required property of
the envelope filled with a value its schema accepts.

Nothing here knows a provider. Values come from the schema: ``const``, ``enum`` or
``default`` first; then by type and format: a date-time is the event's creation time in
RFC 3339 with milliseconds, an integer that the schema bounds as Unix seconds (a ``maximum``
of 253402300799, the last second of 9999, or "Unix" in its description) is the creation time
in seconds, other numbers their minimum, booleans false, strings a random token that
satisfies the property's pattern (``^evt_[A-Za-z0-9_]+$`` gives ``evt_`` and hex), objects
their own required properties, arrays empty.

An event id is made the same way from the schema of the property at the envelope's event id
pointer; where the profile carries the id in a header (``webhook-id``, ``X-GitHub-Delivery``),
from that header's ``generate`` template; where the profile has no event id at all, the
sender's own ``evt_`` id names the event in its outbox and trigger answers only.
"""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from conformance import Profile
from conformance._schemas import BASE_URI, resolved_schema
from conformance._signing import fresh_header_value

__all__ = ["EnvelopeBuilder", "EnvelopeError", "default_value"]

_UNIX_MAX = 253402300799
_META = re.compile(r"[\\^$.|?*+()\[\]{}]")
_NO_VALUE = object()


class EnvelopeError(ValueError):
    """The envelope schema asks for a value no generic default satisfies."""


def _parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def _merged(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with its ``allOf`` branches folded in (required and properties joined)."""
    out: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for branch in schema.get("allOf", ()):
        if not isinstance(branch, Mapping):
            continue
        inner = _merged(branch)
        out["required"] = [*out.get("required", ()), *inner.get("required", ())]
        out["properties"] = {**inner.get("properties", {}), **out.get("properties", {})}
        for key, value in inner.items():
            out.setdefault(key, value)
    return out


def _schema_at(schema: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    node = _merged(schema)
    for part in _parts(pointer):
        child = node.get("properties", {}).get(part)
        if not isinstance(child, Mapping):
            return {}
        node = _merged(child)
    return node


def _rfc3339(moment: float) -> str:
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _is_unix_seconds(schema: Mapping[str, Any]) -> bool:
    description = str(schema.get("description", "")).lower()
    return schema.get("maximum") == _UNIX_MAX or "unix" in description


def _literal_prefix(pattern: str) -> str:
    """The literal text a pattern starts with (``^evt_[...]`` gives ``evt_``)."""
    body = pattern.removeprefix("^")
    match = _META.search(body)
    return body if match is None else body[: match.start()]


def _string(schema: Mapping[str, Any], moment: float) -> object:
    fmt = schema.get("format")
    if fmt == "date-time":
        return _rfc3339(moment)
    if fmt == "date":
        return _rfc3339(moment)[:10]
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt in ("uri", "url", "iri"):
        return "https://example.com/"
    if fmt == "email":
        return "webhooks@example.com"
    token = secrets.token_hex(12)
    minimum = int(schema.get("minLength", 0))
    pattern = schema.get("pattern")
    if not isinstance(pattern, str):
        return (token * (minimum // len(token) + 1))[: max(minimum, len(token))]
    prefix = _literal_prefix(pattern)
    for candidate in (prefix + token, prefix + str(uuid.uuid4()), token, str(uuid.uuid4())):
        if re.search(pattern, candidate) and len(candidate) >= minimum:
            return candidate
    return _NO_VALUE


def _number(schema: Mapping[str, Any], moment: float, integer: bool) -> object:
    if _is_unix_seconds(schema):
        return int(moment) if integer else float(int(moment))
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    value = 0 if low is None else low
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        value = schema["exclusiveMinimum"] + 1
    return int(value) if integer else float(value)


def default_value(schema: Mapping[str, Any], moment: float) -> object:
    """A value ``schema`` accepts, made from its own keywords (see the module docstring),
    or raise ``EnvelopeError``."""
    value = _default(_merged(schema), moment)
    if value is _NO_VALUE:
        raise EnvelopeError(f"no default value satisfies the schema {dict(schema)!r}")
    return value


def _default(schema: Mapping[str, Any], moment: float) -> object:
    if "const" in schema:
        return copy.deepcopy(schema["const"])
    if schema.get("enum"):
        return copy.deepcopy(schema["enum"][0])
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, ()):
            if isinstance(branch, Mapping):
                value = _default(_merged({**schema, **branch, key: ()}), moment)
                if value is not _NO_VALUE:
                    return value
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        kind = kinds[0]
    makers: dict[str | None, Callable[[], object]] = {
        "string": lambda: _string(schema, moment),
        "integer": lambda: _number(schema, moment, True),
        "number": lambda: _number(schema, moment, False),
        "boolean": lambda: False,
        "null": lambda: None,
        "array": lambda: [],
        "object": lambda: _object(schema, moment),
        # No type: an object where the schema describes one, else null (what {} accepts).
        None: lambda: (
            _object(schema, moment) if "properties" in schema or "required" in schema else None
        ),
    }
    maker = makers.get(kind if isinstance(kind, str) else None)
    return _NO_VALUE if maker is None else maker()


def _object(
    schema: Mapping[str, Any],
    moment: float,
    path: tuple[str, ...] = (),
    preset: Mapping[tuple[str, ...], object] | None = None,
) -> object:
    """The object's required properties; a value in ``preset`` (by path) is used as given,
    wherever it is, and no default is made for it."""
    out: dict[str, Any] = {}
    properties = schema.get("properties", {})
    for name in dict.fromkeys(schema.get("required", ())):
        here = (*path, name)
        if preset is not None and here in preset:
            out[name] = preset[here]
            continue
        inner = _merged(properties.get(name, {}))
        below = preset is not None and any(p[: len(here)] == here for p in preset)
        value = _object(inner, moment, here, preset) if below else _default(inner, moment)
        if value is _NO_VALUE:
            return _NO_VALUE
        out[name] = value
    return out


def _place(document: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    """Set ``value`` at ``path``, creating the objects on the way."""
    *parents, last = path
    node = document
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


class EnvelopeBuilder:
    """Makes one profile's event ids and payloads."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        env = profile.envelope
        self._schema = _merged(resolved_schema(profile, {"$ref": BASE_URI + env.schema}))
        self._id_schema = _schema_at(self._schema, env.event_id) if env.event_id else None
        # Fail at start-up, not on the first trigger, when the schema defeats the defaults.
        probe = self.new_event_id()
        if env.data != "":
            skeleton = _object(self._schema, 0.0, (), self._preset("", "", {}))
            if skeleton is _NO_VALUE:
                raise EnvelopeError(
                    f"profile {profile.name!r}: no generic value satisfies the required "
                    f"properties of {env.schema}"
                )
        pattern = (self._id_schema or {}).get("pattern")
        if isinstance(pattern, str) and not re.search(pattern, probe):
            raise EnvelopeError(f"profile {profile.name!r}: cannot make an event id")

    def _preset(
        self, event_type: str, event_id: str, data: Mapping[str, Any]
    ) -> dict[tuple[str, ...], object]:
        """The values the envelope's pointers hold, by path."""
        env = self.profile.envelope
        preset: dict[tuple[str, ...], object] = {}
        if env.event_type is not None:
            preset[tuple(_parts(env.event_type))] = event_type
        if env.event_id is not None:
            preset[tuple(_parts(env.event_id))] = event_id
        preset[tuple(_parts(env.data))] = copy.deepcopy(dict(data))
        return preset

    def new_event_id(self) -> str:
        env = self.profile.envelope
        if env.event_id_header is not None:
            return fresh_header_value(self.profile, env.event_id_header)
        if self._id_schema:
            value = _default(self._id_schema, 0.0)
            if isinstance(value, str) and value:
                return value
        return "evt_" + secrets.token_hex(12)

    def build(
        self, event_type: str, data: Mapping[str, Any], *, event_id: str, created_at: float
    ) -> dict[str, Any]:
        """The payload: the envelope's required properties, the type and id at their
        pointers, and ``data`` (unchanged) at the data pointer."""
        env = self.profile.envelope
        preset = self._preset(event_type, event_id, data)
        if env.data == "":
            payload: dict[str, Any] = copy.deepcopy(dict(data))
        else:
            skeleton = _object(self._schema, created_at, (), preset)
            if not isinstance(skeleton, dict):  # the constructor made one from this schema
                raise EnvelopeError(f"cannot fill the envelope {env.schema}")
            payload = skeleton
        # Pointers to optional properties (not filled above) are set here.
        for path, value in preset.items():
            if path:
                _place(payload, path, value)
        return payload
