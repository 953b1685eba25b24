"""The reference sender's management API (``reference/management/``), over real HTTP on
loopback, for the three profiles that document one: Zaits, ZTA and Ztrace.

Each test serves a sender app with API keys (``serve_in_thread``) and, where something is
delivered, a capture app of this module whose path says how it answers: ``/c/<unique>/<plan>``,
the plan a comma-separated list of statuses, one per request to that path (the last one
repeats); each answer's body is ``answer <status>``. Every answer is validated against its
route's response schema and every refusal against the profile's error schema
(``conformance._schemas.schema_validator``). The capture's URL is plain ``http://`` on
loopback, registered under ``allow_private_targets``, which the documents' response schemas
(``^https://``) do not allow: answers that show one are validated with it written as https,
and the tests that deliver nothing register https URLs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import Profile, load_profile, validate_payload, verify
from conformance._profile import resolve_pointer
from conformance._schemas import schema_validator
from reference import serve_in_thread
from reference._cli import register_serve
from reference.management import ApiKeys, ManagementAPI, Operation
from reference.sender import create_sender_app

ROOT = Path(__file__).resolve().parents[1]
MANAGED = ("zaits", "zta", "ztrace")
KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-0123456789abcdef"
KEY_C = "key-c-0123456789abcdef"
KEYS = (KEY_A, KEY_B, KEY_C)
SITES = {KEY_A: ["site_a1", "site_a2"], KEY_B: ["site_b1"]}
#: Per profile: an event to publish and its data, and a second type to subscribe to.
EVENTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "zaits": (
        "document.signed",
        {
            "document_id": "doc_1",
            "signed_at": "2026-12-01T10:00:00Z",
            "signer": {"name": "Ada", "email": "ada@example.com"},
        },
        "face.verified",
    ),
    "zta": ("pageview", {"siteId": "site_a1", "path": "/pricing"}, "goal"),
    "ztrace": ("analysis.started", {"analysis_id": "an_1", "image_id": "img_1"}, "quota.warning"),
}
_unique = itertools.count()


# ---------------------------------------------------------------------------------------
# The capture endpoint


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


class Capture:
    """Records every request and answers as its path's plan says."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._lock = threading.Lock()

    def at(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    def wait(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Hit]:
        deadline = time.monotonic() + timeout
        while len(found := self.at(path)) < count:
            assert time.monotonic() < deadline, f"{path}: {len(found)} of {count} requests"
            time.sleep(0.005)
        return found

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            index = sum(1 for hit in self.hits if hit.path == scope["path"])
            self.hits.append(Hit(scope["path"], headers, body))
        plan = scope["path"].rsplit("/", 1)[-1].split(",")
        status = int(plan[min(index, len(plan) - 1)]) if all(p.isdigit() for p in plan) else 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": f"answer {status}".encode()})


@pytest.fixture(scope="module")
def capture() -> Iterator[tuple[Capture, str]]:
    app = Capture()
    with serve_in_thread(app) as base:
        yield app, base


def unique_path(plan: str = "200") -> str:
    return f"/c/{next(_unique)}-{time.monotonic_ns()}/{plan}"


# ---------------------------------------------------------------------------------------
# The API under test


class Api:
    """A served sender with the management API: calls by operation, checked answers."""

    def __init__(self, app: Any, base: str) -> None:
        self.management: ManagementAPI = app.state.sender.management
        self.profile: Profile = self.management.profile
        self.base = base
        self.client = httpx.Client(base_url=base, timeout=30)
        self.ops: dict[str, Operation] = {op.operation: op for op in self.management.operations}

    def call(
        self,
        operation: str,
        ident: str | None = None,
        *,
        key: str | None = KEY_A,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        op = self.ops[operation]
        path = self.profile.management.base_path + op.path  # type: ignore[union-attr]
        params = dict(params or {})
        if op.path_id is not None:
            path = path.replace("{" + op.path_id + "}", ident or "")
        elif op.query_id is not None and ident is not None:
            params[op.query_id] = ident
        headers = dict(headers or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.request(op.method, path, params=params, headers=headers, **kwargs)

    @property
    def site_field(self) -> str | None:
        return self.management.dialect.site_field

    def create_body(self, url: str, events: list[str], *, key: str = KEY_A, **more: Any) -> Any:
        body: dict[str, Any] = {"url": url, "events": events, **more}
        if self.site_field is not None:
            body.setdefault(self.site_field, SITES[key][0])
        return body

    def create(self, url: str, events: list[str], *, key: str = KEY_A, **more: Any) -> Any:
        """Create an endpoint; the created resource (with its secret)."""
        response = self.call("create", key=key, json=self.create_body(url, events, key=key, **more))
        body = answer(self.profile, "create", response, local=url.startswith("http://"))
        return unwrap(self.profile, body)

    def listed(self, *, key: str = KEY_A, params: dict[str, str] | None = None) -> list[Any]:
        params = dict(params or {})
        if self.site_field is not None and self.site_field in self.ops["list"].query:
            params.setdefault(self.site_field, SITES[key][0])
        body = answer(self.profile, "list", self.call("list", key=key, params=params), local=True)
        return items(body)

    def publish(self, event_type: str, data: Any, *, key: str = KEY_A, **more: Any) -> Any:
        fields = {"event_type": event_type, "data": data, **more}
        response = self.client.post(
            "/conformance/trigger", json=fields, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 202, response.text
        return response.json()


@contextlib.contextmanager
def served(
    name: str,
    db: Path,
    *,
    keys: tuple[str, ...] = KEYS,
    allow_private_targets: bool = True,
) -> Iterator[Api]:
    profile = load_profile(name)
    sites = {k: v for k, v in SITES.items() if k in keys} if name == "zta" else None
    app = create_sender_app(
        profile,
        db_path=db,
        allow_private_targets=allow_private_targets,
        api_keys=keys,
        sites=sites,
    )
    with serve_in_thread(app) as base:
        api = Api(app, base)
        try:
            yield api
        finally:
            api.client.close()


@pytest.fixture
def serve(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[Api]]:
    def start(name: str, **options: Any) -> contextlib.AbstractContextManager[Api]:
        return served(name, tmp_path / f"{name}.sqlite3", **options)

    return start


@pytest.fixture(params=MANAGED)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    with served(request.param, tmp_path / "sender.sqlite3") as started:
        yield started


@pytest.fixture
def zaits(tmp_path: Path) -> Iterator[Api]:
    with served("zaits", tmp_path / "sender.sqlite3") as started:
        yield started


# ---------------------------------------------------------------------------------------
# Checking answers


def _https(node: Any) -> Any:
    """The answer with each http:// ``url`` written as https:// (see the module docstring)."""
    if isinstance(node, dict):
        return {
            k: "https://" + v.removeprefix("http://")
            if k == "url" and isinstance(v, str) and v.startswith("http://")
            else _https(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_https(v) for v in node]
    return node


def answer(profile: Profile, operation: str, response: httpx.Response, *, local: bool = False):
    """The answer's JSON, after checking its status and its route's response schema (a route
    the profile does not declare has none)."""
    assert profile.management is not None
    routes = {r.operation: r for r in profile.management.routes}
    route = routes.get(operation)
    expected = route.status if route is not None else 200
    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if route is not None:
        checked = _https(body) if local else body
        errors = [e.message for e in schema_validator(profile, route.response).iter_errors(checked)]
        assert errors == [], f"{operation}: {body}"
    return body


def error(profile: Profile, response: httpx.Response, status: int, message: str | None = None):
    """The message of a refusal, after checking its status and the profile's error body
    (Ztrace declares no error schema: its body is the reference's ``{"error": "..."}``)."""
    assert profile.management is not None
    assert response.status_code == status, response.text
    body = response.json()
    if profile.management.error_schema is not None:
        errors = list(schema_validator(profile, profile.management.error_schema).iter_errors(body))
        assert errors == [], body
    else:
        assert set(body) == {"error"}, body
    text = body["error"]
    assert isinstance(text, str)
    assert text
    if message is not None:
        assert text == message
    return text


def unwrap(profile: Profile, body: Any) -> Any:
    """The resource inside a create or update answer."""
    for key in ("data", "webhook"):
        if isinstance(body, dict) and isinstance(body.get(key), dict) and "id" in body[key]:
            return body[key]
    return body


def items(body: Any) -> list[Any]:
    for key in ("data", "webhooks"):
        if isinstance(body.get(key), list):
            return list(body[key])
    raise AssertionError(f"no list in {body}")


def secret_of(api: Api, created: Any) -> str:
    assert api.profile.management is not None
    return created[api.profile.management.secret_response_field]


# ---------------------------------------------------------------------------------------
# Create, read, update, delete


def test_create_answers_the_resource_and_its_secret_once(api: Api) -> None:
    """Create answers 201 with the document's shape and a generated secret in the profile's
    format; no other answer ever carries the secret."""
    event, _, other = EVENTS[api.profile.name]
    created = api.create("https://hooks.example.com/a", [event, other])
    secret = secret_of(api, created)
    prefix = api.profile.management.secret_prefix  # type: ignore[union-attr]
    assert secret.startswith(prefix or "")
    assert len(secret) >= 32
    assert created["url"] == "https://hooks.example.com/a"
    assert created["events"] == [event, other]
    listed = api.listed()
    assert [e["id"] for e in listed] == [created["id"]]
    later = [api.call("list", params=_site(api)).text]
    if "update" in api.ops:
        later.append(api.call("update", created["id"], json={"description": "x"}).text)
    later.append(api.call("delete", created["id"]).text)
    assert all(secret not in text for text in later)
    assert all('"secret"' not in text and "signing_secret" not in text for text in later)


def _site(api: Api, key: str = KEY_A) -> dict[str, str]:
    field = api.site_field
    return {} if field is None else {field: SITES[key][0]}


def test_zaits_endpoints_are_created_listed_updated_and_deleted(zaits: Api) -> None:
    """The whole life of a Zaits endpoint, each answer valid against its route's schema."""
    created = zaits.create(
        "https://hooks.example.com/z", ["document.signed"], description="Main", active=True
    )
    assert created["id"].startswith("we_")
    assert created["description"] == "Main"
    assert created["active"] is True
    updated = answer(
        zaits.profile,
        "update",
        zaits.call(
            "update",
            created["id"],
            json={"events": ["document.signed", "document.expired"], "active": False},
        ),
    )["data"]
    assert updated["events"] == ["document.signed", "document.expired"]
    assert updated["active"] is False
    assert updated["description"] == "Main"
    assert updated["updated_at"] >= created["created_at"]
    moved = answer(
        zaits.profile,
        "update",
        zaits.call("update", created["id"], json={"url": "https://hooks.example.com/new"}),
    )["data"]
    assert moved["url"] == "https://hooks.example.com/new"
    [listed] = zaits.listed()
    assert {k: listed[k] for k in ("id", "url", "events", "active", "description")} == {
        "id": created["id"],
        "url": "https://hooks.example.com/new",
        "events": ["document.signed", "document.expired"],
        "active": False,
        "description": "Main",
    }
    deleted = answer(zaits.profile, "delete", zaits.call("delete", created["id"]))
    assert deleted["data"] == {
        "message": "Webhook endpoint deleted successfully",
        "endpoint_id": created["id"],
    }
    assert zaits.listed() == []
    error(zaits.profile, zaits.call("delete", created["id"]), 404, "Webhook endpoint not found")
    error(zaits.profile, zaits.call("update", created["id"], json={"active": True}), 404)


def test_zaits_list_pages_without_loss_or_repeats_and_filters_by_active(zaits: Api) -> None:
    """Paging through `page`/`per_page` yields every endpoint once, in creation order, with
    the total; `active` filters; bad paging parameters are 400."""
    made = [
        zaits.create(f"https://hooks.example.com/{i}", ["ocr.completed"], active=i % 3 != 0)["id"]
        for i in range(7)
    ]
    seen: list[str] = []
    for number in range(1, 6):
        body = answer(
            zaits.profile,
            "list",
            zaits.call("list", params={"page": str(number), "per_page": "2"}),
        )
        assert body["pagination"] == {"page": number, "per_page": 2, "total": 7}
        seen += [e["id"] for e in body["data"]]
    assert seen == made
    default = answer(zaits.profile, "list", zaits.call("list"))
    assert default["pagination"] == {"page": 1, "per_page": 25, "total": 7}
    active = zaits.listed(params={"active": "true"})
    inactive = zaits.listed(params={"active": "false"})
    assert [e["id"] for e in active] == [m for i, m in enumerate(made) if i % 3 != 0]
    assert [e["id"] for e in inactive] == [m for i, m in enumerate(made) if i % 3 == 0]
    assert all(e["active"] for e in active)
    for params in ({"page": "0"}, {"per_page": "101"}, {"page": "x"}, {"active": "yes"}):
        error(zaits.profile, zaits.call("list", params=params), 400)


def test_ztrace_secret_round_trips_and_list_and_delete_have_the_decided_shapes(
    serve: Callable[..., contextlib.AbstractContextManager[Api]],
) -> None:
    """A create with `secret` answers `signing_secret` equal to it (metadata kept); one
    without gets a generated one; list is {"data": [...]}, delete {"id", "deleted": true}."""
    with serve("ztrace") as ztrace:
        given = ztrace.create(
            "https://hooks.example.com/t",
            ["analysis.started"],
            secret="my-own-secret",
            metadata={"environment": "production"},
        )
        assert given["signing_secret"] == "my-own-secret"
        assert given["metadata"] == {"environment": "production"}
        made = ztrace.create("https://hooks.example.com/u", ["quota.warning"])
        assert made["signing_secret"]
        assert made["signing_secret"] != "my-own-secret"
        body = answer(ztrace.profile, "list", ztrace.call("list"))
        assert [e["id"] for e in body["data"]] == [given["id"], made["id"]]
        assert body["data"][0]["metadata"] == {"environment": "production"}
        gone = answer(ztrace.profile, "delete", ztrace.call("delete", given["id"]))
        assert gone == {"id": given["id"], "deleted": True}
        error(ztrace.profile, ztrace.call("delete", given["id"]), 404, "Webhook not found")
        for bad in ({"secret": ""}, {"secret": 5}, {"secret": "x" * 600}, {"metadata": []}):
            body = ztrace.create_body("https://hooks.example.com/v", ["quota.warning"], **bad)
            error(ztrace.profile, ztrace.call("create", json=body), 400)


# ---------------------------------------------------------------------------------------
# ZTA's documented errors and limits


def test_zta_answers_its_documented_errors(
    serve: Callable[..., contextlib.AbstractContextManager[Api]],
) -> None:
    """HTTPS only, an invalid event type, a foreign site (403) and an unknown webhook (404)
    are answered with the document's own error bodies."""
    with serve("zta", allow_private_targets=False) as zta:
        profile = zta.profile
        body = zta.create_body("http://your-server.com/webhook", ["pageview"])
        error(profile, zta.call("create", json=body), 400, "URL must use HTTPS")
        body = zta.create_body("https://your-server.com/webhook", ["invalid_event"])
        error(profile, zta.call("create", json=body), 400, "Invalid event type: invalid_event")
        body = zta.create_body("https://your-server.com/webhook", ["pageview"], siteId="site_b1")
        error(profile, zta.call("create", json=body), 403, "Access denied")
        error(profile, zta.call("list", params={"siteId": "site_b1"}), 403, "Access denied")
        error(profile, zta.call("list", params={"siteId": "site_nobody"}), 403, "Access denied")
        error(profile, zta.call("list"), 400, "siteId is required")
        error(profile, zta.call("delete", "wh_abc123"), 404, "Webhook not found")
        error(profile, zta.call("delete"), 400, "id is required")


def test_zta_limits_webhooks_per_site_and_events_per_webhook(
    serve: Callable[..., contextlib.AbstractContextManager[Api]],
) -> None:
    """The 11th webhook of a site and a 6th event type are refused with 400; another site
    keeps its own count; deleting one makes room."""
    with serve("zta") as zta:
        limit = zta.profile.limits.webhooks_per_site
        assert limit == 10
        made = [zta.create(f"https://h.example.com/{i}", ["goal"])["id"] for i in range(limit)]
        over = zta.create_body("https://h.example.com/x", ["goal"])
        error(zta.profile, zta.call("create", json=over), 400, "Maximum 10 webhooks per site")
        zta.create("https://h.example.com/x", ["goal"], siteId="site_a2")
        answer(zta.profile, "delete", zta.call("delete", made[0]))
        zta.create("https://h.example.com/x", ["goal"])
        six = ["pageview", "event", "goal", "alert", "session_end", "pageview"]
        body = zta.create_body("https://h.example.com/y", six, siteId="site_a2")
        error(zta.profile, zta.call("create", json=body), 400, "Maximum 5 event types per webhook")
        body = zta.create_body("https://h.example.com/y", ["goal", "goal"], siteId="site_a2")
        error(zta.profile, zta.call("create", json=body), 400)
        listed = zta.listed()
        assert len(listed) == limit
        assert all("secret" not in e for e in listed)


# ---------------------------------------------------------------------------------------
# Validation: always 4xx with the profile's error body


GARBAGE = [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"[]", id="array"),
    pytest.param(b"null", id="null"),
    pytest.param(b'"text"', id="string"),
    pytest.param(b'{"url": NaN}', id="nan"),
    pytest.param(b"[" * 100_000, id="deeply-nested"),
    pytest.param(b'{"url": {}, "events": "document.signed"}', id="wrong-types"),
    pytest.param(b'{"url": "https://h.example.com/", "events": []}', id="no-events"),
    pytest.param(b'{"url": "https://h.example.com/", "events": [5]}', id="event-not-string"),
    pytest.param(b'{"url": "https://h.example.com/", "events": ["nope"]}', id="unknown-event"),
    pytest.param(b'{"url": "https://h.example.com/", "events": ["a"], "x": 1}', id="unknown"),
    pytest.param(b'{"url": "' + b"https://h.example.com/" + b"a" * 3000 + b'"}', id="long-url"),
    pytest.param(b'{"url": "https://exa mple.com/", "events": []}', id="bad-host"),
    pytest.param(b'{"url": "https://h.example.com:99999/", "events": []}', id="bad-port"),
]


@pytest.mark.parametrize("raw", GARBAGE)
def test_malformed_bodies_are_4xx_with_the_error_body_on_every_route(api: Api, raw: bytes) -> None:
    """Every route that takes a body answers a malformed or invalid one with a 4xx and the
    profile's error body, never a 5xx."""
    created = api.create("https://hooks.example.com/g", [EVENTS[api.profile.name][0]])
    for operation in ("create", "update", "test"):
        if operation not in api.ops:
            continue
        ident = None if operation == "create" else created["id"]
        response = api.call(operation, ident, content=raw)
        assert 400 <= response.status_code < 500, (operation, response.text)
        error(api.profile, response, response.status_code)


@pytest.mark.parametrize(
    "body",
    [{"events": ["pageview"]}, {"url": "https://h.example.com/"}, {}],
    ids=["no-url", "no-events", "empty"],
)
def test_create_requires_its_fields(api: Api, body: dict[str, Any]) -> None:
    """A create without url or events is a 400 naming the missing field."""
    if api.site_field is not None:
        body = {api.site_field: SITES[KEY_A][0], **body}
    message = error(api.profile, api.call("create", json=body), 400)
    assert message.endswith("is required")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"description": "d" * 1025}, "description is longer than 1024 characters"),
        pytest.param({"description": 5}, "$.description: 5 is not of type 'string'"),
        pytest.param({"active": "yes"}, "$.active: 'yes' is not of type 'boolean'"),
        pytest.param({"events": ["nope"]}, "Invalid event type: nope"),
        pytest.param({"url": "http://hooks.example.com/"}, "URL must use HTTPS"),
        pytest.param({"url": "ftp://hooks.example.com/"}, "URL must use HTTPS"),
        pytest.param({"url": ""}, "url must be a non-empty string"),
        pytest.param({"extra": True}, "$: Additional properties are not allowed"),
    ],
)
def test_zaits_field_errors_name_the_field(zaits: Api, change: dict[str, Any], message: str):
    """An invalid field of create and of update is a 400 whose message says what is wrong."""
    body = {"url": "https://hooks.example.com/f", "events": ["document.signed"], **change}
    got = error(zaits.profile, zaits.call("create", json=body), 400)
    assert got.startswith(message)
    created = zaits.create("https://hooks.example.com/f", ["document.signed"])
    got = error(zaits.profile, zaits.call("update", created["id"], json=change), 400)
    assert got.startswith(message)


def test_an_oversized_body_is_413_with_the_error_body(zaits: Api) -> None:
    """A body larger than the management API takes is refused before it is read whole."""
    body = {"url": "https://hooks.example.com/", "events": ["document.signed"], "x": "y" * 70000}
    error(zaits.profile, zaits.call("create", json=body), 413)


def test_wrong_methods_and_unknown_paths_get_the_error_body(zaits: Api) -> None:
    """A method a route does not take is 405 (with Allow); a path under base_path that is no
    route is 404; both in the profile's error body."""
    base = zaits.base + "/v1/webhooks"
    auth = {"Authorization": f"Bearer {KEY_A}"}
    response = httpx.patch(base + "/events", headers=auth)
    error(zaits.profile, response, 405)
    assert response.headers["allow"] == "GET"
    error(zaits.profile, httpx.get(base + "/nothing/here", headers=auth), 404)
    error(zaits.profile, httpx.get(base + "/endpoints/bad%20id/deliveries", headers=auth), 404)


# ---------------------------------------------------------------------------------------
# Authentication and tenancy


def test_every_route_refuses_a_missing_or_wrong_key_with_401(api: Api) -> None:
    """No key, a wrong key, another scheme or an empty bearer: 401, the profile's error
    body and a WWW-Authenticate challenge, on every route."""
    for operation in api.ops:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-key"},
            {"Authorization": f"Basic {KEY_A}"},
            {"Authorization": "Bearer"},
            {"Authorization": f"Bearer {KEY_A}x"},
        ):
            response = api.call(operation, "we_x", key=None, headers=headers, params=_site(api))
            error(api.profile, response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_tenant_never_reaches_another_tenants_endpoints(
    api: Api, capture: tuple[Capture, str]
) -> None:
    """For every route, tenant B gets 404 for tenant A's endpoint (403 for A's site), never
    sees it listed, and A's endpoint is left as it was; B cannot read A's deliveries."""
    app, base = capture
    event, data, _ = EVENTS[api.profile.name]
    path = unique_path()
    mine = api.create(base + path, [event])
    published = api.publish(event, data)
    [delivery] = published["deliveries"]
    app.wait(path)
    assert api.listed(key=KEY_B) == []
    for operation in ("update", "delete", "test", "deliveries"):
        if operation not in api.ops:
            continue
        kwargs: dict[str, Any] = {"json": {"active": False}} if operation == "update" else {}
        response = api.call(operation, mine["id"], key=KEY_B, **kwargs)
        error(api.profile, response, 404)
    if api.site_field is not None:
        foreign = {api.site_field: SITES[KEY_A][0]}
        error(api.profile, api.call("list", key=KEY_B, params=foreign), 403, "Access denied")
        body = api.create_body("https://h.example.com/", [event], key=KEY_B, **foreign)
        error(api.profile, api.call("create", key=KEY_B, json=body), 403, "Access denied")
    [still] = api.listed()
    assert still["id"] == mine["id"]
    assert still.get("active", True) is True
    seen = f"/conformance/deliveries/{delivery['delivery_id']}"
    assert api.client.get(seen, headers={"Authorization": f"Bearer {KEY_B}"}).status_code == 404
    assert api.client.get(seen).status_code == 401
    mine_seen = api.client.get(seen, headers={"Authorization": f"Bearer {KEY_A}"})
    assert mine_seen.status_code == 200
    assert "secret" not in mine_seen.json()


def test_keys_are_compared_in_constant_time_against_every_key(
    zaits: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authentication compares the sent key's SHA-256 with every configured key's by
    hmac.compare_digest, a right key and a wrong one alike: no early exit, and no length to
    time since every digest is 32 bytes."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    configured = sorted(hashlib.sha256(key.encode()).digest() for key in KEYS)
    for sent, status in ((KEY_A, 200), (KEY_C, 200), ("wrong-key", 401), ("k", 401)):
        calls.clear()
        response = zaits.call("list", key=sent)
        assert response.status_code == status
        assert sorted(b for _, b in calls) == configured
        assert {a for a, _ in calls} == {hashlib.sha256(sent.encode()).digest()}


def test_api_keys_refuse_unusable_configurations() -> None:
    """Keys must be bearer tokens, given once; a site belongs to one configured key."""
    for keys, sites, message in (
        ((), None, "at least one API key"),
        (("has space",), None, "bearer token"),
        (("k", "k"), None, "given twice"),
        (("k",), {"other": ["site_1"]}, "no --api-key"),
        (("k", "l"), {"k": ["site_1"], "l": ["site_1"]}, "two API keys"),
    ):
        with pytest.raises(ValueError, match=message):
            ApiKeys(keys, sites)


# ---------------------------------------------------------------------------------------
# The test route and the delivery log (Zaits)


def test_the_test_route_delivers_for_real_and_reports_the_answer(
    zaits: Api, capture: tuple[Capture, str]
) -> None:
    """A test sends one signed event through the dispatcher and reports what the endpoint
    answered: its status (418 here), its body and the time it took."""
    app, base = capture
    path = unique_path("418")
    created = zaits.create(base + path, ["document.signed"])
    result = answer(zaits.profile, "test", zaits.call("test", created["id"]))["data"]
    assert result["test_sent"] is True
    assert result["response_status"] == 418
    assert result["response_body"] == "answer 418"
    assert isinstance(result["response_time"], int)
    assert result["response_time"] >= 0
    [hit] = app.at(path)
    verify(zaits.profile, secret_of(zaits, created), hit.body, hit.headers)
    payload = json.loads(hit.body)
    assert payload["type"] == "test"  # the document's default event type
    assert hit.headers["x-zaits-event"] == "test"

    path = unique_path("200")
    other = zaits.create(base + path, ["face.verified"])
    body = {"event_type": "document.signed"}
    result = answer(zaits.profile, "test", zaits.call("test", other["id"], json=body))["data"]
    assert (result["test_sent"], result["response_status"]) == (True, 200)
    [hit] = app.at(path)
    verify(zaits.profile, secret_of(zaits, other), hit.body, hit.headers)
    validate_payload(zaits.profile, json.loads(hit.body), "document.signed")

    refused = zaits.call("test", other["id"], json={"event_type": "nope"})
    error(zaits.profile, refused, 400, "Invalid event type: nope")
    error(zaits.profile, zaits.call("test", other["id"], json={"event_type": 5}), 400)
    error(zaits.profile, zaits.call("test", "we_missing"), 404)


def test_a_test_that_gets_no_answer_reports_why(
    serve: Callable[..., contextlib.AbstractContextManager[Api]],
) -> None:
    """A target nothing listens on: the test reports no answer and the connection error."""
    with serve("zaits") as zaits:
        created = zaits.create("http://127.0.0.1:9/closed", ["document.signed"])
        result = answer(zaits.profile, "test", zaits.call("test", created["id"]))["data"]
        assert result["test_sent"] is False
        assert result["response_status"] is None
        assert "connection" in result["error_message"]


def test_the_delivery_log_shows_failed_and_successful_attempts_and_filters(
    zaits: Api, capture: tuple[Capture, str]
) -> None:
    """The endpoint's log holds each delivery, newest first, with its status, attempts and
    last answer; `status` and `event_type` filter it; it pages; bad filters are 400."""
    app, base = capture
    path = unique_path("500,200")
    created = zaits.create(base + path, ["user.credits.low"])
    failed = answer(
        zaits.profile,
        "test",
        zaits.call("test", created["id"], json={"event_type": "document.signed"}),
    )["data"]
    assert failed["response_status"] == 500
    published = zaits.publish("user.credits.low", {"balance": 3})
    [delivery] = published["deliveries"]
    app.wait(path, 2)

    def log(**params: str) -> Any:
        return answer(zaits.profile, "deliveries", zaits.call("deliveries", created["id"],
                                                               params=params))  # fmt: skip

    deadline = time.monotonic() + 10
    while log(status="success")["data"] == []:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    body = log()
    assert body["pagination"] == {"page": 1, "per_page": 25, "total": 2}
    newest, oldest = body["data"]
    assert newest["id"] == delivery["delivery_id"]
    assert newest["event_id"] == published["event_id"]
    assert newest["status"] == "success"
    assert (newest["event_type"], newest["response_status"]) == ("user.credits.low", 200)
    assert newest["error_message"] is None
    assert oldest["event_type"] == "document.signed"
    assert oldest["status"] == "failed"  # retried later; failed after its latest attempt
    assert (oldest["attempts"], oldest["response_status"]) == (1, 500)
    assert "500" in oldest["error_message"]
    assert [d["id"] for d in log(status="failed")["data"]] == [oldest["id"]]
    assert [d["id"] for d in log(status="success")["data"]] == [newest["id"]]
    assert [d["id"] for d in log(event_type="document.signed")["data"]] == [oldest["id"]]
    assert log(event_type="user.credits.low", status="failed")["data"] == []
    assert [d["id"] for d in log(page="2", per_page="1")["data"]] == [oldest["id"]]
    for params in ({"status": "bogus"}, {"event_type": "nope"}, {"page": "-1"}):
        response = zaits.call("deliveries", created["id"], params=params)
        error(zaits.profile, response, 400)


def test_the_events_route_serves_the_profiles_catalogue(zaits: Api) -> None:
    """GET /v1/webhooks/events lists exactly the profile's events, in its order."""
    body = answer(zaits.profile, "events", zaits.call("events"))
    assert body["data"]["events"] == [
        {"name": e.name, "description": e.description, "category": e.category}
        for e in zaits.profile.events
    ]


# ---------------------------------------------------------------------------------------
# Fan-out


#: The generated header that names something managed: the delivery or the endpoint.
NAMING_HEADER = {"zaits": ("x-zaits-delivery", "delivery_id"), "zta": ("x-zta-webhook-id", "id")}


def _takes_active(api: Api) -> bool:
    route = api.profile.management.route("create")  # type: ignore[union-attr]
    assert route.request is not None
    schema = json.loads((ROOT / "schemas" / route.request).read_text(encoding="utf-8"))
    return "active" in schema["properties"]


def test_a_published_event_reaches_exactly_the_subscribed_active_endpoints(
    api: Api, capture: tuple[Capture, str]
) -> None:
    """The trigger without webhook_url fans one event out to every active endpoint of the
    key's tenant subscribed to its type, each delivery signed with that endpoint's secret,
    the same bytes to each; unsubscribed, inactive and other tenants' endpoints get nothing."""
    app, base = capture
    event, data, other = EVENTS[api.profile.name]
    paths = {name: unique_path() for name in ("one", "both", "other", "inactive", "theirs")}
    one = api.create(base + paths["one"], [event])
    both = api.create(base + paths["both"], [other, event])
    api.create(base + paths["other"], [other])
    if _takes_active(api):
        api.create(base + paths["inactive"], [event], active=False)
    api.create(base + paths["theirs"], [event], key=KEY_B)
    published = api.publish(event, data, time_scale=0.01)
    by_endpoint = {d["endpoint_id"]: d["delivery_id"] for d in published["deliveries"]}
    assert set(by_endpoint) == {one["id"], both["id"]}
    [first] = app.wait(paths["one"])
    [second] = app.wait(paths["both"])
    assert first.body == second.body
    verify(api.profile, secret_of(api, one), first.body, first.headers)
    verify(api.profile, secret_of(api, both), second.body, second.headers)
    with pytest.raises(Exception, match="signature"):
        verify(api.profile, secret_of(api, both), first.body, first.headers)
    payload = json.loads(first.body)
    assert resolve_pointer(payload, api.profile.envelope.data) == data
    if api.profile.envelope.event_id is not None:
        assert resolve_pointer(payload, api.profile.envelope.event_id) == published["event_id"]
    if api.profile.name in NAMING_HEADER:
        header, field = NAMING_HEADER[api.profile.name]
        for hit, created in ((first, one), (second, both)):
            named = created["id"] if field == "id" else by_endpoint[created["id"]]
            assert hit.headers[header] == named
    for delivery_id in by_endpoint.values():
        seen = api.client.get(
            f"/conformance/deliveries/{delivery_id}", headers={"Authorization": f"Bearer {KEY_A}"}
        )
        assert seen.json()["state"] in ("pending", "delivered")
    # Only those two deliveries were stored, so nothing else can arrive.
    assert all(app.at(paths[name]) == [] for name in ("other", "inactive", "theirs"))


def test_publishing_keeps_the_trigger_contract_for_webhook_url_bodies(
    zaits: Api, capture: tuple[Capture, str]
) -> None:
    """A body with webhook_url is the trigger as before, even with a key; without it and
    without a key, webhook_url is still required; a wrong key is 401; a secret is refused
    when publishing; with no subscribed endpoint nothing is delivered."""
    app, base = capture
    event, data, _ = EVENTS["zaits"]
    path = unique_path()
    direct = {"webhook_url": base + path, "secret": "s3cret", "event_type": event, "data": data}
    auth = {"Authorization": f"Bearer {KEY_A}"}
    response = zaits.client.post("/conformance/trigger", json=direct, headers=auth)
    assert response.status_code == 202
    assert set(response.json()) == {"event_id"}
    [hit] = app.wait(path)
    verify(zaits.profile, "s3cret", hit.body, hit.headers)
    fields = {"event_type": event, "data": data}
    missing = zaits.client.post("/conformance/trigger", json=fields)
    assert (missing.status_code, missing.json()["field"]) == (400, "webhook_url")
    wrong = zaits.client.post(
        "/conformance/trigger", json=fields, headers={"Authorization": "Bearer nope"}
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "unauthorized")
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    secret = zaits.client.post("/conformance/trigger", json={**fields, "secret": "x"}, headers=auth)
    assert (secret.status_code, secret.json()["field"]) == (400, "secret")
    unknown = zaits.client.post(
        "/conformance/trigger", json={**fields, "event_type": "nope"}, headers=auth
    )
    assert (unknown.status_code, unknown.json()["field"]) == (422, "event_type")
    nobody = zaits.publish(event, data)
    assert nobody["deliveries"] == []
    assert nobody["event_id"].startswith("evt_")


def test_deleting_an_endpoint_cancels_its_pending_retries(
    zaits: Api, capture: tuple[Capture, str]
) -> None:
    """A delivery whose retry is due after its endpoint was deleted is failed with "endpoint
    deleted" at once, and never retried."""
    app, base = capture
    path = unique_path("500")
    created = zaits.create(base + path, ["user.credits.low"])
    scale = 0.05  # the retry is due 60 s * 0.05 = 3 s after the first attempt
    [delivery] = zaits.publish("user.credits.low", {}, time_scale=scale)["deliveries"]
    [first] = app.wait(path)
    answer(zaits.profile, "delete", zaits.call("delete", created["id"]))
    seen = zaits.client.get(
        f"/conformance/deliveries/{delivery['delivery_id']}",
        headers={"Authorization": f"Bearer {KEY_A}"},
    ).json()
    assert (seen["state"], seen["last_error"]) == ("failed", "endpoint deleted")
    assert seen["attempt_count"] == 1
    time.sleep(60 * scale + 0.5)  # past the retry's due time
    assert app.at(path) == [first]


def test_a_new_url_takes_the_pending_retries_with_it(
    zaits: Api, capture: tuple[Capture, str]
) -> None:
    """Moving an endpoint (PUT url) sends its pending retries to the new URL."""
    app, base = capture
    old, new = unique_path("500"), unique_path("200")
    created = zaits.create(base + old, ["user.credits.low"])
    [delivery] = zaits.publish("user.credits.low", {}, time_scale=0.005)["deliveries"]
    app.wait(old)
    moved = zaits.call("update", created["id"], json={"url": base + new})
    answer(zaits.profile, "update", moved, local=True)
    [hit] = app.wait(new)
    verify(zaits.profile, secret_of(zaits, created), hit.body, hit.headers)
    assert hit.headers["x-zaits-delivery"] == delivery["delivery_id"]


# ---------------------------------------------------------------------------------------
# Persistence


def test_endpoints_and_deliveries_survive_a_restart(
    serve: Callable[..., contextlib.AbstractContextManager[Api]], capture: tuple[Capture, str]
) -> None:
    """Every mutation is in the SQLite file: after a restart with the same keys the
    endpoints, their settings and their delivery log are there, and the stored secret still
    signs."""
    app, base = capture
    path = unique_path()
    with serve("zaits") as zaits:
        kept = zaits.create(base + path, ["document.signed"], description="before")
        dropped = zaits.create("https://hooks.example.com/drop", ["ocr.completed"])
        zaits.call("update", kept["id"], json={"description": "after"})
        answer(zaits.profile, "delete", zaits.call("delete", dropped["id"]))
        answer(zaits.profile, "test", zaits.call("test", kept["id"]))
    with serve("zaits") as zaits:
        [listed] = zaits.listed()
        assert (listed["id"], listed["description"]) == (kept["id"], "after")
        log = answer(zaits.profile, "deliveries", zaits.call("deliveries", kept["id"]))
        assert [d["event_type"] for d in log["data"]] == ["test"]
        event, data, _ = EVENTS["zaits"]
        zaits.publish(event, data)
        hit = app.wait(path, 2)[-1]
        verify(zaits.profile, secret_of(zaits, kept), hit.body, hit.headers)


# ---------------------------------------------------------------------------------------
# HTTPS only, and local targets for testing


URL_RULES = [
    ("https://hooks.example.com/x", False, None),
    ("https://hooks.example.com/x", True, None),
    ("http://hooks.example.com/x", False, "URL must use HTTPS"),
    ("http://hooks.example.com/x", True, "URL must use HTTPS"),
    ("http://93.184.216.34/x", True, "URL must use HTTPS"),
    ("http://127.0.0.1:8000/x", False, "URL must use HTTPS"),
    ("http://127.0.0.1:8000/x", True, None),
    ("http://localhost:8000/x", True, None),
    ("http://[::1]:8000/x", True, None),
    ("https://127.0.0.1/x", False, "URL is not allowed: 127.0.0.1 is loopback"),
    ("https://127.0.0.1/x", True, None),
    ("https://10.1.2.3/x", False, "URL is not allowed: 10.1.2.3 is private"),
    ("https://[::ffff:127.0.0.1]/x", False, "URL is not allowed"),
    ("https://localhost/x", False, "URL is not allowed: a loopback host name"),
    ("ftp://hooks.example.com/x", True, "URL must use HTTPS"),
    ("hooks.example.com/x", True, "URL must use HTTPS"),
]


@pytest.mark.parametrize("name", ["zaits", "ztrace"])
def test_urls_must_be_https_unless_local_and_allowed(
    serve: Callable[..., contextlib.AbstractContextManager[Api]], name: str
) -> None:
    """Create (and Zaits' update) take https URLs; http only to a loopback or private target
    and only with allow_private_targets; without it such targets are refused, https or not,
    as the SSRF guard refuses them."""
    for allow in (False, True):
        with serve(name, allow_private_targets=allow) as api:
            target = api.create("https://hooks.example.com/t", [EVENTS[name][0]])
            for url, allowed, message in URL_RULES:
                if allowed != allow:
                    continue
                body = api.create_body(url, [EVENTS[name][0]])
                response = api.call("create", json=body)
                if message is None:
                    answer(api.profile, "create", response, local=True)
                else:
                    assert error(api.profile, response, 400).startswith(message), url
                if "update" in api.ops:
                    response = api.call("update", target["id"], json={"url": url})
                    if message is None:
                        answer(api.profile, "update", response, local=True)
                    else:
                        assert error(api.profile, response, 400).startswith(message), url


# ---------------------------------------------------------------------------------------
# The command line


def _serve_sender(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register_serve(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "sender", *argv])
    return int(args.func(args))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--profile", "stripe", "--api-key", "k"], "documents no management API"),
        (["--profile", "zta", "--api-key", "k", "--site", "site_1"], "--site takes KEY=SITE_ID"),
        (["--profile", "zta", "--api-key", "k", "--site", "x=site_1"], "no --api-key gives"),
        (["--profile", "zta", "--api-key", "k", "--site", "k=nosite"], "is not a site id"),
        (["--profile", "zaits", "--api-key", "k", "--site", "k=site_1"], "has no sites"),
        (["--profile", "zaits", "--api-key", "two words"], "bearer token"),
        (["--profile", "zaits", "--api-key", "k", "--api-key", "k"], "given twice"),
    ],
)
def test_serve_sender_refuses_unusable_management_options(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve sender` with --api-key/--site that cannot be served exits 2 with one line
    (and never echoes a key)."""
    assert _serve_sender(*argv, "--db", str(tmp_path / "s.sqlite3")) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
