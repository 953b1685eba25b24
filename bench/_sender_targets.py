"""The processes of the sender benchmark, each run on its own by
``python -m bench._sender_targets KIND ...`` (the receiver they deliver to is
``bench._targets``' bare app, in a process of its own too):

- ``sender PORT PROFILE DB STACK [PSTATS]``: the reference sender under uvicorn, served as
  ``serve sender --allow-private-targets`` serves it (the receiver is on loopback). With
  PSTATS, it runs under cProfile and writes the stats there when it stops.
- ``raw URL SECONDS CONCURRENCY POOL``: the limit: POSTs of a 1 KB JSON body for SECONDS,
  by CONCURRENCY tasks over one ``httpx.AsyncClient`` (as many pooled connections), storing
  nothing. POOL is ``httpcore`` (httpx as installed) or ``lean`` (over the sender's own
  transport, ``GuardedTransport(guard=False)``).
- ``dispatch PROFILE DB URL COUNT``: the dispatcher's own rate: COUNT events committed to
  the outbox first, then a ``Dispatcher`` started on the file delivers them all.
- ``outbox DB QUEUED COUNT CONCURRENCY``: the outbox's per-delivery cost with QUEUED events
  pending (the file is filled up to QUEUED first, so a later round reuses it): COUNT cycles
  of add, begin_attempt and finish_attempt (delivered), CONCURRENCY at a time, at the
  ``reference._outbox`` API level.

Each of the last three prints one JSON line.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import secrets
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._targets import STACKS, UVICORN_OPTIONS
from conformance import load_profile
from reference._outbox import AttemptResult, Begun, NewEvent, Outbox, OutboxEvent
from reference.sender import Dispatcher, GuardedTransport

SECRET = "whsec_benchmark0123456789"
#: The far future: an event due then stays pending for the whole run.
NEVER = 4_000_000_000.0


def document_signed(index: int) -> dict[str, object]:
    """The data of a valid Zaits ``document.signed`` event, about 1 KB once enveloped."""
    return {
        "document_id": f"doc_{index}",
        "signer": {"email": "signer@example.com", "name": "A Signer"},
        "signed_at": "2026-01-15T14:30:00Z",
        "note": "x" * 850,
    }


def new_event(index: int, url: str, *, next_at: float) -> NewEvent:
    body = json.dumps(
        {"id": f"evt_{index:08d}", "type": "document.signed", "created": 1_767_225_600,
         "data": document_signed(index)},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    return NewEvent(
        event_id=f"evt_{index:08d}_{secrets.token_hex(4)}",
        event_type="document.signed",
        url=url,
        secret=SECRET,
        body=body,
        token=secrets.token_hex(8),
        time_scale=1.0,
        created_at=time.time(),
        next_at=next_at,
    )


async def _in_waves(count: int, concurrency: int, job: Callable[[int], Awaitable[object]]) -> None:
    """Run ``job(0) .. job(count - 1)``, ``concurrency`` at a time."""
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            await job(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# ---------------------------------------------------------------------------------------
# The sender, served


def serve_sender(port: int, profile: str, db: str, stack: str, pstats: str | None) -> None:
    import uvicorn

    from reference.sender import create_sender_app

    app = create_sender_app(profile, db_path=db, allow_private_targets=True)
    options = {**UVICORN_OPTIONS, **STACKS[stack]}
    if pstats is None:
        uvicorn.run(app, host="127.0.0.1", port=port, **options)  # type: ignore[arg-type]
        return
    # uvicorn re-raises the SIGTERM it caught once it has shut down; this handler turns it
    # into an exit that runs the ``finally`` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, **options)  # type: ignore[arg-type]
    finally:
        profiler.disable()
        profiler.dump_stats(pstats)


# ---------------------------------------------------------------------------------------
# The limit: a raw httpx loop


async def raw_loop(url: str, seconds: float, concurrency: int, pool: str) -> dict[str, object]:
    body = new_event(0, url, next_at=0.0).body
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport = GuardedTransport(guard=False, limits=limits) if pool == "lean" else None
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(
        limits=limits, transport=transport, trust_env=False, timeout=10
    ) as client:

        async def post(until: float) -> None:
            while time.perf_counter() < until:
                response = await client.post(url, content=body, headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        warm = time.perf_counter() + min(0.5, seconds / 4)
        await asyncio.gather(*(post(warm) for _ in range(concurrency)))  # open the pool
        statuses.clear()
        started = time.perf_counter()
        await asyncio.gather(*(post(started + seconds) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return {"count": ok, "seconds": elapsed, "rate": ok / elapsed, "statuses": statuses}


# ---------------------------------------------------------------------------------------
# The dispatcher on its own


async def dispatch(profile_name: str, db: str, url: str, count: int) -> dict[str, object]:
    profile = load_profile(profile_name)
    outbox = Outbox(db, profile=profile.name)
    outbox.open()
    await _in_waves(count, 64, lambda i: outbox.add(new_event(i, url, next_at=0.0)))
    await outbox.aclose()
    dispatcher = Dispatcher(profile, Outbox(db, profile=profile.name), allow_private_targets=True)
    started = time.time()
    await dispatcher.start()
    reader = sqlite3.connect(db, timeout=10)
    try:
        while True:
            await asyncio.sleep(0.05)
            (pending,) = reader.execute(
                "SELECT COUNT(*) FROM events WHERE state = 'pending'"
            ).fetchone()
            if pending == 0:
                break
        delivered, last = reader.execute(
            "SELECT COUNT(*), MAX(finished_at) FROM events WHERE state = 'delivered'"
        ).fetchone()
    finally:
        reader.close()
    await dispatcher.stop()
    seconds = float(last) - started
    return {"count": count, "delivered": delivered, "seconds": seconds, "rate": delivered / seconds}


# ---------------------------------------------------------------------------------------
# The outbox's per-delivery cost


def _no_headers(event: OutboxEvent, now: float) -> dict[str, str]:
    return {"Content-Type": "application/json"}


async def outbox_cost(db: str, queued: int, count: int, concurrency: int) -> dict[str, object]:
    """Per-delivery seconds of add + begin_attempt + finish_attempt with ``queued`` events
    pending (due in the far future, so they stay queued), on one open outbox."""
    url = "https://receiver.example/hook"
    outbox = Outbox(db, profile="zaits")
    outbox.open()
    try:
        fill_started = time.perf_counter()
        with sqlite3.connect(db) as reader:  # a file from an earlier round is topped up
            (pending,) = reader.execute(
                "SELECT COUNT(*) FROM events WHERE state = 'pending'"
            ).fetchone()
        await _in_waves(
            queued - pending, 64, lambda i: outbox.add(new_event(i, url, next_at=NEVER))
        )
        fill = time.perf_counter() - fill_started
        ok = AttemptResult(status=200, response_ms=1.0, excerpt=b"OK")

        async def deliver(index: int) -> None:
            event = new_event(queued + index, url, next_at=0.0)
            await outbox.add(event)
            begun = await outbox.begin_attempt(event.event_id, sign=_no_headers, clock=time.time)
            assert isinstance(begun, Begun), begun
            state, _ = await outbox.finish_attempt(
                begun,
                ok,
                outcome="delivered",
                ended_at=time.time(),
                next_at=None,
                error=None,
                disable_after_seconds=None,
            )
            assert state == "delivered"

        await _in_waves(min(200, count), concurrency, lambda i: deliver(count + i))  # warm up
        started = time.perf_counter()
        await _in_waves(count, concurrency, deliver)
        seconds = time.perf_counter() - started
    finally:
        await outbox.aclose()
    return {
        "queued": queued,
        "count": count,
        "fill_seconds": fill,
        "seconds": seconds,
        "per_delivery_us": seconds / count * 1e6,
    }


def main(argv: list[str]) -> None:
    kind, *args = argv
    result: dict[str, Any]
    if kind == "sender":
        port, profile, db, stack, *pstats = args
        serve_sender(int(port), profile, db, stack, pstats[0] if pstats else None)
        return
    if kind == "raw":
        url, seconds, concurrency, pool = args
        result = asyncio.run(raw_loop(url, float(seconds), int(concurrency), pool))
    elif kind == "dispatch":
        profile, db, url, count = args
        result = asyncio.run(dispatch(profile, db, url, int(count)))
    elif kind == "outbox":
        db, queued, count, concurrency = args
        result = asyncio.run(outbox_cost(db, int(queued), int(count), int(concurrency)))
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
