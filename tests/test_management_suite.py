"""The management-role suite: its options, its evidence, and the suite run as a user runs
it against the reference management API (``webhook-conformance serve sender --api-key``)
for every profile that has one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import list_profiles, load_profile
from conformance._engine.config import ConfigError, SuiteConfig
from conformance._engine.registry import cases_for
from conformance._http import Delivery, Exchange
from conformance.checks.management import CHECKS, REDACTED, ApiExchange

MANAGED = ("zaits", "zta", "ztrace")
#: The sites each tenant owns, for the site-scoped API (ZTA).
SITES = {"K1": "site_a", "K2": "site_b"}
_CALLER_ENV = ("HYPOTHESIS_STORAGE_DIRECTORY", "PYTEST_ADDOPTS")


# -- options ------------------------------------------------------------------------------


def _config(**options: Any) -> SuiteConfig:
    given: dict[str, Any] = {
        "target_url": "http://127.0.0.1:9",
        "profile": "zaits",
        "role": "management",
        "env": {},
    }
    given.update(options)
    return SuiteConfig.from_options(**given)


def test_the_target_may_be_the_root_or_the_base_path() -> None:
    """The API base is the server root joined with the profile's base path, whether the
    target names the root or already ends with the base path."""
    assert _config(api_key="k").management.api_base == "http://127.0.0.1:9/v1/webhooks"
    at_base = _config(target_url="http://127.0.0.1:9/v1/webhooks/", api_key="k")
    assert at_base.management.api_base == "http://127.0.0.1:9/v1/webhooks"


def test_the_api_key_falls_back_to_the_environment_and_is_not_shown() -> None:
    """$WEBHOOK_API_KEY supplies the key when --api-key is absent; repr never shows it."""
    config = _config(env={"WEBHOOK_API_KEY": "from-env"})
    assert config.management.api_key == "from-env"
    assert "from-env" not in repr(config)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "--api-key (or $WEBHOOK_API_KEY) is required with --role management"),
        (
            {"api_key": "k", "profile": "zupertry"},
            "--role management: profile zupertry documents no management API "
            "(profiles with one: zaits, zta, ztrace)",
        ),
        (
            {"api_key": "k", "other_api_key": "k"},
            "--other-api-key must be another tenant's key, not --api-key again",
        ),
        (
            {"api_key": "k", "profile": "zta"},
            "--site-id is required with --role management for profile zta: its API scopes "
            "webhooks by site (siteId)",
        ),
        ({"api_key": "k", "secret": "s"}, "--secret applies to --role receiver"),
        ({"api_key": "k", "time_scale": "0.1"}, "--time-scale applies to --role sender"),
        (
            {"api_key": "k", "role": "receiver", "secret": "s"},
            "--api-key applies to --role management, not receiver",
        ),
        (
            {"site_id": "site_a", "role": "sender"},
            "--site-id applies to --role management, not sender",
        ),
    ],
)
def test_management_options_are_validated(options: dict[str, Any], message: str) -> None:
    """A missing key, a profile without a management API and an option of another role are
    one-line usage errors that name the option."""
    with pytest.raises(ConfigError) as caught:
        _config(**options)
    assert str(caught.value).startswith(message)


def test_an_api_exchange_redacts_the_key() -> None:
    """The evidence shows and replays the request with the bearer key redacted, and says
    which option supplies it."""
    request = Delivery.of(
        "http://127.0.0.1:9/v1/webhooks/endpoints",
        {"Authorization": "Bearer sekrit", "Content-Type": "application/json"},
        b"{}",
    )
    exchange = ApiExchange(
        exchange=Exchange(request=request, status=500, reason="Internal Server Error"),
        key_option="--api-key",
    )
    text = "\n".join(exchange.exhibit().render())
    assert "sekrit" not in text
    assert f"Authorization: Bearer {REDACTED}" in text
    assert f"(put the value of --api-key in place of {REDACTED})" in text


# -- the suite against the reference ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _reference(profile: str, workdir: Path) -> Iterator[str]:
    """The reference sender with its management API, two tenants, on a free port."""
    port = _free_port()
    command = [
        sys.executable, "-m", "conformance._cli", "serve", "sender", "--profile", profile,
        "--port", str(port), "--db", str(workdir / f"{profile}.sqlite3"),
        "--allow-private-targets", "--api-key", "K1", "--api-key", "K2",
    ]  # fmt: skip
    if profile == "zta":  # the site-scoped API: a data fact of this test, not of the suite
        command += [f"--site={key}={site}" for key, site in SITES.items()]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/", timeout=0.5)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(error) from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _run_suite(base: str, profile: str, workdir: Path, *extra: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in _CALLER_ENV}
    env.pop("PYTEST_XDIST_WORKER", None)
    report = workdir / f"{profile}-report.json"
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
        f"--target-url={base}", f"--profile={profile}", "--role=management",
        "--api-key=K1", f"--conformance-report={report}", *extra,
    ]  # fmt: skip
    if profile == "zta":
        command.append(f"--site-id={SITES['K1']}")
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    result["output"] = done.stdout + done.stderr
    result["returncode"] = done.returncode
    return result


@pytest.mark.slow
@pytest.mark.parametrize("profile", MANAGED)
def test_the_reference_passes_the_management_suite(profile: str, tmp_path: Path) -> None:
    """With two tenants, the reference management API passes every management check of
    the profile: nothing failed, nothing not-strict."""
    extra = ["--other-api-key=K2"]
    if profile == "zta":
        extra.append(f"--other-site-id={SITES['K2']}")
    with _reference(profile, tmp_path) as base:
        report = _run_suite(base, profile, tmp_path, *extra)
    summary = report["summary"]
    assert summary["failed"] == 0, report["output"]
    assert summary["not-strict"] == 0, report["output"]
    assert summary["passed"] > 0
    assert report["returncode"] == 0, report["output"]
    assert report["diagnosis"] is None


@pytest.mark.slow
def test_without_a_second_tenant_the_run_says_why_once(tmp_path: Path) -> None:
    """Without --other-api-key the cross-tenant checks are skipped, and the diagnosis says
    why once, up front (the terminal summary repeats it, as for every role)."""
    with _reference("zaits", tmp_path) as base:
        report = _run_suite(base, "zaits", tmp_path)
    assert report["returncode"] == 0, report["output"]
    assert report["diagnosis"]["headline"] == (
        "the cross-tenant checks are skipped: no second tenant"
    )
    before, _, _ = report["output"].partition("webhook conformance: zaits management")
    assert before.count("DIAGNOSIS: the cross-tenant checks are skipped") == 1
    isolation = next(
        r for r in report["requirements"] if r["id"] == "zaits.management.tenant-isolation"
    )
    assert isolation["outcome"] == "skipped"


# -- the registry -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", MANAGED)
def test_every_management_requirement_has_a_check(profile: str) -> None:
    """Each management requirement of a profile verified by a check has one, and its cases
    carry the requirement id."""
    loaded = load_profile(profile)
    missing = [
        r.id
        for r in loaded.requirements
        if r.role == "management" and r.verification == "check" and r.key not in CHECKS
    ]
    assert missing == []
    assert all(c.id.startswith(c.requirement.id) for c in cases_for(CHECKS, loaded))


def test_every_management_check_has_a_requirement() -> None:
    """Each management check's keys are requirement keys of some profile."""
    keys = {r.key for name in list_profiles() for r in load_profile(name).requirements}
    registered = {key for check in CHECKS for key in check.keys}
    assert sorted(registered - keys) == []
