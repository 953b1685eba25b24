"""The pytest plugin: options, usage errors, collection of the bundled suite, grading, the
report file and the terminal output. Runs pytest in-process with ``pytester`` against
receivers of the broken corpus (``tests/broken``) served on loopback."""

from __future__ import annotations

import importlib.util
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager

# pytester's in-process runs drop the modules first imported during them, and a second
# import goes wrong: httpx keeps the exception classes of the first httpcore, and hypothesis
# re-imported under assertion rewriting trips a CPython AST error. Import them out here.
import httpcore  # noqa: F401
import hypothesis.internal.observability  # noqa: F401
import hypothesis_jsonschema  # noqa: F401
import pytest
from broken import CorrectReceiver
from broken._defects import AcceptsEverything, NoSizeLimit

from conformance import Profile, list_profiles, load_profile
from conformance._engine.registry import cases_for
from conformance.checks.receiver import CHECKS
from reference import serve_in_thread

pytest_plugins = ["pytester"]

SECRET = "whsec_plugin-tests"
ZAITS = load_profile("zaits")


@contextmanager
def serve(receiver: type[CorrectReceiver], profile: Profile = ZAITS) -> Iterator[str]:
    """Serve a receiver of the corpus on loopback; yields its delivery URL."""
    with serve_in_thread(receiver(profile, SECRET)) as base:
        yield f"{base}/webhook"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(CorrectReceiver) as address:
        yield address


def _args(url: str, *extra: str, profile: str = "zaits") -> list[str]:
    return ["--target-url", url, "--profile", profile, "--secret", SECRET, *extra]


def _report(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))


def _outcomes(report: dict) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in report["requirements"]}


def test_inert_without_target_url(pytester: pytest.Pytester) -> None:
    """Without --target-url the plugin adds nothing: local tests run as usual."""
    pytester.makepyfile("def test_local():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("webhook-conformance target:*")
    result.stdout.no_fnmatch_line("*webhook conformance:*")


#: A complete, valid set of options; each usage-error case adds or breaks one.
BASE = ["--target-url", "http://127.0.0.1:9/w", "--profile", "zaits", "--secret", "s"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--target-url", "http://127.0.0.1:9/webhook", "--secret", "s"],
            "ERROR: --profile is required with --target-url (known: "
            + ", ".join(list_profiles())
            + "; or a path to a .yaml file)",
            id="missing-profile",
        ),
        pytest.param(
            ["--target-url", "http://127.0.0.1:9/webhook", "--profile", "nope", "--secret", "s"],
            "ERROR: --profile: unknown profile 'nope'; known profiles: *",
            id="unknown-profile",
        ),
        pytest.param(
            [*BASE, "--role", "management"],
            "ERROR: --secret applies to --role receiver: the management suite reads each "
            "endpoint's secret from the API's answers",
            id="management-role",
        ),
        pytest.param(
            [*BASE, "--role", "sender"],
            "ERROR: --secret applies to --role receiver: the sender suite picks a fresh secret "
            "for every scenario and sends it in the trigger",
            id="secret-with-sender",
        ),
        pytest.param(
            ["--target-url", "http://127.0.0.1:9/w", "--profile", "zta", "--time-scale", "0.1"],
            "ERROR: --time-scale applies to --role sender, not receiver",
            id="sender-option-with-receiver",
        ),
        pytest.param(
            ["--target-url", "http://127.0.0.1:9/w", "--profile", "zta", "--role", "sender",
             "--time-scale", "2"],
            "ERROR: --time-scale must be a number above 0 and at most 1, not '2'",
            id="time-scale-too-large",
        ),
        pytest.param(
            [*BASE, "--timeout", "1e12"],
            "ERROR: --timeout must be a positive number of seconds up to 3600, not '1e12'",
            id="huge-timeout",
        ),
        pytest.param(
            [*BASE, "--role", "client"],
            "ERROR: --role 'client' is not one of receiver, sender, management",
            id="bad-role",
        ),
        pytest.param(
            ["--target-url", "localhost:8000", "--profile", "zaits", "--secret", "s"],
            "ERROR: --target-url 'localhost:8000' is not an http:// or https:// URL",
            id="bad-url",
        ),
        pytest.param(
            ["--target-url", "http://127.0.0.1:9/w", "--profile", "zaits"],
            "ERROR: --secret (or $WEBHOOK_SECRET) is required with --role receiver",
            id="missing-secret",
        ),
        pytest.param(
            [*BASE, "--timeout", "soon"],
            "ERROR: --timeout 'soon' is not a number of seconds",
            id="bad-timeout",
        ),
        pytest.param(
            ["--target-url", "http://[::1/webhook", "--profile", "zaits", "--secret", "s"],
            "ERROR: --target-url 'http://[[]::1/webhook' is not a valid URL: Invalid IPv6 URL",
            id="unparsable-url",
        ),
        pytest.param(
            [*BASE, "--conformance-report", "."],
            "ERROR: --conformance-report '.' is a directory; name a file",
            id="report-is-a-directory",
        ),
        pytest.param(
            [*BASE, "-p", "xdist", "-n", "2"],
            "ERROR: --target-url runs the suite in one process: its cases share one target and "
            "one report. Run it with -n 0 (or -p no:xdist).",
            id="xdist-workers",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed"
            ),
        ),
    ],
)
def test_usage_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    """A missing or invalid option is one line on stderr, no traceback, exit code 4."""
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    result = pytester.runpytest(*argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_secret_from_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """WEBHOOK_SECRET stands in for --secret."""
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    result = pytester.runpytest("--target-url", url, "--profile", "zaits", "-k", "idempotent")
    result.assert_outcomes(passed=1, deselected=len(cases_for(CHECKS, ZAITS)) - 1)


def test_unreachable_target_names_the_url(pytester: pytest.Pytester) -> None:
    """A target nobody listens on is one usage error naming the URL, not a failure per test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = f"http://127.0.0.1:{port}/webhook"
    result = pytester.runpytest(*_args(target))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: cannot reach the target {target}: *"])
    result.stdout.no_fnmatch_line("*test_receiver*")


def test_report_header(pytester: pytest.Pytester, url: str) -> None:
    """The header names the target, the profile, the role and the strictness."""
    result = pytester.runpytest(*_args(url, "--collect-only", "-q", "--timeout", "2.5"))
    result = pytester.runpytest(*_args(url, "-k", "idempotent", "--timeout", "2.5"))
    result.stdout.fnmatch_lines(
        [
            f"webhook-conformance target: {url}",
            "webhook-conformance profile: zaits (Zaits), role: receiver, strict: no (SHOULD "
            "violations pass as not-strict), timeout: 2.5 s",
        ]
    )


def test_collects_the_bundled_suite_with_requirement_ids(
    pytester: pytest.Pytester, url: str
) -> None:
    """From an empty directory, with no test path, the suite is collected; ids carry the
    requirement ids."""
    pytester.makepyfile(test_local="def test_local():\n    pass\n")
    result = pytester.runpytest(*_args(url, "--collect-only", "-q"))
    expected = [
        f"*test_receiver.py::test_receiver[[]{c.id}[]]"
        for c in cases_for(CHECKS, ZAITS)
    ]
    result.stdout.fnmatch_lines(expected, consecutive=True)
    result.stdout.no_fnmatch_line("*test_local*")


def test_clean_run_and_report_shape(pytester: pytest.Pytester, url: str) -> None:
    """Against a correct receiver every requirement passes, except the one verified by
    inspection, and the JSON report has one entry per receiver requirement."""
    result = pytester.runpytest(*_args(url, "--conformance-report", "report.json"))
    assert result.ret == pytest.ExitCode.OK
    report = _report(pytester)
    assert set(report) == {
        "target", "profile", "role", "strict", "date", "version", "verdict", "summary",
        "diagnosis", "requirements", "scenarios",
    }
    assert report["diagnosis"] is None
    assert (report["target"], report["profile"], report["role"], report["strict"]) == (
        url,
        "zaits",
        "receiver",
        False,
    )
    receiver = [r for r in ZAITS.requirements if r.role == "receiver"]
    assert [r["id"] for r in report["requirements"]] == [r.id for r in receiver]
    assert report["summary"] == {
        "passed": len(receiver) - 1,
        "failed": 0,
        "not-strict": 0,
        "skipped": 1,
    }
    entry = report["requirements"][0]
    assert set(entry) == {
        "id", "key", "level", "role", "text", "source", "outcome", "message", "cases"
    }
    assert (
        report["requirements"][[r.id for r in receiver].index("zaits.receiver.constant-time")][
            "message"
        ]
        == "verified by inspection: not observable from outside"
    )
    result.stdout.fnmatch_lines(
        [
            "*= webhook conformance: zaits receiver =*",
            "passed   zaits.receiver.accepts-valid: 9 cases passed",
            "*skipped  zaits.receiver.constant-time: verified by inspection*",
            f"{len(receiver) - 1} passed, 0 failed, 0 not-strict, 1 skipped",
            "report written to report.json",
        ]
    )


def test_not_slow_deselects_slow_checks(pytester: pytest.Pytester, url: str) -> None:
    """-m 'not slow' deselects the slow checks; the report shows them as not run."""
    result = pytester.runpytest(
        *_args(url, "-m", "not slow", "--conformance-report", "report.json")
    )
    result.assert_outcomes(
        passed=len(cases_for(CHECKS, ZAITS)) - 3, skipped=1, deselected=2
    )
    report = _report(pytester)
    slow = {"zaits.receiver.responds-in-time", "zaits.receiver.accepts-max-payload"}
    assert {
        r["id"]: r["message"] for r in report["requirements"] if r["id"] in slow
    } == dict.fromkeys(slow, "not run")


@pytest.fixture(scope="module")
def lax_url() -> Iterator[str]:
    """A ZTA receiver whose only fault is a SHOULD: it accepts bodies above the documented
    limit (ZTA states one, so refusing larger bodies is a SHOULD there)."""
    with serve(NoSizeLimit, load_profile("zta")) as address:
        yield address


def test_should_violation_is_not_strict(pytester: pytest.Pytester, lax_url: str) -> None:
    """A SHOULD violation is reported as not-strict and the run passes."""
    result = pytester.runpytest(
        *_args(lax_url, "-k", "oversized", "--conformance-report", "report.json", profile="zta")
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*1 not-strict*"])
    result.stdout.fnmatch_lines(
        ["NOT-STRICT  zta.receiver.rejects-oversized: expected 4xx, got 200 OK (accepted)"]
    )
    assert _outcomes(_report(pytester))["zta.receiver.rejects-oversized"] == "not-strict"


@pytest.mark.parametrize("flag", ["--conformance-strict", "--strict"])
def test_strict_fails_on_should_violation(
    pytester: pytest.Pytester, lax_url: str, flag: str
) -> None:
    """Under --conformance-strict (or pytest's own --strict) a SHOULD violation fails the run."""
    result = pytester.runpytest(
        *_args(lax_url, "-k", "oversized", flag, "--conformance-report", "report.json",
               profile="zta")
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = _report(pytester)
    assert report["strict"] is True
    assert _outcomes(report)["zta.receiver.rejects-oversized"] == "not-strict"


def test_may_violation_never_fails(pytester: pytest.Pytester) -> None:
    """A MAY violation is reported as not-strict and passes even under --strict: Zaits states
    no payload limit, so refusing bodies above the contract's 1 MiB is only a MAY."""
    with serve(NoSizeLimit) as target:
        result = pytester.runpytest(
            *_args(target, "-k", "oversized", "--strict", "--conformance-report", "report.json")
        )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*1 not-strict*"])
    assert _outcomes(_report(pytester))["zaits.receiver.rejects-oversized"] == "not-strict"


def test_must_violation_fails_with_a_replayable_message(pytester: pytest.Pytester) -> None:
    """A MUST violation fails the run; the message names the requirement and gives curl."""
    with serve(AcceptsEverything) as target:
        result = pytester.runpytest(*_args(target, "-k", "bad-signature-truncated"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "zaits.receiver.rejects-bad-signature-truncated: expected 4xx, got 200 OK (accepted)",
            "Requirement zaits.receiver.rejects-bad-signature [[]MUST[]]: A delivery whose "
            "signature is empty, malformed, truncated, *",
            "Expected: 4xx (the delivery is refused)",
            "Received: 200 OK after * s",
            '  {"received": true}',
            f"Sent: POST {target} (the signature cut to half its length)",
            "  Content-Type: application/json",
            "  X-Zaits-Signature: sha256=????????????????????????????????",
            "*",
            "Reproduce:",
            f"  curl -sS -i -X POST '{target}' \\",
        ]
    )


def test_ini_supplies_defaults(pytester: pytest.Pytester, lax_url: str) -> None:
    """Profile, strictness and reports can come from the ini file instead of the command
    line."""
    pytester.makeini(
        "[pytest]\nconformance_profile = zta\nconformance_strict = true\n"
        "conformance_report = report.json\nconformance_html = out/report.html\n"
    )
    result = pytester.runpytest("--target-url", lax_url, "--secret", SECRET, "-k", "oversized")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert _report(pytester)["strict"] is True
    page = (pytester.path / "out" / "report.html").read_text(encoding="utf-8")
    assert "yes: SHOULD violations fail" in page
    result.stdout.fnmatch_lines(["HTML report written to out/report.html"])


def test_an_html_report_path_that_is_a_directory_is_a_usage_error(
    pytester: pytest.Pytester, url: str
) -> None:
    """Refused before any check runs, in one line."""
    pytester.mkdir("reports")
    result = pytester.runpytest(*_args(url, "--conformance-html", "reports"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-html 'reports' is a directory; name a file*"])


class _TakenGroup:
    """An option group in which another plugin already owns ``--timeout``."""

    def __init__(self) -> None:
        self.added: list[tuple[str, ...]] = []

    def addoption(self, *names: str, **attrs: object) -> None:
        if "--timeout" in names:
            raise ValueError("option names {'--timeout'} already added")
        self.added.append(names)


def test_option_alias_when_the_name_is_taken() -> None:
    """When another plugin owns an option name, only the --conformance- alias is added."""
    from conformance.plugin import _add

    group = _TakenGroup()
    _add(group, "--timeout", dest="wc_timeout")  # type: ignore[arg-type]
    _add(group, "--profile", dest="wc_profile")  # type: ignore[arg-type]
    _add(group, "--conformance-report", dest="wc_report")  # type: ignore[arg-type]
    assert group.added == [
        ("--conformance-timeout",),
        ("--profile", "--conformance-profile"),
        ("--conformance-report",),
    ]
