"""A run that fails everywhere for one reason says that reason once, up front: the correctly
signed delivery sent before the checks, and the diagnosis of its answer in the report header,
the terminal summary and the JSON report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# pytester's in-process runs drop the modules first imported during them (see test_plugin).
import httpcore  # noqa: F401
import hypothesis.internal.observability  # noqa: F401
import hypothesis_jsonschema  # noqa: F401
import pytest
from broken import CorrectReceiver
from starlette.types import Receive, Scope, Send

from conformance import load_profile
from reference import create_app, serve_in_thread

pytest_plugins = ["pytester"]

SECRET = "whsec_diagnosis-secret"
ZAITS = load_profile("zaits")


def _run(pytester: pytest.Pytester, url: str, *extra: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest(
        "--target-url", url, "--profile", "zaits", "--conformance-report", "report.json",
        "--conformance-timeout", "2", *extra,
    )  # fmt: skip
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    return result, report


def _answering(status: int, headers: list[tuple[bytes, bytes]] | None = None):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        await send({"type": "http.response.body", "body": b"nope"})

    return app


@contextmanager
def _served(app) -> Iterator[str]:
    with serve_in_thread(app) as base:
        yield f"{base}/webhook"


def _header_lines(result: pytest.RunResult) -> list[str]:
    """The report header: the lines before the first test's progress."""
    out = result.stdout.lines
    return out[: next(i for i, line in enumerate(out) if line.startswith("collected"))]


def test_wrong_secret_is_said_once_up_front(pytester: pytest.Pytester) -> None:
    """Every check that sends a signed delivery fails, and the run says why at the top: the
    receiver refused a correctly signed delivery; check the secret and its prefix."""
    with _served(CorrectReceiver(ZAITS, "whsec_the-receivers-own-secret")) as url:
        result, report = _run(pytester, url, "--secret", SECRET)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    header = "\n".join(_header_lines(result))
    assert "DIAGNOSIS: the receiver refused a correctly signed delivery (401 Unauthorized)" in (
        header
    )
    assert "check --secret (or $WEBHOOK_SECRET)" in header
    assert "whsec_ secrets, check whether the receiver strips or decodes the prefix" in header
    assert "uses the whole secret as UTF-8 text, prefix included" in header
    assert "curl -sS -i -X POST" in header
    summary = result.stdout.str().split("webhook conformance: zaits receiver")[1]
    assert summary.count("DIAGNOSIS:") == 1
    assert report["diagnosis"]["status"] == 401
    assert report["diagnosis"]["headline"].startswith("the receiver refused a correctly signed")
    # The burst says what happened: answers in time, none of them 2xx.
    burst = {r["id"]: r for r in report["requirements"]}["zaits.receiver.responds-in-time"]
    assert burst["message"] == (
        "of 20 concurrent deliveries, 20 were answered in time but not with 2xx "
        "(401 Unauthorized: 20)"
    )


def test_wrong_path_points_at_the_url(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A 404 from the reference receiver's router: check the path in --target-url."""
    app = create_app(ZAITS, SECRET, db_path=tmp_path / "events.sqlite3")
    with serve_in_thread(app) as base:
        result, report = _run(pytester, f"{base}/hooks/zaits", "--secret", SECRET)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "DIAGNOSIS: the receiver answered a delivery with 404 Not Found",
            "  check the path in --target-url: it must be the URL the receiver takes "
            "deliveries on (method POST).",
        ]
    )
    assert report["diagnosis"]["status"] == 404


def test_redirect_says_where_to(pytester: pytest.Pytester) -> None:
    """A 3xx names its Location, which is where --target-url should point."""
    app = _answering(308, [(b"location", b"https://hooks.example/final")])
    with _served(app) as url:
        result, report = _run(pytester, url, "--secret", SECRET, "-k", "idempotent")
    result.stdout.fnmatch_lines(
        ["DIAGNOSIS: the URL redirects to https://hooks.example/final (308 Permanent Redirect)"]
    )
    assert "https://hooks.example/final" in report["diagnosis"]["advice"]


def test_server_error_on_a_valid_delivery(pytester: pytest.Pytester) -> None:
    with _served(_answering(500)) as url:
        result, report = _run(pytester, url, "--secret", SECRET, "-k", "idempotent")
    result.stdout.fnmatch_lines(
        ["DIAGNOSIS: the receiver fails on a valid, correctly signed delivery (500 *)"]
    )
    assert report["diagnosis"]["status"] == 500


def test_no_diagnosis_when_the_delivery_is_acknowledged(pytester: pytest.Pytester) -> None:
    with _served(CorrectReceiver(ZAITS, SECRET)) as url:
        result, report = _run(pytester, url, "--secret", SECRET, "-k", "idempotent")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*DIAGNOSIS*")
    assert report["diagnosis"] is None


def _silent() -> object:
    """An app that takes the request and never answers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await asyncio.sleep(30)

    return app


def test_a_target_that_never_answers_is_said_to_accept_but_not_answer(
    pytester: pytest.Pytester,
) -> None:
    """Accepted but unanswered: the diagnosis says so and names the timeout (a port nobody
    listens on stops the run before, as a usage error naming the address)."""
    with _served(_silent()) as url:
        result, report = _run(
            pytester, url, "--secret", SECRET, "-k", "idempotent", "--conformance-timeout", "0.5"
        )
    result.stdout.fnmatch_lines(
        ["DIAGNOSIS: the receiver accepted the connection but sent no answer (*)"]
    )
    assert "per-attempt timeout" in report["diagnosis"]["advice"]
