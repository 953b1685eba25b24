"""``webhook-conformance demo``: the reference receiver judged by the conformance suite.

For each profile (default: every bundled one) the reference receiver starts on loopback
with a random secret and a throwaway SQLite file, the receiver-role suite runs against it
in-process through the pytest plugin, and the per-profile reports are combined into one
JSON file. The exit code is 0 when every MUST requirement passes.

The combined report is the only file the demo leaves: each profile's report is taken from
its pytest run in memory rather than written to the throwaway directory, whose path would
be printed and then vanish.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from conformance import Profile, list_profiles, load_profile
from conformance._cli import UsageError
from conformance._signing import generate_secret
from reference._serving import serve_in_thread
from reference.receiver import create_app

__all__ = ["DEFAULT_REPORT", "register_demo", "run_demo"]

DEFAULT_REPORT = "conformance-report.json"
_OUTCOMES = ("passed", "failed", "not-strict", "skipped")


def register_demo(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``demo`` to the CLI's subcommands."""
    parser = subparsers.add_parser(
        "demo",
        help="run the conformance suite against the reference receiver",
        description=" ".join((__doc__ or "").split("\n\n")[1].split()),
    )
    parser.add_argument(
        "-p",
        "--profile",
        action="append",
        metavar="PROFILE",
        help="a profile name or .yaml path; repeatable (default: every bundled profile)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path(DEFAULT_REPORT),
        metavar="FILE",
        help="the combined JSON report (default: %(default)s)",
    )
    parser.add_argument("--fast", action="store_true", help="skip slow checks (-m 'not slow')")
    parser.set_defaults(func=run_demo, hint=f"try '{parser.prog} --help'")


def _secret(profile: Profile) -> str:
    """A random secret in the form the profile's key derivation takes."""
    return generate_secret(profile.signature)


class _KeepReport:
    """A pytest plugin that keeps the graded report of the run it is passed to."""

    def __init__(self) -> None:
        self.report: dict[str, Any] | None = None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Imported here, not at the top, to keep the plugin (and httpx) out of every other
        # CLI command's start-up.
        from conformance.plugin import report_of

        report = report_of(session.config)
        if report is not None:
            self.report = report.as_dict()


def _run_suite(
    name: str, profile: Profile, workdir: Path, *, fast: bool
) -> tuple[int, dict[str, Any] | None]:
    """Serve the reference for ``profile`` and run the suite against it: pytest's exit code
    and the report, or None if the run stopped before its end."""
    secret = _secret(profile)
    app = create_app(profile, secret, db_path=workdir / f"{profile.name}.sqlite3")
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")  # ignore the caller's pytest settings
    with serve_in_thread(app) as base:
        argv = [
            "-c",
            str(ini),
            "--rootdir",
            str(workdir),
            "-qq",
            "--no-header",
            "-p",
            "no:cacheprovider",
            # The demo process imported anyio (through the server) before pytest started, so
            # pytest cannot rewrite asserts in anyio's plugin; that is harmless here.
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
            "--target-url",
            f"{base}/webhook",
            "--profile",
            name,
            "--role",
            "receiver",
            "--secret",
            secret,
        ]
        if fast:
            argv += ["-m", "not slow"]
        if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
            argv += ["-p", "conformance.plugin"]
        keep = _KeepReport()
        code = int(pytest.main(argv, plugins=[keep]))
        return code, keep.report


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo for the chosen profiles and write the combined report."""
    names: list[str] = list(dict.fromkeys(args.profile or list_profiles()))  # each once
    profiles = [(name, load_profile(name)) for name in names]  # a bad name fails before any run
    if args.report.is_dir():
        raise UsageError(f"--report {str(args.report)!r} is a directory; name a file")
    reports: list[dict[str, Any]] = []
    broken: list[str] = []
    with tempfile.TemporaryDirectory(prefix="webhook-conformance-demo-") as tmp:
        for name, profile in profiles:
            workdir = Path(tmp) / profile.name
            workdir.mkdir()
            code, report = _run_suite(name, profile, workdir, fast=args.fast)
            if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or report is None:
                broken.append(f"{profile.name} (pytest exit code {code})")
                continue
            reports.append(report)
    summary = {o: sum(r["summary"][o] for r in reports) for o in _OUTCOMES}
    conformant = not broken and summary["failed"] == 0
    combined = {"conformant": conformant, "summary": summary, "profiles": reports}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(combined, indent=2, ensure_ascii=False) + "\n", "utf-8")
    _print_summary(reports, broken, args.report, conformant)
    return 0 if conformant else 1


def _print_summary(
    reports: list[dict[str, Any]], broken: list[str], path: Path, conformant: bool
) -> None:
    # pytest has printed each profile's per-requirement results; this is the roll-up.
    print("\nwebhook-conformance demo: the reference receiver, per profile")
    width = max((len(r["profile"]) for r in reports), default=0)
    for report in reports:
        counts = ", ".join(f"{report['summary'][o]} {o}" for o in _OUTCOMES)
        print(f"  {report['profile']:<{width}}  {counts}")
    for line in broken:
        print(f"  {line}: the suite did not run to the end", file=sys.stderr)
    verdict = "every MUST requirement passes" if conformant else "some MUST requirement fails"
    print(f"report written to {path}; {verdict}")
