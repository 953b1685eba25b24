"""The pytest plugin (``pytest11`` entry point): options and hooks only.

The entry point loads it into every pytest run on a machine where the package is installed,
so it is inert unless ``--target-url`` is given: it then adds only its options and ini names
(no markers, fixtures, parametrization, report statuses, output or files). With
``--target-url`` it validates the options into a ``SuiteConfig`` (a bad option is a one-line
usage error), checks once that the target is reachable, runs the bundled suite in
``conformance/_suite`` instead of any local tests, and writes the graded report. The suite's
fixtures and its parametrization (one test per requirement case) live in
``conformance/_suite/conftest.py``, which pytest loads only when it collects the suite.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from conformance._engine.config import (
    API_KEY,
    API_KEY_ENV,
    CAPTURE_HOST,
    HTML,
    OTHER_API_KEY,
    OTHER_SITE_ID,
    PROFILE,
    PUBLIC_URL,
    REPORT,
    ROLE,
    SECRET,
    SECRET_ENV,
    SITE_ID,
    STRICT,
    TARGET_URL,
    TIME_SCALE,
    TIMEOUT,
    ConfigError,
    SuiteConfig,
)
from conformance._engine.registry import Case, cases_for
from conformance._engine.report import Notice, Report
from conformance._http import probe
from conformance._roles import ROLES
from conformance.checks import management, receiver, registry_for, sender
from conformance.checks.sender._diagnosis import diagnose

__all__ = ["CASE_FIXTURE", "NOT_STRICT_PROPERTY", "SUITE_DIR", "report_of"]

SUITE_DIR = Path(__file__).resolve().parent / "_suite"
#: The fixture each role's suite test takes: ``receiver_case``.
CASE_FIXTURE = "{role}_case"
#: The user property a passing test carries when its SHOULD requirement was violated.
NOT_STRICT_PROPERTY = "webhook-conformance-not-strict"
_PROBE_SECONDS = 5.0

# (option, dest, ini name or None, help, extra argparse attributes). The target and the
# secret have no ini setting: the first switches the suite on, the second is a credential.
_OPTIONS: tuple[tuple[str, str, str | None, str, dict[str, Any]], ...] = (
    (TARGET_URL, "wc_target_url", None, "run the conformance suite against URL", {}),
    (PROFILE, "wc_profile", "conformance_profile", "a bundled profile name or a .yaml path", {}),
    (ROLE, "wc_role", "conformance_role", f"{', '.join(ROLES)} (default: receiver)", {}),
    (SECRET, "wc_secret", None, f"the signing secret (default: ${SECRET_ENV})", {}),
    (STRICT, "wc_strict", "conformance_strict", "fail on SHOULD violations too (as does "
     "pytest's own --strict)", {"action": "store_true", "default": None}),
    (TIMEOUT, "wc_timeout", "conformance_timeout", "receiver: per-attempt timeout in "
     "seconds (default: the profile's); sender: the trigger's, management: each API "
     "call's (default: 10)", {}),
    (TIME_SCALE, "wc_time_scale", "conformance_time_scale", "sender: the factor retry delays "
     "are scaled by (default: fits the profile's schedule into a few seconds)", {}),
    (CAPTURE_HOST, "wc_capture_host", "conformance_capture_host", "sender, management: the "
     "address the capture server listens on (default: 127.0.0.1)", {}),
    (PUBLIC_URL, "wc_public_url", "conformance_public_url", "sender, management: the "
     "capture server's URL as the sender reaches it (default: its own address)", {}),
    (API_KEY, "wc_api_key", None, f"management: the API key (default: ${API_KEY_ENV})", {}),
    (OTHER_API_KEY, "wc_other_api_key", None, "management: a second tenant's API key (for "
     "the cross-tenant checks)", {}),
    (SITE_ID, "wc_site_id", "conformance_site_id", "management: a site of --api-key's "
     "tenant (site-scoped APIs)", {}),
    (OTHER_SITE_ID, "wc_other_site_id", "conformance_other_site_id", "management: a site of "
     "--other-api-key's tenant", {}),
    (REPORT, "wc_report", "conformance_report", "write the JSON report to this file", {}),
    (HTML, "wc_html", "conformance_html", "write the HTML report (one self-contained page) "
     "to this file", {}),
)  # fmt: skip


@dataclass
class _State:
    config: SuiteConfig
    report: Report
    #: The sender run (capture server and scenarios), from session start to its end.
    run: sender.SenderRun | None = None
    #: The management API's context, from session start to its end.
    api: management.ManagementApi | None = None
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


_STATE = pytest.StashKey[_State]()


def _add(group: pytest.OptionGroup, name: str, **attrs: Any) -> None:
    """Add ``--name`` with a ``--conformance-name`` alias; if another plugin already owns
    the short name (pytest-timeout's ``--timeout``), only the alias is added."""
    alias = "--conformance-" + name.removeprefix("--").removeprefix("conformance-")
    try:
        group.addoption(*dict.fromkeys([name, alias]), **attrs)
    except (ValueError, argparse.ArgumentError):
        group.addoption(alias, **attrs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("webhook-conformance", "webhook conformance suite")
    for name, dest, ini, text, attrs in _OPTIONS:
        _add(group, name, dest=dest, help=text, **attrs)
        if ini is not None:
            kind: Literal["bool", "string"] = "bool" if "action" in attrs else "string"
            parser.addini(ini, f"default for {name}", type=kind)


def _value(config: pytest.Config, dest: str, ini: str | None) -> Any:
    given = config.getoption(dest)
    return given if given is not None or ini is None else config.getini(ini)


def _pytest_strict(config: pytest.Config) -> bool:
    """pytest's own strict mode (``--strict``, ini ``strict``), which pytest 9 introduced."""
    try:
        return bool(config.getini("strict"))
    except ValueError:  # pytest 8: no such setting
        return False


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("wc_target_url") or config.getoption("help", False):
        return  # inert: not even the marker, which would show in a foreign project's --markers
    config.addinivalue_line("markers", "slow: checks that take seconds (deselect: -m 'not slow')")
    raw = {dest.removeprefix("wc_"): _value(config, dest, ini) for _, dest, ini, _, _ in _OPTIONS}
    raw["strict"] = bool(raw["strict"]) or _pytest_strict(config)
    try:
        suite = SuiteConfig.from_options(**raw)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("noconftest", False):
        # Otherwise every case errors with "fixture 'conformance_target' not found".
        raise pytest.UsageError(
            f"--noconftest with {TARGET_URL}: the suite's fixtures are in its conftest.py"
        )
    if getattr(config.option, "numprocesses", None) not in (None, 0, "0"):
        # Cases run in xdist's workers would be graded there, and the report and summary,
        # which live in this process, would stay empty.
        raise pytest.UsageError(
            f"{TARGET_URL} runs the suite in one process: its cases share one target and one "
            "report. Run it with -n 0 (or -p no:xdist)."
        )
    if not config.getoption("collectonly", False):
        problem = probe(suite.target_url, min(suite.timeout, _PROBE_SECONDS))
        if problem is not None:
            raise pytest.UsageError(f"cannot reach the target {suite.target_url}: {problem}")
    cases = cases_for(registry_for(suite.role), suite.profile)
    config.stash[_STATE] = _State(suite, Report.for_suite(suite, cases))
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        # No paths on the command line: run the bundled suite, not the local testpaths.
        config.args = [str(SUITE_DIR)]
        config.args_source = pytest.Config.ArgsSource.ARGS


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None]:
    """The preflight delivery, right after the report header and before collection. It
    runs after every other plugin's session start, hypothesis's included: the delivery's
    payload is drawn with hypothesis, which warns about work done while it initializes."""
    yield
    state = _state(session.config)
    if state is None or session.config.getoption("collectonly", False):
        return
    suite = state.config
    if suite.role == "receiver":
        with receiver.make_client(suite.timeout) as client:
            diagnosis = receiver.preflight(receiver.Target.of(suite, client))
        _tell(session.config, state, diagnosis)
    elif suite.role == "sender":
        # The capture server now; the scenarios once collection says which checks run.
        state.run = state.resources.enter_context(sender.SenderRun.serving(suite))
    elif suite.role == "management":
        state.api = state.resources.enter_context(management.ManagementApi.serving(suite))
        _tell(session.config, state, management.preflight(state.api))


def _tell(config: pytest.Config, state: _State, diagnosis: Notice | None) -> None:
    """Keep the diagnosis for the report, and say it once, now."""
    state.report.diagnosis = diagnosis
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if diagnosis is not None and reporter is not None:
        for line in diagnosis.lines():
            reporter.write_line(line, red=True)


def _case_of(item: pytest.Item) -> Case | None:
    """The requirement case a suite test judges (``None`` for any other test)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    for role in ROLES:
        case = callspec.params.get(CASE_FIXTURE.format(role=role))
        if isinstance(case, Case):
            return case
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Label each case's test with its requirement (JUnit properties); start the sender
    scenarios the selected checks judge, all at once (deselected checks cost nothing:
    ``-m "not slow"`` leaves out the answer held past the timeout), then wait for the plain
    one and diagnose it."""
    state = _state(session.config)
    if state is None:
        return
    for item in session.items:
        case = _case_of(item)
        if case is not None:
            item.user_properties += [
                ("requirement", case.requirement.id),
                ("level", case.requirement.level),
                ("source", case.requirement.source.origin),
            ]
    if state.run is None:
        return
    keys = {case.requirement.key for case in map(_case_of, session.items) if case is not None}
    state.run.start(sender.scenarios_for(keys) | {"delivered"})
    _tell(session.config, state, diagnose(state.run))


def _state(config: pytest.Config) -> _State | None:
    return config.stash.get(_STATE, None)


def report_of(config: pytest.Config) -> Report | None:
    """The graded report of a run with ``--target-url`` (``None`` in any other run), for
    tools that run the suite with ``pytest.main`` and want the result without a file."""
    state = _state(config)
    return None if state is None else state.report


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In the bundled suite, collect only the chosen role's module."""
    state = _state(config)
    if state is None or collection_path.parent != SUITE_DIR or collection_path.suffix != ".py":
        return None
    chosen = f"test_{state.config.role}.py"
    return (collection_path.name.startswith("test_") and collection_path.name != chosen) or None


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = _state(config)
    return None if state is None else state.config.describe()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Give each case's test its graded outcome as a JUnit property, once it is known: after
    the call, or after a setup that skipped or failed."""
    report = yield
    if _state(item.config) is None or _case_of(item) is None:
        return report
    if report.when == "call" or (report.when == "setup" and not report.passed):
        item.user_properties.append(("outcome", _outcome_of(report)))
    return report


def _outcome_of(report: pytest.TestReport) -> str:
    if report.skipped:
        return "skipped"
    if report.failed:
        return "failed"
    flagged = any(name == NOT_STRICT_PROPERTY for name, _ in report.user_properties)
    return "not-strict" if flagged else "passed"


def pytest_report_teststatus(
    report: pytest.CollectReport | pytest.TestReport, config: pytest.Config
) -> tuple[str, str, Any] | None:
    """A passing test whose SHOULD requirement was violated shows as NOT-STRICT.

    The hook also sees collection reports (which have no ``user_properties``), and in a run
    without ``--target-url`` it leaves every status to pytest."""
    if _state(config) is None or not isinstance(report, pytest.TestReport):
        return None
    flagged = any(name == NOT_STRICT_PROPERTY for name, _ in report.user_properties)
    if report.when == "call" and report.passed and flagged:
        return "not-strict", "N", ("NOT-STRICT", {"yellow": True})
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is None:
        return
    if state.run is not None:
        played = state.run.played()
        state.report.timelines = [scenario.timeline() for scenario in played]
        state.report.redact(*(scenario.secret for scenario in played))
    state.resources.close()
    suite = state.config
    for path, write in ((suite.report_path, state.report.write),
                        (suite.html_path, state.report.write_html)):  # fmt: skip
        if path is None:
            continue
        try:
            write(path)
        except OSError as exc:
            session.config.get_terminal_writer().line(
                f"webhook-conformance: cannot write {path}: {exc.strerror}", red=True
            )
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = _state(config)
    if state is None:
        return
    suite = state.config
    terminalreporter.section(f"webhook conformance: {suite.profile.name} {suite.role}")
    for line, markup in state.report.styled_lines():
        terminalreporter.write_line(line, **markup)
    if suite.report_path is not None:
        terminalreporter.write_line(f"report written to {suite.report_path}")
    if suite.html_path is not None:
        terminalreporter.write_line(f"HTML report written to {suite.html_path}")
