"""The suite's options as one validated, frozen object.

``SuiteConfig.from_options`` takes the raw option values (command line, falling back to the
ini file and the environment) and either returns a config or raises ``ConfigError`` with a
one-line message naming the option; the plugin turns that into a pytest usage error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from conformance._errors import ConformanceError, ProfileError
from conformance._profile import Profile, list_profiles, load_profile
from conformance._signing import InvalidSecret, signature_items

__all__ = [
    "IMPLEMENTED_ROLES",
    "PROFILE",
    "REPORT",
    "ROLE",
    "ROLES",
    "SECRET",
    "SECRET_ENV",
    "STRICT",
    "TARGET_URL",
    "TIMEOUT",
    "ConfigError",
    "Role",
    "SuiteConfig",
]

#: Command-line option names; the plugin registers them, messages quote them.
TARGET_URL = "--target-url"
PROFILE = "--profile"
ROLE = "--role"
SECRET = "--secret"
#: pytest 9 owns ``--strict`` (its own strict mode); the plugin honours it and adds this one.
STRICT = "--conformance-strict"
TIMEOUT = "--timeout"
REPORT = "--conformance-report"
SECRET_ENV = "WEBHOOK_SECRET"
#: The longest per-attempt timeout accepted (a larger one overflows socket timeouts).
MAX_TIMEOUT = 3600.0

Role = Literal["receiver", "sender", "management"]
ROLES: tuple[Role, ...] = ("receiver", "sender", "management")
IMPLEMENTED_ROLES: tuple[Role, ...] = ("receiver",)


class ConfigError(ConformanceError):
    """An option is missing or invalid; the message is one line naming the option."""


@dataclass(frozen=True, kw_only=True)
class SuiteConfig:
    """Everything one conformance run needs to know about its target."""

    target_url: str
    profile: Profile
    role: Role
    secret: str = field(repr=False)
    strict: bool = False
    timeout: float
    report_path: Path | None = None

    @classmethod
    def from_options(
        cls,
        *,
        target_url: str,
        profile: str | None,
        role: str | None,
        secret: str | None,
        strict: bool = False,
        timeout: str | float | None = None,
        report: str | Path | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> SuiteConfig:
        """Validate raw option values; raise ``ConfigError`` on the first problem."""
        url = _url(target_url)
        loaded = _profile(profile)
        chosen = _role(role)
        key = secret if secret else env.get(SECRET_ENV, "")
        if not key:
            raise ConfigError(f"{SECRET} (or ${SECRET_ENV}) is required with {TARGET_URL}")
        try:
            signature_items(loaded, key, b"")
        except InvalidSecret as exc:
            raise ConfigError(f"{SECRET} does not fit profile {loaded.name}: {exc}") from None
        return cls(
            target_url=url,
            profile=loaded,
            role=chosen,
            secret=key,
            strict=strict,
            timeout=_timeout(timeout, loaded),
            report_path=_report_path(report),
        )

    def describe(self) -> list[str]:
        """The lines pytest's report header shows."""
        strict = "yes (SHOULD violations fail)"
        if not self.strict:
            strict = "no (SHOULD violations pass as not-strict)"
        return [
            f"webhook-conformance target: {self.target_url}",
            f"webhook-conformance profile: {self.profile.name} ({self.profile.title}), "
            f"role: {self.role}, strict: {strict}, timeout: {self.timeout:g} s",
        ]


def _report_path(report: str | Path | None) -> Path | None:
    """Checked before the run, so a bad path does not fail after every check has run."""
    if not report:
        return None
    path = Path(report)
    if path.is_dir():
        raise ConfigError(f"{REPORT} {str(path)!r} is a directory; name a file")
    return path


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _url(text: str) -> str:
    try:
        parts = urlsplit(text.strip())
    except ValueError as exc:  # for example an unclosed "[" of an IPv6 address
        raise ConfigError(f"{TARGET_URL} {text!r} is not a valid URL: {exc}") from None
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ConfigError(f"{TARGET_URL} {text!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{TARGET_URL} {text!r} is not an http:// or https:// URL")
    return text.strip()


def _profile(name: str | None) -> Profile:
    if not name:
        known = ", ".join(list_profiles())
        raise ConfigError(
            f"{PROFILE} is required with {TARGET_URL} (known: {known}; or a path to a .yaml file)"
        )
    try:
        return load_profile(name)
    except ProfileError as exc:
        raise ConfigError(f"{PROFILE}: {_one_line(str(exc))}") from None


def _role(name: str | None) -> Role:
    chosen = name or "receiver"
    if chosen not in ROLES:
        raise ConfigError(f"{ROLE} {chosen!r} is not one of {', '.join(ROLES)}")
    if chosen not in IMPLEMENTED_ROLES:
        raise ConfigError(
            f"{ROLE} {chosen}: the {chosen} suite is not implemented yet "
            f"(implemented: {', '.join(IMPLEMENTED_ROLES)})"
        )
    return chosen


def _timeout(value: str | float | None, profile: Profile) -> float:
    if value is None or value == "":
        return profile.delivery.timeout_seconds
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{TIMEOUT} {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT:
        raise ConfigError(
            f"{TIMEOUT} must be a positive number of seconds up to {MAX_TIMEOUT:g}, not {value!r}"
        )
    return seconds
