"""The reference receiver's durable event store: one SQLite file, written in group commits.

The writing is ``reference._sqlite.BatchedWriter``'s: inserts run inline on the event loop
under ``synchronous=NORMAL`` (the default; on the writer thread under ``FULL``), the inserts
requested during one event-loop iteration committed together on the very next one; everything
else (marking events processed, reads at start-up) runs on the writer thread. Each caller
resumes only after its commit returned, so an acknowledgement always follows a durable commit
of its own event.

``synchronous=NORMAL`` survives the receiver process crashing or being killed (a WAL commit is
in the file when ``COMMIT`` returns); only a power loss or kernel crash can drop the last
commits. Pass ``synchronous="FULL"`` (an fsync per commit, about 150 µs here) where the host's
durability matters more than throughput.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from reference._sqlite import ProfileFile, Schema, Synchronous

__all__ = ["EventStore", "StoreClosed", "StoredEvent", "Synchronous", "read_events"]

T = TypeVar("T")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    profile      TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    known        INTEGER NOT NULL,
    body         BLOB    NOT NULL,
    received_at  REAL    NOT NULL,
    processed_at REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    UNIQUE (profile, key)
);
CREATE INDEX IF NOT EXISTS events_pending ON events (profile, seq) WHERE processed_at IS NULL;
"""
_COLUMNS = (
    "seq, profile, key, event_type, known, body, received_at, processed_at, attempts, last_error"
)
_INSERT = (
    "INSERT INTO events (profile, key, event_type, known, body, received_at, processed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (profile, key) DO NOTHING"
)


class StoreClosed(RuntimeError):
    """The store is not open: ``open()`` was not called, or ``close()`` already was."""


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """One accepted delivery, as stored: the raw body and its processing state."""

    seq: int
    profile: str
    key: str
    event_type: str
    known: bool
    body: bytes = field(repr=False)
    received_at: float
    processed_at: float | None = None
    attempts: int = 0
    last_error: str | None = None

    @property
    def processed(self) -> bool:
        return self.processed_at is not None

    def payload(self) -> Any:
        """The body parsed as JSON (the receiver stored it only after it parsed)."""
        return json.loads(self.body)


def _row_to_event(row: sqlite3.Row | tuple[Any, ...]) -> StoredEvent:
    seq, profile, key, event_type, known, body, received, processed, attempts, error = row
    return StoredEvent(
        seq=seq,
        profile=profile,
        key=key,
        event_type=event_type,
        known=bool(known),
        body=bytes(body),
        received_at=received,
        processed_at=processed,
        attempts=attempts,
        last_error=error,
    )


class EventStore(ProfileFile):
    """Durable, deduplicating storage of accepted deliveries for one profile.

    ``open()`` starts the writer thread and creates the schema; ``close()`` finishes the
    queued work and stops it. The async methods are for an event loop; ``call`` runs the same
    work from any other thread.
    """

    SCHEMA = Schema(script=_SCHEMA, version=SCHEMA_VERSION, reader="receiver")
    CLOSED = StoreClosed
    MAX_BATCH = 256

    # -- submitting work ----------------------------------------------------------------------

    async def _submit(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.submit(work)

    def call(self, work: Callable[[sqlite3.Connection], T], timeout: float = 10.0) -> T:
        """Run ``work(connection)`` on the writer thread from a non-async thread."""
        return self._writer.call(work, timeout)

    # -- operations -----------------------------------------------------------------------

    async def add(
        self,
        *,
        key: str,
        event_type: str,
        known: bool,
        body: bytes,
        received_at: float,
        processed: bool = False,
    ) -> StoredEvent | None:
        """Store a delivery; the new ``StoredEvent``, or None when ``key`` is already stored.

        Returns only after the commit, so the caller may acknowledge the delivery.
        """
        row = (
            self.profile,
            key,
            event_type,
            int(known),
            body,
            received_at,
            received_at if processed else None,
        )

        def work(conn: sqlite3.Connection) -> int | None:
            cursor = conn.execute(_INSERT, row)
            return cursor.lastrowid if cursor.rowcount == 1 else None

        seq = await self._writer.submit(work, inline=True)
        if seq is None:
            return None
        return StoredEvent(
            seq=seq,
            profile=self.profile,
            key=key,
            event_type=event_type,
            known=known,
            body=body,
            received_at=received_at,
            processed_at=received_at if processed else None,
        )

    async def mark_processed(self, keys: Sequence[str], at: float) -> None:
        """Record that the handler finished with these events."""
        rows = [(at, self.profile, key) for key in keys]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE events SET processed_at = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE profile = ? AND key = ?",
                rows,
            )

        await self._submit(work)

    async def mark_failed(self, key: str, error: str) -> None:
        """Record a failed handler attempt; the event stays pending."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE events SET attempts = attempts + 1, last_error = ? "
                "WHERE profile = ? AND key = ?",
                (error, self.profile, key),
            )

        await self._submit(work)

    async def pending(self) -> list[StoredEvent]:
        """Events stored but not yet processed, oldest first."""
        return await self._submit(lambda conn: _select(conn, self.profile, pending_only=True))

    async def get(self, key: str) -> StoredEvent | None:
        def work(conn: sqlite3.Connection) -> StoredEvent | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE profile = ? AND key = ?",  # noqa: S608
                (self.profile, key),
            ).fetchone()
            return None if row is None else _row_to_event(row)

        return await self._submit(work)


def _select(
    conn: sqlite3.Connection, profile: str | None, *, pending_only: bool
) -> list[StoredEvent]:
    clauses, params = [], []
    if profile is not None:
        clauses.append("profile = ?")
        params.append(profile)
    if pending_only:
        clauses.append("processed_at IS NULL")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {_COLUMNS} FROM events {where} ORDER BY seq"  # noqa: S608 - fixed fragments
    return [_row_to_event(row) for row in conn.execute(sql, params)]


def read_events(db_path: str | Path, *, profile: str | None = None) -> list[StoredEvent]:
    """Every stored event in a receiver's database, oldest first, read over a separate
    connection (WAL lets it run while the receiver writes)."""
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"no receiver database at {path}")
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    try:
        return _select(conn, profile, pending_only=False)
    finally:
        conn.close()
