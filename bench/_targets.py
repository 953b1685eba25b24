"""Servers under benchmark, each started in its own process on a free loopback port.

``python -m bench._targets NAME PORT PROFILE SECRET DB STACK`` serves one target, where STACK
is ``plain`` (uvicorn as this project depends on it: h11 and asyncio) or ``standard`` (what
``uvicorn[standard]`` adds: httptools and uvloop):

- ``bare``: an ASGI app that answers 200 without doing any work, under uvicorn exactly as the
  reference is served (the ceiling of the stack);
- ``reference``: the reference receiver (verification, SQLite WAL commit, background worker);
- ``flask``: the seed document's Flask sample receiver for the profile, under gunicorn (its
  usual server), started by ``flask_command`` instead of this module.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UVICORN_OPTIONS = {"access_log": False, "log_level": "warning", "ws": "none", "lifespan": "on"}
STACKS = {
    "plain": {"http": "h11", "loop": "asyncio"},
    "standard": {"http": "httptools", "loop": "uvloop"},
}


async def bare_app(scope: dict[str, object], receive: object, send: object) -> None:
    """Answers every request 200 with a two-byte body, reading nothing it need not."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()  # type: ignore[operator]
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})  # type: ignore[operator]
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})  # type: ignore[operator]
                return
    more = True
    while more:  # drain the body, as any server must, but do nothing with it
        message = await receive()  # type: ignore[operator]
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"OK"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def flask_command(profile: str, secret: str, port: int) -> list[str]:
    """gunicorn with its defaults (one sync worker) serving the seed's Flask sample."""
    return [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        f"tests.seed_samples.{profile}_flask:create_app({secret!r})",
    ]  # fmt: skip


@contextlib.contextmanager
def running(name: str, profile: str, secret: str, db: Path, stack: str = "plain") -> Iterator[int]:
    """Start a target in its own process; yield its port; stop it."""
    port = free_port()
    if name == "flask":
        command = flask_command(profile, secret, port)
    else:
        command = [sys.executable, "-m", "bench._targets", name, str(port), profile, secret,
                   str(db), stack]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str]) -> None:
    import uvicorn

    name, port, profile, secret, db, stack = argv
    if name == "bare":
        app: object = bare_app
    else:
        from reference import create_app

        app = create_app(profile, secret, db_path=db)
    options = {**UVICORN_OPTIONS, **STACKS[stack]}
    uvicorn.run(app, host="127.0.0.1", port=int(port), **options)  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1:])
