"""The endpoint registry: the management API's endpoints and their deliveries, kept in the
sender's outbox file.

``EndpointStore`` is the sender's ``Outbox`` with two more tables, so that one writer
(``reference._sqlite.BatchedWriter``) and one transaction cover both: publishing an event
commits its outbox rows and their delivery records together, and deleting an endpoint
cancels its pending deliveries in the same commit. Every mutation is committed before its
caller resumes, so an answer always follows a durable write.

Tables (beside the outbox's ``events``, ``attempts`` and ``endpoints``, see
``reference._outbox``):

* ``managed_endpoints``: one row per registered endpoint: its id, its tenant (the SHA-256 of
  the API key) and site, URL, subscribed event types (a JSON array), description, metadata (a
  JSON object), signing secret (stored as given, since HMAC signing needs it), whether it is
  active, and when it was created and last updated. Deleting an endpoint deletes its row.
* ``managed_deliveries``: one row per outbox event made for a managed endpoint: its
  delivery id (the outbox row's ``event_id``), tenant, endpoint, the published event's id and
  type, and whether it was a test delivery.

A delivery's state, attempt count and answers are read from the outbox's rows, never copied.
An endpoint *receives* when it is active and its URL is not disabled by the outbox's
auto-disable; a new registration of a URL, or re-activating an endpoint, lifts that URL's
auto-disable (the outbox keeps it per URL, so this holds for every endpoint with that URL).

The tables are additive (``CREATE ... IF NOT EXISTS``) and share the outbox's schema
version: a sender started without the management API reads the same file unchanged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reference._outbox import EndpointDisabled, Outbox
from reference._sqlite import Schema

__all__ = [
    "Changes",
    "DeliveryRecord",
    "DeliveryStatus",
    "Endpoint",
    "EndpointStore",
    "Fanned",
    "NewEndpoint",
    "Outgoing",
    "SiteFull",
]

DeliveryStatus = Literal["success", "failed", "pending"]

_REGISTRY = """
CREATE TABLE IF NOT EXISTS managed_endpoints (
    seq          INTEGER PRIMARY KEY,
    endpoint_id  TEXT    NOT NULL UNIQUE,
    profile      TEXT    NOT NULL,
    tenant       TEXT    NOT NULL,
    site         TEXT,
    url          TEXT    NOT NULL,
    events       TEXT    NOT NULL,
    description  TEXT,
    metadata     TEXT,
    secret       TEXT    NOT NULL,
    active       INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at   REAL    NOT NULL,
    updated_at   REAL
);
CREATE INDEX IF NOT EXISTS managed_endpoints_tenant
    ON managed_endpoints (profile, tenant, seq);
CREATE TABLE IF NOT EXISTS managed_deliveries (
    seq          INTEGER PRIMARY KEY,
    delivery_id  TEXT    NOT NULL UNIQUE,
    profile      TEXT    NOT NULL,
    tenant       TEXT    NOT NULL,
    endpoint_id  TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('event', 'test')),
    created_at   REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS managed_deliveries_endpoint
    ON managed_deliveries (endpoint_id, seq);
"""

#: Whether the outbox disabled the endpoint's URL (auto-disable).
_DISABLED = (
    "EXISTS (SELECT 1 FROM endpoints o WHERE o.profile = m.profile AND o.url = m.url "
    "AND o.disabled_at IS NOT NULL)"
)
_RECEIVING = f"(m.active = 1 AND NOT {_DISABLED})"
_ENDPOINT_COLUMNS = (
    "m.endpoint_id, m.tenant, m.site, m.url, m.events, m.description, m.metadata, m.secret, "  # noqa: S608 - fixed fragments
    f"m.active, m.created_at, m.updated_at, {_DISABLED}, "
    "(SELECT MAX(a.started_at) FROM managed_deliveries d "
    "JOIN events e ON e.event_id = d.delivery_id JOIN attempts a ON a.event_seq = e.seq "
    "WHERE d.endpoint_id = m.endpoint_id), "
    "(SELECT CAST(SUM(e.state = 'delivered') AS REAL) / NULLIF(SUM(e.state != 'pending'), 0) "
    "FROM managed_deliveries d JOIN events e ON e.event_id = d.delivery_id "
    "WHERE d.endpoint_id = m.endpoint_id)"
)
#: What each status filter of the deliveries log selects. A delivery whose last attempt
#: failed is ``failed`` while its retries are still due (the state after its latest attempt).
_STATUS_SQL: Mapping[DeliveryStatus, str] = {
    "success": "e.state = 'delivered'",
    "failed": "(e.state = 'failed' OR (e.state = 'pending' AND e.attempts > 0))",
    "pending": "(e.state = 'pending' AND e.attempts = 0)",
}
_INSERT_EVENT = (
    "INSERT INTO events (event_id, profile, event_type, url, secret, body, token, time_scale, "
    "created_at, state, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)"
)  # the statement of Outbox.add, for rows made in a registry transaction


class SiteFull(Exception):
    """The site already has as many endpoints as the profile's limit allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the site already has {limit} endpoints")
        self.limit = limit


@dataclass(frozen=True, kw_only=True)
class NewEndpoint:
    endpoint_id: str
    tenant: str
    site: str | None
    url: str
    events: tuple[str, ...]
    description: str | None
    metadata: Mapping[str, Any] | None
    secret: str = field(repr=False)
    active: bool
    created_at: float


@dataclass(frozen=True, kw_only=True)
class Changes:
    """An update: the fields to set (None: unchanged)."""

    url: str | None = None
    events: tuple[str, ...] | None = None
    description: str | None = None
    active: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A stored endpoint, with what its deliveries say: when an attempt was last made, and
    the share of its finished deliveries that succeeded."""

    endpoint_id: str
    tenant: str
    site: str | None
    url: str
    events: tuple[str, ...]
    description: str | None
    metadata: Mapping[str, Any] | None
    secret: str = field(repr=False)
    active: bool
    disabled: bool
    created_at: float
    updated_at: float | None
    last_delivery: float | None
    success_rate: float | None

    @property
    def receiving(self) -> bool:
        """Active, and its URL not disabled by the outbox (auto-disable)."""
        return self.active and not self.disabled


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """A published event, serialized once, to fan out."""

    event_id: str
    event_type: str
    body: bytes = field(repr=False)
    time_scale: float
    created_at: float
    next_at: float
    kind: Literal["event", "test"] = "event"


@dataclass(frozen=True, kw_only=True)
class Fanned:
    """One outbox row a fan-out made: schedule ``delivery_id`` (its ``seq``) at ``next_at``."""

    seq: int
    delivery_id: str
    endpoint_id: str
    next_at: float


@dataclass(frozen=True, kw_only=True)
class DeliveryRecord:
    """One row of an endpoint's delivery log, from the outbox's event and last attempt."""

    delivery_id: str
    event_id: str
    event_type: str
    kind: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None
    response_ms: float | None
    error: str | None
    created_at: float
    last_attempt_at: float | None


#: Makes a delivery's id and its generated-header token for an endpoint id.
DeliveryIds = Callable[[str], tuple[str, str]]


def _row_to_endpoint(row: tuple[Any, ...]) -> Endpoint:
    (ident, tenant, site, url, events, description, metadata, secret, active, created,
     updated, disabled, last, rate) = row  # fmt: skip
    return Endpoint(
        endpoint_id=ident,
        tenant=tenant,
        site=site,
        url=url,
        events=tuple(json.loads(events)),
        description=description,
        metadata=None if metadata is None else json.loads(metadata),
        secret=secret,
        active=bool(active),
        disabled=bool(disabled),
        created_at=created,
        updated_at=updated,
        last_delivery=last,
        success_rate=rate,
    )


def _status(state: str, attempts: int) -> DeliveryStatus:
    if state == "delivered":
        return "success"
    if state == "failed" or attempts > 0:
        return "failed"
    return "pending"


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class EndpointStore(Outbox):
    """The outbox and the endpoint registry of one profile (see the module docstring)."""

    SCHEMA = Schema(
        script=Outbox.SCHEMA.script + _REGISTRY,
        version=Outbox.SCHEMA.version,
        name="outbox and endpoint registry schema",
        reader="sender",
    )

    # -- endpoints ------------------------------------------------------------------------

    async def create_endpoint(self, new: NewEndpoint, *, per_site: int | None = None) -> Endpoint:
        """Store a new endpoint; raise ``SiteFull`` when its site has ``per_site`` already."""

        def work(conn: sqlite3.Connection) -> Endpoint:
            if per_site is not None and new.site is not None:
                (count,) = conn.execute(
                    "SELECT COUNT(*) FROM managed_endpoints WHERE profile = ? AND site = ?",
                    (self.profile, new.site),
                ).fetchone()
                if count >= per_site:
                    raise SiteFull(per_site)
            conn.execute(
                "INSERT INTO managed_endpoints (endpoint_id, profile, tenant, site, url, events, "
                "description, metadata, secret, active, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.endpoint_id,
                    self.profile,
                    new.tenant,
                    new.site,
                    new.url,
                    _json(list(new.events)),
                    new.description,
                    None if new.metadata is None else _json(new.metadata),
                    new.secret,
                    int(new.active),
                    new.created_at,
                ),
            )
            _lift_disable(conn, self.profile, new.url)
            found = self._endpoint(conn, new.tenant, new.endpoint_id)
            assert found is not None
            return found

        return await self._submit(work)

    async def get_endpoint(self, tenant: str, endpoint_id: str) -> Endpoint | None:
        """The tenant's endpoint, or None (none of that id, or another tenant's)."""
        return await self._submit(lambda conn: self._endpoint(conn, tenant, endpoint_id))

    async def list_endpoints(
        self,
        tenant: str,
        *,
        site: str | None = None,
        receiving: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[Endpoint], int]:
        """A page of the tenant's endpoints, oldest first, and how many there are in all."""
        where = ["m.profile = ?", "m.tenant = ?"]
        params: list[object] = [self.profile, tenant]
        if site is not None:
            where.append("m.site = ?")
            params.append(site)
        if receiving is not None:
            where.append(f"{_RECEIVING} = ?")
            params.append(int(receiving))
        clause = " AND ".join(where)

        def work(conn: sqlite3.Connection) -> tuple[list[Endpoint], int]:
            (total,) = conn.execute(
                f"SELECT COUNT(*) FROM managed_endpoints m WHERE {clause}",  # noqa: S608 - fixed fragments
                params,
            ).fetchone()
            rows = conn.execute(
                f"SELECT {_ENDPOINT_COLUMNS} FROM managed_endpoints m "  # noqa: S608 - fixed fragments
                f"WHERE {clause} ORDER BY m.seq LIMIT ? OFFSET ?",
                [*params, -1 if limit is None else limit, offset],
            ).fetchall()
            return [_row_to_endpoint(row) for row in rows], total

        return await self._submit(work)

    async def update_endpoint(
        self, tenant: str, endpoint_id: str, changes: Changes, *, at: float
    ) -> Endpoint | None:
        """Apply ``changes``; None when the tenant has no such endpoint. A new URL also
        redirects the endpoint's pending deliveries (their retries go where it now points);
        re-activating lifts its URL's auto-disable."""

        def work(conn: sqlite3.Connection) -> Endpoint | None:
            current = self._endpoint(conn, tenant, endpoint_id)
            if current is None:
                return None
            sets = ["updated_at = ?"]
            params: list[object] = [at]
            if changes.url is not None:
                sets.append("url = ?")
                params.append(changes.url)
                conn.execute(
                    "UPDATE events SET url = ? WHERE profile = ? AND state = 'pending' "
                    "AND event_id IN "
                    "(SELECT delivery_id FROM managed_deliveries WHERE endpoint_id = ?)",
                    (changes.url, self.profile, endpoint_id),
                )
            if changes.events is not None:
                sets.append("events = ?")
                params.append(_json(list(changes.events)))
            if changes.description is not None:
                sets.append("description = ?")
                params.append(changes.description)
            if changes.active is not None:
                sets.append("active = ?")
                params.append(int(changes.active))
                if changes.active:
                    _lift_disable(conn, self.profile, changes.url or current.url)
            conn.execute(
                f"UPDATE managed_endpoints SET {', '.join(sets)} "  # noqa: S608 - fixed fragments
                "WHERE profile = ? AND tenant = ? AND endpoint_id = ?",
                [*params, self.profile, tenant, endpoint_id],
            )
            return self._endpoint(conn, tenant, endpoint_id)

        return await self._submit(work)

    async def delete_endpoint(self, tenant: str, endpoint_id: str, *, at: float) -> bool:
        """Delete the endpoint and fail its pending deliveries; False when the tenant has no
        such endpoint. (An attempt already in flight still completes.)"""

        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM managed_endpoints "
                "WHERE profile = ? AND tenant = ? AND endpoint_id = ?",
                (self.profile, tenant, endpoint_id),
            )
            if cursor.rowcount == 0:
                return False
            conn.execute(
                "UPDATE events SET state = 'failed', next_at = NULL, finished_at = ?, "
                "last_error = 'endpoint deleted' WHERE profile = ? AND state = 'pending' AND "
                "event_id IN (SELECT delivery_id FROM managed_deliveries WHERE endpoint_id = ?)",
                (at, self.profile, endpoint_id),
            )
            return True

        return await self._submit(work)

    def _endpoint(self, conn: sqlite3.Connection, tenant: str, endpoint_id: str) -> Endpoint | None:
        row = conn.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM managed_endpoints m "  # noqa: S608 - fixed fragments
            "WHERE m.profile = ? AND m.tenant = ? AND m.endpoint_id = ?",
            (self.profile, tenant, endpoint_id),
        ).fetchone()
        return None if row is None else _row_to_endpoint(row)

    # -- deliveries -----------------------------------------------------------------------

    async def fan_out(
        self,
        tenant: str,
        outgoing: Outgoing,
        *,
        ids: DeliveryIds,
        endpoint_id: str | None = None,
    ) -> list[Fanned] | None:
        """Commit one outbox row per receiving endpoint of the tenant subscribed to the
        event's type, and its delivery record, in one transaction. With ``endpoint_id`` (a
        test delivery): that endpoint alone, whatever its subscriptions and ``active``; None
        when the tenant has no such endpoint, ``EndpointDisabled`` when its URL is disabled.
        ``ids(endpoint_id)`` makes each row's delivery id and header token."""

        def work(conn: sqlite3.Connection) -> list[Fanned] | None:
            if endpoint_id is None:
                targets = conn.execute(
                    "SELECT m.endpoint_id, m.url, m.secret FROM managed_endpoints m "  # noqa: S608 - fixed fragments
                    "WHERE m.profile = ? AND m.tenant = ? "
                    f"AND {_RECEIVING} AND EXISTS "
                    "(SELECT 1 FROM json_each(m.events) WHERE value = ?) ORDER BY m.seq",
                    (self.profile, tenant, outgoing.event_type),
                ).fetchall()
            else:
                found = self._endpoint(conn, tenant, endpoint_id)
                if found is None:
                    return None
                if found.disabled:
                    disabled_at, reason = conn.execute(
                        "SELECT disabled_at, disabled_reason FROM endpoints "
                        "WHERE profile = ? AND url = ?",
                        (self.profile, found.url),
                    ).fetchone()
                    raise EndpointDisabled(found.url, disabled_at, reason)
                targets = [(found.endpoint_id, found.url, found.secret)]
            fanned: list[Fanned] = []
            for ident, url, secret in targets:
                delivery_id, token = ids(ident)
                cursor = conn.execute(
                    _INSERT_EVENT,
                    (
                        delivery_id,
                        self.profile,
                        outgoing.event_type,
                        url,
                        secret,
                        outgoing.body,
                        token,
                        outgoing.time_scale,
                        outgoing.created_at,
                        outgoing.next_at,
                    ),
                )
                assert cursor.lastrowid is not None
                conn.execute(
                    "INSERT INTO managed_deliveries (delivery_id, profile, tenant, endpoint_id, "
                    "event_id, event_type, kind, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        delivery_id,
                        self.profile,
                        tenant,
                        ident,
                        outgoing.event_id,
                        outgoing.event_type,
                        outgoing.kind,
                        outgoing.created_at,
                    ),
                )
                fanned.append(
                    Fanned(
                        seq=cursor.lastrowid,
                        delivery_id=delivery_id,
                        endpoint_id=ident,
                        next_at=outgoing.next_at,
                    )
                )
            return fanned

        return await self._submit(work)

    async def deliveries(
        self,
        tenant: str,
        endpoint_id: str,
        *,
        status: DeliveryStatus | None = None,
        event_type: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[DeliveryRecord], int] | None:
        """A page of the endpoint's delivery log, newest first, and how many rows match in
        all; None when the tenant has no such endpoint."""
        where = ["d.profile = ?", "d.endpoint_id = ?"]
        params: list[object] = [self.profile, endpoint_id]
        if event_type is not None:
            where.append("d.event_type = ?")
            params.append(event_type)
        if status is not None:
            where.append(_STATUS_SQL[status])
        clause = " AND ".join(where)

        def work(conn: sqlite3.Connection) -> tuple[list[DeliveryRecord], int] | None:
            owned = conn.execute(
                "SELECT 1 FROM managed_endpoints WHERE profile = ? AND tenant = ? "
                "AND endpoint_id = ?",
                (self.profile, tenant, endpoint_id),
            ).fetchone()
            if owned is None:
                return None
            joined = "FROM managed_deliveries d JOIN events e ON e.event_id = d.delivery_id"
            (total,) = conn.execute(
                f"SELECT COUNT(*) {joined} WHERE {clause}",
                params,
            ).fetchone()
            rows = conn.execute(
                "SELECT d.delivery_id, d.event_id, d.event_type, d.kind, d.created_at, "  # noqa: S608 - fixed fragments
                "e.state, e.attempts, e.last_error, a.status, a.response_ms, a.error, "
                f"a.started_at {joined} LEFT JOIN attempts a ON a.id = (SELECT MAX(id) FROM "
                "attempts WHERE event_seq = e.seq AND ended_at IS NOT NULL) "
                f"WHERE {clause} ORDER BY d.seq DESC LIMIT ? OFFSET ?",
                [*params, -1 if limit is None else limit, offset],
            ).fetchall()
            records = []
            for (delivery_id, event_id, event_type_, kind, created, state, attempts, last_error,
                 status_, response_ms, error, started) in rows:  # fmt: skip
                delivered = state == "delivered"
                records.append(
                    DeliveryRecord(
                        delivery_id=delivery_id,
                        event_id=event_id,
                        event_type=event_type_,
                        kind=kind,
                        status=_status(state, attempts),
                        attempts=attempts,
                        response_status=status_,
                        response_ms=response_ms,
                        error=None if delivered else (error or last_error),
                        created_at=created,
                        last_attempt_at=started,
                    )
                )
            return records, total

        return await self._submit(work)

    async def delivery_tenant(self, delivery_id: str) -> str | None:
        """The tenant a delivery was made for, or None when it is not a managed one."""

        def work(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT tenant FROM managed_deliveries WHERE profile = ? AND delivery_id = ?",
                (self.profile, delivery_id),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._submit(work)


def _lift_disable(conn: sqlite3.Connection, profile: str, url: str) -> None:
    conn.execute(
        "UPDATE endpoints SET failing_since = NULL, disabled_at = NULL, disabled_reason = NULL "
        "WHERE profile = ? AND url = ? AND disabled_at IS NOT NULL",
        (profile, url),
    )
