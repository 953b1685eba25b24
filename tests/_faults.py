"""Fault injection for the sender's reliability tests: a receiving endpoint that misbehaves on
purpose, and the reference sender as a process that can be killed with SIGKILL.

``FaultReceiver`` is a raw asyncio HTTP/1.1 server on 127.0.0.1 (raw, because a connection
reset needs the socket itself). The last segment of a request's path is its plan: a
comma-separated list of steps, one per request to that path, the last one repeating:

* a status code (``200``, ``500``, ``302`` ...): that answer (a 3xx carries a ``Location`` on
  ``/landing`` + the path);
* ``reset``: the request is read whole, then the connection is closed with ``SO_LINGER`` 0,
  so the client gets a TCP RST instead of an answer;
* ``slow``: the request is read whole and never answered; the connection is held until the
  client hangs up (its timeout, or its death), at most ``HOLD_CAP`` seconds;
* ``ackslow``: as ``slow``, but the receiver has taken the event (as one that commits before
  it answers): every later request to the path is answered 200. Held while the sender is
  killed, it makes a duplicate delivery.

Once a path has been answered 2xx, every later request to it is answered with the same 2xx,
whatever the plan says: a receiver that has the event acknowledges its duplicates. So an
event whose sender never learned of the 2xx (killed while the answer was on its way) is
delivered again, never failed.

Every request read whole is recorded (``Capture``) with its arrival time, headers, exact
body bytes and the step it was given; every answer is ``Connection: close``, so each request
has a connection of its own and no idle connection can go stale in the sender's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _polling import wait_for

__all__ = ["HOLD_CAP", "Capture", "FaultReceiver", "SenderProcess", "free_port", "wait_for"]

#: The longest a ``slow`` step holds a connection open.
HOLD_CAP = 30.0
_MAX_HEAD = 64 * 1024
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 302: "Found", 400: "Bad Request"}


@dataclass
class Capture:
    """One request the receiver read whole."""

    path: str
    method: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    arrived: float  # Unix seconds, when the last byte of the body was read
    index: int  # how many requests to this path came before it
    step: str  # what it was given: a status code, "reset", "slow" or "ackslow"
    ended: float = 0.0  # when it was answered, reset, or let go

    @property
    def status(self) -> int | None:
        return int(self.step) if self.step.isdigit() else None


class FaultReceiver:
    """The fault endpoint, served on its own event loop in a thread (see the module
    docstring). Use as a context manager; ``base`` is its URL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._captures: list[Capture] = []
        self._counts: dict[str, int] = {}
        self._acknowledged: dict[str, str] = {}
        self._holding: dict[str, int] = {}
        self.incomplete = 0  # connections that ended before a whole request arrived
        self.malformed: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    # -- reading the record ---------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def captures(self, prefix: str = "/") -> list[Capture]:
        with self._lock:
            return [c for c in self._captures if c.path.startswith(prefix)]

    def at(self, path: str) -> list[Capture]:
        with self._lock:
            return [c for c in self._captures if c.path == path]

    def holding(self, prefix: str = "/") -> int:
        """How many requests under ``prefix`` are held unanswered right now."""
        with self._lock:
            return sum(n for p, n in self._holding.items() if p.startswith(prefix))

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> FaultReceiver:
        self._thread = threading.Thread(target=self._serve, name="fault-receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the fault receiver did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by __enter__ when it happens at start-up
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        handlers: set[asyncio.Task[None]] = set()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.get_running_loop().create_task(self._connection(reader, writer))
            handlers.add(task)
            task.add_done_callback(handlers.discard)

        server = await asyncio.start_server(accept, "127.0.0.1", 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    # -- one connection -------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read(reader)
            if request is None:
                with self._lock:
                    self.incomplete += 1
                return
            await self._answer(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            with self._lock:
                self.incomplete += 1
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Capture | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        if len(head) > _MAX_HEAD:
            raise asyncio.LimitOverrunError("request head too large", len(head))
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        length = headers.get("content-length")
        if length is None or not length.isdigit() or "transfer-encoding" in headers:
            with self._lock:
                self.malformed.append(f"{method} {path}: no Content-Length ({headers})")
            return None
        body = await reader.readexactly(int(length))
        with self._lock:
            index = self._counts.get(path, 0)
            self._counts[path] = index + 1
            plan = path.rsplit("/", 1)[-1].split(",")
            step = self._acknowledged.get(path, plan[min(index, len(plan) - 1)])
            capture = Capture(
                path=path,
                method=method,
                headers=headers,
                body=body,
                arrived=time.time(),
                index=index,
                step=step,
            )
            self._captures.append(capture)
            if step.isdigit() and step.startswith("2"):
                self._acknowledged.setdefault(path, step)
            elif step == "ackslow":
                self._acknowledged.setdefault(path, "200")
        return capture

    async def _answer(
        self, capture: Capture, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if capture.step == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            capture.ended = time.time()
            writer.transport.abort()  # closed with linger 0: an RST, not a FIN
            return
        if capture.step in ("slow", "ackslow"):
            with self._lock:
                self._holding[capture.path] = self._holding.get(capture.path, 0) + 1
            try:
                with contextlib.suppress(TimeoutError, ConnectionError):
                    async with asyncio.timeout(HOLD_CAP):
                        while await reader.read(4096):
                            pass  # the client sends nothing more; b"" is its hang-up
            finally:
                with self._lock:
                    self._holding[capture.path] -= 1
                capture.ended = time.time()
            return
        status = int(capture.step)
        body = b"" if status == 204 else f'{{"status":{status}}}'.encode()
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Answer')}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if 300 <= status < 400:
            head.append(f"Location: /landing{capture.path}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        capture.ended = time.time()


# ---------------------------------------------------------------------------------------
# The sender as a process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class SenderProcess:
    """``webhook-conformance serve sender`` on loopback, on a fixed port and outbox file,
    started again (``start``) after a ``kill9``; its stderr goes to ``log``, one file for
    all its runs."""

    def __init__(self, profile: str, db: Path, port: int) -> None:
        self.profile = profile
        self.db = db
        self.port = port
        self.log = db.with_suffix(".log")
        self.base = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 20.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process (without waiting for it to serve)."""
        command = [
            sys.executable,
            "-c",
            "import sys; from conformance._cli import main; sys.exit(main())",
            "serve",
            "sender",
            "--profile",
            self.profile,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--allow-private-targets",
        ]
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, cwd=self.db.parent, stdout=subprocess.DEVNULL, stderr=log
            )

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until it answers ``GET /healthz``."""
        process = self.process
        assert process is not None

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"the {self.profile} sender exited with {process.returncode}:\n"
                    + self.log_text()[-3000:]
                )
            try:
                return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout, f"the {self.profile} sender on port {self.port}")

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        assert self.process.returncode == -signal.SIGKILL

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
