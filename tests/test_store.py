"""The receiver's SQLite store: deduplication, durability, processing state, group commits."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference import EventStore, StoreClosed, StoredEvent, read_events
from reference._store import SCHEMA_VERSION


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[EventStore]:
    with EventStore(db, profile="zaits") as opened:
        yield opened


async def _add(store: EventStore, key: str, **overrides: object) -> StoredEvent | None:
    fields: dict[str, Any] = {
        "key": key,
        "event_type": "document.signed",
        "known": True,
        "body": b'{"id":"%s"}' % key.encode(),
        "received_at": 1000.0,
        **overrides,
    }
    return await store.add(**fields)


def test_add_returns_the_new_event_then_none_for_its_key(store: EventStore) -> None:
    """The first add of a key returns the stored event; a second add of it returns None."""

    async def scenario() -> tuple[StoredEvent | None, StoredEvent | None]:
        return await _add(store, "evt_1"), await _add(store, "evt_1", body=b"other")

    first, second = asyncio.run(scenario())
    assert first is not None
    assert (first.seq, first.key, first.body, first.processed) == (
        1,
        "evt_1",
        b'{"id":"evt_1"}',
        False,
    )
    assert second is None
    [stored] = read_events(store.path)
    assert stored == first


def test_keys_are_per_profile(db: Path) -> None:
    """The same key under two profiles is two events."""

    async def scenario() -> list[object]:
        with EventStore(db, profile="a") as a, EventStore(db, profile="b") as b:
            return [await _add(a, "k"), await _add(b, "k")]

    assert None not in asyncio.run(scenario())
    assert [e.profile for e in read_events(db)] == ["a", "b"]
    assert [e.profile for e in read_events(db, profile="b")] == ["b"]


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_connection_settings(db: Path, synchronous: str) -> None:
    """The store runs in WAL mode with the chosen synchronous level and a schema version."""
    with EventStore(db, profile="zaits", synchronous=synchronous) as store:  # type: ignore[arg-type]
        mode, level, version = store.call(
            lambda conn: (
                conn.execute("PRAGMA journal_mode").fetchone()[0],
                conn.execute("PRAGMA synchronous").fetchone()[0],
                conn.execute("PRAGMA user_version").fetchone()[0],
            )
        )
    assert (mode, level, version) == ("wal", {"NORMAL": 1, "FULL": 2}[synchronous], SCHEMA_VERSION)


def test_unknown_synchronous_level_is_refused(db: Path) -> None:
    """Only NORMAL and FULL are accepted: OFF would not be durable."""
    with pytest.raises(ValueError, match="synchronous must be 'NORMAL' or 'FULL', not 'OFF'"):
        EventStore(db, profile="zaits", synchronous="OFF")  # type: ignore[arg-type]


def test_events_survive_reopening(db: Path) -> None:
    """Events committed before close are there, and still deduplicate, after reopening."""

    async def first_life() -> None:
        with EventStore(db, profile="zaits") as store:
            await _add(store, "evt_1")

    async def second_life() -> StoredEvent | None:
        with EventStore(db, profile="zaits") as store:
            return await _add(store, "evt_1")

    asyncio.run(first_life())
    assert asyncio.run(second_life()) is None
    assert [e.key for e in read_events(db)] == ["evt_1"]


def test_processing_state(store: EventStore) -> None:
    """Pending events are listed oldest first; processed and failed attempts are recorded."""

    async def scenario() -> tuple[list[str], StoredEvent | None, StoredEvent | None, list[str]]:
        for key in ("a", "b", "c"):
            await _add(store, key)
        await store.mark_processed(["a"], 2000.0)
        await store.mark_failed("b", "RuntimeError: boom")
        pending = [e.key for e in await store.pending()]
        a, b = await store.get("a"), await store.get("b")
        await store.mark_processed(["b", "c"], 3000.0)
        return pending, a, b, [e.key for e in await store.pending()]

    pending, a, b, after = asyncio.run(scenario())
    assert pending == ["b", "c"]
    assert a is not None
    assert (a.processed_at, a.attempts, a.last_error) == (2000.0, 1, None)
    assert b is not None
    assert (b.processed_at, b.attempts, b.last_error) == (
        None,
        1,
        "RuntimeError: boom",
    )
    assert after == []


def test_add_as_processed(store: EventStore) -> None:
    """With no handler to run, an event can be stored as already processed."""
    event = asyncio.run(_add(store, "k", processed=True))
    assert event is not None
    assert event.processed_at == 1000.0
    assert asyncio.run(store.pending()) == []


def test_concurrent_adds_share_commits_and_dedupe_exactly(store: EventStore) -> None:
    """600 concurrent adds of 200 keys store 200 events and report exactly 200 as new, in fewer
    commits than adds."""
    commits: list[str] = []

    def trace(sql: str) -> None:
        if sql == "COMMIT":
            commits.append(sql)

    store.call(lambda conn: conn.set_trace_callback(trace))

    async def scenario() -> list[StoredEvent | None]:
        return await asyncio.gather(*(_add(store, f"k{i % 200}") for i in range(600)))

    results = asyncio.run(scenario())
    assert sum(r is not None for r in results) == 200
    assert len(read_events(store.path)) == 200
    assert len(commits) < 600


def test_a_failing_job_fails_alone(store: EventStore) -> None:
    """An error in one job of a group commit is that job's answer; the others commit."""

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO nowhere VALUES (1)")

    async def scenario() -> tuple[object, ...]:
        return await asyncio.gather(
            _add(store, "before"), store._submit(bad), _add(store, "after"), return_exceptions=True
        )

    before, error, after = asyncio.run(scenario())
    assert isinstance(error, sqlite3.OperationalError)
    assert isinstance(before, StoredEvent)
    assert isinstance(after, StoredEvent)
    assert [e.key for e in read_events(store.path)] == ["before", "after"]


def test_a_failing_insert_fails_alone(store: EventStore) -> None:
    """Inserts that reach the store together share a job; one that cannot be stored fails
    by itself."""

    async def scenario() -> tuple[object, ...]:
        return await asyncio.gather(
            _add(store, "good-1"),
            _add(store, "bad", body=["not", "bytes"]),
            _add(store, "good-2"),
            return_exceptions=True,
        )

    first, bad, second = asyncio.run(scenario())
    assert isinstance(bad, sqlite3.ProgrammingError)
    assert isinstance(first, StoredEvent)
    assert isinstance(second, StoredEvent)
    assert [e.key for e in read_events(store.path)] == ["good-1", "good-2"]


def test_closed_store_refuses_work(db: Path) -> None:
    """Using a store that is not open raises StoreClosed."""
    store = EventStore(db, profile="zaits")
    with pytest.raises(StoreClosed, match="is not open"):
        asyncio.run(_add(store, "k"))
    store.open()
    store.close()
    with pytest.raises(StoreClosed):
        store.call(lambda conn: None)


def test_open_fails_early_on_an_unusable_path(tmp_path: Path) -> None:
    """A database in a missing directory fails at open(), not at the first delivery."""
    with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
        EventStore(tmp_path / "missing" / "x.sqlite3", profile="zaits").open()


def test_open_refuses_a_newer_schema(db: Path) -> None:
    """A file written by a newer schema version is refused instead of being misread."""
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match=f"has schema version {SCHEMA_VERSION + 1}"):
        EventStore(db, profile="zaits").open()


def test_read_events_needs_an_existing_file(tmp_path: Path) -> None:
    """read_events on a path with no database raises FileNotFoundError (and creates nothing)."""
    with pytest.raises(FileNotFoundError, match="no receiver database at"):
        read_events(tmp_path / "none.sqlite3")
    assert not (tmp_path / "none.sqlite3").exists()


def test_stored_event_payload_and_repr() -> None:
    """payload() parses the body; the repr leaves the body out."""
    event = StoredEvent(
        seq=1, profile="p", key="k", event_type="t", known=False, body=b'{"a":1}', received_at=0.0
    )
    assert event.payload() == {"a": 1}
    assert "body" not in repr(event)
