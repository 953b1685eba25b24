"""The bundled suite's fixtures and its parametrization, one test per requirement case.

They live here, not in ``conformance.plugin``, because the plugin is loaded into every pytest
run on the machine: pytest loads this conftest only when it collects ``conformance/_suite``
(which the plugin points it at under ``--target-url``), so a foreign project's run never sees
these fixtures, and its own ``receiver_case`` tests are never parametrized.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance._engine.config import ROLE, TARGET_URL, SuiteConfig
from conformance._engine.registry import cases_for
from conformance._engine.report import Report
from conformance._roles import ROLES
from conformance.checks import registry_for
from conformance.checks.management import ManagementApi
from conformance.checks.receiver import Target, make_client
from conformance.checks.sender import SenderRun
from conformance.plugin import CASE_FIXTURE, _State, _state


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for role in ROLES:
        if CASE_FIXTURE.format(role=role) in metafunc.fixturenames:
            metafunc.parametrize(CASE_FIXTURE.format(role=role), _params(metafunc.config, role))


def _params(config: pytest.Config, role: str) -> list[Any]:
    state = _state(config)
    if state is None or state.config.role != role:
        skip = pytest.mark.skip(reason=f"runs with {TARGET_URL} and {ROLE} {role}")
        return [pytest.param(None, id="no-target", marks=skip)]
    params = []
    for case in cases_for(registry_for(role), state.config.profile):
        marks = [pytest.mark.skip(reason=case.skip_reason)] if case.skip_reason else []
        if case.check is not None and case.check.slow:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def _require(config: pytest.Config) -> _State:
    state = _state(config)
    if state is None:
        pytest.skip(f"needs {TARGET_URL}")
    return state


@pytest.fixture(scope="session")
def conformance_config(pytestconfig: pytest.Config) -> SuiteConfig:
    """The validated options of this run."""
    return _require(pytestconfig).config


@pytest.fixture(scope="session")
def conformance_report(pytestconfig: pytest.Config) -> Report:
    """The graded report the suite records its cases in."""
    return _require(pytestconfig).report


@pytest.fixture(scope="session")
def conformance_target(conformance_config: SuiteConfig) -> Iterator[Target]:
    """The system under test, with one HTTP client for the whole session."""
    with make_client(conformance_config.timeout) as client:
        yield Target.of(conformance_config, client)


@pytest.fixture(scope="session")
def conformance_sender_run(pytestconfig: pytest.Config) -> SenderRun:
    """The sender run the plugin started at session start: capture server and scenarios."""
    run = _require(pytestconfig).run
    assert run is not None, "the plugin starts the sender run when the session starts"
    return run


@pytest.fixture(scope="session")
def conformance_management_api(pytestconfig: pytest.Config) -> ManagementApi:
    """The management API's context the plugin opened at session start (with its capture
    server); what the suite created is deleted when the session ends."""
    api = _require(pytestconfig).api
    assert api is not None, "the plugin opens the management context when the session starts"
    return api
