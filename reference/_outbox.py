"""The reference sender's durable outbox: events, their attempts and their endpoints, in one
SQLite file (WAL).

Tables:

* ``events``: one row per triggered event: the exact body bytes that every attempt sends, the
  secret it is signed with, the token that fills the profile's generated headers (so that a
  delivery id stays the same across attempts), the state (``pending``, ``delivered``,
  ``failed``), the number of completed attempts and when the next one is due.
* ``attempts``: the attempt log. A row is written (and committed) when an attempt starts,
  with the headers it sends, and completed when it ends: status or error, response time, an
  excerpt of the answer, and its outcome (``delivered``, ``retry``, ``failed``). A row still
  open at start-up belongs to an attempt that was in flight when the sender died: it is
  closed as ``interrupted`` and the attempt is made again, with the same number and identity.
* ``endpoints``: per target URL, since when every attempt has failed, and whether (and why)
  the endpoint was disabled.

Writes are ``reference._sqlite.BatchedWriter``'s group commits: the jobs queued during one
event-loop iteration run in one transaction (each under its own savepoint, so one failing job
does not undo the others) and commit once, so under load many triggers and attempt records
share a commit. Each caller resumes only after the commit of its own job: a trigger is
answered only once its event is durable, and an attempt's request goes out only once its row
is. Under ``synchronous=NORMAL`` (the default) the jobs run on the event loop itself, on the
very next iteration, and survive the process being killed; under ``synchronous=FULL`` on the
writer thread (the commit waits on fsync), which also survives power loss.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from reference._sqlite import ProfileFile, Schema

__all__ = [
    "AttemptRecord",
    "AttemptResult",
    "Begun",
    "EndpointDisabled",
    "EndpointState",
    "NewEvent",
    "Outbox",
    "OutboxClosed",
    "OutboxEvent",
    "State",
]

T = TypeVar("T")
State = Literal["pending", "delivered", "failed"]
Outcome = Literal["delivered", "retry", "failed"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT    NOT NULL UNIQUE,
    profile      TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    secret       TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    token        TEXT    NOT NULL,
    time_scale   REAL    NOT NULL,
    created_at   REAL    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      REAL,
    last_error   TEXT,
    finished_at  REAL
);
CREATE INDEX IF NOT EXISTS events_due ON events (profile, next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS events_url ON events (profile, url) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS attempts (
    id           INTEGER PRIMARY KEY,
    event_seq    INTEGER NOT NULL REFERENCES events (seq),
    number       INTEGER NOT NULL,
    started_at   REAL    NOT NULL,
    ended_at     REAL,
    outcome      TEXT,
    status       INTEGER,
    error        TEXT,
    response_ms  REAL,
    excerpt      BLOB,
    headers      TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_seq, id);
CREATE INDEX IF NOT EXISTS attempts_open ON attempts (event_seq) WHERE ended_at IS NULL;
CREATE TABLE IF NOT EXISTS endpoints (
    profile         TEXT NOT NULL,
    url             TEXT NOT NULL,
    failing_since   REAL,
    last_success_at REAL,
    disabled_at     REAL,
    disabled_reason TEXT,
    PRIMARY KEY (profile, url)
);
"""
_EVENT_COLUMNS = (
    "seq, event_id, profile, event_type, url, secret, body, token, time_scale, created_at, "
    "state, attempts, next_at, last_error, finished_at"
)
_ATTEMPT_COLUMNS = (
    "id, number, started_at, ended_at, outcome, status, error, response_ms, excerpt, headers"
)
#: What an attempt that was in flight when the sender stopped is recorded as.
INTERRUPTED = "interrupted: the sender stopped during this attempt; it is made again"


class OutboxClosed(RuntimeError):
    """The outbox is not open: ``open()`` was not called, or ``close()`` already was."""


class EndpointDisabled(Exception):
    """The endpoint was disabled (auto-disable): it receives no further deliveries."""

    def __init__(self, url: str, disabled_at: float, reason: str | None) -> None:
        super().__init__(f"{url} was disabled at {disabled_at:.3f}: {reason}")
        self.url = url
        self.disabled_at = disabled_at
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class NewEvent:
    """An event to commit: everything every attempt needs, fixed at trigger time."""

    event_id: str
    event_type: str
    url: str
    secret: str = field(repr=False)
    body: bytes = field(repr=False)
    token: str
    time_scale: float
    created_at: float
    next_at: float


@dataclass(frozen=True, kw_only=True)
class OutboxEvent:
    """One stored event and its delivery state."""

    seq: int
    event_id: str
    profile: str
    event_type: str
    url: str
    secret: str = field(repr=False)
    body: bytes = field(repr=False)
    token: str
    time_scale: float
    created_at: float
    state: State
    attempts: int
    next_at: float | None
    last_error: str | None
    finished_at: float | None


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    """What one attempt observed: a status (an answer), or an error (no answer)."""

    status: int | None = None
    error: str | None = None
    response_ms: float | None = None
    excerpt: bytes = b""
    #: The seconds a Retry-After header asked for (not stored: it only moves the next try).
    retry_after: float | None = None


@dataclass(frozen=True, kw_only=True)
class AttemptRecord:
    """One row of the attempt log. ``outcome`` is None while the attempt is in flight."""

    id: int
    number: int
    started_at: float
    ended_at: float | None
    outcome: str | None
    status: int | None
    error: str | None
    response_ms: float | None
    excerpt: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class EndpointState:
    url: str
    failing_since: float | None
    last_success_at: float | None
    disabled_at: float | None
    disabled_reason: str | None


@dataclass(frozen=True, kw_only=True)
class Begun:
    """An attempt whose start is committed: the event, the attempt's row and number, the
    headers it sends and the moment they were signed, and when the event's first attempt
    started (this one's start, for attempt 1)."""

    event: OutboxEvent
    attempt_id: int
    number: int
    headers: Mapping[str, str]
    started_at: float
    first_started_at: float


#: Signs one attempt: ``(event, now) -> headers``. Runs on the writer thread.
Signer = Callable[[OutboxEvent, float], Mapping[str, str]]


def _row_to_event(row: tuple[Any, ...]) -> OutboxEvent:
    (seq, event_id, profile, event_type, url, secret, body, token, scale, created, state,
     attempts, next_at, last_error, finished) = row  # fmt: skip
    return OutboxEvent(
        seq=seq,
        event_id=event_id,
        profile=profile,
        event_type=event_type,
        url=url,
        secret=secret,
        body=bytes(body),
        token=token,
        time_scale=scale,
        created_at=created,
        state=state,
        attempts=attempts,
        next_at=next_at,
        last_error=last_error,
        finished_at=finished,
    )


def _row_to_attempt(row: tuple[Any, ...]) -> AttemptRecord:
    ident, number, started, ended, outcome, status, error, response_ms, excerpt, headers = row
    return AttemptRecord(
        id=ident,
        number=number,
        started_at=started,
        ended_at=ended,
        outcome=outcome,
        status=status,
        error=error,
        response_ms=response_ms,
        excerpt=bytes(excerpt or b""),
        headers=json.loads(headers),
    )


class Outbox(ProfileFile):
    """Durable storage of one profile's outgoing events (see the module docstring).

    ``open()`` opens the file and creates the schema; the async methods are for one event
    loop; ``aclose()`` (on that loop) or ``close()`` (anywhere, once the loop is done with the
    outbox) runs the work already queued and closes the file.
    """

    SCHEMA = Schema(script=_SCHEMA, version=SCHEMA_VERSION, name="outbox schema", reader="sender")
    CLOSED = OutboxClosed
    MAX_BATCH = 512

    # -- running jobs ---------------------------------------------------------------------

    async def _submit(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.submit(work, inline=True)

    def _submit_nowait(self, work: Callable[[sqlite3.Connection], object]) -> None:
        """Queue work nobody waits for (it still runs before ``aclose()`` returns)."""
        with contextlib.suppress(OutboxClosed, RuntimeError):
            self._writer.submit_nowait(work, inline=True)

    # -- operations ---------------------------------------------------------------------------

    async def add(self, event: NewEvent) -> int:
        """Commit a new pending event and return its sequence number; raise
        ``EndpointDisabled`` (storing nothing) when its endpoint is disabled."""

        def work(conn: sqlite3.Connection) -> int:
            disabled = conn.execute(
                "SELECT disabled_at, disabled_reason FROM endpoints "
                "WHERE profile = ? AND url = ? AND disabled_at IS NOT NULL",
                (self.profile, event.url),
            ).fetchone()
            if disabled is not None:
                raise EndpointDisabled(event.url, disabled[0], disabled[1])
            cursor = conn.execute(
                "INSERT INTO events (event_id, profile, event_type, url, secret, body, token, "
                "time_scale, created_at, state, next_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    event.event_id,
                    self.profile,
                    event.event_type,
                    event.url,
                    event.secret,
                    event.body,
                    event.token,
                    event.time_scale,
                    event.created_at,
                    event.next_at,
                ),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return await self._submit(work)

    async def recover(self, at: float) -> list[tuple[float, int, str]]:
        """At start-up: close the attempts left open by a sender that died (``interrupted``),
        and list every pending event as ``(next_at, seq, event_id)``."""

        def work(conn: sqlite3.Connection) -> list[tuple[float, int, str]]:
            conn.execute(
                "UPDATE attempts SET ended_at = ?, outcome = 'interrupted', error = ? "
                "WHERE ended_at IS NULL AND event_seq IN "
                "(SELECT seq FROM events WHERE profile = ?)",
                (at, INTERRUPTED, self.profile),
            )
            rows = conn.execute(
                "SELECT next_at, seq, event_id FROM events "
                "WHERE profile = ? AND state = 'pending' ORDER BY next_at, seq",
                (self.profile,),
            ).fetchall()
            return [(float(n if n is not None else at), s, e) for n, s, e in rows]

        return await self._submit(work)

    async def begin_attempt(
        self, event_id: str, *, sign: Signer, clock: Callable[[], float]
    ) -> Begun | float | None:
        """Record the start of the next attempt of a pending event, with the headers
        ``sign`` makes for it, and commit. None when the event is no longer pending, or when
        no attempt can be made (its endpoint was disabled, or ``sign`` fails): the event is
        then marked failed. A float when the event is not due yet: when it is."""

        def work(conn: sqlite3.Connection) -> Begun | float | None:
            row = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events "  # noqa: S608 - fixed fragments
                "WHERE event_id = ? AND profile = ? AND state = 'pending'",
                (event_id, self.profile),
            ).fetchone()
            if row is None:
                return None
            event = _row_to_event(row)
            disabled = conn.execute(
                "SELECT disabled_at, disabled_reason FROM endpoints "
                "WHERE profile = ? AND url = ? AND disabled_at IS NOT NULL",
                (self.profile, event.url),
            ).fetchone()
            now = clock()
            if event.next_at is not None and event.next_at > now:
                return event.next_at  # not due yet (a stale entry, or the clock stepped back)
            if disabled is not None:
                conn.execute(
                    "UPDATE events SET state = 'failed', next_at = NULL, finished_at = ?, "
                    "last_error = ? WHERE seq = ?",
                    (now, f"endpoint disabled: {disabled[1]}", event.seq),
                )
                return None
            try:
                headers = dict(sign(event, now))
            except Exception as exc:  # a stored secret the signer refuses: no attempt can be made
                conn.execute(
                    "UPDATE events SET state = 'failed', next_at = NULL, finished_at = ?, "
                    "last_error = ? WHERE seq = ?",
                    (now, f"cannot sign: {type(exc).__name__}: {exc}", event.seq),
                )
                return None
            number = event.attempts + 1
            first = now if number == 1 else _first_started(conn, event.seq, now)
            cursor = conn.execute(
                "INSERT INTO attempts (event_seq, number, started_at, headers) VALUES (?, ?, ?, ?)",
                (event.seq, number, now, json.dumps(headers)),
            )
            assert cursor.lastrowid is not None
            return Begun(
                event=event,
                attempt_id=cursor.lastrowid,
                number=number,
                headers=headers,
                started_at=now,
                first_started_at=first,
            )

        return await self._submit(work)

    async def finish_attempt(
        self,
        begun: Begun,
        result: AttemptResult,
        *,
        outcome: Outcome,
        ended_at: float,
        next_at: float | None,
        error: str | None,
        disable_after_seconds: float | None,
        disable_now: str | None = None,
    ) -> tuple[State, float | None]:
        """Complete an attempt and its event's state in one transaction, and keep the
        endpoint's failure streak. An endpoint failing for ``disable_after_seconds`` or longer
        is disabled, and so is one whose answer asks for it (``disable_now``, the reason:
        Standard Webhooks' 410): this event and its other pending events fail. Returns the
        event's state and, while pending, when its next attempt is due."""
        event = begun.event

        def work(conn: sqlite3.Connection) -> tuple[State, float | None]:
            state: State = "pending" if outcome == "retry" else outcome
            final_outcome: str = outcome
            final_error = error
            if outcome == "delivered":
                conn.execute(
                    "INSERT INTO endpoints (profile, url, last_success_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (profile, url) DO UPDATE SET failing_since = NULL, "
                    "last_success_at = excluded.last_success_at",
                    (self.profile, event.url, ended_at),
                )
            else:
                conn.execute(
                    "INSERT INTO endpoints (profile, url, failing_since) VALUES (?, ?, ?) "
                    "ON CONFLICT (profile, url) DO UPDATE SET "
                    "failing_since = COALESCE(failing_since, excluded.failing_since)",
                    (self.profile, event.url, begun.started_at),
                )
                since = conn.execute(
                    "SELECT failing_since FROM endpoints WHERE profile = ? AND url = ?",
                    (self.profile, event.url),
                ).fetchone()[0]
                expired = (
                    disable_after_seconds is not None and ended_at - since >= disable_after_seconds
                )
                if disable_now is not None or expired:
                    if disable_now is not None:
                        reason = disable_now
                    else:
                        assert disable_after_seconds is not None
                        hours = disable_after_seconds / 3600
                        reason = f"every attempt failed for {hours:g} h (since {since:.3f})"
                    conn.execute(
                        "UPDATE endpoints SET disabled_at = ?, disabled_reason = ? "
                        "WHERE profile = ? AND url = ?",
                        (ended_at, reason, self.profile, event.url),
                    )
                    conn.execute(
                        "UPDATE events SET state = 'failed', next_at = NULL, finished_at = ?, "
                        "last_error = ? WHERE profile = ? AND url = ? AND state = 'pending' "
                        "AND seq != ?",
                        (ended_at, f"endpoint disabled: {reason}", self.profile, event.url,
                         event.seq),
                    )  # fmt: skip
                    state, final_outcome = "failed", "failed"
                    final_error = f"{error}; endpoint disabled: {reason}"
            conn.execute(
                "UPDATE attempts SET ended_at = ?, outcome = ?, status = ?, error = ?, "
                "response_ms = ?, excerpt = ? WHERE id = ?",
                (
                    ended_at,
                    final_outcome,
                    result.status,
                    result.error,
                    result.response_ms,
                    result.excerpt,
                    begun.attempt_id,
                ),
            )
            due = next_at if state == "pending" else None
            conn.execute(
                "UPDATE events SET attempts = attempts + 1, state = ?, next_at = ?, "
                "last_error = ?, finished_at = ? WHERE seq = ?",
                (state, due, final_error, None if state == "pending" else ended_at, event.seq),
            )
            return state, due

        return await self._submit(work)

    def interrupt_nowait(self, attempt_id: int, at: float) -> None:
        """Close an attempt cut short by the sender stopping (it is made again at the next
        start); queued without waiting, and run before ``close()`` returns."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE attempts SET ended_at = ?, outcome = 'interrupted', error = ? "
                "WHERE id = ? AND ended_at IS NULL",
                (at, INTERRUPTED, attempt_id),
            )

        self._submit_nowait(work)

    async def reschedule(self, event_id: str, next_at: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE events SET next_at = ? WHERE event_id = ? AND state = 'pending'",
                (next_at, event_id),
            )

        await self._submit(work)

    async def delivery(
        self, event_id: str
    ) -> tuple[OutboxEvent, list[AttemptRecord], EndpointState | None] | None:
        """An event, its attempt log (oldest first) and its endpoint's state."""

        def work(
            conn: sqlite3.Connection,
        ) -> tuple[OutboxEvent, list[AttemptRecord], EndpointState | None] | None:
            row = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events "  # noqa: S608 - fixed fragments
                "WHERE event_id = ? AND profile = ?",
                (event_id, self.profile),
            ).fetchone()
            if row is None:
                return None
            event = _row_to_event(row)
            attempts = [
                _row_to_attempt(r)
                for r in conn.execute(
                    f"SELECT {_ATTEMPT_COLUMNS} FROM attempts "  # noqa: S608 - fixed fragments
                    "WHERE event_seq = ? ORDER BY id",
                    (event.seq,),
                )
            ]
            return event, attempts, _endpoint(conn, self.profile, event.url)

        return await self._submit(work)

    async def endpoint(self, url: str) -> EndpointState | None:
        return await self._submit(lambda conn: _endpoint(conn, self.profile, url))


def _first_started(conn: sqlite3.Connection, seq: int, default: float) -> float:
    """When the event's first attempt started, from the attempt log (so it survives a
    restart): the attempt 1 that completed, not one a stop interrupted and that was made
    again."""
    row = conn.execute(
        "SELECT started_at FROM attempts WHERE event_seq = ? AND number = 1 "
        "AND outcome IS NOT NULL AND outcome != 'interrupted' ORDER BY id DESC LIMIT 1",
        (seq,),
    ).fetchone()
    return default if row is None else float(row[0])


def _endpoint(conn: sqlite3.Connection, profile: str, url: str) -> EndpointState | None:
    row = conn.execute(
        "SELECT url, failing_since, last_success_at, disabled_at, disabled_reason "
        "FROM endpoints WHERE profile = ? AND url = ?",
        (profile, url),
    ).fetchone()
    if row is None:
        return None
    return EndpointState(
        url=row[0],
        failing_since=row[1],
        last_success_at=row[2],
        disabled_at=row[3],
        disabled_reason=row[4],
    )
