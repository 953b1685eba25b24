"""Benchmark (c): durable deliveries per second of the reference sender, and how the outbox's
cost per delivery grows with the queue.

Every part runs in its own process on loopback (bench/_sender_targets.py), against the bare
ASGI receiver of bench/_targets.py, which answers 200 and stores nothing. Baselines are
measured in the same run and results are ratios, because the machine is shared:

- **throughput**: triggers (``POST /conformance/trigger``, replayed by bench/_loadgen.py over
  16 connections) through to delivered events, as the outbox records them: events / (last
  delivery - first trigger accepted). Also the dispatcher's own rate, with the events
  committed before it starts (no trigger traffic). The limit is the fastest of three raw
  concurrent httpx POST loops to the same receiver, which store nothing: httpx as installed
  at the sender's 64 connections and at 8, and httpx over the sender's own transport at 64.
  Targets: sender >= 50% of the limit, and >= 1,000 deliveries/s.
- **outbox scaling**: 5,000 cycles of add + begin_attempt + finish_attempt (delivered) at the
  ``reference._outbox`` API, 32 at a time, with 1,000 and with 100,000 events queued. Target:
  the per-delivery cost at 100,000 is at most 1.5 x the cost at 1,000.

    python bench/bench_sender.py [--events 1200] [--rounds 3] [--only throughput,outbox]
                                 [--stack plain] [--pstats sender.pstats]

Rounds alternate the targets so drift in the machine's load affects all alike; the median
round of each is reported. ``--pstats`` runs the sender under cProfile (its figures are then
not comparable).
"""

from __future__ import annotations

import argparse
import base64
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._sender_targets import SECRET, document_signed
from bench._targets import ROOT, free_port, running, wait_for_port

#: The raw loops: httpx as installed (httpcore's pool) at the sender's 64 connections and at
#: 8, and over the sender's own transport (its LeanPool) at 64.
RAW_LOOPS = (("httpcore", 64), ("httpcore", 8), ("lean", 64))
RAW_SECONDS = 1.5
OUTBOX_QUEUES = (1_000, 100_000)
OUTBOX_DELIVERIES = 5_000


def _json_line(command: list[str], timeout: float = 120) -> dict[str, Any]:
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=timeout
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _target(*args: object) -> list[str]:
    return [sys.executable, "-m", "bench._sender_targets", *(str(a) for a in args)]


def triggers(sender_port: int, receiver_url: str, count: int) -> list[bytes]:
    """``count`` raw HTTP/1.1 trigger requests, each for a Zaits document.signed event."""
    out = []
    for index in range(count):
        body = json.dumps(
            {"webhook_url": receiver_url, "secret": SECRET, "event_type": "document.signed",
             "data": document_signed(index)},
            separators=(",", ":"),
        ).encode()  # fmt: skip
        head = (
            f"POST /conformance/trigger HTTP/1.1\r\nHost: 127.0.0.1:{sender_port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


def _delivered(db: Path, count: int, timeout: float) -> dict[str, float]:
    """Wait until ``count`` events left the pending state; their rate from the outbox's own
    timestamps."""
    deadline = time.monotonic() + timeout
    conn = sqlite3.connect(db, timeout=10)
    try:
        while True:
            done, delivered, first, last = conn.execute(
                "SELECT COUNT(*), SUM(state = 'delivered'), MIN(created_at), MAX(finished_at) "
                "FROM events WHERE state != 'pending'"
            ).fetchone()
            if done >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        conn.close()
    seconds = float(last or 0) - float(first or 0)
    return {"delivered": float(delivered or 0), "seconds": seconds,
            "rate": (delivered or 0) / seconds if seconds > 0 else 0.0}  # fmt: skip


def end_to_end(
    receiver_url: str, count: int, connections: int, stack: str, work: Path, pstats: str | None
) -> dict[str, Any]:
    """Triggers over HTTP through to delivered events, with the sender in its own process."""
    db = work / f"outbox-{time.monotonic_ns()}.sqlite3"
    port = free_port()
    command = _target("sender", port, "zaits", db, stack, *([pstats] if pstats else []))
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_for_port(port)
        requests = triggers(port, receiver_url, count)
        spec = {"host": "127.0.0.1", "port": port, "connections": connections, "duration": 60.0,
                "requests": [base64.b64encode(r).decode() for r in requests]}  # fmt: skip
        (work / "load.json").write_text(json.dumps(spec))
        load = _json_line([sys.executable, "-m", "bench._loadgen", str(work / "load.json")])
        result = _delivered(db, count, timeout=60)
    finally:
        process.terminate()
        process.wait(20)
    return {**result, "triggers_per_s": load["rps"], "trigger_statuses": load["statuses"],
            "trigger_p99_ms": load["p99_ms"]}  # fmt: skip


def throughput(args: argparse.Namespace, work: Path) -> None:
    runs: dict[str, list[dict[str, Any]]] = {}
    with running("bare", "zaits", SECRET, work / "unused.sqlite3", args.stack) as port:
        url = f"http://127.0.0.1:{port}/hook"
        for round_ in range(args.rounds):
            for pool, concurrency in RAW_LOOPS:
                result = _json_line(_target("raw", url, RAW_SECONDS, concurrency, pool))
                runs.setdefault(f"raw/{pool}/{concurrency}", []).append(result)
                print(f"round {round_ + 1} raw httpx loop, {pool:8} pool, {concurrency:2} "
                      f"connections {result['rate']:7.0f} POST/s", flush=True)  # fmt: skip
            db = work / f"dispatch-{round_}.sqlite3"
            result = _json_line(_target("dispatch", "zaits", db, url, args.events))
            runs.setdefault("dispatcher", []).append(result)
            print(f"round {round_ + 1} dispatcher alone       {result['rate']:7.0f} deliveries/s",
                  flush=True)  # fmt: skip
            result = end_to_end(url, args.events, 16, args.stack, work, args.pstats)
            runs.setdefault("end-to-end", []).append(result)
            print(f"round {round_ + 1} sender end to end      {result['rate']:7.0f} deliveries/s "
                  f"(triggers {result['triggers_per_s']:.0f}/s, "
                  f"{result['trigger_statuses']})", flush=True)  # fmt: skip
    rate = {name: statistics.median(float(r["rate"]) for r in rs) for name, rs in runs.items()}
    limit_name = max((n for n in rate if n.startswith("raw/")), key=rate.__getitem__)
    limit = rate[limit_name]
    print(json.dumps({"median_rates": rate, "limit": limit_name}))
    _, pool, connections = limit_name.split("/")
    print(f"-- limit: the fastest raw httpx loop ({pool} pool, {connections} connections) "
          f"{limit:.0f} POST/s")  # fmt: skip
    stock = max((n for n in rate if n.startswith("raw/httpcore/")), key=rate.__getitem__)
    for name in ("end-to-end", "dispatcher"):
        ratio = rate[name] / limit
        verdict = "met" if ratio >= 0.5 and rate[name] >= 1000 else "MISSED"
        print(f"sender {name:10} {rate[name]:6.0f} deliveries/s = {ratio:4.2f} x the limit  "
              f"(targets >= 0.5 x and >= 1000/s: {verdict}); "
              f"{rate[name] / rate[stock]:4.2f} x httpx as installed ({stock})")  # fmt: skip


def outbox_scaling(args: argparse.Namespace, work: Path) -> None:
    runs: dict[int, list[float]] = {queued: [] for queued in OUTBOX_QUEUES}
    for round_ in range(args.rounds):
        for queued in OUTBOX_QUEUES:
            db = work / f"scaling-{queued}.sqlite3"
            result = _json_line(_target("outbox", db, queued, OUTBOX_DELIVERIES, 32))
            runs[queued].append(float(result["per_delivery_us"]))
            print(f"round {round_ + 1} outbox, {queued:7,} queued: "
                  f"{result['per_delivery_us']:6.1f} µs per delivery "
                  f"(filled in {result['fill_seconds']:.1f} s)", flush=True)  # fmt: skip
    cost = {queued: statistics.median(values) for queued, values in runs.items()}
    small, large = OUTBOX_QUEUES
    ratio = cost[large] / cost[small]
    print(json.dumps({"median_per_delivery_us": cost}))
    print(f"-- outbox per delivery: {cost[small]:.1f} µs at {small:,} queued, {cost[large]:.1f} "
          f"µs at {large:,}: ratio {ratio:.2f} (target <= 1.5: "
          f"{'met' if ratio <= 1.5 else 'MISSED'})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="throughput,outbox")
    parser.add_argument("--stack", default="plain", choices=["plain", "standard"])
    parser.add_argument("--pstats", default=None, help="profile the sender into this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.only.split(","):
            started = time.perf_counter()
            {"throughput": throughput, "outbox": outbox_scaling}[part](args, Path(tmp))
            print(f"({part}: {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
