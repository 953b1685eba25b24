"""A small HTTP/1.1 load generator for loopback benchmarks.

It replays pre-built request bytes over keep-alive connections with raw asyncio streams, so
per-request client cost is a write and a header parse: far below any server under test.
It runs in its own process (``python -m bench._loadgen``) and prints one JSON line.

Input (a JSON file): {"host", "port", "requests": [base64 request bytes...],
"connections", "duration"}. Each request is sent at most once, in order. ``rps`` counts only
2xx answers: verified deliveries per second.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from pathlib import Path


async def _worker(
    host: str,
    port: int,
    queue: list[bytes],
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    """Send requests over one keep-alive connection, reconnecting when the server closes it
    (a server that answers ``Connection: close`` pays for a new connection per request, as
    its real clients would). Status 0 counts requests that got no answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue and time.perf_counter() < deadline:
            request = queue.pop()
            started = time.perf_counter()
            if writer.is_closing():
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            close = not status_line
            while status_line:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                key = name.strip().lower()
                if key == b"content-length":
                    length = int(value.strip())
                elif key == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            status = int(status_line.split(b" ", 2)[1]) if status_line else 0
            statuses[status] = statuses.get(status, 0) + 1
            if close:
                writer.close()
                await writer.wait_closed()
    finally:
        writer.close()


async def run(
    host: str, port: int, requests: list[bytes], connections: int, duration: float
) -> dict[str, object]:
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *(_worker(host, port, queue, deadline, latencies, statuses) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": ok / elapsed if elapsed else 0.0,
        "p50_ms": pct(0.50) * 1000,
        "p99_ms": pct(0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    requests = [base64.b64decode(r) for r in spec["requests"]]
    result = asyncio.run(
        run(spec["host"], spec["port"], requests, spec["connections"], spec["duration"])
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
