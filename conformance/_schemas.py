"""JSON Schemas: a ``referencing`` registry over ``schemas/`` and validators per event.

Each schema file is registered under ``BASE_URI + <path relative to its root>``; its own
``$id`` must say the same (the specs tests check it). An event's payload schema is composed
from the profile's envelope schema and the event's data schema, so neither repeats the other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from conformance._errors import PayloadError, ProfileError
from conformance._profile import Profile

__all__ = [
    "BASE_URI",
    "FORMAT_CHECKER",
    "iter_payload_errors",
    "json_path",
    "payload_schema",
    "registry_for",
    "resolved_schema",
    "schema_validator",
    "validate_payload",
]

BASE_URI = "https://webhook-conformance.example/schemas/"
FORMAT_CHECKER = FormatChecker()
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time, checked without an extra dependency."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper())
    return True


@cache
def registry_for(roots: tuple[Path, ...]) -> Registry[Any]:
    """Every ``*.json`` under the roots; earlier roots win for the same relative path.

    A file that is not JSON, or a ``$ref`` that resolves nowhere, is a ``ProfileError``
    naming the file: schemas are user input when a provider is added with YAML and JSON.
    """
    resources: dict[str, Resource[Any]] = {}
    files: dict[str, Path] = {}
    for root in reversed(roots):
        for path in sorted(root.rglob("*.json")):
            uri = BASE_URI + path.relative_to(root).as_posix()
            try:
                contents = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise ProfileError(f"schema {path} is not readable JSON: {exc}") from None
            resources[uri] = Resource.from_contents(contents, default_specification=DRAFT202012)
            files[uri] = path
    registry = Registry().with_resources(resources.items()).crawl()
    for uri, resource in resources.items():
        for ref in _refs(resource.contents):
            try:
                registry.resolver(base_uri=uri).lookup(ref)
            except Unresolvable:
                raise ProfileError(
                    f"schema {files[uri]}: $ref {ref!r} resolves to nothing"
                ) from None
    return registry


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _nest(pointer: str | None, leaf: Mapping[str, Any]) -> dict[str, Any]:
    """A schema that applies ``leaf`` at a JSON pointer and requires the path to exist (the
    empty pointer: the whole document; ``None``: nothing, the value is not in the body)."""
    if pointer is None:
        return {}
    schema: dict[str, Any] = dict(leaf)
    for part in reversed(pointer.split("/")[1:]):
        schema = {"type": "object", "required": [part], "properties": {part: schema}}
    return schema


def payload_schema(profile: Profile, event_type: str) -> dict[str, Any]:
    """The whole-payload schema of one event: envelope, type constant (where the type is in
    the body) and data. An open catalogue's uncatalogued type has only the envelope's."""
    name = profile.event_name(event_type)
    parts = [
        {"$ref": BASE_URI + profile.envelope.schema},
        _nest(profile.envelope.event_type, {"const": name}),
    ]
    if name in profile.event_names:
        event = profile.event(name)
        parts.append(_nest(profile.envelope.data, {"$ref": BASE_URI + event.schema}))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URI}{profile.name}/composed/{name}.json",
        "allOf": [part for part in parts if part],
    }


def schema_validator(profile: Profile, schema: Mapping[str, Any] | str) -> Draft202012Validator:
    """A validator for a composed schema, or for a schema file given by relative path."""
    if isinstance(schema, str):
        schema = {"$ref": BASE_URI + schema}
    return Draft202012Validator(
        dict(schema), registry=registry_for(profile.schema_roots), format_checker=FORMAT_CHECKER
    )


@cache
def _event_validator(profile: Profile, event_type: str) -> Draft202012Validator:
    return schema_validator(profile, payload_schema(profile, event_type))


def json_path(error: ValidationError) -> str:
    """``$.data.signer.email`` style path of a validation error."""
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def iter_payload_errors(
    profile: Profile, payload: object, event_type: str | None = None
) -> Iterator[PayloadError]:
    """Every schema violation of a payload, each with its JSON path. Raises
    ``UnknownEventType`` when the type is neither given nor a catalogued one."""
    name = event_type if event_type is not None else profile.event_type_of(payload)
    validator = _event_validator(profile, profile.event_name(name))
    for error in sorted(validator.iter_errors(payload), key=lambda e: list(map(str, e.path))):
        for leaf in _leaves(error):
            yield PayloadError(leaf.message, path=json_path(leaf))


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """Descend through allOf/$ref wrappers to the errors that name a field."""
    if error.context:
        chosen = best_match(error.context)
        yield from _leaves(chosen)
    else:
        yield error


def validate_payload(profile: Profile, payload: object, event_type: str | None = None) -> None:
    """Raise the first ``PayloadError`` of a payload, or return when it is valid."""
    for error in iter_payload_errors(profile, payload, event_type):
        raise error


def resolved_schema(profile: Profile, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with every ``$ref`` inlined (for hypothesis-jsonschema, which does not
    follow remote references). The contract's schemas are not recursive."""
    registry = registry_for(profile.schema_roots)

    def inline(node: object, base: str, depth: int) -> object:
        if depth > 32:  # pragma: no cover - guards against a recursive schema
            raise PayloadError("schema is recursive; cannot inline it")
        if isinstance(node, dict):
            if "$ref" in node:
                target = registry.resolver(base_uri=base).lookup(node["$ref"])
                inner_base = target.resolver._base_uri or base
                merged = inline(target.contents, inner_base, depth + 1)
                rest = {k: v for k, v in node.items() if k != "$ref"}
                if rest:
                    return {"allOf": [merged, inline(rest, base, depth + 1)]}
                return merged
            inner = node.get("$id", base) if isinstance(node.get("$id"), str) else base
            return {
                k: inline(v, inner, depth + 1)
                for k, v in node.items()
                if k not in ("$id", "$schema", "$defs", "$comment")
            }
        if isinstance(node, list):
            return [inline(v, base, depth + 1) for v in node]
        return node

    result = inline(dict(schema), str(schema.get("$id", BASE_URI)), 0)
    assert isinstance(result, dict)
    return result
