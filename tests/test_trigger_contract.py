"""The sender role's trigger contract, ``spec/trigger.openapi.yaml``.

The document is valid OpenAPI 3.1 and says what the contract fixes. Two senders are held to
it over real loopback HTTP, with the schemas pulled out of the document's own operations
(validated with jsonschema, 2020-12): the reference sender (``reference/sender``), for every
bundled profile, and the README's FastAPI trigger (``tests/examples/fastapi_trigger.py``,
shown verbatim in README.md). Valid triggers are answered 2xx as documented and delivered,
signed with the trigger's secret, around exactly the triggered data, to a pytest-httpserver
capture endpoint; invalid ones are answered 4xx with the documented error body.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from pytest_httpserver import HTTPServer
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012
from werkzeug import Request, Response

from conformance import list_profiles, load_profile, validate_payload, verify
from conformance._profile import resolve_pointer
from conformance._signing import generate_secret
from conformance.checks._payloads import examples

try:  # the serving helper moves from the reference into the contract library
    from conformance._serving import serve_in_thread
except ImportError:
    from reference import serve_in_thread
from reference.sender import TRIGGER_PATH, create_sender_app

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT_PATH = ROOT / "spec" / "trigger.openapi.yaml"
DOCUMENT: dict[str, Any] = yaml.safe_load(DOCUMENT_PATH.read_text(encoding="utf-8"))
DOCUMENT_URI = "urn:webhook-conformance:trigger.openapi.yaml"
EXAMPLE = ROOT / "tests" / "examples" / "fastapi_trigger.py"
README = ROOT / "README.md"
SECTION = "### Adding the trigger to your own sender"

TRIGGER_OPERATION = ("/conformance/trigger", "post")
DELIVERIES_OPERATION = ("/conformance/deliveries/{event_id}", "get")
#: A Zaits trigger every sender under test accepts (the README's example data).
ZAITS_DATA: dict[str, Any] = {
    "document_id": "doc_1",
    "signed_at": "2026-12-01T10:00:00Z",
    "signer": {"name": "Ada", "email": "ada@example.com"},
}
_DROP = object()


# ---------------------------------------------------------------------------------------
# The document's schemas


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _validator(*parts: str) -> Draft202012Validator:
    """A 2020-12 validator for the schema at ``parts`` inside the document, its ``$ref``s
    resolved against the document itself."""
    resource = Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#{_pointer(*parts)}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def request_validator() -> Draft202012Validator:
    path, method = TRIGGER_OPERATION
    return _validator("paths", path, method, "requestBody", "content", "application/json", "schema")


def response_validator(operation: tuple[str, str], status: int) -> Draft202012Validator:
    """The schema the document gives an answer of ``status``: its own code, else its range
    (``4XX``), as OpenAPI resolves them; an undocumented status fails the test."""
    path, method = operation
    responses = DOCUMENT["paths"][path][method]["responses"]
    key = next((k for k in (str(status), f"{status // 100}XX") if k in responses), None)
    assert key is not None, f"{method.upper()} {path} documents no {status} answer"
    return _validator(
        "paths", path, method, "responses", key, "content", "application/json", "schema"
    )


def assert_documented(operation: tuple[str, str], response: httpx.Response) -> Any:
    """The answer is JSON its status's documented schema accepts; returns the body."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    errors = [
        e.message for e in response_validator(operation, response.status_code).iter_errors(body)
    ]
    assert not errors, (response.status_code, body, errors)
    return body


# ---------------------------------------------------------------------------------------
# The document itself


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT, cls=OpenAPIV31SpecValidator)


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda d: d.pop("info"), id="no info"),
        pytest.param(
            lambda d: d["components"]["schemas"]["Trigger"]["properties"]["time_scale"].update(
                type="nubmer"
            ),
            id="a schema with an unknown type",
        ),
        pytest.param(
            lambda d: d["components"]["schemas"].pop("TriggerError"), id="a dangling $ref"
        ),
    ],
)
def test_the_meta_validation_is_not_vacuous(breakage: Callable[[dict[str, Any]], object]) -> None:
    """The validator refuses a broken copy, so the test above can fail."""
    broken = copy.deepcopy(DOCUMENT)
    breakage(broken)
    with pytest.raises((OpenAPIValidationError, Unresolvable)):
        validate(broken, cls=OpenAPIV31SpecValidator)


def test_the_document_states_the_fixed_contract() -> None:
    """The trigger body's members and the answer are the contract's, no more required; the
    servers are left to the user; the reference's extension is marked as one."""
    schemas = DOCUMENT["components"]["schemas"]
    trigger = schemas["Trigger"]
    assert trigger["type"] == "object"
    assert set(trigger["required"]) == {"webhook_url", "secret", "event_type", "data"}
    assert set(trigger["properties"]) == {*trigger["required"], "time_scale"}
    scale = trigger["properties"]["time_scale"]
    assert (scale["type"], scale["exclusiveMinimum"], scale["default"]) == ("number", 0, 1.0)
    assert trigger["properties"]["data"]["type"] == "object"
    assert schemas["TriggerAccepted"]["required"] == ["event_id"]
    assert "message" in schemas["TriggerError"]["required"]
    path, method = TRIGGER_OPERATION
    operation = DOCUMENT["paths"][path][method]
    assert set(operation["responses"]) == {"2XX", "4XX"}
    assert (
        "time_scale"
        in operation["callbacks"]["delivery"]["{$request.body#/webhook_url}"]["post"]["description"]
    )
    (server,) = DOCUMENT["servers"]
    assert server["url"] == "{sender}"
    assert "sender" in server["variables"]
    path, method = DELIVERIES_OPERATION
    extension = DOCUMENT["paths"][path][method]
    assert extension["x-reference-extension"] is True
    assert extension["tags"] == ["reference-extension"]
    assert "not part of the contract" in extension["summary"]
    assert "x-reference-extension" not in operation
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)


# ---------------------------------------------------------------------------------------
# Senders under test


@contextmanager
def reference_sender(
    profile: str, db: Path, *, allow_private_targets: bool = True
) -> Iterator[str]:
    """The reference sender for ``profile``, served on loopback; yields its trigger URL."""
    app = create_sender_app(profile, db_path=db, allow_private_targets=allow_private_targets)
    with serve_in_thread(app) as base:
        yield base + TRIGGER_PATH


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_example_fastapi_trigger", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def readme_example() -> Iterator[str]:
    """The README's FastAPI trigger (Zaits), served on loopback; yields its trigger URL."""
    with serve_in_thread(load_example().app) as base:
        yield base + "/conformance/trigger"


SENDERS: dict[str, Callable[[Path], AbstractContextManager[str]]] = {
    "reference": lambda tmp: reference_sender("zaits", tmp / "outbox.sqlite3"),
    "readme-example": lambda tmp: readme_example(),
}


@pytest.fixture(scope="module", params=sorted(SENDERS))
def zaits_trigger_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The trigger URL of each Zaits sender under test."""
    with SENDERS[request.param](tmp_path_factory.mktemp(request.param)) as url:
        yield url


def zaits_trigger(**changes: Any) -> dict[str, Any]:
    """A valid Zaits trigger, with ``changes`` (``_DROP`` removes a member). Its target
    refuses connections, so nothing a test did not mean to send is delivered anywhere."""
    fields: dict[str, Any] = {
        "webhook_url": "http://127.0.0.1:9/hook",
        "secret": "s3cret",
        "event_type": "document.signed",
        "data": ZAITS_DATA,
        "time_scale": 1000,
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not _DROP}


# ---------------------------------------------------------------------------------------
# The capture endpoint (pytest-httpserver)


def received(server: HTTPServer, count: int, timeout: float = 10.0) -> list[Request]:
    """The requests the capture server got, once there are ``count``."""
    deadline = time.monotonic() + timeout
    while len(server.log) < count:
        assert time.monotonic() < deadline, f"{len(server.log)} of {count} deliveries arrived"
        time.sleep(0.01)
    return [request for request, _ in server.log]


def assert_delivered(
    profile_name: str, request: Request, secret: str, event: str, data: dict[str, Any]
) -> Any:
    """The delivery as the profile says: its method, a signature the contract library accepts
    for that secret, a valid payload for the event, around exactly the triggered data."""
    profile = load_profile(profile_name)
    body, headers = request.get_data(), dict(request.headers.items())
    assert request.method == profile.delivery.method
    verify(profile, secret, body, headers)
    payload = json.loads(body)
    assert profile.event_type_of(payload, headers) == event
    validate_payload(profile, payload, event)
    assert resolve_pointer(payload, profile.envelope.data) == data
    return payload


# ---------------------------------------------------------------------------------------
# Valid triggers


@pytest.mark.parametrize("name", list_profiles())
def test_the_reference_answers_and_delivers_as_documented(
    name: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A valid trigger, for each bundled profile: a 2xx the document's schema accepts, the
    event delivered as the profile says, and (the reference's extension) its attempt log in
    the documented shape; an unknown event id is a documented 404."""
    profile = load_profile(name)
    event = profile.event_names[0]
    data = resolve_pointer(examples(profile, event)[0], profile.envelope.data)
    assert isinstance(data, dict)
    secret = generate_secret(profile.signature)
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    fields = {
        "webhook_url": httpserver.url_for("/hook"),
        "secret": secret,
        "event_type": event,
        "data": data,
        "time_scale": 0.01,
    }
    assert request_validator().is_valid(fields)
    with reference_sender(name, tmp_path / "outbox.sqlite3") as url:
        answer = httpx.post(url, json=fields, timeout=10)
        assert 200 <= answer.status_code < 300, answer.text
        event_id = assert_documented(TRIGGER_OPERATION, answer)["event_id"]
        (request,) = received(httpserver, 1)
        base = url.removesuffix(TRIGGER_PATH)
        view = _finished(f"{base}/conformance/deliveries/{event_id}")
        missing = httpx.get(f"{base}/conformance/deliveries/evt_none", timeout=10)
    assert_delivered(name, request, secret, event, data)
    assert view["state"] == "delivered"
    assert view["body"].encode() == request.get_data()
    assert missing.status_code == 404
    assert_documented(DELIVERIES_OPERATION, missing)


def _finished(url: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200, response.text
        view = assert_documented(DELIVERIES_OPERATION, response)
        if view["state"] != "pending":
            return view
        assert time.monotonic() < deadline, f"the event is still pending: {view}"
        time.sleep(0.01)


def test_time_scale_is_optional(zaits_trigger_url: str, httpserver: HTTPServer) -> None:
    """A trigger without ``time_scale`` is valid and delivered (Zaits's first attempt is due
    at once, whatever the scale)."""
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    fields = zaits_trigger(webhook_url=httpserver.url_for("/hook"), time_scale=_DROP)
    assert request_validator().is_valid(fields)
    answer = httpx.post(zaits_trigger_url, json=fields, timeout=10)
    assert 200 <= answer.status_code < 300, answer.text
    assert_documented(TRIGGER_OPERATION, answer)
    (request,) = received(httpserver, 1)
    assert_delivered("zaits", request, "s3cret", "document.signed", ZAITS_DATA)


def test_the_reference_scales_retry_delays(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A 500 is retried after Zaits's 60 s, times ``time_scale``."""
    scale = 0.005
    arrived: list[float] = []

    def answer(request: Request) -> Response:
        arrived.append(time.monotonic())
        return Response("{}", status=500 if len(arrived) == 1 else 200)

    httpserver.expect_request("/retry").respond_with_handler(answer)
    secret = "s3cret"
    fields = zaits_trigger(webhook_url=httpserver.url_for("/retry"), time_scale=scale)
    with reference_sender("zaits", tmp_path / "outbox.sqlite3") as url:
        assert_documented(TRIGGER_OPERATION, httpx.post(url, json=fields, timeout=10))
        first, second = received(httpserver, 2)
    for request in (first, second):
        assert_delivered("zaits", request, secret, "document.signed", ZAITS_DATA)
    delay = load_profile("zaits").delivery.schedule_seconds[1] * scale
    assert delay <= arrived[1] - arrived[0] < delay + 2.0


def test_the_reference_does_not_scale_timeouts(httpserver: HTTPServer, tmp_path: Path) -> None:
    """An answer slower than the scaled timeout (10 s x 0.005) but well within Zaits's 10 s
    is a delivery: no second attempt follows."""
    scale = 0.005

    def slow(request: Request) -> Response:
        time.sleep(0.3)
        return Response("{}", status=200)

    httpserver.expect_request("/slow").respond_with_handler(slow)
    fields = zaits_trigger(webhook_url=httpserver.url_for("/slow"), time_scale=scale)
    with reference_sender("zaits", tmp_path / "outbox.sqlite3") as url:
        assert_documented(TRIGGER_OPERATION, httpx.post(url, json=fields, timeout=10))
        received(httpserver, 1)
        time.sleep(0.3 + 60 * scale + 0.5)  # a retry after a timeout would be here by now
    assert len(httpserver.log) == 1


# ---------------------------------------------------------------------------------------
# Invalid triggers


STRUCTURALLY_INVALID = [
    pytest.param({"webhook_url": _DROP}, id="missing webhook_url"),
    pytest.param({"secret": _DROP}, id="missing secret"),
    pytest.param({"event_type": _DROP}, id="missing event_type"),
    pytest.param({"data": _DROP}, id="missing data"),
    pytest.param({"webhook_url": 5}, id="webhook_url a number"),
    pytest.param({"webhook_url": None}, id="webhook_url null"),
    pytest.param({"secret": 7}, id="secret a number"),
    pytest.param({"secret": ["s"]}, id="secret an array"),
    pytest.param({"event_type": ["document.signed"]}, id="event_type an array"),
    pytest.param({"event_type": {"name": "document.signed"}}, id="event_type an object"),
    pytest.param({"data": []}, id="data an array"),
    pytest.param({"data": "x"}, id="data a string"),
    pytest.param({"data": None}, id="data null"),
    pytest.param({"time_scale": 0}, id="time_scale zero"),
    pytest.param({"time_scale": 0.0}, id="time_scale 0.0"),
    pytest.param({"time_scale": -1}, id="time_scale negative"),
    pytest.param({"time_scale": -0.001}, id="time_scale slightly negative"),
    pytest.param({"time_scale": "1"}, id="time_scale a string"),
    pytest.param({"time_scale": True}, id="time_scale a boolean"),
    pytest.param({"time_scale": None}, id="time_scale null"),
    pytest.param({"time_scale": [1]}, id="time_scale an array"),
]

MALFORMED = [
    pytest.param(b"not json", id="not JSON"),
    pytest.param(b"{", id="truncated JSON"),
    pytest.param(b"", id="empty"),
    pytest.param(b"[]", id="an array"),
    pytest.param(b'"text"', id="a string"),
    pytest.param(b"null", id="null"),
    pytest.param(b"\xff\xfe{}", id="not UTF-8"),
    pytest.param(b'{"time_scale": NaN}', id="NaN"),
    pytest.param(
        json.dumps(zaits_trigger()).replace("1000", "Infinity").encode(), id="time_scale Infinity"
    ),
]


@pytest.mark.parametrize("change", STRUCTURALLY_INVALID)
def test_structurally_invalid_triggers_are_documented_4xx(
    zaits_trigger_url: str, change: dict[str, Any]
) -> None:
    """The document's request schema refuses the body, and so does the sender: a 4xx whose
    body the documented error schema accepts."""
    fields = zaits_trigger(**change)
    assert not request_validator().is_valid(fields)
    response = httpx.post(zaits_trigger_url, json=fields, timeout=10)
    assert 400 <= response.status_code < 500, response.text
    assert_documented(TRIGGER_OPERATION, response)


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_trigger_bodies_are_documented_4xx(zaits_trigger_url: str, raw: bytes) -> None:
    response = httpx.post(
        zaits_trigger_url,
        content=raw,
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert 400 <= response.status_code < 500, response.text
    assert_documented(TRIGGER_OPERATION, response)


REFUSED_BY_THE_REFERENCE = [
    pytest.param("zaits", {"event_type": "no.such.event"}, 422, id="unknown event type"),
    pytest.param("zaits", {"data": {}}, 422, id="data the event schema refuses"),
    pytest.param("zaits", {"webhook_url": "ftp://example.com/x"}, 400, id="not an http(s) URL"),
    pytest.param("zaits", {"webhook_url": "/hook"}, 400, id="a relative URL"),
    pytest.param("zaits", {"time_scale": 1001}, 400, id="time_scale above the reference's 1000"),
    pytest.param("standard-webhooks", {"secret": "no-prefix"}, 400, id="a secret it cannot use"),
    pytest.param("zaits-guarded", {}, 400, id="a target the SSRF guard blocks"),
]


@pytest.mark.parametrize(("profile", "change", "status"), REFUSED_BY_THE_REFERENCE)
def test_the_references_own_refusals_are_documented_4xx(
    profile: str, change: dict[str, Any], status: int, tmp_path: Path
) -> None:
    """Bodies of the documented shape the reference sender still cannot take (a value its
    profile or its policy refuses) get a 4xx with the documented error body, as the
    document's 4XX answer lists them."""
    guarded = profile.endswith("-guarded")
    name = profile.removesuffix("-guarded")
    fields = zaits_trigger(**change)
    if name == "standard-webhooks":
        fields["event_type"] = "user.created"
    assert request_validator().is_valid(fields)
    with reference_sender(name, tmp_path / "o.sqlite3", allow_private_targets=not guarded) as url:
        response = httpx.post(url, json=fields, timeout=10)
    assert response.status_code == status, response.text
    body = assert_documented(TRIGGER_OPERATION, response)
    path, method = TRIGGER_OPERATION
    assert (
        f"{status} `{body['error']}`"
        in DOCUMENT["paths"][path][method]["responses"]["4XX"]["description"]
    )


# ---------------------------------------------------------------------------------------
# The README's example


def test_readme_shows_the_trigger_example_verbatim_in_its_section() -> None:
    """README.md shows tests/examples/fastapi_trigger.py exactly, in its own section under the
    reference sender's, and points to the contract."""
    readme = README.read_text(encoding="utf-8")
    sender_part = readme.split("## Sending webhooks: the reference sender", 1)[1]
    sender_part = sender_part.split("\n## ", 1)[0]
    assert SECTION in sender_part
    section = sender_part.split(SECTION, 1)[1]
    source = EXAMPLE.read_text(encoding="utf-8")
    assert f"```python\n{source}```" in section, (
        "README.md does not show tests/examples/fastapi_trigger.py verbatim in a ```python "
        f"block in {SECTION!r}"
    )
    assert "spec/trigger.openapi.yaml" in section


def test_readme_example_delivers_the_triggered_event(httpserver: HTTPServer) -> None:
    """The README's trigger answers as documented and delivers the event: signed so that
    ``conformance.verify`` accepts it for Zaits and the trigger's secret, with exactly the
    triggered data, under the answered event id."""
    secret = "whsec_readme-trigger"
    httpserver.expect_request("/webhooks/zaits", method="POST").respond_with_json({"ok": True})
    fields = zaits_trigger(webhook_url=httpserver.url_for("/webhooks/zaits"), secret=secret)
    with readme_example() as url:
        answer = httpx.post(url, json=fields, timeout=10)
        assert 200 <= answer.status_code < 300, answer.text
        event_id = assert_documented(TRIGGER_OPERATION, answer)["event_id"]
        (request,) = received(httpserver, 1)
    payload = assert_delivered("zaits", request, secret, "document.signed", ZAITS_DATA)
    assert payload["id"] == event_id
