"""The suite's options as one validated, frozen object, with each role's own options.

``SuiteConfig.from_options`` takes the raw option values (command line, falling back to the
ini file and the environment) and either returns a config or raises ``ConfigError`` with a
one-line message naming the option; the plugin turns that into a pytest usage error. An
option that belongs to another role than the one chosen is an error too, so a run never
silently ignores what it was told.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from conformance._errors import ConformanceError, ProfileError
from conformance._profile import Profile, list_profiles, load_profile
from conformance._roles import IMPLEMENTED_ROLES, ROLES, Role
from conformance._signing import InvalidSecret, signature_items

__all__ = [
    "API_KEY",
    "API_KEY_ENV",
    "CAPTURE_HOST",
    "HTML",
    "OTHER_API_KEY",
    "OTHER_SITE_ID",
    "PROFILE",
    "PUBLIC_URL",
    "REPORT",
    "ROLE",
    "SECRET",
    "SECRET_ENV",
    "SITE_ID",
    "STRICT",
    "TARGET_URL",
    "TIMEOUT",
    "TIME_SCALE",
    "ConfigError",
    "ManagementOptions",
    "ReceiverOptions",
    "SenderOptions",
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
HTML = "--conformance-html"
TIME_SCALE = "--time-scale"
CAPTURE_HOST = "--capture-host"
PUBLIC_URL = "--public-url"
SECRET_ENV = "WEBHOOK_SECRET"
API_KEY = "--api-key"
OTHER_API_KEY = "--other-api-key"
SITE_ID = "--site-id"
OTHER_SITE_ID = "--other-site-id"
API_KEY_ENV = "WEBHOOK_API_KEY"
#: The longest per-attempt timeout accepted (a larger one overflows socket timeouts).
MAX_TIMEOUT = 3600.0

#: The sender suite's default aims at this many seconds for its longest retry scenario.
SCHEDULE_BUDGET = 4.0


class ConfigError(ConformanceError):
    """An option is missing or invalid; the message is one line naming the option."""


@dataclass(frozen=True, kw_only=True)
class ReceiverOptions:
    """What the receiver suite needs: the secret the receiver verifies with, and how long
    to wait for each answer."""

    secret: str = field(repr=False)
    timeout: float


@dataclass(frozen=True, kw_only=True)
class SenderOptions:
    """What the sender suite needs: the factor its triggers ask the sender to scale retry
    delays by, where its capture server listens, and the URL the sender reaches it at."""

    time_scale: float
    capture_host: str = "127.0.0.1"
    public_url: str | None = None
    #: How long to wait for the trigger's own answer.
    timeout: float


@dataclass(frozen=True, kw_only=True)
class ManagementOptions:
    """What the management suite needs: the API's base URL (the server root joined with the
    profile's ``base_path``), a tenant's API key and, for the cross-tenant checks, a second
    tenant's; the sites each owns (site-scoped APIs), and how long to wait for an answer."""

    api_base: str
    api_key: str = field(repr=False)
    other_api_key: str | None = field(default=None, repr=False)
    site_id: str | None = None
    other_site_id: str | None = None
    capture_host: str = "127.0.0.1"
    public_url: str | None = None
    timeout: float


@dataclass(frozen=True, kw_only=True)
class SuiteConfig:
    """Everything one conformance run needs to know about its target."""

    target_url: str
    profile: Profile
    role: Role
    strict: bool = False
    report_path: Path | None = None
    html_path: Path | None = None
    options: ReceiverOptions | SenderOptions | ManagementOptions

    @property
    def receiver(self) -> ReceiverOptions:
        assert isinstance(self.options, ReceiverOptions), f"a {self.role} run"
        return self.options

    @property
    def sender(self) -> SenderOptions:
        assert isinstance(self.options, SenderOptions), f"a {self.role} run"
        return self.options

    @property
    def management(self) -> ManagementOptions:
        assert isinstance(self.options, ManagementOptions), f"a {self.role} run"
        return self.options

    @property
    def timeout(self) -> float:
        return self.options.timeout

    @classmethod
    def from_options(
        cls,
        *,
        target_url: str,
        profile: str | None,
        role: str | None,
        secret: str | None = None,
        strict: bool = False,
        timeout: str | float | None = None,
        report: str | Path | None = None,
        html: str | Path | None = None,
        time_scale: str | float | None = None,
        capture_host: str | None = None,
        public_url: str | None = None,
        api_key: str | None = None,
        other_api_key: str | None = None,
        site_id: str | None = None,
        other_site_id: str | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> SuiteConfig:
        """Validate raw option values; raise ``ConfigError`` on the first problem."""
        url = _url(target_url, TARGET_URL)
        loaded = _profile(profile)
        chosen = _role(role)
        given = {TIME_SCALE: time_scale, CAPTURE_HOST: capture_host, PUBLIC_URL: public_url}
        managing = {
            API_KEY: api_key,
            OTHER_API_KEY: other_api_key,
            SITE_ID: site_id,
            OTHER_SITE_ID: other_site_id,
        }
        if chosen != "management":
            for name, given_value in managing.items():
                if given_value not in (None, ""):
                    raise ConfigError(f"{name} applies to {ROLE} management, not {chosen}")
        options: ReceiverOptions | SenderOptions | ManagementOptions
        if chosen == "receiver":
            for name, value in given.items():
                if value not in (None, ""):
                    raise ConfigError(f"{name} applies to {ROLE} sender, not {chosen}")
            options = _receiver_options(loaded, secret, env, timeout)
        elif chosen == "management":
            if secret:
                raise ConfigError(
                    f"{SECRET} applies to {ROLE} receiver: the management suite reads each "
                    "endpoint's secret from the API's answers"
                )
            if time_scale not in (None, ""):
                raise ConfigError(f"{TIME_SCALE} applies to {ROLE} sender, not {chosen}")
            options = _management_options(
                loaded,
                url,
                keys=(api_key, other_api_key),
                sites=(site_id, other_site_id),
                env=env,
                timeout=timeout,
                capture_host=capture_host,
                public_url=public_url,
            )
        else:
            if secret:
                raise ConfigError(
                    f"{SECRET} applies to {ROLE} receiver: the sender suite picks a fresh "
                    "secret for every scenario and sends it in the trigger"
                )
            options = SenderOptions(
                time_scale=_time_scale(time_scale, loaded),
                capture_host=(capture_host or "127.0.0.1").strip(),
                public_url=_url(public_url, PUBLIC_URL).rstrip("/") if public_url else None,
                timeout=_timeout(timeout, 10.0),
            )
        return cls(
            target_url=url,
            profile=loaded,
            role=chosen,
            strict=strict,
            report_path=_file_path(report, REPORT),
            html_path=_file_path(html, HTML),
            options=options,
        )

    def secrets(self) -> list[str]:
        """The credentials among the options, which report files must not show."""
        if isinstance(self.options, ReceiverOptions):
            return [self.options.secret]
        if isinstance(self.options, ManagementOptions):
            return [k for k in (self.options.api_key, self.options.other_api_key) if k]
        return []

    def describe(self) -> list[str]:
        """The lines pytest's report header shows."""
        strict = "yes (SHOULD violations fail)"
        if not self.strict:
            strict = "no (SHOULD violations pass as not-strict)"
        if isinstance(self.options, SenderOptions):
            where = self.options.public_url or f"{self.options.capture_host} (a free port)"
            extra = f"time scale: {self.options.time_scale:g}, capture: {where}"
        elif isinstance(self.options, ManagementOptions):
            tenants = "two tenants" if self.options.other_api_key else "one tenant"
            extra = f"API: {self.options.api_base}, {tenants}, timeout: {self.options.timeout:g} s"
        else:
            extra = f"timeout: {self.options.timeout:g} s"
        return [
            f"webhook-conformance target: {self.target_url}",
            f"webhook-conformance profile: {self.profile.name} ({self.profile.title}), "
            f"role: {self.role}, strict: {strict}, {extra}",
        ]


def _receiver_options(
    profile: Profile, secret: str | None, env: Mapping[str, str], timeout: str | float | None
) -> ReceiverOptions:
    key = secret if secret else env.get(SECRET_ENV, "")
    if not key:
        raise ConfigError(f"{SECRET} (or ${SECRET_ENV}) is required with {ROLE} receiver")
    try:
        signature_items(profile, key, b"")
    except InvalidSecret as exc:
        raise ConfigError(f"{SECRET} does not fit profile {profile.name}: {exc}") from None
    return ReceiverOptions(secret=key, timeout=_timeout(timeout, profile.delivery.timeout_seconds))


def _management_options(
    profile: Profile,
    url: str,
    *,
    keys: tuple[str | None, str | None],
    sites: tuple[str | None, str | None],
    env: Mapping[str, str],
    timeout: str | float | None,
    capture_host: str | None,
    public_url: str | None,
) -> ManagementOptions:
    management = profile.management
    if management is None:
        having = ", ".join(
            name for name in list_profiles() if load_profile(name).management is not None
        )
        raise ConfigError(
            f"{ROLE} management: profile {profile.name} documents no management API "
            f"(profiles with one: {having})"
        )
    key = (keys[0] or "").strip() or env.get(API_KEY_ENV, "").strip()
    if not key:
        raise ConfigError(f"{API_KEY} (or ${API_KEY_ENV}) is required with {ROLE} management")
    other = (keys[1] or "").strip() or None
    if other is not None and other == key:
        raise ConfigError(f"{OTHER_API_KEY} must be another tenant's key, not {API_KEY} again")
    site, other_site = ((s or "").strip() or None for s in sites)
    if other_site is not None and other_site == site:
        raise ConfigError(f"{OTHER_SITE_ID} must be another tenant's site, not {SITE_ID} again")
    if site is None and management.fields.get("site"):
        raise ConfigError(
            f"{SITE_ID} is required with {ROLE} management for profile {profile.name}: its "
            f"API scopes webhooks by site ({management.fields['site']})"
        )
    root = url.rstrip("/")
    base = management.base_path.rstrip("/")
    api_base = root if root.endswith(base) else root + base
    return ManagementOptions(
        api_base=api_base,
        api_key=key,
        other_api_key=other,
        site_id=site,
        other_site_id=other_site,
        capture_host=(capture_host or "127.0.0.1").strip(),
        public_url=_url(public_url, PUBLIC_URL).rstrip("/") if public_url else None,
        timeout=_timeout(timeout, 10.0),
    )


def default_time_scale(profile: Profile) -> float:
    """The scale that fits the profile's whole retry schedule into ``SCHEDULE_BUDGET``
    seconds (never slower than real time)."""
    policy = profile.delivery
    steps = policy.schedule_seconds
    total = max(steps, default=0.0) if policy.schedule_from == "first-attempt" else sum(steps)
    return 1.0 if total <= SCHEDULE_BUDGET else SCHEDULE_BUDGET / total


def _time_scale(value: str | float | None, profile: Profile) -> float:
    if value is None or value == "":
        return default_time_scale(profile)
    try:
        scale = float(value)
    except ValueError:
        raise ConfigError(f"{TIME_SCALE} {value!r} is not a number") from None
    if not math.isfinite(scale) or not 0 < scale <= 1:
        raise ConfigError(f"{TIME_SCALE} must be a number above 0 and at most 1, not {value!r}")
    return scale


def _file_path(value: str | Path | None, option: str) -> Path | None:
    """A report's path, checked before the run, so a bad path does not fail after every
    check has run."""
    if not value:
        return None
    path = Path(value)
    if path.is_dir():
        raise ConfigError(f"{option} {str(path)!r} is a directory; name a file")
    return path


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _url(text: str, option: str) -> str:
    try:
        parts = urlsplit(text.strip())
    except ValueError as exc:  # for example an unclosed "[" of an IPv6 address
        raise ConfigError(f"{option} {text!r} is not a valid URL: {exc}") from None
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ConfigError(f"{option} {text!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{option} {text!r} is not an http:// or https:// URL")
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


def _timeout(value: str | float | None, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{TIMEOUT} {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT:
        raise ConfigError(
            f"{TIMEOUT} must be a positive number of seconds up to {MAX_TIMEOUT:g}, not {value!r}"
        )
    return seconds
