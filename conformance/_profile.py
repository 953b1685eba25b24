"""Provider profiles: the frozen, typed form of ``spec/profiles/*.yaml``.

A profile file is validated against ``schemas/profile.schema.json`` and a few cross-field
rules before it becomes a ``Profile``. Code reads the profile's fields; it never branches on
a provider's name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator

from conformance._errors import ProfileError, UnknownEventType
from conformance._requirements import Requirement, apply_requirements
from conformance._resources import schemas_dir, spec_dir

__all__ = [
    "Decision",
    "DeliveryPolicy",
    "Envelope",
    "Event",
    "Header",
    "KeySpec",
    "Limits",
    "Management",
    "Pagination",
    "Profile",
    "Route",
    "Scheme",
    "SignatureScheme",
    "TimestampSpec",
    "list_profiles",
    "load_profile",
    "resolve_pointer",
]

_PLACEHOLDER = re.compile(r"\{(body|timestamp|id)\}")
#: An event type of an open catalogue: full-stop delimited words.
_OPEN_TYPE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")


def resolve_pointer(document: object, pointer: str) -> object:
    """The value at a JSON pointer (RFC 6901), or raise ``KeyError`` naming the pointer."""
    node = document
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(pointer)
    return node


@dataclass(frozen=True, kw_only=True)
class Event:
    name: str
    description: str
    category: str
    schema: str
    follows: str | None = None


@dataclass(frozen=True, kw_only=True)
class Header:
    name: str
    required: bool
    value: str | None = None
    pattern: str | None = None
    equals: str | None = None
    generate: str | None = None
    description: str | None = None


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """Where a delivery carries its parts. The event type and id are either at a JSON pointer
    into the body or in a header (GitHub's ``X-GitHub-Event``); ``data`` is a pointer, the
    empty pointer meaning the whole body."""

    schema: str
    data: str
    content_type: str
    event_type: str | None = None
    event_type_header: str | None = None
    event_id: str | None = None
    event_id_header: str | None = None


@dataclass(frozen=True, kw_only=True)
class TimestampSpec:
    """The signed timestamp: in its own ``header``, or the ``item`` of the signature header
    under that label (Stripe's ``t=``). ``direction`` ``past`` checks only the age."""

    format: Literal["unix", "iso8601", "unix-or-iso8601"]
    tolerance_seconds: int
    header: str | None = None
    item: str | None = None
    emit: Literal["unix", "iso8601"] = "unix"
    direction: Literal["both", "past"] = "both"
    signature_header: str = ""

    @property
    def where(self) -> str:
        """Where the timestamp is, for messages: its header, or the item of the signature
        header."""
        if self.header is not None:
            return self.header
        return f"{self.signature_header} item {self.item!r}"


@dataclass(frozen=True, kw_only=True)
class KeySpec:
    """How the key is derived from the secret the user holds: for HMAC the secret's UTF-8
    bytes, or base64 after ``strip_prefix``; for Ed25519 base64 after ``private_prefix``
    (a 32-byte seed) or ``public_prefix`` (a 32-byte public key)."""

    encoding: Literal["utf-8", "base64"]
    strip_prefix: str = ""
    private_prefix: str | None = None
    public_prefix: str | None = None


@dataclass(frozen=True, kw_only=True)
class Scheme:
    """One signature scheme, under its label in the signature header (``v1``, ``sha256``;
    ``None`` where items carry no label)."""

    label: str | None
    algorithm: Literal["hmac-sha256", "hmac-sha512", "hmac-sha1", "ed25519"]
    encoding: Literal["hex", "base64"]
    key: KeySpec
    header: str | None = None

    @property
    def asymmetric(self) -> bool:
        return self.algorithm == "ed25519"

    @property
    def hash_name(self) -> str:
        return self.algorithm.removeprefix("hmac-")

    @property
    def digest_size(self) -> int:
        """Bytes in a signature: the HMAC digest, or 64 for Ed25519."""
        return 64 if self.asymmetric else hashlib.new(self.hash_name).digest_size


@dataclass(frozen=True, kw_only=True)
class SignatureScheme:
    """The profile's signature section: one header of items (``t=…,v1=…``; ``v1,… v1a,…``;
    ``sha256=…``), the schemes by label, what is signed, and where the timestamp is."""

    header: str
    item_separator: str | None
    label_separator: str | None
    signed_content: str
    schemes: tuple[Scheme, ...]
    timestamp: TimestampSpec | None = None
    id_header: str | None = None
    legacy: tuple[Scheme, ...] = ()

    @property
    def primary(self) -> Scheme:
        """The scheme a plain shared secret signs with: the first HMAC one, else the first."""
        return next((s for s in self.schemes if not s.asymmetric), self.schemes[0])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(s.label for s in self.schemes if s.label is not None)

    @property
    def multiple(self) -> bool:
        """Whether one header can carry several signatures (key rotation)."""
        return self.item_separator is not None

    def scheme(self, label: str | None) -> Scheme | None:
        return next((s for s in self.schemes if s.label == label), None)

    @property
    def content_parts(self) -> tuple[str, ...]:
        """The template split into literals and placeholder names, alternating."""
        return tuple(_PLACEHOLDER.split(self.signed_content))


@dataclass(frozen=True, kw_only=True)
class DeliveryPolicy:
    """How a sender delivers: the request, what counts as success, what is retried, and
    when. ``schedule_seconds`` has one entry per attempt (the first is 0); ``schedule_from``
    says what entry n counts from (see ``due``)."""

    method: str
    timeout_seconds: float
    success_classes: frozenset[str]
    retry_classes: frozenset[str]
    retry_on_timeout: bool
    retry_on_connection_error: bool
    retry_on_tls_error: bool
    schedule_seconds: tuple[float, ...]
    max_attempts: int
    after_last_attempt: str
    auto_disable_after_hours: float | None
    follow_redirects: bool
    schedule_from: Literal["previous-attempt", "first-attempt"] = "previous-attempt"
    #: Answers that end the delivery and disable the endpoint (Standard Webhooks' 410).
    disable_on_status: frozenset[int] = frozenset()
    #: Whether a failed attempt's Retry-After delays the next one at least that long.
    honours_retry_after: bool = False

    def is_success(self, status: int) -> bool:
        return f"{status // 100}xx" in self.success_classes

    def retries_status(self, status: int) -> bool:
        return f"{status // 100}xx" in self.retry_classes

    def due(
        self, number: int, *, first_started: float, previous_ended: float, scale: float = 1.0
    ) -> float:
        """When attempt ``number + 1`` is due, once ``number`` attempts (at least 1, fewer
        than ``max_attempts``) were made, on the clock of the two times given.

        ``previous-attempt``: ``schedule_seconds[number] * scale`` after attempt ``number``
        ended (``previous_ended``: its answer, its timeout or its connection error).
        ``first-attempt``: that long after attempt 1 started (``first_started``), but never
        before ``previous_ended``: attempts do not overlap, so one whose offset passed while
        the attempt before it was still waiting is due as soon as that one ends.
        """
        if not 1 <= number < len(self.schedule_seconds):
            raise ValueError(
                f"no attempt is due after attempt {number}: the schedule has "
                f"{len(self.schedule_seconds)} attempts, numbered from 1"
            )
        wait = self.schedule_seconds[number] * scale
        if self.schedule_from == "first-attempt":
            return max(first_started + wait, previous_ended)
        return previous_ended + wait


@dataclass(frozen=True, kw_only=True)
class Limits:
    payload_bytes: int
    webhooks_per_site: int | None = None
    events_per_webhook: int | None = None


@dataclass(frozen=True, kw_only=True)
class Route:
    operation: str
    method: str
    path: str
    status: int
    response: str
    request: str | None = None
    query: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Pagination:
    """Page-numbered lists: the query parameters and the pointer to the total."""

    page: str
    per_page: str
    total: str


@dataclass(frozen=True, kw_only=True)
class Management:
    base_path: str
    auth: str
    id_prefixes: Mapping[str, str]
    secret_shown_once: bool
    routes: tuple[Route, ...]
    #: The create body's and the endpoint object's members: ``id``, ``url``, ``events`` and,
    #: for site-scoped APIs, ``site``.
    fields: Mapping[str, str]
    #: operation -> JSON pointer to what its answer holds (the endpoint, the list, ...).
    answers: Mapping[str, str]
    secret_prefix: str | None = None
    secret_request_field: str | None = None
    secret_response_field: str = "secret"
    error_schema: str | None = None
    site_query: str | None = None
    pagination: Pagination | None = None

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(route.operation for route in self.routes)

    def route(self, operation: str) -> Route:
        for route in self.routes:
            if route.operation == operation:
                return route
        raise KeyError(operation)


@dataclass(frozen=True, kw_only=True)
class Decision:
    topic: str
    quote: str
    decision: str
    also: str | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Profile:
    """One provider's webhook contract. Profiles compare and hash by identity: loading the
    same file twice returns the same object."""

    name: str
    title: str
    document: str
    path: Path
    schema_roots: tuple[Path, ...]
    envelope: Envelope
    idempotency_key: str | None
    duplicate_response: object
    events: tuple[Event, ...]
    headers: tuple[Header, ...]
    signature: SignatureScheme
    delivery: DeliveryPolicy
    limits: Limits
    management: Management | None
    decisions: tuple[Decision, ...]
    requirements: tuple[Requirement, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    idempotency_header: str | None = None
    open_catalogue: bool = False

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(event.name for event in self.events)

    @property
    def features(self) -> frozenset[str]:
        """Features that decide which cross-provider requirements apply."""
        found = {"idempotency-key"}
        sig = self.signature
        if sig.timestamp is not None:
            found.add("timestamped")
        if sig.id_header is not None:
            found.add("signed-id")
        if sig.multiple:
            found.add("multiple-signatures")
        if sig.legacy:
            found.add("legacy-signature")
        if any(event.follows for event in self.events):
            found.add("ordered-events")
        if self.management is not None:
            found.add("management-api")
        if self.limits.webhooks_per_site or self.limits.events_per_webhook:
            found.add("has-limits")
        return frozenset(found)

    def event(self, name: object) -> Event:
        for event in self.events:
            if event.name == name:
                return event
        raise UnknownEventType(self.name, name, self.event_names)

    def event_name(self, name: object) -> str:
        """``name`` if it is an event type of this profile: a catalogued one, or, for an open
        catalogue (Standard Webhooks), any dot-delimited type. Else ``UnknownEventType``."""
        if isinstance(name, str) and (
            name in self.event_names or (self.open_catalogue and _OPEN_TYPE.fullmatch(name))
        ):
            return name
        raise UnknownEventType(self.name, name, self.event_names)

    def requirement(self, requirement_id: str) -> Requirement:
        for requirement in self.requirements:
            if requirement.id == requirement_id:
                return requirement
        raise KeyError(requirement_id)

    def event_type_of(self, payload: object, headers: Mapping[str, str] | None = None) -> object:
        """The event type a delivery declares (in its body or, for profiles that carry it in a
        header, in ``headers``), or None when it has none."""
        if self.envelope.event_type_header is not None:
            return _header(headers, self.envelope.event_type_header)
        assert self.envelope.event_type is not None
        try:
            return resolve_pointer(payload, self.envelope.event_type)
        except KeyError:
            return None

    def idempotency_value(
        self, body: bytes, payload: object, headers: Mapping[str, str] | None = None
    ) -> str | None:
        """The key a receiver deduplicates on, or None when the delivery lacks it."""
        if self.idempotency_header is not None:
            return _header(headers, self.idempotency_header)
        if self.idempotency_key == "body-digest":
            return hashlib.sha256(body).hexdigest()
        assert self.idempotency_key is not None
        try:
            value = resolve_pointer(payload, self.idempotency_key)
        except KeyError:
            return None
        if isinstance(value, str):
            return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value by case-insensitive name, or None."""
    if headers is None:
        return None
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


# ---------------------------------------------------------------------------------------
# Loading


@cache
def _meta_validator() -> Draft202012Validator:
    meta = json.loads((schemas_dir() / "profile.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(meta)


def list_profiles() -> tuple[str, ...]:
    """Names of the bundled profiles, sorted."""
    return tuple(sorted(p.stem for p in (spec_dir() / "profiles").glob("*.yaml")))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a bundled profile by name (``"zaits"``) or any profile file by path."""
    path = _locate(name_or_path)
    return _load_path(path.resolve())


def _locate(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml"))
    )
    if looks_like_path:
        path = Path(text)
        if not path.exists():
            raise ProfileError(f"profile file {text!r} does not exist")
        if not path.is_file():
            raise ProfileError(f"profile {text!r} is not a file")
        return path
    path = spec_dir() / "profiles" / f"{text}.yaml"
    if not path.is_file():
        known = ", ".join(list_profiles())
        raise ProfileError(
            f"unknown profile {text!r}; known profiles: {known} (or give a path to a .yaml file)"
        )
    return path


@cache
def _load_path(path: Path) -> Profile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from exc
    errors = sorted(_meta_validator().iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise ProfileError(f"profile {path} is invalid at {where}: {first.message}")
    return _build(raw, path)


def _schema_roots(path: Path) -> tuple[Path, ...]:
    roots: list[Path] = []
    for parent in list(path.parents)[:4]:
        candidate = parent / "schemas"
        if candidate.is_dir() and candidate not in roots:
            roots.append(candidate)
            break
    bundled = schemas_dir()
    if bundled not in roots:
        roots.append(bundled)
    return tuple(roots)


def _build(raw: Mapping[str, Any], path: Path) -> Profile:
    name = raw["name"]
    signature = _signature(raw["signature"])
    delivery = _delivery(raw["delivery"], path)
    m = raw["management"]
    management = None
    if m is not None:
        management = Management(
            base_path=m["base_path"],
            auth=m["auth"],
            id_prefixes=dict(m["id_prefixes"]),
            secret_shown_once=m["secret"]["shown_once"],
            secret_prefix=m["secret"].get("prefix"),
            secret_request_field=m["secret"].get("request_field"),
            secret_response_field=m["secret"].get("response_field", "secret"),
            error_schema=m.get("error_schema"),
            fields=dict(m["fields"]),
            answers=dict(m["answers"]),
            site_query=m.get("site_query"),
            pagination=Pagination(**m["pagination"]) if m.get("pagination") else None,
            routes=tuple(Route(**{**r, "query": tuple(r.get("query", ()))}) for r in m["routes"]),
        )
    profile = Profile(
        name=name,
        title=raw["title"],
        document=raw["document"],
        path=path,
        schema_roots=_schema_roots(path),
        envelope=_envelope(raw["envelope"]),
        idempotency_key=_pointer_or_none(raw["idempotency"]["key"]),
        idempotency_header=_header_or_none(raw["idempotency"]["key"]),
        open_catalogue=raw.get("open_catalogue", False),
        duplicate_response=raw["idempotency"].get("duplicate_response"),
        events=tuple(Event(**e) for e in raw["events"]),
        headers=tuple(Header(**h) for h in raw["headers"]),
        signature=signature,
        delivery=delivery,
        limits=Limits(**raw["limits"]),
        management=management,
        decisions=tuple(Decision(**x) for x in raw["decisions"]),
        requirements=(),
        raw=raw,
    )
    _check_consistency(profile)
    requirements = apply_requirements(
        name, profile.features, raw["requirements"], raw.get("levels", ())
    )
    return Profile(**{**_fields(profile), "requirements": requirements})


def _delivery(d: Mapping[str, Any], path: Path) -> DeliveryPolicy:
    disable = d["auto_disable"]
    schedule = tuple(float(s) for s in d["schedule_seconds"])
    schedule_from = d.get("schedule_from", "previous-attempt")
    if schedule_from == "first-attempt" and list(schedule) != sorted(schedule):
        raise ProfileError(
            f"profile {path} is inconsistent: delivery.schedule_seconds "
            f"{list(d['schedule_seconds'])} decreases, but under schedule_from first-attempt "
            "its entries are offsets from the first attempt"
        )
    return DeliveryPolicy(
        method=d["method"],
        timeout_seconds=float(d["timeout_seconds"]),
        success_classes=frozenset(d["success"]["status_classes"]),
        retry_classes=frozenset(d["retry_on"]["status_classes"]),
        retry_on_timeout=d["retry_on"]["timeout"],
        retry_on_connection_error=d["retry_on"]["connection_error"],
        retry_on_tls_error=d["retry_on"].get("tls_error", False),
        schedule_seconds=schedule,
        schedule_from=schedule_from,
        max_attempts=d["max_attempts"],
        after_last_attempt=d["after_last_attempt"],
        auto_disable_after_hours=disable["after_hours_failing"] if disable else None,
        follow_redirects=d["follow_redirects"],
        disable_on_status=frozenset(d.get("disable_on_status", ())),
        honours_retry_after=d.get("honours_retry_after", False),
    )


def _pointer_or_none(value: object) -> Any:
    return value if isinstance(value, str) else None


def _header_or_none(value: object) -> str | None:
    return value["header"] if isinstance(value, Mapping) else None


def _envelope(raw: Mapping[str, Any]) -> Envelope:
    return Envelope(
        schema=raw["schema"],
        data=raw["data"],
        content_type=raw["content_type"],
        event_type=_pointer_or_none(raw["event_type"]),
        event_type_header=_header_or_none(raw["event_type"]),
        event_id=_pointer_or_none(raw.get("event_id")),
        event_id_header=_header_or_none(raw.get("event_id")),
    )


def _scheme(raw: Mapping[str, Any]) -> Scheme:
    return Scheme(
        label=raw.get("label"),
        algorithm=raw["algorithm"],
        encoding=raw["encoding"],
        key=KeySpec(**raw["key"]),
        header=raw.get("header"),
    )


def _signature(raw: Mapping[str, Any]) -> SignatureScheme:
    ts = raw["timestamp"]
    return SignatureScheme(
        header=raw["header"],
        item_separator=raw["items"]["separator"],
        label_separator=raw["items"]["label_separator"],
        signed_content=raw["signed_content"],
        schemes=tuple(_scheme(s) for s in raw["schemes"]),
        timestamp=TimestampSpec(**ts, signature_header=raw["header"]) if ts else None,
        id_header=raw.get("id_header"),
        legacy=tuple(_scheme(s) for s in raw.get("legacy", ())),
    )


def _fields(profile: Profile) -> dict[str, Any]:
    return {f: getattr(profile, f) for f in profile.__dataclass_fields__}


def _signature_problems(sig: SignatureScheme) -> list[str]:
    problems: list[str] = []
    placeholders = set(sig.content_parts[1::2])
    if "timestamp" in placeholders and sig.timestamp is None:
        problems.append("signed_content uses {timestamp} but the scheme has no timestamp")
    if sig.timestamp is not None and "timestamp" not in placeholders:
        problems.append("the scheme has a timestamp but signed_content does not sign it")
    if "id" in placeholders and not sig.id_header:
        problems.append("signed_content uses {id} but no id_header is named")
    labels = [s.label for s in sig.schemes]
    if sig.label_separator is None:
        if len(sig.schemes) != 1 or labels[0] is not None:
            problems.append(
                "items without labels (label_separator null) take one scheme, unlabelled"
            )
        if sig.timestamp is not None and sig.timestamp.item is not None:
            problems.append("a timestamp item needs labelled items (label_separator)")
    elif None in labels:
        problems.append("every scheme needs a label when items are labelled")
    if len(set(labels)) != len(labels):
        problems.append("scheme labels repeat")
    if sig.timestamp is not None and sig.timestamp.item in labels:
        problems.append(f"the timestamp item {sig.timestamp.item!r} is also a scheme label")
    if sig.timestamp is not None and sig.timestamp.item is not None and not sig.item_separator:
        problems.append("a timestamp item needs an item separator")
    for scheme in (*sig.schemes, *sig.legacy):
        if scheme.asymmetric and not (scheme.key.private_prefix and scheme.key.public_prefix):
            problems.append(f"the {scheme.algorithm} scheme needs private_prefix and public_prefix")
    return problems


def _check_consistency(profile: Profile) -> None:
    """Rules the meta-schema cannot express."""
    problems: list[str] = []
    names = profile.event_names
    if len(set(names)) != len(names):
        problems.append("event names repeat")
    header_names = {h.name.lower() for h in profile.headers}
    sig = profile.signature
    declared = [sig.header, *(s.header for s in sig.legacy if s.header)]
    declared += [h for h in (sig.id_header, sig.timestamp and sig.timestamp.header) if h]
    env = profile.envelope
    declared += [h for h in (env.event_type_header, env.event_id_header) if h]
    declared += [profile.idempotency_header] if profile.idempotency_header else []
    for name in declared:
        if name.lower() not in header_names:
            problems.append(f"header {name!r} is not declared under headers")
    problems += _signature_problems(sig)
    if len(profile.delivery.schedule_seconds) != profile.delivery.max_attempts:
        problems.append(
            f"delivery.schedule_seconds has {len(profile.delivery.schedule_seconds)} entries "
            f"for max_attempts {profile.delivery.max_attempts}"
        )
    topics = {d.topic for d in profile.decisions}
    for change in profile.raw.get("levels", ()):
        if change["decision"] not in topics:
            problems.append(
                f"levels: {change['key']} names decision {change['decision']!r}, which is not "
                "a topic under decisions"
            )
    for event in profile.events:
        if event.follows is not None and event.follows not in names:
            problems.append(f"event {event.name!r} follows unknown event {event.follows!r}")
    refs = [profile.envelope.schema, *(e.schema for e in profile.events)]
    if profile.management is not None:
        refs += [r.response for r in profile.management.routes]
        refs += [r.request for r in profile.management.routes if r.request]
        if profile.management.error_schema:
            refs.append(profile.management.error_schema)
    for ref in refs:
        if not any((root / ref).is_file() for root in profile.schema_roots):
            problems.append(f"schema {ref!r} does not exist under {profile.schema_roots[0]}")
    if problems:
        raise ProfileError(f"profile {profile.path} is inconsistent: " + "; ".join(problems))
