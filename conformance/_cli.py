"""The ``webhook-conformance`` command line.

Commands return an exit code instead of exiting: 0 success, 1 a negative result (a
signature or payload that does not conform), 2 a usage error, 130 interrupted. A usage
error is one line and a hint on stderr, never a traceback.

Other packages add commands through the ``webhook_conformance.commands`` entry-point group:
each entry point is ``register(subparsers) -> None`` and sets ``func(args) -> int`` on its
subparser. That is how the reference adds ``serve`` and ``demo`` without this package
importing it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import traceback
from argparse import ArgumentParser, Namespace
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance import (
    ConformanceError,
    InvalidSecret,
    Profile,
    ProfileError,
    UnknownEventType,
    VerificationError,
    __version__,
    delivery_headers,
    iter_payload_errors,
    list_profiles,
    load_profile,
    verify,
)
from conformance._roles import ROLES
from conformance._signing import Secret

__all__ = ["COMMANDS_GROUP", "DEBUG_ENV", "SECRET_ENV", "UsageError", "build_parser", "main"]

PROG = "webhook-conformance"
COMMANDS_GROUP = "webhook_conformance.commands"
SECRET_ENV = "WEBHOOK_SECRET"
DEBUG_ENV = "WEBHOOK_CONFORMANCE_DEBUG"
STDIN = "-"

Subparsers = argparse._SubParsersAction  # what a command's ``register`` receives
_FORMAT = "text for people (default), json for CI"
Problem = tuple[str | None, str]  # (JSON path, or None for the file itself; message)


class UsageError(Exception):
    """A mistake in the command line, reported as one line plus a hint, with exit code 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Parser(ArgumentParser):
    """An ArgumentParser that raises its errors, so ``main`` reports them in one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, f"try '{self.prog} --help'")


def _note(message: str) -> None:
    print(f"{PROG}: note: {message}", file=sys.stderr)


def _read(file: str) -> bytes:
    """The raw bytes of a file, or of stdin for ``-``; never decoded or re-serialized."""
    return sys.stdin.buffer.read() if file == STDIN else Path(file).read_bytes()


def _read_body(file: str) -> bytes:
    try:
        return _read(file)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc


def _secrets(args: Namespace, key_option: str, profile: Profile) -> list[Secret]:
    """The secrets and keys to sign or verify with: every --secret (or, with neither
    --secret nor a key file, $WEBHOOK_SECRET), then every key file. Several mean key
    rotation."""
    given: list[str] = list(args.secret or ())
    if any(not s for s in given):
        raise UsageError("--secret is empty")
    found: list[Secret] = list(given)
    if not found and not args.keys and os.environ.get(SECRET_ENV):
        found.append(os.environ[SECRET_ENV])
    found += [_key_file(path, key_option, profile) for path in args.keys]
    if not found:
        raise UsageError(f"no secret: pass --secret, {key_option} or set {SECRET_ENV}")
    return found


def _key_file(path: str, option: str, profile: Profile) -> Secret:
    """An Ed25519 key from a file: text under the profile's Ed25519 prefixes (``whsk_``,
    ``whpk_``), or PEM. Nothing else: a key file is never taken as a shared secret."""
    schemes = [s for s in profile.signature.schemes if s.asymmetric]
    if not schemes:
        raise UsageError(f"{option}: profile {profile.name} has no Ed25519 scheme")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" in data:
        try:
            if b"PRIVATE KEY" in data:
                key: object = serialization.load_pem_private_key(data, password=None)
            else:
                key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{option}: {path} is not a readable PEM key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
            raise UsageError(f"{option}: {path} holds a PEM key that is not Ed25519")
        return key
    text = data.decode("ascii", errors="replace").strip()
    key = schemes[0].key
    prefixes = (key.private_prefix or "", key.public_prefix or "")
    if not any(p and text.startswith(p) for p in prefixes):
        raise UsageError(
            f"{option}: {path} is neither key text ({prefixes[0]}…, {prefixes[1]}…) nor PEM"
        )
    return text


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _headers(text: str) -> list[tuple[str, str]]:
    """``Name: value``, or ``@FILE`` holding such lines as ``sign`` prints them (like curl)."""
    if not text.startswith("@"):
        return [_header(text)]
    try:
        lines = Path(text[1:]).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {reason}") from exc
    return [_header(line) for line in lines if line.strip()]


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def _json_path(pointer: str) -> str:
    """``/data/signer`` as ``$.data.signer``."""
    parts = (p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:])
    return "$" + "".join(f".{p}" for p in parts)


def _table(rows: Iterable[Sequence[str]]) -> list[str]:
    """One line per row, every column but the last padded to its widest cell."""
    rows = list(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)] if rows else []
    return ["  ".join([*map(str.ljust, row, widths), row[-1]]) for row in rows]


def _cmd_profiles(args: Namespace) -> int:
    """List the bundled profiles with their event counts and titles."""
    rows, code = [], 0
    for name in list_profiles():
        try:
            profile = load_profile(name)
        except ProfileError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            code = 1
            continue
        count = len(profile.events)
        rows.append((name, f"{count} event{'' if count == 1 else 's'}", profile.title))
    for line in _table(rows):
        print(line)
    return code


def _cmd_events(args: Namespace) -> int:
    """List a profile's event catalogue: name, category, description."""
    events = load_profile(args.profile).events
    for line in _table((e.name, e.category, e.description) for e in events):
        print(line)
    return 0


def _cmd_requirements(args: Namespace) -> int:
    """List a profile's requirements: id, level, role, text and source.

    Common requirements apply to every profile they fit; a profile adds its own.
    """
    profile = load_profile(args.profile)
    chosen = [r for r in profile.requirements if args.role in (None, r.role)]
    if args.format == "json":
        document = {"profile": profile.name, "requirements": [asdict(r) for r in chosen]}
        print(json.dumps(document, indent=2))
        return 0
    lines = _table((r.id, r.level, r.role, r.text) for r in chosen)
    for line, requirement in zip(lines, chosen, strict=True):
        print(line, f"    source: {requirement.source}", sep="\n")
    return 0


def _cmd_sign(args: Namespace) -> int:
    """Print every header to send with a body, one 'Name: value' per line.

    Signs FILE's exact bytes. The output feeds curl: -H @headers.txt.
    """
    profile, body = load_profile(args.profile), _read_body(args.file)
    secrets = _secrets(args, "--private-key", profile)
    if len(secrets) > 1 and not profile.signature.multiple:
        raise UsageError(
            f"profile {profile.name} carries one signature per delivery: give one secret"
        )
    if args.id is not None and not (
        profile.signature.id_header or profile.envelope.event_id_header
    ):
        _note(f"profile {profile.name} sends no id header; --id ignored")
    try:
        payload, is_json = json.loads(body), True
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        payload, is_json = None, False
    if args.timestamp is not None and profile.signature.timestamp is None:
        _note(f"profile {profile.name} signs no timestamp; --timestamp ignored")
    carried = profile.envelope.event_type_header
    if carried is not None and args.event is None:
        raise UsageError(
            f"profile {profile.name} carries the event type in {carried}: pass --event",
            f"try '{PROG} events {args.profile}'",
        )
    if args.event is not None and carried is None:
        _note(f"profile {profile.name} reads the event type from the body; --event ignored")
    headers = delivery_headers(
        profile,
        secrets,
        body,
        payload,
        event_type=args.event,
        event_id=args.id,
        msg_id=args.id,
        timestamp=args.timestamp,
    )
    for header in profile.headers:
        if header.equals is not None and header.name not in headers:
            why = f"has no {_json_path(header.equals)}" if is_json else "is not JSON"
            _note(f"the body {why}; skipped payload-derived header {header.name}")
    for name, value in headers.items():
        print(f"{name}: {value}")
    return 0


def _cmd_verify(args: Namespace) -> int:
    """Verify a delivery's signature over FILE's raw bytes.

    Prints 'valid' (exit 0) or 'invalid: <reason>' naming the header at fault (exit 1).
    """
    profile, body = load_profile(args.profile), _read_body(args.file)
    secrets = _secrets(args, "--public-key", profile)
    try:
        verify(profile, secrets, body, dict(args.header), now=args.now, tolerance=args.tolerance)
    except VerificationError as exc:
        print(f"invalid: {exc}")
        return 1
    print("valid")
    return 0


def _problems(profile: Profile, file: str, event: str | None) -> tuple[str | None, list[Problem]]:
    """The event type a payload file was checked as, and everything wrong with it."""
    try:
        payload = json.loads(_read(file).decode("utf-8"))
    except OSError as exc:
        return event, [(None, f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return event, [("$", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
    except json.JSONDecodeError as exc:
        return event, [("$", f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
    declared = event if event is not None else profile.event_type_of(payload)
    where = profile.envelope.event_type
    pointer = _json_path(where) if where is not None else "$"
    if declared is None:
        carried = (
            f"at {pointer}"
            if where is not None
            else f"in the body (profile {profile.name} carries it in a header)"
        )
        return None, [("$", f"no event type {carried}; pass --event to name one")]
    try:
        known = profile.event_name(declared)
    except UnknownEventType as exc:
        return (declared if isinstance(declared, str) else None), [(pointer, str(exc))]
    return known, [(e.path, e.message) for e in iter_payload_errors(profile, payload, known)]


def _cmd_validate(args: Namespace) -> int:
    """Validate payload files against their events' schemas.

    The event type comes from each payload unless --event names it. Exit 1 if any file
    is invalid.
    """
    profile = load_profile(args.profile)
    if args.event is not None:
        try:
            profile.event_name(args.event)
        except UnknownEventType as exc:
            raise UsageError(str(exc), f"try '{PROG} events {args.profile}'") from exc
    files: list[dict[str, Any]] = []
    for file in args.files:
        event, problems = _problems(profile, file, args.event)
        errors = [{"path": path, "message": message} for path, message in problems]
        name = "<stdin>" if file == STDIN else file
        files.append({"file": name, "valid": not errors, "event": event, "errors": errors})
    valid = all(entry["valid"] for entry in files)
    if args.format == "json":
        print(json.dumps({"profile": profile.name, "files": files, "valid": valid}, indent=2))
        return 0 if valid else 1
    for entry in files:
        if entry["valid"]:
            print(f"{entry['file']}: ok")
        for error in entry["errors"]:
            where = f"{error['path']}: " if error["path"] else ""
            print(f"{entry['file']}: {where}{error['message']}")
    return 0 if valid else 1


def _command(subparsers: Subparsers[Any], func: Callable[[Namespace], int]) -> ArgumentParser:
    """The subcommand ``_cmd_<name>`` implements; its docstring is the command's help."""
    doc = func.__doc__ or ""
    name, summary = func.__name__.removeprefix("_cmd_"), doc.partition("\n")[0]
    parser: ArgumentParser = subparsers.add_parser(
        name, help=summary, description=" ".join(doc.split())
    )
    parser.set_defaults(func=func, hint=f"try '{parser.prog} --help'")
    return parser


def _add_profile(parser: ArgumentParser, *, option: bool = False) -> None:
    text = "a bundled profile name (see 'profiles') or a path to a .yaml profile"
    if option:
        parser.add_argument("-p", "--profile", required=True, metavar="PROFILE", help=text)
    else:
        parser.add_argument("profile", metavar="PROFILE", help=text)


def _add_signing(parser: ArgumentParser, key_option: str, key_help: str) -> None:
    _add_profile(parser, option=True)
    parser.add_argument(
        "-s",
        "--secret",
        action="append",
        help=f"the signing secret, repeatable for key rotation (default: ${SECRET_ENV})",
    )
    parser.add_argument(
        key_option, dest="keys", action="append", default=[], metavar="FILE", help=key_help
    )
    parser.add_argument("file", metavar="FILE", help="the raw body, or - for stdin")


#: The suite is not a command: it is the pytest plugin, which --help would otherwise not name.
_EPILOG = f"""\
Test a webhook receiver or sender with the conformance suite, a pytest plugin
installed with this package (it needs no test files; --role receiver is the
default):
  python -m pytest --target-url=URL --profile=NAME --secret=SECRET
  python -m pytest --target-url=TRIGGER-URL --profile=NAME --role=sender
For example, against the reference receiver and sender:
  {PROG} serve receiver --profile zaits --secret s3cret &
  python -m pytest --target-url=http://127.0.0.1:8000/webhook \\
      --profile=zaits --secret=s3cret --conformance-report=report.json
  {PROG} serve sender --profile zaits --port 8001 --allow-private-targets &
  python -m pytest --target-url=http://127.0.0.1:8001/conformance/trigger \\
      --profile=zaits --role=sender
'python -m pytest --help' lists the other options (--conformance-strict,
--conformance-timeout, ...); '{PROG} demo' runs the suite
against the reference receiver and sender for every bundled profile.

The secret may come from ${SECRET_ENV} instead of --secret."""


def build_parser() -> ArgumentParser:
    """The full parser, with the commands other packages register."""
    parser = _Parser(
        prog=PROG,
        description="Webhook contracts: profiles, signing, verification and payload validation.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the command lines
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _command(commands, _cmd_profiles)
    _add_profile(_command(commands, _cmd_events))
    sign = _command(commands, _cmd_sign)
    _add_signing(
        sign,
        "--private-key",
        "an Ed25519 private key to sign with (whsk_… text or PEM), repeatable",
    )
    sign.add_argument("-t", "--timestamp", help="timestamp header text, verbatim (default: now)")
    sign.add_argument(
        "-e",
        "--event",
        metavar="TYPE",
        help="the event type, where the profile sends it in a header",
    )
    sign.add_argument("--id", metavar="ID", help="the event or message id (default: a fresh one)")
    check = _command(commands, _cmd_verify)
    _add_signing(
        check,
        "--public-key",
        "an Ed25519 public key to verify with (whpk_… text or PEM), repeatable",
    )
    check.add_argument(
        "-H",
        "--header",
        type=_headers,
        action="extend",
        default=[],
        metavar="'NAME: VALUE'",
        help="a received header, repeatable; @FILE reads 'Name: value' lines",
    )
    check.add_argument(
        "--now", type=_finite, metavar="UNIX", help="the clock in Unix seconds (default: now)"
    )
    check.add_argument(
        "--tolerance",
        type=_non_negative,
        metavar="SECONDS",
        help="timestamp tolerance (default: the profile's)",
    )
    validate = _command(commands, _cmd_validate)
    _add_profile(validate, option=True)
    validate.add_argument(
        "-e", "--event", metavar="TYPE", help="event type (default: each payload's own)"
    )
    validate.add_argument("--format", choices=("text", "json"), default="text", help=_FORMAT)
    validate.add_argument("files", nargs="+", metavar="FILE", help="payload files, - for stdin")
    reqs = _command(commands, _cmd_requirements)
    _add_profile(reqs)
    reqs.add_argument("--role", choices=ROLES, help="only this role")
    reqs.add_argument("--format", choices=("text", "json"), default="text", help=_FORMAT)
    _register_plugins(commands)
    return parser


def _register_plugins(subparsers: Subparsers[Any]) -> None:
    for entry in entry_points(group=COMMANDS_GROUP):
        try:
            entry.load()(subparsers)
        except (ImportError, AttributeError, argparse.ArgumentError) as exc:
            if os.environ.get(DEBUG_ENV):  # otherwise a missing or broken plugin is silent
                _note(f"skipped command {entry.name} ({entry.value}): {exc}")
                traceback.print_exc()


def _fail(message: str, hint: str | None, code: int) -> int:
    print(f"{PROG}: error: {' '.join(message.splitlines())}", file=sys.stderr)
    if hint:
        print(hint, file=sys.stderr)
    return code


def _run(argv: Sequence[str] | None) -> int:
    args = Namespace()
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        sys.stdout.flush()  # so a closed pipe surfaces here, not at interpreter exit
        return code
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except UsageError as exc:
        return _fail(exc.message, exc.hint or getattr(args, "hint", f"try '{PROG} --help'"), 2)
    except ProfileError as exc:
        return _fail(str(exc), f"try '{PROG} profiles'", 2)
    except InvalidSecret as exc:
        return _fail(str(exc), f"check --secret or ${SECRET_ENV}", 2)
    except ConformanceError as exc:
        return _fail(str(exc), None, 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (the console script exits with it)."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): point stdout at devnull so the final flush is quiet.
        with contextlib.suppress(OSError, ValueError):  # no real stdout (tests)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
