"""The sender-role suite's own machinery, over real loopback HTTP: the capture server, the
options, the diagnosis said once up front, and the suite against the reference sender for
every profile (the broken-sender corpus is ``test_broken_senders.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# pytester's in-process runs drop the modules first imported during them (see test_plugin).
import httpcore  # noqa: F401
import httpx
import hypothesis.internal.observability  # noqa: F401
import hypothesis_jsonschema  # noqa: F401
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conformance import list_profiles, load_profile
from conformance._engine.config import ConfigError, SuiteConfig, default_time_scale
from conformance._serving import serve_in_thread
from conformance.checks.sender import Capture, Reply

pytest_plugins = ["pytester"]


# -- the capture server -------------------------------------------------------------------


@contextmanager
def _capture() -> Iterator[tuple[Capture, str]]:
    capture = Capture()
    with serve_in_thread(capture) as base:
        yield capture, base


def test_capture_records_exact_bytes_and_answers_by_script() -> None:
    """Each attempt is recorded as it arrived (header order, exact body bytes) and answered
    by its turn in the script, the last reply repeating; an unknown token is a 404."""
    with _capture() as (capture, base), httpx.Client() as client:
        capture.expect("t1", [Reply(status=500), Reply(status=201, headers=(("X-A", "1"),))])
        body = b'{"a": 1,\n "b": "\xc3\xa9"}'
        statuses = [
            client.post(f"{base}/t1/hook", content=body, headers={"X-Z": "z", "X-Y": "y"})
            for _ in range(3)
        ]
        assert [r.status_code for r in statuses] == [500, 201, 201]
        assert statuses[1].headers["x-a"] == "1"
        attempts = capture.attempts("t1")
        assert [a.number for a in attempts] == [1, 2, 3]
        assert all(a.body == body and a.path == "/hook" for a in attempts)
        names = [k for k, _ in attempts[0].headers]
        assert names.index("x-z") < names.index("x-y")
        assert all(a.answered is not None and a.answered >= a.arrived for a in attempts)
        assert client.post(f"{base}/unknown/hook", content=b"{}").status_code == 404


def test_capture_sees_a_sender_abandon_a_held_answer() -> None:
    """A held answer that the client gives up on is recorded as abandoned, at about the
    client's timeout; one the client waits for is answered after the hold."""
    with _capture() as (capture, base):
        capture.expect("held", [Reply(hold=5.0)])
        with httpx.Client(timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
            client.post(f"{base}/held/hook", content=b"{}")
        attempt = capture.wait("held", 1, time.monotonic() + 5)[0]
        assert attempt.abandoned is not None
        assert attempt.answered is None
        assert 0.4 < attempt.abandoned - attempt.arrived < 4.5  # before the 5 s hold ends
        capture.expect("patient", [Reply(hold=0.3)])
        with httpx.Client(timeout=5) as client:
            assert client.post(f"{base}/patient/hook", content=b"{}").status_code == 200
        waited = capture.attempts("patient")[0]
        assert waited.abandoned is None
        assert waited.answered is not None
        assert waited.answered - waited.arrived >= 0.3


# -- options ------------------------------------------------------------------------------


def _sender_config(**options: object) -> SuiteConfig:
    return SuiteConfig.from_options(
        target_url="http://127.0.0.1:9/conformance/trigger",
        profile="zta",
        role="sender",
        env={},
        **options,  # type: ignore[arg-type]
    )


def test_the_default_time_scale_fits_each_schedule_into_a_few_seconds() -> None:
    """The default scale puts every profile's whole retry schedule near 4 s, never above
    real time; an explicit one is taken as given."""
    for name in list_profiles():
        profile = load_profile(name)
        scale = default_time_scale(profile)
        total = sum(profile.delivery.schedule_seconds)
        assert 0 < scale <= 1
        assert total * scale <= 4.0 + 1e-9
    assert _sender_config().sender.time_scale == pytest.approx(4.0 / 30)
    assert _sender_config(time_scale="0.01").sender.time_scale == 0.01


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"time_scale": "fast"}, "--time-scale 'fast' is not a number"),
        ({"time_scale": "0"}, "--time-scale must be a number above 0 and at most 1, not '0'"),
        ({"public_url": "ftp://x"}, "--public-url 'ftp://x' is not an http:// or https:// URL"),
        ({"secret": "s"}, "--secret applies to --role receiver"),
    ],
)
def test_sender_options_are_validated(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        _sender_config(**options)


def test_the_public_url_is_what_the_sender_is_given() -> None:
    config = _sender_config(public_url="https://tunnel.example/x/", capture_host="0.0.0.0")
    assert (config.sender.public_url, config.sender.capture_host) == (
        "https://tunnel.example/x",
        "0.0.0.0",
    )
    assert "capture: https://tunnel.example/x" in config.describe()[1]


# -- one reason, said once --------------------------------------------------------------------


def _trigger_app(answer: Response) -> Starlette:
    async def trigger(request: Request) -> Response:
        await request.body()
        return answer

    return Starlette(routes=[Route("/trigger", trigger, methods=["POST"])])


def _run(pytester: pytest.Pytester, url: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest(
        "--target-url", url, "--profile", "zta", "--role", "sender", "--time-scale", "0.01",
        "-m", "not slow", "--conformance-report", "report.json",
    )  # fmt: skip
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    return result, report


def test_a_trigger_that_refuses_is_diagnosed_once(pytester: pytest.Pytester) -> None:
    """A trigger URL that answers 404 is said once, first, with the trigger's curl line;
    every check still runs, and fails naming the refusal."""
    with serve_in_thread(_trigger_app(Response("no such route", status_code=404))) as base:
        result, report = _run(pytester, f"{base}/trigger")
    out = result.stdout.str()
    before, after = out.split("test_sender.py ", 1)  # the first test's progress line
    assert before.count("DIAGNOSIS: the trigger was refused: 404 Not Found") == 1
    # ... and once more above the summary's results, not once per check.
    assert after.count("DIAGNOSIS:") == 1
    assert "it must be the sender's trigger URL" in out
    assert report["diagnosis"]["status"] == 404
    assert "curl" in report["diagnosis"]["reproduce"]
    assert report["summary"]["failed"] > 0
    assert report["summary"]["passed"] == 0
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_sender_that_never_delivers_is_diagnosed(pytester: pytest.Pytester) -> None:
    """A trigger that answers 202 with an event id but delivers nothing: the diagnosis says
    the capture URL was never reached, and names the options that set it."""
    answer = JSONResponse({"event_id": "evt_1"}, status_code=202)
    with serve_in_thread(_trigger_app(answer)) as base:
        result, report = _run(pytester, f"{base}/trigger")
    headline = report["diagnosis"]["headline"]
    assert headline.startswith("the sender accepted the trigger (event evt_1) but delivered")
    assert "--capture-host" in report["diagnosis"]["advice"]
    assert "--public-url" in report["diagnosis"]["advice"]
    failing = [r for r in report["requirements"] if r["outcome"] == "failed"]
    assert failing
    assert all("nothing was delivered" in r["message"] for r in failing)
    assert "DIAGNOSIS: the sender accepted the trigger" in result.stdout.str()


# -- against the reference, every profile ---------------------------------------------------


def test_the_sender_suite_passes_against_the_reference_for_every_profile(
    tmp_path: Path,
) -> None:
    """The whole sender suite, slow checks included, against the reference sender for all
    seven profiles (the demo's sender runs, all at once): nothing fails, nothing is
    not-strict."""
    report = tmp_path / "senders.json"
    done = subprocess.run(
        [sys.executable, "-m", "conformance._cli", "demo", "--role", "sender",
         "--jobs", str(len(list_profiles())), "--report", str(report)],
        capture_output=True, text=True, cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    data = json.loads(report.read_text("utf-8"))
    assert sorted(r["profile"] for r in data["profiles"]) == sorted(list_profiles())
    offending = {
        r["profile"]: [
            q["id"] for q in r["requirements"] if q["outcome"] in ("failed", "not-strict")
        ]
        for r in data["profiles"]
    }
    assert {k: v for k, v in offending.items() if v} == {}
    assert all(r["summary"]["passed"] >= 10 for r in data["profiles"])
