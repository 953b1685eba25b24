"""Run an ASGI app under uvicorn on a background thread, for tests, the benchmark and the demo.

The listening socket is bound here, before the thread starts, so ``port=0`` yields a free
port with no race, and the base URL is known before the first request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve_in_thread"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response waits on the client's delayed ACK (about 40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@contextmanager
def serve_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 10.0,
    log_level: str = "warning",
) -> Iterator[str]:
    """Serve ``app`` on ``host:port`` (0: a free port) and yield its base URL, such as
    ``http://127.0.0.1:43121``. On exit the server shuts down (lifespan included) and the
    thread and socket are gone; a server that fails to start raises ``RuntimeError``."""
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        ws="none",
        lifespan="auto",
        timeout_graceful_shutdown=int(shutdown_timeout),
    )
    server = uvicorn.Server(config)

    def run() -> None:
        # uvicorn calls sys.exit() when startup fails; here that only ends this thread.
        with contextlib.suppress(SystemExit):
            server.run(sockets=[sock])

    thread = threading.Thread(target=run, name=f"uvicorn:{bound_port}", daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the server on {host}:{bound_port} failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server on {host}:{bound_port} did not start in {startup_timeout} s"
                )
            time.sleep(0.005)
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(shutdown_timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(shutdown_timeout)
        sock.close()
        if thread.is_alive():  # pragma: no cover - only a wedged app gets here
            raise RuntimeError(f"the server on {host}:{bound_port} did not stop")
