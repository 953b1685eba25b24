"""The schema files: well formed, named by their path, and generatable.

hypothesis-jsonschema draws instances from every event's composed payload schema and from
every management, API and common schema file; each must validate back with the contract's own
validators (as hypothesis-jsonschema's ``test_generated_data_matches_schema`` does for its
corpus).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from conformance import iter_payload_errors, list_profiles, load_profile, payload_schema
from conformance._resources import schemas_dir
from conformance._schemas import BASE_URI, json_path, resolved_schema, schema_validator

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SCHEMAS = schemas_dir()
MANIFEST = Path(__file__).resolve().parents[1] / "spec" / "examples" / "manifest.yaml"
# The meta-schemas validate spec/ files, not deliveries; they are checked for form only.
META_SCHEMAS = {"profile.schema.json", "requirements.schema.json"}
ALL_FILES = sorted(p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.rglob("*.json"))
CONTRACT_FILES = [rel for rel in ALL_FILES if rel not in META_SCHEMAS]
# Event data and envelopes are generated as whole payloads; the rest file by file.
BODY_FILES = [
    rel for rel in CONTRACT_FILES if "/events/" not in rel and not rel.endswith("/envelope.json")
]
# Drawing the open objects providers may extend costs about 20 ms an example, so the two
# generation tests (about 45 schemas) take some 15 s; they carry the `slow` marker.
GENERATION = settings(
    max_examples=10,
    deadline=None,
    database=None,
    # No explicit examples, database or targeting here: generate, and shrink a failure.
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _contents(rel: str) -> dict[str, Any]:
    data = json.loads((SCHEMAS / rel).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _owner(rel: str) -> str:
    """The bundled profile whose folder holds the file (common files resolve under any)."""
    head = rel.split("/", 1)[0]
    return head if head in list_profiles() else list_profiles()[0]


@pytest.mark.parametrize("rel", ALL_FILES)
def test_schema_id_is_its_path(rel: str) -> None:
    """Every schema file's $id is the base URI plus its path under schemas/."""
    assert _contents(rel)["$id"] == BASE_URI + rel


@pytest.mark.parametrize("rel", ALL_FILES)
def test_schema_is_valid_draft_2020_12(rel: str) -> None:
    """Every schema file declares draft 2020-12 and is a valid schema of that draft."""
    contents = _contents(rel)
    assert contents["$schema"] == DRAFT_2020_12
    Draft202012Validator.check_schema(contents)


@pytest.mark.parametrize("rel", CONTRACT_FILES)
def test_schema_references_resolve(rel: str) -> None:
    """Every $ref of a contract schema resolves, so the schema inlines without references."""
    inlined = resolved_schema(load_profile(_owner(rel)), {"$ref": BASE_URI + rel})
    assert "$ref" not in json.dumps(inlined)


def _referenced() -> set[str]:
    """Schema files named by a profile, the examples manifest, or another schema's $ref."""
    names: set[str] = set()
    for name in list_profiles():
        profile = load_profile(name)
        names.add(profile.envelope.schema)
        names.update(e.schema for e in profile.events)
        if profile.management is not None:
            names.update(r.response for r in profile.management.routes)
            names.update(r.request for r in profile.management.routes if r.request)
            if profile.management.error_schema:
                names.add(profile.management.error_schema)
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    names.update(e["schema"] for e in manifest["examples"] if "schema" in e)
    for rel in CONTRACT_FILES:
        names.update(_ref_targets(rel))
    return names


def _ref_targets(rel: str) -> set[str]:
    """The files a schema's relative $refs point at, as paths under schemas/."""
    found: set[str] = set()
    for node in _nodes(_contents(rel)):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith(("http", "#")):
            parts = list(PurePosixPath(rel).parent.parts)
            for piece in ref.split("#")[0].split("/"):
                if piece == "..":
                    parts.pop()
                elif piece not in ("", "."):
                    parts.append(piece)
            found.add("/".join(parts))
    return found


def _nodes(value: object) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value, *(n for v in value.values() for n in _nodes(v))]
    if isinstance(value, list):
        return [n for v in value for n in _nodes(v)]
    return []


def test_every_contract_schema_is_used() -> None:
    """No schema file is orphaned: each is named by a profile, an example or another schema."""
    assert sorted(set(CONTRACT_FILES) - _referenced()) == []


def _event_params() -> list[Any]:
    return [
        pytest.param(name, event, id=f"{name}-{event}")
        for name in list_profiles()
        for event in load_profile(name).event_names
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("profile_name", "event"), _event_params())
def test_generated_payloads_validate(profile_name: str, event: str) -> None:
    """Payloads hypothesis-jsonschema draws from an event's composed schema validate back."""
    profile = load_profile(profile_name)
    strategy = from_schema(resolved_schema(profile, payload_schema(profile, event)))

    @GENERATION
    @given(strategy)
    def check(payload: object) -> None:
        assert [str(e) for e in iter_payload_errors(profile, payload, event)] == []

    check()


@pytest.mark.slow
@pytest.mark.parametrize("rel", BODY_FILES)
def test_generated_instances_validate(rel: str) -> None:
    """Bodies hypothesis-jsonschema draws from a management or API schema validate back."""
    profile = load_profile(_owner(rel))
    strategy = from_schema(resolved_schema(profile, {"$ref": BASE_URI + rel}))
    validator = schema_validator(profile, rel)

    @GENERATION
    @given(strategy)
    def check(instance: object) -> None:
        errors = [f"{json_path(e)}: {e.message}" for e in validator.iter_errors(instance)]
        assert errors == []

    check()
