"""One SQLite file in WAL mode, written in group commits: the writer under the receiver's
event store (``reference._store``) and the sender's outbox (``reference._outbox``).

A *job* is a function of a connection. Jobs are committed in groups without ever waiting for
company: whatever is queued when the writer gets to it runs in one transaction, each job
under its own savepoint (a job that fails leaves no partial writes and does not undo the
others), and the group commits once. Each caller resumes only after the commit of its own
job, so an answer that follows a write (a receiver's acknowledgement, a sender's 202) always
follows a durable commit of it.

Where a job runs depends on the durability asked for and on the job:

* *inline* (``inline=True`` under ``synchronous=NORMAL``): on the event loop that submitted
  it, through a connection of that loop's own, on the very next loop iteration, together with
  every other inline job of the iteration. A WAL commit without fsync costs about 10-30 µs,
  less than handing the group to a thread and waking the loop again, so this is the fast
  path.
* *on the writer thread* (every job under ``synchronous=FULL``, whose commits wait on fsync
  and must not stall a loop; jobs submitted without ``inline``; and ``call`` from threads
  that have no loop): the thread takes the first queued job plus whatever others are already
  queued, up to ``max_batch``.

Settings:

* ``journal_mode=WAL``: readers (another connection, a second process) never block the
  writer.
* ``synchronous=NORMAL`` by default. In WAL mode a committed transaction is in the WAL file
  when ``COMMIT`` returns, so it survives the process crashing or being killed; only a power
  loss or kernel crash can drop the last commits, because NORMAL skips the fsync per commit.
  ``FULL`` adds that fsync (about 150 µs per commit here) and survives power loss.
* ``PRAGMA user_version`` records the schema version: a file written by a newer version is
  refused rather than misread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

__all__ = ["BatchedWriter", "ProfileFile", "Schema", "Synchronous", "connect"]

T = TypeVar("T")
Synchronous = Literal["NORMAL", "FULL"]
#: A job: runs inside the group's transaction, on the connection it is given.
Work = Callable[[sqlite3.Connection], T]


@dataclass(frozen=True, kw_only=True)
class Schema:
    """The tables a file holds (``script``, idempotent ``CREATE ... IF NOT EXISTS``), their
    ``version``, and for messages what they are the schema of and who reads them."""

    script: str
    version: int
    name: str = "schema"
    reader: str = "program"


def connect(
    path: Path, synchronous: Synchronous, schema: Schema, *, same_thread: bool = True
) -> sqlite3.Connection:
    """A connection in WAL mode with the schema in place. ``same_thread=False`` only lets
    ``close()`` run on another thread; every statement still runs on the one that uses it."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=same_thread, timeout=10.0)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{path}: cannot switch to WAL (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > schema.version:
            raise sqlite3.DatabaseError(
                f"{path} has {schema.name} version {version}; this {schema.reader} knows "
                f"{schema.version}"
            )
        conn.executescript(schema.script)
        conn.execute(f"PRAGMA user_version={schema.version}")
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(slots=True)
class _Job:
    work: Work[object]
    future: asyncio.Future[Any] | Future[Any] | None  # None: nobody waits (submit_nowait)
    loop: asyncio.AbstractEventLoop | None  # where the future lives; None for a thread's
    result: object = None
    error: BaseException | None = None


_STOP = object()


class BatchedWriter:
    """Group commits to one SQLite file (see the module docstring).

    ``open()`` starts the writer thread, which opens the file and puts the schema in place
    (raising there, not at the first job, when the file cannot be used); ``close()`` runs the
    thread's queued jobs and closes every connection. ``closed`` makes the error raised for
    work submitted to a writer that is not open, or closed before the work ran.
    """

    def __init__(
        self,
        path: Path,
        *,
        schema: Schema,
        synchronous: Synchronous,
        name: str,
        closed: Callable[[str], Exception],
        max_batch: int = 512,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self.path = path
        self.schema = schema
        self.synchronous: Synchronous = synchronous
        self.name = name
        self._closed = closed
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # NORMAL: per event loop, its own connection and the inline jobs of this iteration.
        self._inline: dict[asyncio.AbstractEventLoop, sqlite3.Connection] = {}
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}

    def __repr__(self) -> str:
        return f"BatchedWriter({self.name})"

    # -- lifecycle ----------------------------------------------------------------------------

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
                target=self._run, args=(ready,), name=f"sqlite:{self.path.name}", daemon=True
            )
            thread.start()
            ready.result()
            self._thread = thread

    async def aclose(self) -> None:
        """Commit the running loop's inline jobs not yet run, then close: from a loop that
        uses the writer."""
        self._flush(asyncio.get_running_loop())
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        """Run the jobs queued for the writer thread, then stop it and close the file. Inline
        jobs not yet run fail with the ``closed`` error when their loop gets to them (each
        loop's own flush settles them, so ``close`` may run on any thread); ``aclose()``
        runs them first."""
        with self._lock:
            thread, self._thread = self._thread, None
            inline, self._inline = self._inline, {}
        if thread is not None:
            self._jobs.put(_STOP)
            thread.join(timeout)
        for conn in inline.values():
            conn.close()

    # -- submitting work ----------------------------------------------------------------------

    async def submit(self, work: Work[T], *, inline: bool = False) -> T:
        """Run ``work(connection)`` in the next group commit and return its result once
        committed (or raise its error). ``inline`` runs it on this loop under NORMAL."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(_Job(work, future, loop), loop, inline)
        return await future

    def submit_nowait(self, work: Work[object], *, inline: bool = False) -> None:
        """Queue work nobody waits for; it runs before ``aclose()`` (inline) or ``close()``
        (on the thread) returns."""
        loop = asyncio.get_running_loop() if inline else None
        self._enqueue(_Job(work, None, None), loop, inline)

    def call(self, work: Work[T], timeout: float = 10.0) -> T:
        """Run ``work(connection)`` on the writer thread, from a thread without a loop."""
        future: Future[T] = Future()
        self._enqueue(_Job(work, future, None), None, False)
        return future.result(timeout)

    def _enqueue(self, job: _Job, loop: asyncio.AbstractEventLoop | None, inline: bool) -> None:
        if not self.is_open:
            raise self._closed(f"{self.name} is not open")
        if not inline or self.synchronous == "FULL":
            self._jobs.put(job)
            return
        assert loop is not None
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append(job)

    # -- running jobs -------------------------------------------------------------------------

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """NORMAL: run one loop iteration's inline jobs in one transaction, on this loop."""
        batch = self._pending.pop(loop, None)
        if not batch:
            return
        conn = self._inline.get(loop)
        try:
            if not self.is_open:
                raise self._closed(f"{self.name} closed before this job ran")
            if conn is None:
                conn = connect(self.path, self.synchronous, self.schema, same_thread=False)
                self._inline[loop] = conn
        except Exception as exc:
            for job in batch:
                job.error = exc
        else:
            _transact(conn, batch)
        for job in batch:
            _settle(job)

    def _run(self, ready: Future[None]) -> None:
        """The writer thread."""
        try:
            conn = connect(self.path, self.synchronous, self.schema)
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
                while len(batch) < self._max_batch:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stopping = True
                        break
                    batch.append(more)  # type: ignore[arg-type]
                _transact(conn, batch)
                _settle_all(batch)
        finally:
            conn.close()
            self._fail_leftovers()

    def _fail_leftovers(self) -> None:
        leftovers: list[_Job] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, _Job):
                job.error = self._closed(f"{self.name} closed before this job ran")
                leftovers.append(job)
        _settle_all(leftovers)


class ProfileFile:
    """Base of a store that keeps one profile's rows in a SQLite file and writes them
    through a ``BatchedWriter``: the path, the lifecycle and the way to submit work. A
    subclass names its ``SCHEMA``, its ``CLOSED`` error and its ``MAX_BATCH``."""

    SCHEMA: ClassVar[Schema]
    CLOSED: ClassVar[Callable[[str], Exception]]
    MAX_BATCH: ClassVar[int] = 512

    def __init__(
        self, path: str | Path, *, profile: str, synchronous: Synchronous = "NORMAL"
    ) -> None:
        self.path = Path(path)
        self.profile = profile
        self.synchronous: Synchronous = synchronous
        self._writer = BatchedWriter(
            self.path,
            schema=self.SCHEMA,
            synchronous=synchronous,
            name=repr(self),
            closed=type(self).CLOSED,
            max_batch=self.MAX_BATCH,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, profile={self.profile!r})"

    @property
    def is_open(self) -> bool:
        return self._writer.is_open

    def open(self) -> None:
        """Start the writer thread; raise here (not later) if the file cannot be used."""
        self._writer.open()

    def close(self, timeout: float = 10.0) -> None:
        """Run the jobs queued for the writer thread, then stop it and close the file."""
        self._writer.close(timeout)

    async def aclose(self) -> None:
        """Commit this loop's inline jobs not yet run, then close: from a loop that uses
        the file (``close()`` fails those jobs instead)."""
        await self._writer.aclose()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _transact(conn: sqlite3.Connection, batch: list[_Job]) -> None:
    """Run the jobs in one transaction, each under its own savepoint (a lone job needs
    none: its failure rolls the transaction back); each job keeps its own result or error."""
    nested = len(batch) > 1
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            if nested:
                conn.execute("SAVEPOINT job")
            try:
                job.result = job.work(conn)
            except Exception as exc:  # one job's failure is that job's answer
                job.error = exc
                conn.execute("ROLLBACK TO job" if nested else "ROLLBACK")
            if nested:
                conn.execute("RELEASE job")
        if conn.in_transaction:
            conn.execute("COMMIT")
    except Exception as exc:
        if conn.in_transaction:
            # The original error is the one worth reporting.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        for job in batch:
            job.error = job.error or exc


def _settle_all(jobs: list[_Job]) -> None:
    """Hand each job's outcome to its future: one wake-up per event loop, not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        if job.loop is None:
            _settle(job)
        else:
            by_loop.setdefault(job.loop, []).append(job)
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_group, group)


def _settle_group(jobs: list[_Job]) -> None:
    for job in jobs:
        _settle(job)


def _settle(job: _Job) -> None:
    future = job.future
    if future is None or future.done():  # fire-and-forget, or the awaiting task was cancelled
        return
    if job.error is not None:
        future.set_exception(job.error)
    else:
        future.set_result(job.result)
