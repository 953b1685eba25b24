"""Valid payloads for the checks, generated from the profile's schemas.

hypothesis-jsonschema draws a few examples per event with a fixed seed, so runs are
reproducible; the first one is the minimal instance of the schema. Before use, every payload
gets a fresh identity (the envelope's event id, the idempotency key, or for ``body-digest``
profiles some other field) so a receiver's deduplication never hides a failure, and a
receiver's store that outlives one run never sees an old id again.

Payloads are only changed in ways the schema still accepts: every candidate edit is
validated, and the first valid one wins.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import pathlib
import re
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from conformance._profile import Profile
from conformance._schemas import payload_schema, resolved_schema, schema_validator

__all__ = [
    "EXAMPLES_PER_EVENT",
    "NON_ASCII",
    "compact",
    "examples",
    "fresh_example",
    "freshen",
    "is_valid",
    "leaves",
    "padded",
    "parts",
    "refreshed",
    "set_at",
    "tampered",
    "with_text",
]

EXAMPLES_PER_EVENT = 4
#: Text outside ASCII: Latin-1, other BMP scripts, and a character beyond the BMP (which
#: ``\\u`` escapes as a surrogate pair).
NON_ASCII = "Zoë Ångström — 日本語 ☕ 😀"
_ID_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]*[_:-]")
Path = tuple[str | int, ...]


def compact(payload: object, *, ensure_ascii: bool = False) -> bytes:
    """The body as a conforming sender serializes it: compact JSON, raw UTF-8."""
    text = json.dumps(payload, ensure_ascii=ensure_ascii, separators=(",", ":"))
    return text.encode("utf-8")


def _encodable(value: object) -> bool:
    try:
        compact(value)
    except (UnicodeEncodeError, ValueError):
        return False
    return True


@cache
def _validator(profile: Profile, event: str) -> Draft202012Validator:
    return schema_validator(profile, payload_schema(profile, event))


def is_valid(profile: Profile, event: str, payload: object) -> bool:
    return bool(_validator(profile, event).is_valid(payload))


#: Bump when the drawing itself changes (its filter or settings), so cached examples of the
#: old drawing are not reused.
_DRAW_VERSION = 1


def _cache_home() -> pathlib.Path:
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")


def _examples_file(schema: object) -> pathlib.Path:
    """Where the examples drawn from ``schema`` are kept: named by a digest of the schema and
    of everything else the drawing depends on, so a changed schema or library draws anew."""
    from importlib.metadata import version

    key = json.dumps(
        [
            schema,
            EXAMPLES_PER_EVENT,
            version("hypothesis"),
            version("hypothesis-jsonschema"),
            _DRAW_VERSION,
        ],
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return _cache_home() / "webhook-conformance" / "examples" / f"{digest}.json"


def _read_examples(path: pathlib.Path) -> tuple[Any, ...] | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return tuple(found) if isinstance(found, list) and found else None


def _write_examples(path: pathlib.Path, found: tuple[Any, ...]) -> None:
    """Write atomically (another process may read at the same time); a cache that cannot be
    written only costs the next run the drawing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(found, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass


@contextlib.contextmanager
def _hypothesis_storage() -> Iterator[None]:
    """Hypothesis's storage directory, for as long as the block runs, moved out of the
    current directory (its default, ``./.hypothesis``) into the user's cache directory, or a
    temporary one when that cannot be written. Even with its example database off,
    hypothesis keeps its Unicode tables (built when ``hypothesis_jsonschema`` is first
    imported, a second or two) and the constants of local source files there; in the cache
    directory they are built once per machine, not once per run, and nothing is left in the
    directory the user runs the suite from."""
    from hypothesis import configuration

    home = configuration.storage_directory(intent_to_write=False)
    previous: Any = getattr(home, "path", home)  # a StorageDirectory; a Path in older versions
    cache_home = _cache_home()
    with contextlib.ExitStack() as stack:
        storage = cache_home / "webhook-conformance" / "hypothesis"
        try:
            storage.mkdir(parents=True, exist_ok=True)
        except OSError:
            storage = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory()))
        configuration.set_hypothesis_home_dir(storage)
        stack.callback(configuration.set_hypothesis_home_dir, previous)  # before any removal
        yield


#: Hypothesis is not thread-safe (the sender suite's scenarios draw from several threads):
#: one drawing at a time.
_DRAWING = threading.Lock()


@cache
def examples(profile: Profile, event: str) -> tuple[Any, ...]:
    """``EXAMPLES_PER_EVENT`` valid payloads of one event, minimal first, always the same
    (drawn with hypothesis's storage out of the current directory: ``_hypothesis_storage``).

    The drawing is deterministic, and slow for large schemas (GitHub's ``push`` takes
    seconds), so its result is kept in the user's cache directory, keyed by the schema: one
    drawing per machine, not per run or per process. A cached example that no longer
    validates (a changed format checker) is drawn again. Safe to call from several threads:
    one drawing runs at a time."""
    with _DRAWING:
        return _draw(profile, event)


def _draw(profile: Profile, event: str) -> tuple[Any, ...]:
    validator = _validator(profile, event)
    schema = resolved_schema(profile, payload_schema(profile, event))
    path = _examples_file(schema)
    cached = _read_examples(path)
    if cached is not None and all(validator.is_valid(v) and _encodable(v) for v in cached):
        return cached
    # Imported here: hypothesis warns about work done while pytest loads plugins, and the
    # plugin imports this module in every pytest run.
    found: list[Any] = []
    with _hypothesis_storage():
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis_jsonschema import from_schema

        strategy = from_schema(schema).filter(lambda v: validator.is_valid(v) and _encodable(v))

        @settings(
            database=None,
            derandomize=True,
            max_examples=EXAMPLES_PER_EVENT,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            deadline=None,
            report_multiple_bugs=False,
        )
        @given(strategy)
        def collect(value: Any) -> None:
            if len(found) < EXAMPLES_PER_EVENT:
                found.append(value)

        collect()
    _write_examples(path, tuple(found))
    return tuple(found)


# ---------------------------------------------------------------------------------------
# Walking and editing JSON values


def parts(pointer: str) -> Path:
    """A JSON pointer as a path of keys (list indices stay strings until used)."""
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:])


def leaves(node: object, path: Path = ()) -> Iterator[tuple[Path, str | int]]:
    """Every string and integer (not boolean) leaf, depth first, keys sorted."""
    if isinstance(node, dict):
        for key in sorted(node):
            yield from leaves(node[key], (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from leaves(item, (*path, index))
    elif isinstance(node, str) or (isinstance(node, int) and not isinstance(node, bool)):
        yield path, node


def _get(node: Any, path: Path) -> Any:
    for part in path:
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            raise KeyError(part)
    return node


def set_at(node: Any, path: Path, value: object) -> Any:
    """A deep copy of ``node`` with ``value`` at ``path`` (the parent must exist)."""
    result = copy.deepcopy(node)
    parent = _get(result, path[:-1])
    last = path[-1]
    if isinstance(parent, list):
        parent[int(last)] = value
    else:
        parent[last] = value
    return result


def _exists(node: object, path: Path) -> bool:
    try:
        _get(node, path)
    except (KeyError, IndexError, ValueError, TypeError):
        return False
    return True


# ---------------------------------------------------------------------------------------
# Fresh identities


def _fresh_values(old: str | int) -> list[str | int]:
    if isinstance(old, str):
        match = _ID_PREFIX.match(old)
        prefix = match.group(0) if match else ""
        token = secrets.token_hex(12)
        return [prefix + token, token, str(uuid.uuid4()), f"{old}-{token}"]
    return [10**6 + secrets.randbelow(2**31 - 10**6), 10**6 + secrets.randbelow(10**6)]


def _identity_paths(profile: Profile) -> list[Path]:
    pointers = [profile.envelope.event_id, profile.idempotency_key]
    return [parts(p) for p in dict.fromkeys(pointers) if p and p.startswith("/")]


def _protected(profile: Profile) -> set[Path]:
    """Paths whose values must not change: the event type and header-mirrored fields."""
    pointers = [profile.envelope.event_type]
    pointers += [h.equals for h in profile.headers if h.equals]
    return {parts(p) for p in pointers if p is not None}


def _replace(payload: Any, path: Path, valid: Callable[[Any], bool]) -> Any | None:
    old = _get(payload, path)
    if isinstance(old, bool) or not isinstance(old, str | int):
        return None
    for value in _fresh_values(old):
        candidate = set_at(payload, path, value)
        if valid(candidate):
            return candidate
    return None


def freshen(profile: Profile, event: str | None, payload: Any) -> Any:
    """The payload with a never-seen identity: new values at the event id and idempotency
    pointers, or (for ``body-digest`` profiles) in the first field that takes one, else in
    a new ``nonce`` field.
    ``event=None`` skips validation (for payloads outside the catalogue)."""

    def valid(candidate: Any) -> bool:
        return event is None or is_valid(profile, event, candidate)

    result = copy.deepcopy(payload)
    for path in _identity_paths(profile):
        if _exists(result, path):
            result = _replace(result, path, valid) or result
    if profile.idempotency_key == "body-digest":
        protected = _protected(profile)
        for path, _ in list(leaves(result)):
            if path not in protected:
                replaced = _replace(result, path, valid)
                if replaced is not None:
                    return replaced
        # No field takes a new value: add one where the schema allows it.
        data = parts(profile.envelope.data)
        for path in ((*data, "nonce"), ("nonce",)):
            if _exists(result, path[:-1]) and isinstance(_get(result, path[:-1]), dict):
                candidate = set_at(result, path, secrets.token_hex(12))
                if valid(candidate):
                    return candidate
    return result


def refreshed(profile: Profile, event: str, payload: Any, path: Path) -> Any:
    """The payload with a never-seen value at ``path`` where its schema allows one, else
    unchanged."""
    if not _exists(payload, path):
        return payload
    return _replace(payload, path, lambda c: is_valid(profile, event, c)) or payload


def fresh_example(profile: Profile, event: str, index: int = 0) -> Any:
    """Example ``index`` of an event with a fresh identity."""
    found = examples(profile, event)
    return freshen(profile, event, found[index % len(found)])


# ---------------------------------------------------------------------------------------
# Edits for particular checks


def _spots(profile: Profile, payload: Any, *, new_first: bool) -> Iterator[tuple[Path, bool]]:
    """Where text can go: existing string leaves (append to them), a new top-level field and
    a new field in the data object (``True``: the path is a new key)."""
    skip = _protected(profile) | set(_identity_paths(profile))
    existing = [
        (path, False)
        for path, value in leaves(payload)
        if isinstance(value, str) and path not in skip
    ]
    added: list[tuple[Path, bool]] = [(("padding",), True)]
    data = parts(profile.envelope.data)
    if _exists(payload, data) and isinstance(_get(payload, data), dict):
        added.append(((*data, "padding"), True))
    yield from [*added, *existing] if new_first else [*existing, *added]


def _put(payload: Any, path: Path, new: bool, text: str) -> Any:
    return set_at(payload, path, text if new else _get(payload, path) + text)


def with_text(profile: Profile, event: str, payload: Any, text: str = NON_ASCII) -> Any | None:
    """The payload with ``text`` in some string the schema allows, or ``None``."""
    for path, new in _spots(profile, payload, new_first=False):
        candidate = _put(payload, path, new, text if new else " " + text)
        if is_valid(profile, event, candidate):
            return candidate
    return None


def padded(profile: Profile, size: int, *, validate: bool = True) -> tuple[str, Any, bytes] | None:
    """A fresh payload of some catalogued event whose compact body is exactly ``size`` bytes,
    padded with ASCII in a string the schema allows: ``(event, payload, body)`` or ``None``."""
    for event in profile.event_names:
        payload = fresh_example(profile, event)
        # A new field first: a megabyte-long id or name would be a test of something else.
        for path, new in _spots(profile, payload, new_first=True):
            if not is_valid(profile, event, _put(payload, path, new, "x")):
                continue
            base = len(compact(_put(payload, path, new, "")))
            if base > size:
                break
            candidate = _put(payload, path, new, "x" * (size - base))
            body = compact(candidate)
            if len(body) == size and (not validate or is_valid(profile, event, candidate)):
                return event, candidate, body
    return None


def changeable(profile: Profile, *, keep_identity: bool = False) -> tuple[str, Any, bytes] | None:
    """The first fresh example (over the catalogue, minimal ones first) that ``tampered`` can
    change by one byte: ``(event, payload, changed body)``, or ``None`` (GitHub's minimal
    ``ping`` is ``{}``, with no string to change)."""
    for event in profile.event_names:
        for index in range(len(examples(profile, event))):
            payload = fresh_example(profile, event, index)
            changed = tampered(profile, event, payload, keep_identity=keep_identity)
            if changed is not None:
                return event, payload, changed
    return None


def _rotations(*groups: str) -> dict[int, int]:
    """Each character to the next one in its group, cyclically."""
    return {ord(g[i]): ord(g[(i + 1) % len(g)]) for g in groups for i in range(len(g))}


# Hex digits stay hex digits, so a changed hex id still matches its pattern.
_FLIP = _rotations("0123456789", "abcdef", "ghijklmnopqrstuvwxyz", "ABCDEF", "GHIJKLMNOPQRSTUVWXYZ")


def tampered(
    profile: Profile, event: str, payload: Any, *, keep_identity: bool = False
) -> bytes | None:
    """The compact body with exactly one byte changed: an ASCII letter or digit inside a
    string, chosen so the payload stays valid when possible (the identity first, where a
    changed hex digit stays hex: f becomes a; with ``keep_identity``, never the identity, so
    the changed body still names the same event). ``None`` when no string has such a
    character."""
    body = compact(payload)
    identity = set(_identity_paths(profile))
    kept = _protected(profile) | (identity if keep_identity else set())
    paths = [p for p, v in leaves(payload) if isinstance(v, str) and p not in kept]
    paths.sort(key=lambda p: p not in identity)
    fallback: bytes | None = None
    for path in paths:
        value = _get(payload, path)
        for index in range(len(value) - 1, -1, -1):
            char = value[index]
            if not (char.isascii() and char.isalnum()):
                continue
            changed = set_at(
                payload, path, value[:index] + char.translate(_FLIP) + value[index + 1 :]
            )
            other = compact(changed)
            if (
                len(other) != len(body)
                or sum(a != b for a, b in zip(other, body, strict=True)) != 1
            ):
                continue
            if is_valid(profile, event, changed):
                return other
            fallback = fallback or other
    return fallback
