"""How each managed profile's API words its answers: the one per-provider table.

The profile decides everything it can say: which routes exist (operation, method, path,
query, status), the request schemas the bodies are checked against, the id prefixes, the
secret's format and fields, the limits and the event catalogue. What the profile format
cannot say yet is the wording of the answers: how a resource is wrapped (``{"success": true,
"data": ...}``, ``{"webhook": ...}`` or bare), what its fields are called (``created_at`` or
``createdAt``), how a list pages, which field names a site, and the routes a document leaves
undocumented. ``DIALECTS`` holds that, keyed by profile name: an explicit data table, read by
the engine in ``_api.py``, never an ``if`` on a provider. Each entry is transcribed from the
profile's source document; moving it into the profile format (``management.answers``,
``management.fields``) would empty the table.

An answer is a template: plain JSON values, with ``Slot``s where the engine puts what it
computed (``Slot("endpoint")``: the endpoint's view; ``Slot("pagination")``: the page).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DIALECTS",
    "MESSAGES",
    "STATUSES",
    "VIEW_FIELDS",
    "Dialect",
    "ExtraRoute",
    "Pagination",
    "Slot",
    "render",
]


@dataclass(frozen=True)
class Slot:
    """A place in an answer template that the engine fills (``render``)."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Pagination:
    """Page-numbered lists: the query parameters, the default and the largest page size."""

    page: str = "page"
    per_page: str = "per_page"
    default: int = 25
    maximum: int = 100


@dataclass(frozen=True, kw_only=True)
class ExtraRoute:
    """A route the reference serves although the profile declares none for the operation
    (the document leaves it undocumented; the decision that shapes it is in the report)."""

    operation: str
    method: str
    path: str
    status: int
    query: tuple[str, ...] = ()


#: Internal names of an endpoint's view, in the order they are shown.
VIEW_FIELDS = (
    "id",
    "url",
    "events",
    "description",
    "metadata",
    "active",
    "created_at",
    "updated_at",
    "last_delivery",
    "success_rate",
)


@dataclass(frozen=True, kw_only=True)
class Dialect:
    """One management API's wording (see the module docstring)."""

    #: operation -> the template of its success answer.
    answers: Mapping[str, object]
    #: The template of every error answer (``Slot("message")`` is the message).
    error: object
    #: internal view field (``VIEW_FIELDS``) -> its name in this API; unnamed ones are not shown.
    fields: Mapping[str, str]
    #: Internal fields shown as ``null`` when they have no value (others are left out).
    nullable: frozenset[str] = frozenset()
    #: The body field (create) and query parameter (list) naming a site, for site-scoped APIs.
    site_field: str | None = None
    #: How lists page; None: a list answers every item at once.
    pagination: Pagination | None = None
    #: The list's query parameter filtering by ``active``.
    active_filter: str | None = None
    #: The event type a test delivery has when the request names none.
    test_event_type: str | None = None
    timestamps: Literal["seconds", "milliseconds"] = "seconds"
    #: Routes for operations the profile declares no route for.
    extra_routes: tuple[ExtraRoute, ...] = ()
    #: Error kind -> message, where this API words one differently from ``MESSAGES``.
    messages: Mapping[str, str] = field(default_factory=dict)

    def message(self, kind: str) -> str:
        return self.messages.get(kind, MESSAGES[kind])


#: Every error kind, its status, and its default message (``str.format`` fields). The texts
#: of ZTA's "Error Responses" section are used for every API: they are the only ones any of
#: the three documents prints.
STATUSES: Mapping[str, int] = {
    "invalid": 400,
    "https": 400,
    "blocked": 400,
    "event_type": 400,
    "too_many_events": 400,
    "too_many_webhooks": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "no_route": 404,
    "method": 405,
    "disabled": 409,
    "too_large": 413,
    "internal": 500,
}
MESSAGES: Mapping[str, str] = {
    "invalid": "{detail}",
    "https": "URL must use HTTPS",
    "blocked": "URL is not allowed: {detail}",
    "event_type": "Invalid event type: {value}",
    "too_many_events": "Maximum {limit} event types per webhook",
    "too_many_webhooks": "Maximum {limit} webhooks per site",
    "unauthorized": "Invalid or missing API key (send Authorization: Bearer KEY)",
    "forbidden": "Access denied",
    "not_found": "Webhook not found",
    "no_route": "No such route: {method} {path}",
    "method": "Method {method} is not allowed here; allowed: {allowed}",
    "disabled": "The endpoint was disabled: {detail}",
    "too_large": "The request body is larger than {limit} bytes",
    "internal": "Internal error",
}

_ENDPOINT = Slot("endpoint")
_ENDPOINTS = Slot("endpoints")
_PAGINATION = Slot("pagination")
_ID = Slot("id")

DIALECTS: Mapping[str, Dialect] = {
    # 002 "Webhook API": every answer is {"success": true, "data": ...}; lists add
    # "pagination": {"page", "per_page", "total"} (page and per_page are its query
    # parameters, "Items per page (default: 25)"); the list filters by `active`; a test
    # names its event type or gets `test` ("default: \"test\""). No error body is printed:
    # {"success": false, "error": "..."} mirrors the success shape (error.json).
    "zaits": Dialect(
        answers={
            "create": {"success": True, "data": _ENDPOINT},
            "list": {"success": True, "data": _ENDPOINTS, "pagination": _PAGINATION},
            "update": {"success": True, "data": _ENDPOINT},
            "delete": {
                "success": True,
                "data": {"message": "Webhook endpoint deleted successfully", "endpoint_id": _ID},
            },
            "test": {"success": True, "data": Slot("result")},
            "deliveries": {"success": True, "data": Slot("deliveries"), "pagination": _PAGINATION},
            "events": {"success": True, "data": {"events": Slot("events")}},
        },
        error={"success": False, "error": Slot("message")},
        fields={
            "id": "id",
            "url": "url",
            "events": "events",
            "description": "description",
            "active": "active",
            "created_at": "created_at",
            "updated_at": "updated_at",
            "last_delivery": "last_delivery",
            "success_rate": "success_rate",
        },
        pagination=Pagination(),
        active_filter="active",
        test_event_type="test",
        messages={"not_found": "Webhook endpoint not found"},
    ),
    # 001 "Webhooks": {"webhook": {...}} on create, {"webhooks": [...]} on list (no paging:
    # at most 10 per site), {"success": true, "message": "Webhook deleted successfully"} on
    # delete, {"error": "..."} for 400, 403 and 404; camelCase times with milliseconds
    # ("2024-12-01T10:00:00.000Z"); `lastTriggered` is the last delivery; sites by `siteId`.
    "zta": Dialect(
        answers={
            "create": {"webhook": _ENDPOINT},
            "list": {"webhooks": _ENDPOINTS},
            "delete": {"success": True, "message": "Webhook deleted successfully"},
        },
        error={"error": Slot("message")},
        fields={
            "id": "id",
            "url": "url",
            "events": "events",
            "description": "description",
            "active": "active",
            "created_at": "createdAt",
            "last_delivery": "lastTriggered",
        },
        nullable=frozenset({"last_delivery"}),
        site_field="siteId",
        timestamps="milliseconds",
    ),
    # 000 shows only `client.webhooks.create({url, events, secret, metadata})` answering an
    # object with `id` and `signing_secret`: the resource comes back bare. List and delete
    # are the reference's (decisions management-list and management-delete), and so is the
    # error body (decision management-errors).
    "ztrace": Dialect(
        answers={
            "create": _ENDPOINT,
            "list": {"data": _ENDPOINTS},
            "delete": {"id": _ID, "deleted": True},
        },
        error={"error": Slot("message")},
        fields={
            "id": "id",
            "url": "url",
            "events": "events",
            "metadata": "metadata",
            "created_at": "created_at",
        },
        extra_routes=(
            ExtraRoute(operation="list", method="GET", path="/webhooks", status=200),
            ExtraRoute(
                operation="delete", method="DELETE", path="/webhooks/{webhook_id}", status=200
            ),
        ),
    ),
}


def render(template: object, values: Mapping[str, object]) -> object:
    """The template with every ``Slot`` replaced by its value."""
    if isinstance(template, Slot):
        return values[template.name]
    if isinstance(template, Mapping):
        return {key: render(value, values) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [render(value, values) for value in template]
    return template
