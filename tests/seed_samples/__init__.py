"""The seed documents' own sample receivers, made runnable, so the conformance suite can judge
what the documents teach.

``SAMPLES`` maps a sample's name (``zta-node``) to a ``Sample``; ``sample.serve(secret)`` is a
context manager that runs it on a free loopback port and yields its delivery URL. Node samples
need ``node`` on PATH (``NODE`` is None without it); they use no npm packages. See README.md.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from werkzeug.serving import WSGIRequestHandler, make_server

__all__ = ["HERE", "NODE", "SAMPLES", "Sample", "serve_wsgi"]

HERE = Path(__file__).parent
NODE = shutil.which("node")
_STARTUP_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class Sample:
    name: str
    profile: str
    language: Literal["python", "node"]
    source: Path
    path: str

    @contextmanager
    def serve(self, secret: str) -> Iterator[str]:
        """Run the sample with ``secret`` and yield its delivery URL."""
        runner = _serve_flask if self.language == "python" else _serve_node
        with runner(self.source, secret) as base:
            yield base + self.path


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def _serve_flask(source: Path, secret: str) -> Iterator[str]:
    spec = importlib.util.spec_from_file_location(f"seed_sample_{source.stem}", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with serve_wsgi(module.create_app(secret)) as base:
        yield base


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app with werkzeug on a free loopback port, quietly; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@contextmanager
def _serve_node(source: Path, secret: str) -> Iterator[str]:
    if NODE is None:
        raise RuntimeError("node is not installed")
    env = {**os.environ, "PORT": "0", "WEBHOOK_SECRET": secret, "ZUPERTRY_WEBHOOK_SECRET": secret}
    process = subprocess.Popen(
        [NODE, str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        cwd=HERE,
    )
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def drain(stream: Any) -> None:  # keep reading, or a chatty sample blocks on its pipe
        for line in stream:
            log.append(line)
            lines.put(line)

    threading.Thread(target=drain, args=(process.stdout,), daemon=True).start()
    try:
        try:
            first = lines.get(timeout=_STARTUP_SECONDS)
        except queue.Empty:
            first = ""
        if not first.startswith("listening on "):
            raise RuntimeError(f"{source.name} did not start: {first}{''.join(log)}")
        yield f"http://127.0.0.1:{int(first.split()[-1])}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _sample(name: str, profile: str, path: str) -> Sample:
    language: Literal["python", "node"] = "node" if name.endswith("node") else "python"
    source = HERE / f"{name.replace('-', '_')}.{'js' if language == 'node' else 'py'}"
    return Sample(name=name, profile=profile, language=language, source=source, path=path)


SAMPLES: dict[str, Sample] = {
    sample.name: sample
    for sample in (
        _sample("zta-flask", "zta", "/webhook"),
        _sample("zta-node", "zta", "/webhook"),
        _sample("zaits-flask", "zaits", "/webhooks/zaits"),
        _sample("zaits-node", "zaits", "/webhooks/zaits"),
        _sample("zupertry-flask", "zupertry", "/webhooks/zupertry"),
        _sample("zupertry-node", "zupertry", "/webhooks/zupertry"),
        _sample("ztrace-node", "ztrace", "/api/webhooks/ztrace"),
    )
}
