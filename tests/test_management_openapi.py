"""The management APIs as OpenAPI 3.1: ``conformance._openapi`` and ``spec/management/``.

Each written document is valid OpenAPI 3.1 (a broken copy is refused), is exactly what its
profile generates now, and agrees with the profile: its routes, events, delivery policy and
auth. The providers' own examples validate against the document's schemas (jsonschema,
2020-12), and schemathesis, which a management-role suite will fuzz with, loads each document
and generates requests that match it.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conformance import ProfileError, load_profile
from conformance._examples import document_examples
from conformance._openapi import (
    Answer,
    RouteNotes,
    _document,
    document_path,
    main,
    managed_profiles,
    openapi_document,
    render,
)
from conformance._profile import resolve_pointer
from conformance._schemas import FORMAT_CHECKER, _refs

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "spec" / "management"
PROFILES = [p.name for p in managed_profiles()]
DOCUMENT_URI = "urn:webhook-conformance:management.openapi.yaml"
JSON = "application/json"
METHODS = ("get", "put", "post", "delete", "patch")


def _written(name: str) -> dict[str, Any]:
    text = document_path(load_profile(name)).read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def _component(path: str) -> str:
    """The component a schema file under schemas/ is copied to."""
    return "#/components/schemas/" + path.removesuffix(".json").replace("/", ".")


def _validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A 2020-12 validator for the schema at a JSON pointer (``#/...``) of the document, its
    ``$ref``s resolved inside the document only."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return Draft202012Validator(
        {"$ref": DOCUMENT_URI + pointer}, registry=registry, format_checker=FORMAT_CHECKER
    )


def _operations(document: dict[str, Any], key: str = "paths") -> Iterator[tuple[str, str, Any]]:
    for path, item in document[key].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _media_types(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every media type object of the operations and webhooks, with its JSON pointer."""
    for key in ("paths", "webhooks"):
        for path, method, op in _operations(document, key):
            at = f"#/{key}/{path.replace('~', '~0').replace('/', '~1')}/{method}"
            for media_type, media in op.get("requestBody", {}).get("content", {}).items():
                yield f"{at}/requestBody/content/{media_type.replace('/', '~1')}", media
            for status, response in op["responses"].items():
                for media_type, media in response.get("content", {}).items():
                    yield f"{at}/responses/{status}/content/{media_type.replace('/', '~1')}", media


# ---------------------------------------------------------------------------------------
# Valid OpenAPI 3.1, and what the profiles generate


def test_every_profile_with_a_management_api_has_a_document() -> None:
    """spec/management holds one document per bundled profile with a management API, no more."""
    assert sorted(PROFILES) == ["zaits", "zta", "ztrace"]
    assert sorted(p.name for p in FOLDER.iterdir()) == [f"{n}.openapi.yaml" for n in PROFILES]


@pytest.mark.parametrize("name", PROFILES)
def test_the_document_is_valid_openapi_3_1(name: str) -> None:
    """openapi-spec-validator accepts the written document as OpenAPI 3.1."""
    validate(_written(name), cls=OpenAPIV31SpecValidator)


def _first_route(document: dict[str, Any]) -> tuple[str, str]:
    path, method, _ = next(_operations(document))
    return path, method


def _drop_info(document: dict[str, Any]) -> None:
    del document["info"]


def _bad_status(document: dict[str, Any]) -> None:
    path, method = _first_route(document)
    document["paths"][path][method]["responses"]["20"] = {"description": "two digits"}


def _bad_type(document: dict[str, Any]) -> None:
    document["components"]["schemas"][next(iter(document["components"]["schemas"]))]["type"] = (
        "objekt"
    )


def _stray_parameter(document: dict[str, Any]) -> None:
    path, method = _first_route(document)
    op = document["paths"][path][method]
    stray = {"name": "stray", "in": "path", "required": True, "schema": {"type": "string"}}
    op["parameters"] = [*op.get("parameters", []), stray]


BREAKAGES: list[Any] = [
    pytest.param(_drop_info, r'"info" is a required property', id="no-info"),
    pytest.param(_bad_status, r"'20' was unexpected", id="two-digit-status"),
    pytest.param(_bad_type, r"'objekt' is not valid under any of the given schemas", id="bad-type"),
    pytest.param(
        _stray_parameter, r"Path parameter 'stray' for '\w+' operation .* not resolved", id="stray"
    ),
]


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize(("breakage", "message"), BREAKAGES)
def test_a_broken_copy_is_refused(
    name: str, breakage: Callable[[dict[str, Any]], None], message: str
) -> None:
    """The validator is not vacuous: a copy broken in one place is refused, saying where."""
    document = copy.deepcopy(_written(name))
    breakage(document)
    with pytest.raises(OpenAPIValidationError, match=message):
        validate(document, cls=OpenAPIV31SpecValidator)


@pytest.mark.parametrize("name", PROFILES)
def test_every_ref_points_into_the_document(name: str) -> None:
    """Every $ref is re-pointed into components/schemas and resolves there (the OpenAPI
    validator does not notice a dangling one); no component keeps a $schema or an $id."""
    document = _written(name)
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        resolve_pointer(document, ref.removeprefix("#"))
    for schema in document["components"]["schemas"].values():
        assert not {"$schema", "$id"} & set(schema)


@pytest.mark.parametrize("name", PROFILES)
def test_the_written_document_is_what_the_profile_generates(name: str) -> None:
    """The committed file is byte for byte what the profile and schemas/ generate now."""
    profile = load_profile(name)
    written = document_path(profile).read_text(encoding="utf-8")
    assert written == render(profile), (
        f"{document_path(profile)} is out of date: run python -m conformance._openapi --write"
    )
    assert yaml.safe_load(written) == openapi_document(profile)
    assert written.startswith("# Generated by `python -m conformance._openapi --write`")


def test_check_passes_on_the_written_documents(capsys: pytest.CaptureFixture[str]) -> None:
    """``--check`` exits 0 when every document is what its profile generates."""
    assert main(["--check"]) == 0
    assert capsys.readouterr().err == ""


def test_check_fails_on_a_stale_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--write`` writes every document; ``--check`` then passes, and fails naming the file
    once one is edited by hand or missing."""
    assert main(["--write", "--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{n}.openapi.yaml" for n in PROFILES]
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    edited = tmp_path / "zta.openapi.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("3.1.0", "3.1.1"))
    (tmp_path / "ztrace.openapi.yaml").unlink()
    capsys.readouterr()
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{edited}" in err
    assert f"{tmp_path / 'ztrace.openapi.yaml'}" in err
    assert f"{tmp_path / 'zaits.openapi.yaml'}" not in err
    assert "python -m conformance._openapi --write" in err


def test_printing_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --write or --check, the document of the named profile is printed."""
    assert main(["ztrace"]) == 0
    assert capsys.readouterr().out == render(load_profile("ztrace"))


def test_a_profile_without_management_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A profile without a management section has no document: a ProfileError, exit 2."""
    with pytest.raises(ProfileError, match=r"^profile github documents no management API$"):
        openapi_document(load_profile("github"))
    assert main(["github"]) == 2
    assert "profile github documents no management API" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# The document agrees with its profile


@pytest.mark.parametrize("name", PROFILES)
def test_every_route_is_an_operation(name: str) -> None:
    """Each route is one operation at its path and method, with its status, its request and
    response schemas, its path parameters and its required query parameters; nothing more."""
    profile = load_profile(name)
    assert profile.management is not None
    document = _written(name)
    assert document["servers"][0]["url"] == "{origin}" + profile.management.base_path
    assert len(list(_operations(document))) == len(profile.management.routes)
    for route in profile.management.routes:
        op = document["paths"][route.path][route.method.lower()]
        assert op["operationId"] == route.operation
        success = op["responses"][str(route.status)]["content"][JSON]
        assert success["schema"] == {"$ref": _component(route.response)}
        if route.request is None:
            assert "requestBody" not in op
        else:
            body = op["requestBody"]
            assert body["required"] is True
            assert body["content"][JSON]["schema"] == {"$ref": _component(route.request)}
        parameters = op.get("parameters", [])
        in_path = [p["name"] for p in parameters if p["in"] == "path"]
        assert in_path == re.findall(r"\{([^{}]+)\}", route.path)
        required = [p["name"] for p in parameters if p["in"] == "query" and p["required"]]
        assert required == list(route.query)


@pytest.mark.parametrize("name", PROFILES)
def test_errors_answer_with_the_error_schema(name: str) -> None:
    """Every answer but the route's success is the profile's error body (when it has one),
    and every operation documents 401 and 4XX."""
    profile = load_profile(name)
    assert profile.management is not None
    error = profile.management.error_schema
    for route in profile.management.routes:
        responses = _written(name)["paths"][route.path][route.method.lower()]["responses"]
        assert {"401", "4XX"} <= set(responses)
        for status, response in responses.items():
            if status == str(route.status):
                continue
            if error is None:
                assert "content" not in response
            else:
                assert response["content"][JSON]["schema"] == {"$ref": _component(error)}


def test_zta_documents_its_error_statuses() -> None:
    """The Zero Trust Analytics document's 400, 403 and 404 are on the routes that give them,
    each naming the requirement it answers."""
    paths = _written("zta")["paths"]["/webhooks"]
    statuses = {method: sorted(op["responses"]) for method, op in paths.items()}
    assert statuses == {
        "get": ["200", "401", "403", "4XX"],
        "post": ["201", "400", "401", "403", "4XX"],
        "delete": ["200", "401", "404", "4XX"],
    }
    assert (
        "`zta.management.unknown-webhook-404` (MUST)"
        in (paths["delete"]["responses"]["404"]["description"])
    )


def test_zaits_documents_its_filters_and_pagination() -> None:
    """The Zaits list and deliveries routes take the document's optional query parameters."""
    paths = _written("zaits")["paths"]

    def query(path: str) -> dict[str, Any]:
        parameters = paths[path]["get"]["parameters"]
        return {p["name"]: p["schema"] for p in parameters if p["in"] == "query"}

    assert query("/endpoints") == {
        "active": {"type": "boolean"},
        "page": {"type": "integer", "minimum": 1, "default": 1},
        "per_page": {"type": "integer", "minimum": 1, "default": 25},
    }
    assert query("/endpoints/{endpoint_id}/deliveries") == {
        "status": {"enum": ["success", "failed"]},
        "event_type": {"type": "string"},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1},
    }
    endpoint_id = paths["/endpoints/{endpoint_id}"]["put"]["parameters"][0]
    assert endpoint_id["schema"] == {"type": "string", "pattern": "^we_"}


@pytest.mark.parametrize("name", PROFILES)
def test_the_webhooks_are_the_events(name: str) -> None:
    """``webhooks`` lists exactly the profile's events, in order, each a request of the
    delivery method carrying that event's payload schema and the delivery headers."""
    profile = load_profile(name)
    document = _written(name)
    assert list(document["webhooks"]) == list(profile.event_names)
    header_names = [h.name for h in profile.headers if h.name.lower() != "content-type"]
    for event in profile.events:
        op = document["webhooks"][event.name][profile.delivery.method.lower()]
        media = op["requestBody"]["content"][profile.envelope.content_type]
        assert media["schema"] == {"$ref": f"#/components/schemas/{name}.composed.{event.name}"}
        assert [p["name"] for p in op["parameters"]] == header_names
        assert op["security"] == []


@pytest.mark.parametrize("name", PROFILES)
def test_the_extensions_carry_the_delivery_policy_and_the_signature(name: str) -> None:
    """x-webhook-delivery and x-webhook-signature say what the profile's sections say."""
    profile = load_profile(name)
    document = _written(name)
    delivery = document["x-webhook-delivery"]
    assert delivery["max_attempts"] == profile.delivery.max_attempts
    assert delivery["schedule_seconds"] == list(profile.delivery.schedule_seconds)
    assert delivery["schedule_from"] == profile.delivery.schedule_from
    assert delivery["timeout_seconds"] == profile.delivery.timeout_seconds
    assert set(delivery["retry_on"]["status_classes"]) == profile.delivery.retry_classes
    signature = document["x-webhook-signature"]
    assert signature["header"] == profile.signature.header
    assert signature["signed_content"] == profile.signature.signed_content
    assert [s["label"] for s in signature["schemes"]] == list(profile.signature.labels)
    management = [r.id for r in profile.requirements if r.role == "management"]
    assert [r["id"] for r in document["x-requirements"]] == management


@pytest.mark.parametrize("name", PROFILES)
def test_every_operation_requires_the_bearer_token(name: str) -> None:
    """The profile's bearer auth is a security scheme every management operation requires."""
    profile = load_profile(name)
    assert profile.management is not None
    assert profile.management.auth == "bearer"
    document = _written(name)
    assert document["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    for _, _, op in _operations(document):
        assert op.get("security", document["security"]) == [{"bearer": []}]


# ---------------------------------------------------------------------------------------
# Examples


def _example_cases() -> Iterator[Any]:
    for name in PROFILES:
        for example in document_examples(load_profile(name)):
            yield pytest.param(name, example.file, id=example.file)


@pytest.mark.parametrize(("name", "file"), list(_example_cases()))
def test_the_documents_examples_validate_against_the_document(name: str, file: str) -> None:
    """Every example of the profile's source document (spec/examples) validates against the
    document's own schema for it: a management body against its component, a payload
    against its event's webhook request body."""
    (example,) = [e for e in document_examples(load_profile(name)) if e.file == file]
    document = _written(name)
    if example.schema is not None:
        pointer = _component(example.schema).removeprefix("#")
    else:
        assert example.event is not None
        pointer = f"/components/schemas/{name}.composed.{example.event}"
    body = json.loads(example.body)
    errors = [e.message for e in _validator(document, "#" + pointer).iter_errors(body)]
    assert errors == []


@pytest.mark.parametrize("name", PROFILES)
def test_the_embedded_examples_validate_against_their_media_type(name: str) -> None:
    """Every example written into the document validates against its media type's schema,
    and each of the profile's examples is written in somewhere."""
    document = _written(name)
    embedded: set[str] = set()
    for pointer, media in _media_types(document):
        validator = _validator(document, pointer + "/schema")
        for key, example in media.get("examples", {}).items():
            assert list(validator.iter_errors(example["value"])) == [], (pointer, key)
            embedded.add(key)
    assert embedded == {Path(e.file).stem for e in document_examples(load_profile(name))}


def test_a_wrong_example_is_refused() -> None:
    """The example check is not vacuous: a create request with a plain-http URL fails it."""
    document = _written("zta")
    body = {"siteId": "site_1", "url": "http://example.com/hook", "events": ["pageview"]}
    validator = _validator(document, _component("zta/management/create-request.json"))
    messages = [e.message for e in validator.iter_errors(body)]
    assert messages == ["'http://example.com/hook' does not match '^https://'"]


# ---------------------------------------------------------------------------------------
# The generator


def test_the_generator_imports_no_http_test_or_check_machinery() -> None:
    """conformance/_openapi.py is part of the core: no checks, plugin, pytest or httpx."""
    tree = ast.parse((ROOT / "conformance" / "_openapi.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    banned = (
        "conformance.checks",
        "conformance.plugin",
        "conformance._suite",
        "conformance._engine",
        "conformance._http",
        "pytest",
        "httpx",
        "reference",
    )
    assert sorted(m for m in imported if m.startswith(banned)) == []


def test_notes_for_a_missing_route_are_refused() -> None:
    """Notes naming an operation the profile has no route for are stale: a ProfileError."""
    with pytest.raises(ProfileError, match=re.escape("no route for: ['nosuch']")):
        _document(load_profile("zaits"), {"nosuch": RouteNotes(summary="Gone")})


def test_an_answer_naming_a_missing_requirement_is_refused() -> None:
    """An answer must name a requirement the profile has."""
    notes = {"create": RouteNotes(summary="Create", answers=(Answer(status=409, description="x",
             requirements=("management.nosuch",)),))}  # fmt: skip
    with pytest.raises(ProfileError, match=re.escape("names requirement 'management.nosuch'")):
        _document(load_profile("ztrace"), notes)


def test_the_generated_document_is_a_fresh_copy() -> None:
    """Changing one generated document changes neither the next one nor the module's data."""
    first = openapi_document(load_profile("zaits"))
    first["paths"]["/endpoints"]["get"]["parameters"][1]["schema"]["default"] = 99
    assert openapi_document(load_profile("zaits")) != first


# ---------------------------------------------------------------------------------------
# schemathesis


@pytest.mark.parametrize("name", PROFILES)
def test_schemathesis_loads_the_document(name: str) -> None:
    """schemathesis (if installed) loads the document with every route an operation, under
    the profile's base path."""
    schemathesis = pytest.importorskip("schemathesis")
    profile = load_profile(name)
    assert profile.management is not None
    schema = schemathesis.openapi.from_dict(_written(name))
    labels = [result.ok().label for result in schema.get_all_operations()]
    assert labels == [f"{r.method} {r.path}" for r in profile.management.routes]
    assert schema.base_path.rstrip("/") == profile.management.base_path


def _generated(document: dict[str, Any], operation: Any) -> list[Any]:
    """A few requests schemathesis generates for one operation, each checked against the
    document: the body against the request schema, the path parameters against theirs."""
    pointer = f"#/paths/{operation.path.replace('/', '~1')}/{operation.method.lower()}"
    op = resolve_pointer(document, pointer.removeprefix("#"))
    assert isinstance(op, dict)
    body = _validator(document, pointer + "/requestBody/content/application~1json/schema")
    patterns = {
        p["name"]: p["schema"]["pattern"]
        for p in op.get("parameters", [])
        if p["in"] == "path" and "pattern" in p["schema"]
    }
    seen: list[Any] = []

    @settings(
        max_examples=5,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        if "requestBody" in op:
            assert list(body.iter_errors(case.body)) == []
        for parameter, pattern in patterns.items():
            assert re.search(pattern, case.path_parameters[parameter])
        seen.append(case)

    check()
    return seen


@pytest.mark.parametrize("name", PROFILES)
def test_schemathesis_generates_requests_the_document_accepts(name: str) -> None:
    """For every operation schemathesis generates requests whose body validates against the
    document's request schema and whose id path parameters carry the profile's prefix."""
    schemathesis = pytest.importorskip("schemathesis")
    document = _written(name)
    schema = schemathesis.openapi.from_dict(document)
    for result in schema.get_all_operations():
        operation = result.ok()
        assert _generated(document, operation), operation.label
