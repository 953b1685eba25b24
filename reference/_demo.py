"""``webhook-conformance demo``: the reference receiver, sender and management API judged
by the suite.

For each profile (default: every bundled one) the reference receiver and the reference
sender start on loopback, each with a throwaway SQLite file (the receiver with a random
secret, the sender with two tenants' API keys where the profile has a management API), and
the receiver-, sender- and management-role suites run against them through the pytest
plugin, several at once; the per-run reports are combined into one JSON file and one HTML
page, a matrix of profiles x requirement keys whose cells link to each run's own HTML
page. The exit code is 0 when every MUST requirement passes.

Each suite runs in a pytest process of its own, so that runs can overlap (the sender
suite mostly waits on retry schedules) and the caller's pytest state is never touched. The
demo leaves the combined JSON report, the matrix page and, in a directory named after the
matrix page, each run's page; each run's JSON report goes to the throwaway directory and is
read back from there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance import Profile, __version__, list_profiles, load_profile
from conformance._cli import UsageError
from conformance._engine.html import render_matrix
from conformance._roles import Role
from conformance._serving import serve_in_thread
from conformance._signing import generate_secret
from reference.receiver import create_app
from reference.sender import TRIGGER_PATH, create_sender_app

__all__ = ["DEFAULT_REPORT", "register_demo", "run_demo"]

DEFAULT_REPORT = "conformance-report.json"
_OUTCOMES = ("passed", "failed", "not-strict", "skipped")
_ROLES: tuple[Role, ...] = ("receiver", "sender", "management")
#: pytest's exit codes for a run that went to its end (all passed / some failed).
_FINISHED = (0, 1)


def register_demo(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``demo`` to the CLI's subcommands."""
    parser = subparsers.add_parser(
        "demo",
        help="run the conformance suite against the reference receiver and sender",
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
        "--role",
        action="append",
        choices=_ROLES,
        help="only this role; repeatable (default: all three; management only for the "
        "profiles that document a management API)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path(DEFAULT_REPORT),
        metavar="FILE",
        help="the combined JSON report (default: %(default)s)",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="the matrix page; each run's page goes in a directory beside it, named after it "
        "(default: the report's path with .html: conformance-report.html and "
        "conformance-report/)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=4,
        metavar="N",
        help="suite runs at once (default: %(default)s)",
    )
    parser.add_argument("--fast", action="store_true", help="skip slow checks (-m 'not slow')")
    parser.set_defaults(func=run_demo, hint=f"try '{parser.prog} --help'")


@dataclass(frozen=True, kw_only=True)
class _Run:
    name: str
    profile: Profile
    role: Role
    workdir: Path


@dataclass(frozen=True, kw_only=True)
class _Result:
    run: _Run
    code: int
    output: str
    report: dict[str, Any] | None
    seconds: float


@contextlib.contextmanager
def _serving(run: _Run) -> Iterator[tuple[str, list[str]]]:
    """Serve the reference for the run's profile and role: the target URL and the options
    that go with it."""
    db = run.workdir / f"{run.role}.sqlite3"
    if run.role == "receiver":
        secret = generate_secret(run.profile.signature)
        with serve_in_thread(create_app(run.profile, secret, db_path=db)) as base:
            yield f"{base}/webhook", ["--secret", secret]
    elif run.role == "sender":
        app = create_sender_app(run.profile, db_path=db, allow_private_targets=True)
        with serve_in_thread(app) as base:
            yield f"{base}{TRIGGER_PATH}", []
    else:
        keys = [f"sk_demo_{secrets.token_hex(8)}" for _ in range(2)]
        extra = ["--api-key", keys[0], "--other-api-key", keys[1]]
        sites: dict[str, list[str]] = {}
        assert run.profile.management is not None
        if run.profile.management.fields.get("site"):
            owned = [f"site_demo{n}" for n in (1, 2)]
            sites = {key: [site] for key, site in zip(keys, owned, strict=True)}
            extra += ["--site-id", owned[0], "--other-site-id", owned[1]]
        app = create_sender_app(
            run.profile, db_path=db, allow_private_targets=True, api_keys=keys, sites=sites
        )
        with serve_in_thread(app) as base:
            yield base, extra


def _page(run: _Run) -> str:
    """The run's page, relative to the matrix page's directory."""
    return f"{run.profile.name}-{run.role}.html"


def _play(run: _Run, *, fast: bool, pages: Path) -> _Result:
    """Serve the reference and run one suite against it, in a pytest process of its own."""
    ini = run.workdir / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")  # ignore the caller's pytest settings
    report = run.workdir / f"{run.role}-report.json"
    started = time.monotonic()
    with _serving(run) as (url, extra):
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ini),
            "--rootdir",
            str(run.workdir),
            "-qq",
            "--no-header",
            "-p",
            "no:cacheprovider",
            "--target-url",
            url,
            "--profile",
            run.name,
            "--role",
            run.role,
            *extra,
            "--conformance-report",
            str(report),
            "--conformance-html",
            str(pages / _page(run)),
        ]
        if fast:
            argv += ["-m", "not slow"]
        if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
            argv += ["-p", "conformance.plugin"]
        done = subprocess.run(argv, cwd=run.workdir, capture_output=True, text=True, check=False)
    # The run's report lives in the throwaway directory: do not print its path.
    output = "\n".join(
        line
        for line in (done.stdout + done.stderr).splitlines()
        if not line.startswith(("report written to ", "HTML report written to "))
    )
    data = json.loads(report.read_text("utf-8")) if report.is_file() else None
    return _Result(
        run=run,
        code=done.returncode,
        output=output,
        report=data,
        seconds=time.monotonic() - started,
    )


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo for the chosen profiles and roles and write the combined report."""
    names: list[str] = list(dict.fromkeys(args.profile or list_profiles()))  # each once
    profiles = [(name, load_profile(name)) for name in names]  # a bad name fails before any run
    roles: list[Role] = list(dict.fromkeys(args.role or _ROLES))
    html: Path = args.html or args.report.with_suffix(".html")
    for option, path in (("--report", args.report), ("--html", html)):
        if path.is_dir():
            raise UsageError(f"{option} {str(path)!r} is a directory; name a file")
    shown = html.with_suffix("")  # the runs' pages, as the summary names them
    if shown.exists() and not shown.is_dir():
        raise UsageError(f"{str(shown)!r} is a file; the runs' pages go in a directory there")
    pages = shown.absolute()  # each run's pytest works in a directory of its own
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="webhook-conformance-demo-") as tmp:
        runs = []
        for name, profile in profiles:
            for role in roles:
                if role == "management" and profile.management is None:
                    continue
                workdir = Path(tmp) / profile.name / role
                workdir.mkdir(parents=True)
                runs.append(_Run(name=name, profile=profile, role=role, workdir=workdir))
        # Sender runs first: they take longest, and mostly wait.
        runs.sort(key=lambda r: r.role != "sender")
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda r: _play(r, fast=args.fast, pages=pages), runs))
    results.sort(key=lambda r: (names.index(r.run.name), roles.index(r.run.role)))
    reports: list[dict[str, Any]] = []
    broken: list[str] = []
    for result in results:
        print(f"\n== {result.run.profile.name} {result.run.role} ({result.seconds:.1f} s)")
        print(result.output)
        if result.code not in _FINISHED or result.report is None:
            broken.append(f"{result.run.profile.name} {result.run.role} (exit code {result.code})")
            continue
        reports.append(result.report)
    summary = {o: sum(r["summary"][o] for r in reports) for o in _OUTCOMES}
    conformant = not broken and summary["failed"] == 0
    combined = {"conformant": conformant, "summary": summary, "profiles": reports}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(combined, indent=2, ensure_ascii=False) + "\n", "utf-8")
    took = time.monotonic() - started
    rendering = time.monotonic()
    linked: dict[tuple[str, str], str] = {
        (r.run.profile.name, r.run.role): f"{pages.name}/{_page(r.run)}"
        for r in results
        if (pages / _page(r.run)).is_file()
    }
    page = render_matrix(
        {**combined, "date": _now(), "version": __version__},
        roles=_ROLES,
        pages=linked,
        took=took,
    )
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(page, encoding="utf-8")
    rendered = time.monotonic() - rendering
    _print_summary(reports, broken, took)
    size = len(page.encode("utf-8"))
    print(
        f"HTML report written to {html} ({size / 1024:.0f} KiB, rendered in "
        f"{rendered * 1000:.0f} ms), with each run's page in {shown}/"
    )
    verdict = "every MUST requirement passes" if conformant else "some MUST requirement fails"
    print(f"report written to {args.report}; {verdict}")
    return 0 if conformant else 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _print_summary(reports: list[dict[str, Any]], broken: list[str], took: float) -> None:
    # pytest has printed each run's per-requirement results; this is the roll-up.
    print(f"\nwebhook-conformance demo: the reference implementations, in {took:.0f} s")
    width = max((len(f"{r['profile']} {r['role']}") for r in reports), default=0)
    for report in reports:
        counts = ", ".join(f"{report['summary'][o]} {o}" for o in _OUTCOMES)
        print(f"  {report['profile'] + ' ' + report['role']:<{width}}  {counts}")
    for line in broken:
        print(f"  {line}: the suite did not run to the end", file=sys.stderr)
