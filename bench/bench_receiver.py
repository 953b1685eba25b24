"""Benchmark (a): verified deliveries per second of the reference receiver.

Each target serves in its own process on loopback; the load generator (bench/_loadgen.py)
runs in another and replays pre-signed 1 KB deliveries with unique event ids. Baselines are
measured in the same run, and the result is a ratio, because the machine is shared:

- the bare ASGI app under the same uvicorn settings (target: reference >= 60% of it);
- the seed's Flask sample receiver under gunicorn (target: reference >= 3x it);
- p99 latency of the reference at that load (target: far under ZTA's 5 s timeout).

    python bench/bench_receiver.py [--profile zaits] [--seconds 5] [--connections 16] [--rounds 3]
                                   [--stacks plain,standard]

The uvicorn targets run on each server stack: ``plain`` (h11 and asyncio, what this project
installs) and ``standard`` (httptools and uvloop, from ``uvicorn[standard]``). The two targets
pull against each other: a faster HTTP layer shrinks the bare app's cost but not the receiver's
own work (verify, parse, a durable commit), so the ratio to the bare app falls while the ratio
to Flask rises. Rounds alternate the targets so drift in the machine's load affects all alike;
the median round of each is reported.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._targets import ROOT, running
from conformance import delivery_headers, load_profile

SECRET = "whsec_benchmark0123456789"
PAYLOAD_BYTES = 1024


def deliveries(profile_name: str, count: int, path: str) -> list[bytes]:
    """``count`` raw HTTP/1.1 requests, each a signed ~1 KB delivery with its own event id."""
    profile = load_profile(profile_name)
    event = profile.events[0].name
    out = []
    for index in range(count):
        payload = _payload(profile_name, event, index)
        body = json.dumps(payload, separators=(",", ":")).encode()
        pad = PAYLOAD_BYTES - len(body)
        payload["data"]["note"] = "x" * max(0, pad - len(',"note":""'))
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = delivery_headers(profile, SECRET, body, payload)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                f"{head}\r\n"
            ).encode()
            + body
        )
    return out


def target_path(target: str, profile: str) -> str:
    """Where a target takes deliveries: the reference and bare apps at /webhook, a seed
    sample at the POST route its document gives it."""
    if target != "flask":
        return "/webhook"
    module = importlib.import_module(f"tests.seed_samples.{profile}_flask")
    app = module.create_app(SECRET)
    (rule,) = [r.rule for r in app.url_map.iter_rules() if "POST" in (r.methods or ())]
    return str(rule)


def _payload(profile_name: str, event: str, index: int) -> dict[str, object]:
    """A valid payload of the profile's first event, unique by ``index``."""
    examples = {
        "zaits": {
            "id": f"evt_bench{index}",
            "type": event,
            "created": 1700000000 + index,
            "data": {
                "document_id": f"doc_{index}",
                "signer": {"email": "a@example.com", "name": "A"},
                "signed_at": "2024-01-15T14:30:00Z",
            },
        },
        "zupertry": {
            "type": event,
            "data": {"job_id": f"job_{index}", "status": "completed", "credits_consumed": 1,
                     "created_at": "2026-03-19T10:00:00.000Z"},
        },
        "zta": {
            "event": event,
            "timestamp": "2024-12-12T16:30:00.000Z",
            "data": {"siteId": "site_abc123", "path": f"/p/{index}"},
        },
        "ztrace": {
            "event": event,
            "timestamp": "2025-12-01T10:00:00.000Z",
            "data": {"analysis_id": f"an_{index}", "image_id": "img_1"},
        },
    }  # fmt: skip
    return examples[profile_name]


def measure(
    name: str, profile: str, requests: list[bytes], seconds: float, connections: int, stack: str
) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(name, profile, SECRET, Path(tmp) / "db.sqlite3", stack) as port,
    ):
        warmup = {"host": "127.0.0.1", "port": port, "connections": 4, "duration": 2.0,
                  "requests": [base64.b64encode(r).decode() for r in requests[-300:]]}  # fmt: skip
        _loadgen(Path(tmp), warmup)
        spec = {"host": "127.0.0.1", "port": port, "connections": connections, "duration": seconds,
                "requests": [base64.b64encode(r).decode() for r in requests[:-300]]}  # fmt: skip
        return _loadgen(Path(tmp), spec)


def _loadgen(tmp: Path, spec: dict[str, object]) -> dict[str, object]:
    path = tmp / "load.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "bench._loadgen", str(path)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def _verdict(name: str, ratio: float, target: float) -> str:
    met = "met" if ratio >= target else "MISSED"
    return f"{name:18} = {ratio:5.2f}  (target >= {target}: {met})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="zaits")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", default="bare,reference,flask")
    parser.add_argument("--stacks", default="plain,standard")
    args = parser.parse_args()
    targets, stacks = args.targets.split(","), args.stacks.split(",")
    requests = {t: deliveries(args.profile, 60_000, target_path(t, args.profile)) for t in targets}
    runs = [(t, s) for s in stacks for t in targets if t != "flask"]
    runs += [("flask", "gunicorn")] if "flask" in targets else []
    results: dict[tuple[str, str], list[dict[str, object]]] = {run: [] for run in runs}
    for round_ in range(args.rounds):
        for target, stack in runs:
            result = measure(target, args.profile, requests[target], args.seconds,
                             args.connections, stack)  # fmt: skip
            results[(target, stack)].append(result)
            line = f"{result['rps']:8.0f} req/s  p99 {result['p99_ms']:7.1f} ms"
            print(
                f"round {round_ + 1} {target:9} {stack:9} {line}  {result['statuses']}", flush=True
            )
    median = {
        run: sorted(r, key=lambda x: float(x["rps"]))[len(r) // 2] for run, r in results.items()
    }  # type: ignore[arg-type]
    rps = {run: float(m["rps"]) for run, m in median.items()}  # type: ignore[arg-type]
    print(json.dumps({f"{t}/{s}": m for (t, s), m in median.items()}))
    for stack in stacks:
        if ("reference", stack) not in rps:
            continue
        reference = rps[("reference", stack)]
        print(f"-- stack {stack}: reference {reference:.0f} verified deliveries/s")
        if ("bare", stack) in rps:
            print(_verdict("reference / bare", reference / rps[("bare", stack)], 0.6))
        if ("flask", "gunicorn") in rps:
            print(_verdict("reference / flask", reference / rps[("flask", "gunicorn")], 3.0))
        p99 = float(median[("reference", stack)]["p99_ms"])  # type: ignore[arg-type]
        print(f"reference p99 = {p99:.1f} ms at that load ({p99 / 5000:.2%} of ZTA's 5 s timeout)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
