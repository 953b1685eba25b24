"""The reference receiver's durable event store: one SQLite file, written in batches.

Work is grouped without ever waiting for company: the inserts requested during one
event-loop iteration are committed together, on the very next iteration. Where they run
depends on the durability asked for:

* ``synchronous=NORMAL`` (the default): on the event loop itself, through a connection of its
  own. A WAL commit without fsync costs about 10-30 µs, less than handing the batch to a
  thread and waking the loop again, so this is the fast path.
* ``synchronous=FULL``: on the writer thread, because a commit then waits on fsync and must
  not stall the loop.

Everything else (marking events processed, reads at start-up) runs on a single writer thread
that takes the first queued job plus whatever others are already queued, runs them in one
transaction and commits once. Each caller resumes only after its commit returned, so an
acknowledgement always follows a durable commit of its own event.

Settings:

* ``journal_mode=WAL``: readers (``read_events``, a second process) never block the writer.
* ``synchronous=NORMAL`` by default. In WAL mode a committed transaction is in the WAL file
  when ``COMMIT`` returns, so it survives the receiver process crashing or being killed; only
  a power loss or kernel crash can drop the last commits, because NORMAL skips the fsync per
  commit. ``FULL`` adds that fsync (about 150 µs per commit here) and survives power loss;
  pass ``synchronous="FULL"`` where the host's durability matters more than throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = ["EventStore", "StoreClosed", "StoredEvent", "Synchronous", "read_events"]

Synchronous = Literal["NORMAL", "FULL"]
T = TypeVar("T")

SCHEMA_VERSION = 1
_MAX_BATCH = 256
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


def _connect(
    path: Path, synchronous: Synchronous, *, same_thread: bool = True
) -> sqlite3.Connection:
    """A connection in WAL mode with the schema in place. ``same_thread=False`` only lets
    ``close()`` run elsewhere; every statement still runs on the thread that opened it."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=same_thread, timeout=10.0)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{path}: cannot switch to WAL (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"{path} has schema version {version}; this receiver knows {SCHEMA_VERSION}"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(slots=True)
class _Job:
    work: Callable[[sqlite3.Connection], object]
    future: asyncio.Future[object] | Future[object]
    loop: asyncio.AbstractEventLoop | None
    result: object = None
    error: BaseException | None = None


_STOP = object()


class EventStore:
    """Durable, deduplicating storage of accepted deliveries for one profile.

    ``open()`` starts the writer thread and creates the schema; ``close()`` finishes the
    queued work and stops it. The async methods are for the event loop; ``call`` runs the same
    work from any other thread.
    """

    def __init__(self, path: str | Path, *, profile: str, synchronous: Synchronous = "NORMAL"):
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self.path = Path(path)
        self.profile = profile
        self.synchronous: Synchronous = synchronous
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._adds: dict[asyncio.AbstractEventLoop, list[tuple[tuple[object, ...], Any]]] = {}
        # NORMAL mode: one connection per event loop, used only on that loop's thread.
        self._inline: dict[asyncio.AbstractEventLoop, sqlite3.Connection] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EventStore({str(self.path)!r}, profile={self.profile!r})"

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def open(self) -> None:
        """Start the writer thread; raise here (not later) if the file cannot be used."""
        with self._lock:
            if self.is_open:
                return
            ready: Future[None] = Future()
            thread = threading.Thread(
                target=self._run, args=(ready,), name=f"event-store:{self.path.name}", daemon=True
            )
            thread.start()
            ready.result()
            self._thread = thread

    def close(self, timeout: float = 10.0) -> None:
        """Run the jobs already queued, then stop the writer thread and close the file."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._jobs.put(_STOP)
            thread.join(timeout)
            inline, self._inline = self._inline, {}
        for conn in inline.values():
            conn.close()

    def __enter__(self) -> EventStore:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = _connect(self.path, self.synchronous)
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                if first is _STOP:
                    break
                batch: list[_Job] = [first]  # type: ignore[list-item]
                while len(batch) < _MAX_BATCH:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stopping = True
                        break
                    batch.append(more)  # type: ignore[arg-type]
                self._execute(conn, batch)
        finally:
            conn.close()
            self._fail_leftovers()

    @staticmethod
    def _execute(conn: sqlite3.Connection, batch: list[_Job]) -> None:
        EventStore._transact(conn, batch)
        _settle_all(batch)

    @staticmethod
    def _transact(conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """Run the jobs in one transaction; each job keeps its own result or error."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                try:
                    job.result = job.work(conn)
                except Exception as exc:  # one job's failure is that job's answer
                    job.error = exc
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                # The original error is the one worth reporting.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for job in batch:
                job.error = job.error or exc

    def _fail_leftovers(self) -> None:
        leftovers: list[_Job] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, _Job):
                job.error = StoreClosed(f"{self!r} closed before this job ran")
                leftovers.append(job)
        _settle_all(leftovers)

    # -- submitting work ----------------------------------------------------------------------

    async def _submit(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if not self.is_open:
            raise StoreClosed(f"{self!r} is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._jobs.put(_Job(work, future, loop))
        return await future  # type: ignore[return-value]

    def call(self, work: Callable[[sqlite3.Connection], T], timeout: float = 10.0) -> T:
        """Run ``work(connection)`` on the writer thread from a non-async thread."""
        if not self.is_open:
            raise StoreClosed(f"{self!r} is not open")
        future: Future[object] = Future()
        self._jobs.put(_Job(work, future, None))
        return future.result(timeout)  # type: ignore[return-value]

    def _flush_adds(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the inserts of one event-loop iteration in one transaction: right here on
        the loop (NORMAL), or as one job for the writer thread (FULL).

        Nothing waits for more to come: this runs on the very next iteration, and each caller
        resumes only after the commit of its own row.
        """
        waiting = self._adds.pop(loop, [])
        rows = [row for row, _ in waiting]

        def work(conn: sqlite3.Connection) -> list[int | Exception | None]:
            results: list[int | Exception | None] = []
            for row in rows:
                try:
                    cursor = conn.execute(_INSERT, row)
                except Exception as exc:  # this row's failure is this row's answer
                    results.append(exc)
                else:
                    results.append(cursor.lastrowid if cursor.rowcount == 1 else None)
            return results

        def distribute(batch: asyncio.Future[object]) -> None:
            if batch.cancelled():
                outcomes: list[object] = [StoreClosed("the insert was cancelled")] * len(waiting)
            elif (error := batch.exception()) is not None:
                outcomes = [error] * len(waiting)
            else:
                outcomes = list(batch.result())  # type: ignore[call-overload]
            for (_, future), outcome in zip(waiting, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

        batch: asyncio.Future[object] = loop.create_future()
        batch.add_done_callback(distribute)
        if not self.is_open:
            batch.set_exception(StoreClosed(f"{self!r} closed before this insert ran"))
            return
        if self.synchronous == "FULL":
            self._jobs.put(_Job(work, batch, loop))
            return
        job = _Job(work, batch, loop)
        try:
            conn = self._inline.get(loop)
            if conn is None:
                conn = self._inline[loop] = _connect(self.path, self.synchronous, same_thread=False)
        except Exception as exc:
            job.error = exc
        else:
            self._transact(conn, [job])
        _settle(job)

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

        if not self.is_open:
            raise StoreClosed(f"{self!r} is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        waiting = self._adds.setdefault(loop, [])
        if not waiting:
            loop.call_soon(self._flush_adds, loop)
        waiting.append((row, future))
        seq = await future
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


def _settle_all(jobs: list[_Job]) -> None:
    """Hand each job's outcome to its future: one wake-up per event loop, not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        if job.loop is None:
            _settle(job)
        else:
            by_loop.setdefault(job.loop, []).append(job)
    for loop, group in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_group, group)


def _settle_group(jobs: list[_Job]) -> None:
    for job in jobs:
        _settle(job)


def _settle(job: _Job) -> None:
    future = job.future
    if future.done():  # an awaiting request was cancelled
        return
    if job.error is not None:
        future.set_exception(job.error)
    else:
        future.set_result(job.result)


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
