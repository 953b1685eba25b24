"""Deliberately broken management APIs, each with one defect, and the checks that must
catch each.

Each is the reference management API (``reference.sender.create_sender_app`` with two
tenants) behind an ASGI middleware that breaks one thing: it rewrites the request before the
reference sees it, or the answer before the client does (``Defect.request`` /
``Defect.response``). ``DEFECTS`` names every defect, the profile it is judged under, and
the requirement keys that catch it there: under that profile the API fails those checks and
passes every other (the fuzzing excepted: ``management.fuzz`` is left out of the corpus, as
its generated requests also meet several defects by design).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFECTS", "KEYS", "SITES", "Broken", "Defect"]

KEYS = ("K1", "K2")
SITES = {"K1": ["site_a"], "K2": ["site_b"]}

#: (scope, body) -> the scope and body the reference gets, or (status, body) to answer
#: without asking the reference.
RequestRewrite = Callable[[Scope, bytes], tuple[Scope, bytes] | tuple[int, bytes]]
#: (scope, request body, status, answer) -> the status and answer the client gets.
ResponseRewrite = Callable[[Scope, bytes, int, bytes], tuple[int, bytes]]


@dataclass(frozen=True, kw_only=True)
class Defect:
    name: str
    profile: str
    caught_by: frozenset[str]
    request: RequestRewrite | None = None
    response: ResponseRewrite | None = None
    note: str = ""


@dataclass
class Broken:
    """The reference app behind one defect."""

    app: ASGIApp
    defect: Defect
    calls: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/conformance"):
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if self.defect.request is not None:
            rewritten = self.defect.request(scope, body)
            if isinstance(rewritten[0], int):
                status, answer = rewritten
                await _answer(send, status, answer)
                return
            scope, body = rewritten
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        if self.defect.response is None:
            await self.app(scope, replay, send)
            return
        started: dict[str, Any] = {}
        parts: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            else:
                parts.append(message.get("body", b""))

        await self.app(scope, replay, keep)
        status, answer = self.defect.response(scope, body, started["status"], b"".join(parts))
        await _answer(send, status, answer)


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


def _with_key(scope: Scope, key: str) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
    headers.append((b"authorization", f"Bearer {key}".encode()))
    return {**scope, "headers": headers}


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


# -- the defects --------------------------------------------------------------------------

#: The secret create answered for each endpoint id (the list defect shows it again).
_SECRETS: dict[Any, Any] = {}


def _secret_on_list(scope: Scope, _: bytes, status: int, answer: bytes) -> tuple[int, bytes]:
    document = _json(answer)
    if scope["method"] == "GET" and scope["path"].endswith("/endpoints") and document:
        for item in document.get("data", []):
            if item.get("id") in _SECRETS:
                item["secret"] = _SECRETS[item["id"]]
        return status, json.dumps(document).encode()
    if scope["method"] == "POST" and scope["path"].endswith("/endpoints") and document:
        data = document.get("data") or {}
        _SECRETS[data.get("id")] = data.get("secret")
    return status, answer


def _accepts_http(scope: Scope, body: bytes) -> tuple[Scope, bytes]:
    return scope, re.sub(rb'"http://(?!127\.0\.0\.1)', b'"https://', body)


def _no_limit(scope: Scope, body: bytes, status: int, answer: bytes) -> tuple[int, bytes]:
    document = _json(answer)
    if status == 400 and document and "Maximum" in str(document.get("error")):
        request = _json(body) or {}
        webhook = {
            "id": "wh_" + "f" * 24,
            "url": request.get("url"),
            "events": request.get("events"),
            "active": True,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "lastTriggered": None,
            "secret": "whsec_" + "f" * 48,
        }
        return 201, json.dumps({"webhook": webhook}).encode()
    return status, answer


def _events_open(scope: Scope, body: bytes) -> tuple[Scope, bytes]:
    if scope["path"].endswith("/events"):
        return _with_key(scope, "K1"), body
    return scope, body


def _crash_on_malformed(scope: Scope, body: bytes) -> tuple[Scope, bytes] | tuple[int, bytes]:
    if body and _json(body) is None:
        return 500, b'{"success": false, "error": "Internal error"}'
    return scope, body


def _crash_on_wrong_types(scope: Scope, body: bytes) -> tuple[Scope, bytes] | tuple[int, bytes]:
    document = _json(body)
    wrong = isinstance(document, dict) and not isinstance(document.get("url", ""), str)
    if scope["method"] == "POST" and wrong:
        return 500, b'{"success": false, "error": "Internal error"}'
    return scope, body


def _as_first_tenant(method: str, suffix: str) -> RequestRewrite:
    def rewrite(scope: Scope, body: bytes) -> tuple[Scope, bytes]:
        foreign = _header(scope, b"authorization") == b"Bearer K2"
        if foreign and scope["method"] == method and scope["path"].endswith(suffix):
            return _with_key(scope, "K1"), body
        return scope, body

    return rewrite


def _page_two_repeats(scope: Scope, body: bytes) -> tuple[Scope, bytes]:
    query = dict(parse_qsl(scope["query_string"].decode()))
    if scope["path"].endswith("/endpoints") and query.get("page") == "2":
        query["page"] = "1"
        return {**scope, "query_string": urlencode(query).encode()}, body
    return scope, body


def _hide_failed(scope: Scope, _: bytes, status: int, answer: bytes) -> tuple[int, bytes]:
    document = _json(answer)
    if status == 200 and scope["path"].endswith("/deliveries") and document:
        document["data"] = [row for row in document["data"] if row.get("status") == "success"]
        document["pagination"]["total"] = len(document["data"])
        return status, json.dumps(document).encode()
    return status, answer


def _test_without_delivering(scope: Scope, body: bytes) -> tuple[Scope, bytes] | tuple[int, bytes]:
    mine = _header(scope, b"authorization") == b"Bearer K1"
    if mine and scope["method"] == "POST" and scope["path"].endswith("/test"):
        result = {"test_sent": True, "response_status": 200, "response_time": 5}
        return 200, json.dumps({"success": True, "data": result}).encode()
    return scope, body


def _list_without_created_at(
    scope: Scope, _: bytes, status: int, answer: bytes
) -> tuple[int, bytes]:
    document = _json(answer)
    listing = scope["method"] == "GET" and scope["path"].endswith("/endpoints")
    if listing and status == 200 and isinstance(document, dict):
        for item in document.get("data") or []:
            if isinstance(item, dict):
                item.pop("created_at", None)
        return status, json.dumps(document).encode()
    return status, answer


def _outside_catalogue(body: bytes, catalogue: tuple[str, ...]) -> bool:
    document = _json(body)
    events = document.get("events") if isinstance(document, dict) else None
    return isinstance(events, list) and any(e not in catalogue for e in events)


_ZTA_EVENTS = ("pageview", "event", "goal", "alert", "session_end")


def _unknown_event_422(scope: Scope, body: bytes, status: int, answer: bytes) -> tuple[int, bytes]:
    creating = scope["method"] == "POST" and scope["path"].endswith("/webhooks")
    if creating and status == 400 and _outside_catalogue(body, _ZTA_EVENTS):
        return 422, answer
    return status, answer


def _foreign_site_listed_empty(
    scope: Scope, _: bytes, status: int, answer: bytes
) -> tuple[int, bytes]:
    if scope["method"] == "GET" and scope["path"].endswith("/webhooks") and status == 403:
        return 200, b'{"webhooks": []}'
    return status, answer


def _unknown_delete_403(scope: Scope, _: bytes, status: int, answer: bytes) -> tuple[int, bytes]:
    if scope["method"] == "DELETE" and status == 404:
        return 403, answer
    return status, answer


def _ignores_given_secret(scope: Scope, body: bytes) -> tuple[Scope, bytes]:
    document = _json(body)
    if scope["method"] == "POST" and isinstance(document, dict) and "secret" in document:
        del document["secret"]
        return scope, json.dumps(document).encode()
    return scope, body


def _catalogue_without_last(
    scope: Scope, _: bytes, status: int, answer: bytes
) -> tuple[int, bytes]:
    document = _json(answer)
    if scope["method"] == "GET" and scope["path"].endswith("/events") and status == 200:
        events = (document.get("data") or {}).get("events") if isinstance(document, dict) else None
        if isinstance(events, list) and events:
            events.pop()
            return status, json.dumps(document).encode()
    return status, answer


def _test_reports_200(scope: Scope, _: bytes, status: int, answer: bytes) -> tuple[int, bytes]:
    document = _json(answer)
    if scope["method"] == "POST" and scope["path"].endswith("/test") and status == 200:
        result = document.get("data") if isinstance(document, dict) else None
        if isinstance(result, dict) and isinstance(result.get("response_status"), int):
            result["response_status"] = 200
            return status, json.dumps(document).encode()
    return status, answer


DEFECTS: tuple[Defect, ...] = (
    Defect(
        name="secret-on-list",
        profile="zaits",
        caught_by=frozenset({"management.secret-shown-once"}),
        response=_secret_on_list,
    ),
    Defect(
        name="accepts-http",
        profile="zaits",
        caught_by=frozenset({"management.https-only"}),
        request=_accepts_http,
        note="every public http:// URL is stored as https://, so a plain one is accepted",
    ),
    Defect(
        name="no-limit",
        profile="zta",
        caught_by=frozenset({"management.enforces-limits"}),
        response=_no_limit,
    ),
    Defect(
        name="events-route-open",
        profile="zaits",
        caught_by=frozenset({"management.requires-auth"}),
        request=_events_open,
    ),
    Defect(
        name="500-on-malformed",
        profile="zaits",
        caught_by=frozenset({"management.client-errors-4xx"}),
        request=_crash_on_malformed,
    ),
    Defect(
        name="500-on-wrong-types",
        profile="zaits",
        caught_by=frozenset({"management.client-errors-4xx"}),
        request=_crash_on_wrong_types,
    ),
    Defect(
        name="cross-tenant-read",
        profile="zaits",
        caught_by=frozenset({"management.tenant-isolation"}),
        request=_as_first_tenant("GET", "/endpoints"),
    ),
    Defect(
        name="cross-tenant-delete",
        profile="zaits",
        caught_by=frozenset({"management.tenant-isolation"}),
        request=_as_first_tenant("DELETE", ""),
    ),
    Defect(
        name="page-two-repeats-page-one",
        profile="zaits",
        caught_by=frozenset({"management.pagination-consistent"}),
        request=_page_two_repeats,
    ),
    Defect(
        name="log-hides-failed",
        profile="zaits",
        caught_by=frozenset({"management.deliveries-log"}),
        response=_hide_failed,
    ),
    Defect(
        name="test-without-delivering",
        profile="zaits",
        # The log check sends a test delivery too, and finds none logged.
        caught_by=frozenset({"management.test-delivers", "management.deliveries-log"}),
        request=_test_without_delivering,
    ),
    Defect(
        name="list-without-created-at",
        profile="zaits",
        caught_by=frozenset({"management.responses-match-schema"}),
        response=_list_without_created_at,
        note="the list's items lack the required created_at; nothing else reads it",
    ),
    Defect(
        name="unknown-event-422",
        profile="zta",
        # client-errors-4xx takes any 4xx with the error body; ZTA's document says 400.
        caught_by=frozenset({"management.invalid-event-type-400"}),
        response=_unknown_event_422,
    ),
    Defect(
        name="foreign-site-listed-empty",
        profile="zta",
        caught_by=frozenset({"management.foreign-site-403"}),
        response=_foreign_site_listed_empty,
        note="another tenant's site is listed, 200 and no webhooks, instead of refused",
    ),
    Defect(
        name="unknown-delete-403",
        profile="zta",
        # client-errors-4xx (its unknown-id case deletes under ZTA) takes any 4xx, and
        # tenant-isolation 403 or 404; ZTA's document says 404.
        caught_by=frozenset({"management.unknown-webhook-404"}),
        response=_unknown_delete_403,
    ),
    Defect(
        name="ignores-given-secret",
        profile="ztrace",
        caught_by=frozenset({"management.secret-round-trip"}),
        request=_ignores_given_secret,
        note="the create request's secret is dropped, so a generated one comes back",
    ),
    Defect(
        name="catalogue-misses-an-event",
        profile="zaits",
        caught_by=frozenset({"management.catalogue"}),
        response=_catalogue_without_last,
    ),
    Defect(
        name="test-misreports-status",
        profile="zaits",
        # The delivery is made and logged as answered; only the test route's answer lies.
        caught_by=frozenset({"management.test-delivers"}),
        response=_test_reports_200,
        note="the test route reports response_status 200 whatever the endpoint answered",
    ),
)
