"""A suite run that fails, as a user makes it, writing every report there is: the receiver
suite against a receiver that accepts every delivery, signed or not, and answers each with a
script in its body (what a report must show as text, never run)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from conformance._serving import serve_in_thread

#: The answer to every delivery: markup a careless report would run.
HOSTILE_BODY = '<script>document.title = "pwned"</script><img src="x" onerror="alert(1)">'
PROFILE = "zta"
SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtaHRtbC10ZXN0cw=="


async def _accept(request: Request) -> PlainTextResponse:
    await request.body()
    return PlainTextResponse(HOSTILE_BODY, media_type="text/html")


@dataclass(frozen=True)
class Run:
    json_path: Path
    html_path: Path
    junit_path: Path
    returncode: int
    output: str

    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.json_path.read_text(encoding="utf-8"))
        return data


def run_accepting_receiver(workdir: Path) -> Run:
    """The receiver suite against the receiver that accepts everything, with the JSON, HTML
    and JUnit reports written into ``workdir``."""
    (workdir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    app = Starlette(routes=[Route("/webhook", _accept, methods=["POST"])])
    paths = {name: workdir / name for name in ("report.json", "report.html", "junit.xml")}
    with serve_in_thread(app) as base:
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            f"--target-url={base}/webhook", f"--profile={PROFILE}", "--role=receiver",
            f"--secret={SECRET}", f"--conformance-report={paths['report.json']}",
            f"--conformance-html={paths['report.html']}", f"--junitxml={paths['junit.xml']}",
        ]  # fmt: skip
        done = subprocess.run(
            command, cwd=workdir, capture_output=True, text=True, timeout=300, check=False
        )
    return Run(
        json_path=paths["report.json"],
        html_path=paths["report.html"],
        junit_path=paths["junit.xml"],
        returncode=done.returncode,
        output=done.stdout + done.stderr,
    )
