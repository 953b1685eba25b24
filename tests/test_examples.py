"""The seed documents' own JSON examples validate, and broken copies of them do not.

Examples live in ``spec/examples`` with a manifest naming, for each, the event or schema
it is an instance of. Broken copies are generated from each example by walking its schema: a
required field removed, a value of the wrong type, an id with the wrong prefix.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.exceptions import ValidationError

from conformance import iter_payload_errors, load_profile, payload_schema, validate_payload
from conformance._schemas import BASE_URI, json_path, resolved_schema, schema_validator

EXAMPLES = Path(__file__).resolve().parents[1] / "spec" / "examples"
SHARED = Path(__file__).resolve().parents[2] / "shared"
SEEDS = SHARED / "seeds"
VECTORS = SHARED / "vectors"
MANIFEST: dict[str, Any] = yaml.safe_load((EXAMPLES / "manifest.yaml").read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = MANIFEST["examples"]
ID_PREFIX = re.compile(r"^\^[A-Za-z]+_")
WRONG_PREFIX = "xx_1"
# A value of another JSON type for each type a schema may name.
WRONG_VALUE: dict[str, object] = {
    "string": 12345,
    "integer": "x",
    "number": "x",
    "boolean": "x",
    "object": ["x"],
    "array": "x",
}


def _id(entry: dict[str, Any]) -> str:
    return f"{entry['profile']}-{Path(entry['file']).stem}"


def _load(entry: dict[str, Any]) -> object:
    return json.loads((EXAMPLES / entry["file"]).read_text(encoding="utf-8"))


def _errors(entry: dict[str, Any], instance: object) -> list[tuple[str, str]]:
    """Every violation of the example's event or schema, as (JSON path, message) pairs."""
    profile = load_profile(entry["profile"])
    if "event" in entry:
        return [(e.path, e.message) for e in iter_payload_errors(profile, instance, entry["event"])]
    validator = schema_validator(profile, entry["schema"])
    return [(json_path(e), e.message) for e in _flatten(validator.iter_errors(instance))]


def _flatten(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        yield error
        yield from _flatten(iter(error.context or ()))


def _schema(entry: dict[str, Any]) -> dict[str, Any]:
    """The example's schema with every reference inlined, ready to walk."""
    profile = load_profile(entry["profile"])
    if "event" in entry:
        return resolved_schema(profile, payload_schema(profile, entry["event"]))
    return resolved_schema(profile, {"$ref": BASE_URI + entry["schema"]})


# ---------------------------------------------------------------------------------------
# The examples as printed


@pytest.mark.parametrize("entry", [pytest.param(e, id=_id(e)) for e in ENTRIES])
def test_example_validates(entry: dict[str, Any]) -> None:
    """Each example from the documents is valid for the event or schema the manifest names."""
    assert _errors(entry, _load(entry)) == []


def test_manifest_lists_every_example_file() -> None:
    """The manifest and the example files name the same set of files."""
    on_disk = {p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.json")}
    assert on_disk == {e["file"] for e in ENTRIES}


@pytest.mark.parametrize("entry", [pytest.param(e, id=_id(e)) for e in ENTRIES])
def test_manifest_entry_is_well_formed(entry: dict[str, Any]) -> None:
    """An entry names exactly one target, in its own profile, and lives in that profile's folder."""
    assert ("event" in entry) != ("schema" in entry)
    assert entry["file"].startswith(f"{entry['profile']}/")
    profile = load_profile(entry["profile"])
    if "event" in entry:
        assert entry["event"] in profile.event_names
    else:
        assert entry["schema"].startswith(f"{entry['profile']}/")
    assert entry["document"] == profile.document


def _seed_text(document: str) -> str:
    path = SEEDS / document
    if not path.is_file():
        pytest.skip(f"seed document {path} is not available")
    return path.read_text(encoding="utf-8")


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize(
    "entry", [pytest.param(e, id=_id(e)) for e in ENTRIES if "transcribed" not in e]
)
def test_example_is_printed_in_its_document(entry: dict[str, Any]) -> None:
    """Each example's text occurs in its document, whitespace aside: nothing was fixed."""
    example = (EXAMPLES / entry["file"]).read_text(encoding="utf-8")
    assert _squeeze(example) in _squeeze(_seed_text(entry["document"]))


@pytest.mark.parametrize(
    "entry",
    [pytest.param(e, id=_id(e)) for e in ENTRIES]
    + [
        pytest.param(u, id=f"unmapped-{u['profile']}-{i}")
        for i, u in enumerate(MANIFEST["unmapped"])
    ],
)
def test_manifest_quote_occurs_in_document(entry: dict[str, Any]) -> None:
    """The quote that locates an example (or an unmapped body) is text of its document."""
    assert entry["quote"] in _seed_text(entry["document"])


def test_transcribed_example_keeps_the_sample_values() -> None:
    """The Ztrace create call, transcribed from TypeScript, keeps the sample's URL and events."""
    (entry,) = [e for e in ENTRIES if "transcribed" in e]
    body = _load(entry)
    assert isinstance(body, dict)
    text = _seed_text(entry["document"])
    assert f"url: '{body['url']}'" in text
    for name in body["events"]:
        assert f"'{name}'" in text


def _vector_params() -> list[Any]:
    path = VECTORS / "signatures.json"
    if not path.is_file():
        return []
    entries = json.loads(path.read_text(encoding="utf-8"))
    seen = {e["body_file"]: e["profile"] for e in entries}
    return [pytest.param(p, f, id=f"{p}-{Path(f).stem}") for f, p in sorted(seen.items())]


@pytest.mark.parametrize(("profile_name", "body_file"), _vector_params())
def test_signature_vector_body_is_a_valid_payload(profile_name: str, body_file: str) -> None:
    """The bodies of the signature vectors are valid payloads of their profiles."""
    validate_payload(load_profile(profile_name), json.loads((VECTORS / body_file).read_bytes()))


# ---------------------------------------------------------------------------------------
# Broken copies


@dataclass(frozen=True)
class Breakage:
    """One deliberate defect in a copy of an example, and the error it must cause."""

    kind: str
    instance: object
    path: str
    message: str

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.path}"


def _walk(
    schema: dict[str, Any], instance: object, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any], object]]:
    """Every (location, schema node, value) where a schema node applies to a value."""
    yield path, schema, instance
    for sub in schema.get("allOf", []):
        yield from _walk(sub, instance, path)
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in instance:
                yield from _walk(sub, instance[key], (*path, key))
    items = schema.get("items")
    if isinstance(instance, list) and isinstance(items, dict):
        for index, item in enumerate(instance):
            yield from _walk(items, item, (*path, index))


def _dollar(path: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _replaced(instance: object, path: tuple[str | int, ...], value: object) -> object:
    broken = copy.deepcopy(instance)
    node: Any = broken
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return broken


def _without(instance: object, path: tuple[str | int, ...], key: str) -> object:
    broken = copy.deepcopy(instance)
    node: Any = broken
    for part in path:
        node = node[part]
    del node[key]
    return broken


def breakages(schema: dict[str, Any], instance: object) -> list[Breakage]:
    """Every missing-field, wrong-type and wrong-prefix copy the schema lets us make."""
    found: dict[tuple[str, str], Breakage] = {}

    def add(breakage: Breakage) -> None:
        found.setdefault((breakage.kind, breakage.path), breakage)

    for path, node, value in _walk(schema, instance):
        if isinstance(value, dict):
            for key in node.get("required", []):
                if key in value:
                    missing = _without(instance, path, key)
                    add(
                        Breakage(
                            "missing",
                            missing,
                            _dollar((*path, key)),
                            f"{key!r} is a required property",
                        )
                    )
        if not path:
            continue
        kind = node.get("type")
        if isinstance(kind, str) and kind in WRONG_VALUE:
            wrong = WRONG_VALUE[kind]
            add(
                Breakage(
                    "type",
                    _replaced(instance, path, wrong),
                    _dollar(path),
                    f"{wrong!r} is not of type {kind!r}",
                )
            )
        pattern = node.get("pattern")
        if isinstance(value, str) and isinstance(pattern, str) and ID_PREFIX.match(pattern):
            message = f"{WRONG_PREFIX!r} does not match {pattern!r}"
            add(Breakage("prefix", _replaced(instance, path, WRONG_PREFIX), _dollar(path), message))
    return list(found.values())


def _breakage_params() -> list[Any]:
    params = []
    for entry in ENTRIES:
        for breakage in breakages(_schema(entry), _load(entry)):
            params.append(pytest.param(entry, breakage, id=f"{_id(entry)}-{breakage.label}"))
    return params


BREAKAGE_PARAMS = _breakage_params()


@pytest.mark.parametrize(("entry", "breakage"), BREAKAGE_PARAMS)
def test_broken_example_fails_naming_the_field(entry: dict[str, Any], breakage: Breakage) -> None:
    """A broken copy of an example is invalid, and an error names the broken field."""
    errors = _errors(entry, breakage.instance)
    if breakage.kind == "missing":
        # A missing field is reported at its parent, with the field's name in the message.
        parent = breakage.path.rpartition(".")[0]
        assert (parent, breakage.message) in errors
    else:
        assert (breakage.path, breakage.message) in errors


@pytest.mark.parametrize("entry", [pytest.param(e, id=_id(e)) for e in ENTRIES])
def test_every_example_can_be_broken(entry: dict[str, Any]) -> None:
    """Every example's schema constrains it enough that at least one broken copy exists."""
    assert breakages(_schema(entry), _load(entry))


def test_breakages_cover_every_kind() -> None:
    """Across the examples, some copy is broken in each of the three ways."""
    kinds = {b.kind for _, b in (p.values for p in BREAKAGE_PARAMS)}
    assert kinds == {"missing", "type", "prefix"}


# ---------------------------------------------------------------------------------------
# Pinned messages


def _example(file: str) -> Any:
    return json.loads((EXAMPLES / file).read_text(encoding="utf-8"))


def _payload_messages(profile_name: str, payload: object) -> list[str]:
    return [str(e) for e in iter_payload_errors(load_profile(profile_name), payload)]


def _schema_messages(profile_name: str, schema: str, body: object) -> list[str]:
    validator = schema_validator(load_profile(profile_name), schema)
    return [f"{json_path(e)}: {e.message}" for e in validator.iter_errors(body)]


def test_zaits_event_id_prefix_message() -> None:
    """A Zaits event id without evt_ is reported at $.id with the pattern it misses."""
    payload = _example("zaits/document-signed.json")
    payload["id"] = "xx_1"
    assert _payload_messages("zaits", payload) == [
        "$.id: 'xx_1' does not match '^evt_[A-Za-z0-9_]+$'"
    ]


def test_zupertry_missing_workspace_message() -> None:
    """A job.completed payload without workspace_id is reported at $.data, naming the field."""
    payload = _example("zupertry/job-completed.json")
    del payload["data"]["workspace_id"]
    assert _payload_messages("zupertry", payload) == [
        "$.data: 'workspace_id' is a required property"
    ]


def test_zupertry_failed_job_refunds_message() -> None:
    """A job.failed payload that consumed a credit is reported at $.data.credits_consumed."""
    payload = _example("zupertry/job-failed.json")
    payload["data"]["credits_consumed"] = 1
    assert _payload_messages("zupertry", payload) == ["$.data.credits_consumed: 0 was expected"]


def test_zta_goal_value_type_message() -> None:
    """A ZTA goal whose value is a string is reported at $.data.value."""
    payload = _example("zta/goal.json")
    payload["data"]["value"] = "x"
    assert _payload_messages("zta", payload) == ["$.data.value: 'x' is not of type 'number'"]


def test_zta_timestamp_format_message() -> None:
    """A ZTA payload whose timestamp is not an RFC 3339 date-time is reported at $.timestamp."""
    payload = _example("zta/pageview.json")
    payload["timestamp"] = "12/12/2024 16:30"
    assert _payload_messages("zta", payload) == [
        "$.timestamp: '12/12/2024 16:30' is not a 'date-time'"
    ]


def test_zta_create_response_secret_prefix_message() -> None:
    """A ZTA create response whose secret lacks whsec_ is reported at $.webhook.secret."""
    body = _example("zta/create-response.json")
    body["webhook"]["secret"] = "sk_1"
    assert _schema_messages("zta", "zta/management/create-response.json", body) == [
        "$.webhook.secret: 'sk_1' does not match '^whsec_[A-Za-z0-9]+$'"
    ]


def test_zta_create_request_https_message() -> None:
    """A ZTA create request with an http:// URL is reported at $.url."""
    body = _example("zta/create-request.json")
    body["url"] = "http://your-server.com/webhook"
    assert _schema_messages("zta", "zta/management/create-request.json", body) == [
        "$.url: 'http://your-server.com/webhook' does not match '^https://'"
    ]


def test_zta_create_request_too_many_events_message() -> None:
    """A ZTA create request with six event types exceeds the five-per-webhook limit."""
    body = _example("zta/create-request.json")
    body["events"] = ["pageview", "event", "goal", "alert", "session_end", "pageview"]
    shown = "['pageview', 'event', 'goal', 'alert', 'session_end', 'pageview']"
    assert _schema_messages("zta", "zta/management/create-request.json", body) == [
        f"$.events: {shown} is too long",
        f"$.events: {shown} has non-unique elements",
    ]


def test_ztrace_create_request_unknown_key_message() -> None:
    """A Ztrace create request with an undocumented field is refused, naming the field."""
    body = _example("ztrace/create-request.json")
    body["signing_secret"] = "s"
    assert _schema_messages("ztrace", "ztrace/management/create-request.json", body) == [
        "$: Additional properties are not allowed ('signing_secret' was unexpected)"
    ]


# The bundle the receiver suite sends


def test_document_examples_are_loaded_per_event() -> None:
    """The library hands the suite each profile's payload examples, byte for byte."""
    from conformance import load_profile
    from conformance._examples import document_examples

    zupertry = load_profile("zupertry")
    by_event = {e.event: e for e in document_examples(zupertry) if e.event}
    assert set(by_event) == {"job.completed", "job.failed"}
    assert by_event["job.failed"].body == (EXAMPLES / "zupertry" / "job-failed.json").read_bytes()
    goals = document_examples(load_profile("zta"), event="goal")
    assert [e.file for e in goals] == ["zta/goal.json"]


def test_profiles_outside_spec_have_no_examples() -> None:
    """A profile file with no examples/ folder beside it simply has none."""
    from conformance import load_profile
    from conformance._examples import document_examples

    source = Path(__file__).resolve().parent / "profiles" / "github.yaml"
    assert document_examples(load_profile(source)) == ()
