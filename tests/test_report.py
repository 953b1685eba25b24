"""Grading, the report, and the failure message with its curl command (``_report``,
``_http``); message text is pinned."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

import conformance
from conformance import Requirement, Source, load_profile
from conformance._engine.failures import CheckFailure, NotApplicable
from conformance._engine.registry import Case, Check
from conformance._engine.report import Report
from conformance._engine.runner import CaseResult, Outcome, format_failure, grade, judge
from conformance._http import (
    NO_ANSWER,
    Delivery,
    Exchange,
    _kind,
    excerpt,
    render_curl,
    send,
)
from conformance.checks.receiver import Target

MUST = Requirement(
    id="demo.receiver.rejects-bad-signature",
    key="receiver.rejects-bad-signature",
    level="MUST",
    role="receiver",
    text="A delivery whose signature is bad is rejected with 4xx.",
    source=Source(quote="q", anchor="standard-webhooks"),
)
SHOULD = Requirement(
    id="demo.receiver.rejects-oversized",
    key="receiver.rejects-oversized",
    level="SHOULD",
    role="receiver",
    text="A body above the limit is refused with 413.",
    source=Source(quote="q", anchor="standard-webhooks"),
)
INSPECTED = Requirement(
    id="demo.receiver.constant-time",
    key="receiver.constant-time",
    level="MUST",
    role="receiver",
    text="Constant time.",
    source=Source(quote="q", anchor="standard-webhooks"),
    verification="inspection",
)
URL = "http://127.0.0.1:8000/webhook"


def _delivery(body: bytes, *, content_type: bool = True) -> Delivery:
    headers = {"X-Sig": "sha256=ab"}
    if content_type:
        headers = {"Content-Type": "application/json", **headers}
    return Delivery.of(URL, headers, body, note="truncated")


# -- grading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "violated", "strict", "outcome", "fails"),
    [
        (MUST, False, False, Outcome.PASSED, False),
        (MUST, True, False, Outcome.FAILED, True),
        (SHOULD, True, False, Outcome.NOT_STRICT, False),
        (SHOULD, True, True, Outcome.NOT_STRICT, True),
        (SHOULD, False, True, Outcome.PASSED, False),
    ],
)
def test_grade(requirement, violated, strict, outcome, fails) -> None:
    """MUST violations fail; SHOULD violations are not-strict and fail only when strict."""
    verdict = grade(requirement, violated=violated, strict=strict)
    assert (verdict.outcome, verdict.fails_test) == (outcome, fails)


def _report() -> Report:
    return Report(
        target=URL,
        profile="demo",
        role="receiver",
        strict=False,
        requirements=[MUST, SHOULD, INSPECTED],
        reasons={INSPECTED.id: "verified by inspection"},
    )


def test_worst_case_wins() -> None:
    """A requirement takes its worst case's outcome; the message lists those cases."""
    report = _report()
    report.record(MUST.id, CaseResult(id=MUST.id + "-empty", outcome=Outcome.PASSED))
    report.record(MUST.id, CaseResult(id=MUST.id + "-a", outcome=Outcome.FAILED, summary="a: x"))
    report.record(MUST.id, CaseResult(id=MUST.id + "-b", outcome=Outcome.FAILED, summary="b: y"))
    report.record(SHOULD.id, CaseResult(id=SHOULD.id, outcome=Outcome.NOT_STRICT, summary="z"))
    assert report.outcome(MUST.id) is Outcome.FAILED
    assert report.message(MUST.id) == "a: x; b: y"
    assert report.outcome(SHOULD.id) is Outcome.NOT_STRICT
    assert report.outcome(INSPECTED.id) is Outcome.SKIPPED
    assert report.message(INSPECTED.id) == "verified by inspection"
    assert report.summary() == {"passed": 0, "failed": 1, "not-strict": 1, "skipped": 1}
    assert report.must_failed


def test_report_json(tmp_path: Path) -> None:
    """The JSON report: run metadata, the counts, and one entry per requirement."""
    report = _report()
    report.record(MUST.id, CaseResult(id=MUST.id, outcome=Outcome.PASSED))
    report.write(tmp_path / "sub" / "r.json")
    data = json.loads((tmp_path / "sub" / "r.json").read_text(encoding="utf-8"))
    source = {"document": "standard-webhooks", "url": None, "quote": "q"}  # the anchor
    assert data == {
        "target": URL,
        "profile": "demo",
        "role": "receiver",
        "strict": False,
        "date": report.started.isoformat(timespec="seconds"),
        "version": conformance.__version__,
        "verdict": "conformant: every requirement checked passes",
        "summary": {"passed": 1, "failed": 0, "not-strict": 0, "skipped": 2},
        "diagnosis": None,
        "requirements": [
            {
                "id": MUST.id,
                "key": MUST.key,
                "level": "MUST",
                "role": "receiver",
                "text": MUST.text,
                "source": source,
                "outcome": "passed",
                "message": "1 case passed",
                "cases": [
                    {
                        "id": MUST.id,
                        "outcome": "passed",
                        "summary": "",
                        "message": "",
                        "expected": "",
                        "detail": "",
                        "evidence": [],
                        "reproduction": None,
                        "timeline": None,
                    }
                ],
            },
            {
                "id": SHOULD.id,
                "key": SHOULD.key,
                "level": "SHOULD",
                "role": "receiver",
                "text": SHOULD.text,
                "source": source,
                "outcome": "skipped",
                "message": "not run",
                "cases": [],
            },
            {
                "id": INSPECTED.id,
                "key": INSPECTED.key,
                "level": "MUST",
                "role": "receiver",
                "text": INSPECTED.text,
                "source": source,
                "outcome": "skipped",
                "message": "verified by inspection",
                "cases": [],
            },
        ],
        "scenarios": [],
    }


def test_verdict() -> None:
    """The header's verdict: a failed MUST, a diagnosis, SHOULDs not met (failing only
    under --strict), or every requirement checked passing."""
    report = _report()
    report.record(SHOULD.id, CaseResult(id=SHOULD.id, outcome=Outcome.NOT_STRICT, summary="z"))
    assert report.verdict() == "conformant: every MUST requirement passes; 1 SHOULD/MAY not met"
    report.strict = True
    assert report.verdict().startswith("not conformant under --strict: 1 SHOULD/MAY")
    report.record(MUST.id, CaseResult(id=MUST.id, outcome=Outcome.FAILED, summary="x"))
    assert report.verdict() == "not conformant: 1 MUST requirement failed"


def test_terminal_lines() -> None:
    """One aligned line per requirement, then the counts."""
    report = _report()
    report.record(MUST.id, CaseResult(id=MUST.id, outcome=Outcome.FAILED, summary="got 200"))
    report.record(SHOULD.id, CaseResult(id=SHOULD.id, outcome=Outcome.PASSED))
    assert report.lines() == [
        "FAILED   demo.receiver.rejects-bad-signature: got 200",
        "passed   demo.receiver.rejects-oversized: 1 case passed",
        "skipped  demo.receiver.constant-time: verified by inspection",
        "1 passed, 1 failed, 0 not-strict, 1 skipped",
    ]


# -- curl ---------------------------------------------------------------------------------


def test_curl_for_a_printable_body() -> None:
    """A printable UTF-8 body goes in single quotes, quotes escaped, non-ASCII kept."""
    body = '{"name":"O\'Brien Zoë"}'.encode()
    assert render_curl(_delivery(body)) == (
        "curl -sS -i -X POST 'http://127.0.0.1:8000/webhook' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -H 'X-Sig: sha256=ab' \\\n"
        "  --data-binary '{\"name\":\"O'\\''Brien Zoë\"}'"
    )


def test_curl_for_raw_bytes() -> None:
    """Bytes that are not printable UTF-8 are piped through printf with octal escapes; a
    missing Content-Type is removed from curl's request too."""
    assert render_curl(_delivery(b"a\x00%\\\xff'", content_type=False)) == (
        "printf -- 'a\\000%%\\\\\\377'\\''' | "
        "curl -sS -i -X POST 'http://127.0.0.1:8000/webhook' \\\n"
        "  -H 'X-Sig: sha256=ab' \\\n"
        "  -H 'Content-Type:' \\\n"
        "  --data-binary @-"
    )


def test_curl_for_a_large_body() -> None:
    """A large body is not inlined; the command says so."""
    text = render_curl(_delivery(b"x" * 20), body_limit=10)
    assert text.startswith(
        "# the body (20 bytes) is too large to show here; save the exact bytes as body.bin first\n"
    )
    assert text.endswith("--data-binary @body.bin")


@pytest.mark.parametrize(
    "body",
    [b'{"a":"Zo\xc3\xab"}', b"line1\nline2\ttab", b"a\x00b\xff%s\\n'\"$x`", bytes(range(256))],
    ids=["utf8", "newline-tab", "specials", "all-bytes"],
)
@pytest.mark.parametrize("shown", ["alone", "in-failure-message"])
def test_curl_reproduces_the_bytes(tmp_path: Path, body: bytes, shown: str) -> None:
    """The shell receives exactly the body's bytes (curl's data argument replaced by a
    stand-in that writes them out), also when the command is pasted as the failure message
    shows it, indented."""
    command = render_curl(_delivery(body))
    if shown == "in-failure-message":
        exchange = Exchange(request=_delivery(body), status=500, reason="", body=b"", elapsed=0)
        message = format_failure(
            requirement=MUST, case_id="c", headline="h", expected="2xx", exhibit=exchange.exhibit()
        )
        command = message.split("Reproduce:\n", 1)[1]
    fake = tmp_path / "curl"
    fake.write_text(
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n"
        '  if [ "$1" = --data-binary ]; then\n'
        '    if [ "$2" = @- ]; then cat; else printf %s "$2"; fi\n'
        "  fi\n  shift\ndone\n"
    )
    fake.chmod(0o755)
    out = subprocess.run(
        ["bash", "-c", f"PATH={shlex.quote(str(tmp_path))}:$PATH; {command}"],
        capture_output=True,
        check=True,
    )
    assert out.stdout == body


# -- failure message ----------------------------------------------------------------------


def test_failure_message() -> None:
    """What was expected and observed, the request sent, and the command to replay it."""
    exchange = Exchange(
        request=_delivery(b'{"id":"evt_1"}'),
        status=500,
        reason="Internal Server Error",
        body=b"boom",
        elapsed=0.25,
    )
    text = format_failure(
        requirement=MUST,
        case_id=MUST.id + "-truncated",
        headline="expected 4xx, got 500 Internal Server Error (a server error)",
        expected="4xx (the delivery is refused)",
        exhibit=exchange.exhibit(replay_hint="fresh for 300 s"),
    )
    assert text == (
        "demo.receiver.rejects-bad-signature-truncated: expected 4xx, got 500 Internal Server "
        "Error (a server error)\n"
        "Requirement demo.receiver.rejects-bad-signature [MUST]: A delivery whose signature is "
        "bad is rejected with 4xx.\n"
        "Expected: 4xx (the delivery is refused)\n"
        "Received: 500 Internal Server Error (a server error) after 0.25 s\n"
        "  boom\n"
        "Sent: POST http://127.0.0.1:8000/webhook (truncated)\n"
        "  Content-Type: application/json\n"
        "  X-Sig: sha256=ab\n"
        '  body (14 bytes): {"id":"evt_1"}\n'
        "Reproduce: (fresh for 300 s)\n"
        "  curl -sS -i -X POST 'http://127.0.0.1:8000/webhook' \\\n"
        "    -H 'Content-Type: application/json' \\\n"
        "    -H 'X-Sig: sha256=ab' \\\n"
        '    --data-binary \'{"id":"evt_1"}\''
    )


def test_failure_message_without_an_answer() -> None:
    """A timeout or connection error is described in words, with the exception named."""
    exchange = Exchange(
        request=_delivery(b"{}"), error="timeout", error_detail="ReadTimeout: timed out", elapsed=10
    )
    text = format_failure(
        requirement=MUST,
        case_id=MUST.id,
        headline="h",
        expected="e",
        exhibit=exchange.exhibit(),
        detail="more",
    )
    assert text.splitlines()[3:5] == [
        "more",
        "Received: no answer within the timeout (ReadTimeout: timed out) after 10.00 s",
    ]


def test_excerpt() -> None:
    """Bodies are shown as UTF-8 with escapes, cut with the full length named."""
    assert excerpt(b"\xffab", limit=10) == "\\xffab"
    assert excerpt(b"abcdef", limit=3) == "abc… (6 bytes in all)"


def test_what_the_target_sent_cannot_break_the_message() -> None:
    """Line separators and terminal escapes in bodies and header values are shown escaped on
    their own line, so the message keeps its layout and the terminal its colours."""
    hostile = "a\u2028b\x1b[31mred\x85c"
    exchange = Exchange(
        request=Delivery(url=URL, headers=(("X-Note", "x\x1b[2Jy"),), body=hostile.encode()),
        status=500,
        reason="Internal Server Error",
        body=hostile.encode(),
    )
    text = format_failure(
        requirement=MUST, case_id=MUST.id, headline="h", expected="e", exhibit=exchange.exhibit()
    )
    shown = text.split("Reproduce:")[0]
    assert "\x1b" not in shown
    assert "\u2028" not in shown
    assert "  a\\u2028b\\x1b[31mred\\x85c\n" in shown
    assert "  X-Note: x\\x1b[2Jy\n" in shown


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


@pytest.mark.parametrize(
    "error",
    sorted(_subclasses(httpx.TransportError), key=lambda c: c.__name__),
    ids=lambda c: c.__name__,
)
def test_every_transport_error_is_mapped(error: type[httpx.TransportError]) -> None:
    """Every httpx transport error maps to a kind of missing answer with words for it."""
    assert _kind(error("x")) in NO_ANSWER
    if issubclass(error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        assert _kind(error("x")) != "transport"
    if issubclass(error, httpx.LocalProtocolError):  # nothing was sent: not a bad answer
        assert _kind(error("x")) == "transport"


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ((("X-Value", "café"),), "/webhook"),  # httpx sends only ASCII header values
        ((("X-Value", "a\r\nInjected: 1"),), "/webhook"),  # h11 refuses a line break
        ((), None),  # an unclosed IPv6 bracket: httpx.InvalidURL
    ],
    ids=["non-ascii-header", "header-line-break", "invalid-url"],
)
def test_a_request_that_cannot_be_sent_is_an_exchange(
    httpserver, headers: tuple[tuple[str, str], ...], path: str | None
) -> None:
    """What httpx refuses to send becomes an Exchange without an answer, never an exception
    out of a check (the server is up, so no connection error hides the refusal)."""
    url = httpserver.url_for(path) if path else "http://[::1/webhook"
    delivery = Delivery(url=url, headers=headers, body=b"{}")
    with httpx.Client() as client:
        exchange = send(client, delivery, timeout=1.0)
    assert (exchange.status, exchange.error) == (None, "transport")
    assert exchange.describe().startswith("the request could not be sent (")


# -- judging a case -----------------------------------------------------------------------


def _judge(run, *, level: str = "MUST", strict: bool = False):
    profile = load_profile("ztrace")
    requirement = MUST if level == "MUST" else SHOULD
    case = Case(requirement=requirement, check=Check(key=requirement.key, run=run), name="x")
    with httpx.Client() as client:
        target = Target(url=URL, profile=profile, secret="s", timeout=1.0, client=client)
        return judge(case, target, strict=strict, replay_hint=target.replay_hint)


def test_judge_grades_a_failure_with_the_replay_hint() -> None:
    """A CheckFailure becomes a graded result whose message carries the timestamp hint."""

    def run(target, case):
        exchange = Exchange(request=_delivery(b"{}"), status=200, reason="OK")
        raise CheckFailure("expected 4xx, got 200 OK", expected="4xx", evidence=exchange)

    result, fails = _judge(run, level="SHOULD")
    assert (result.outcome, fails, result.summary) == (
        Outcome.NOT_STRICT,
        False,
        "x: expected 4xx, got 200 OK",
    )
    assert "Reproduce: (the signed X-Ztrace-Timestamp is only fresh for 300 s;" in result.message


def test_judge_skips_what_does_not_apply_and_fails_on_crashes() -> None:
    """NotApplicable skips with its reason; any other exception is a failed case, never a pass."""

    def not_applicable(target, case):
        raise NotApplicable("nothing to pad")

    def crash(target, case):
        raise KeyError("oops")

    skipped, fails = _judge(not_applicable)
    assert (skipped.outcome, skipped.summary, fails) == (Outcome.SKIPPED, "nothing to pad", False)
    crashed, fails = _judge(crash, level="SHOULD")
    assert (crashed.outcome, fails) == (Outcome.FAILED, True)
    assert crashed.summary == "the check itself failed: KeyError: 'oops'"
    assert "Traceback" in crashed.message


def test_curl_sends_an_empty_header_as_empty() -> None:
    """An empty header value is written "Name;", which curl sends empty; "Name:" would make
    curl drop the header and replay a different case (missing instead of empty)."""
    delivery = Delivery.of(URL, {"X-Sig": ""}, b"{}", note="empty")
    assert "  -H 'X-Sig;' \\\n" in render_curl(delivery)
