"""``webhook-conformance serve receiver`` and ``serve sender``: run the reference receiver or
the reference sender under uvicorn.

The CLI in ``conformance`` finds this through the ``webhook_conformance.commands`` entry-point
group, so the contract library never imports the reference.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from conformance import ConformanceError

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["register_serve"]

SECRET_ENV = "WEBHOOK_SECRET"
DEFAULT_DB = "./webhook-receiver.sqlite3"
DEFAULT_SENDER_DB = "./webhook-sender.sqlite3"


def register_serve(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve receiver`` and ``serve sender`` to the CLI's subcommands."""
    serve = subparsers.add_parser("serve", help="run a reference implementation")
    targets = serve.add_subparsers(dest="serve_target", metavar="TARGET", required=True)
    receiver = targets.add_parser(
        "receiver",
        help="the reference webhook receiver",
        description="Receive one profile's webhook deliveries: verify, deduplicate, store.",
    )
    receiver.add_argument("--profile", required=True, help="profile name or path to a .yaml")
    receiver.add_argument(
        "--secret",
        default=None,
        help=f"the signing secret (default: the {SECRET_ENV} environment variable)",
    )
    receiver.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    receiver.add_argument(
        "--port", type=int, default=8000, help="port to bind (default: %(default)s)"
    )
    receiver.add_argument("--path", default="/webhook", help="delivery path (default: %(default)s)")
    receiver.add_argument("--db", default=DEFAULT_DB, help="SQLite file (default: %(default)s)")
    receiver.add_argument(
        "--tolerance",
        type=float,
        default=None,
        metavar="SECONDS",
        help="timestamp tolerance (default: the profile's)",
    )
    receiver.set_defaults(func=_serve_receiver)
    _register_sender(targets)


def _register_sender(targets: argparse._SubParsersAction[Any]) -> None:
    sender = targets.add_parser(
        "sender",
        help="the reference webhook sender",
        description=(
            "Send one profile's webhooks: POST /conformance/trigger with "
            '{"webhook_url", "secret", "event_type", "data", "time_scale"} queues an event in '
            "a durable SQLite outbox and delivers it as the profile's delivery policy says; "
            "GET /conformance/deliveries/EVENT_ID shows its attempts. With --api-key, the "
            "profile's management API is served too: endpoints registered there receive the "
            "events the trigger publishes (a body without webhook_url, with Authorization: "
            "Bearer KEY)."
        ),
    )
    sender.add_argument("--profile", required=True, help="profile name or path to a .yaml")
    sender.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    sender.add_argument(
        "--port", type=int, default=8001, help="port to bind (default: %(default)s)"
    )
    sender.add_argument(
        "--db", default=DEFAULT_SENDER_DB, help="SQLite outbox file (default: %(default)s)"
    )
    sender.add_argument(
        "--allow-private-targets",
        action="store_true",
        help=(
            "lift the SSRF guard: also deliver over plain http:// and to loopback, private, "
            "link-local and other reserved addresses (for local testing)"
        ),
    )
    sender.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help=(
            "serve the profile's management API; KEY authenticates one tenant "
            "(Authorization: Bearer KEY). Repeat it for more tenants"
        ),
    )
    sender.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="KEY=SITE_ID",
        help="give the tenant of KEY the site SITE_ID (site-scoped APIs such as zta); repeatable",
    )
    sender.set_defaults(func=_serve_sender)


def _serve_receiver(args: argparse.Namespace) -> int:
    from reference.receiver import create_app

    secret = args.secret or os.environ.get(SECRET_ENV, "")
    if not secret:
        print(f"error: give --secret or set {SECRET_ENV}", file=sys.stderr)
        return 2
    return _run(
        args,
        lambda: create_app(
            args.profile, secret, db_path=args.db, tolerance=args.tolerance, path=args.path
        ),
        lambda app: app.state.endpoint.store,
    )


def _serve_sender(args: argparse.Namespace) -> int:
    from reference.sender import create_sender_app

    sites: dict[str, list[str]] = {}
    for given in args.site:
        key, equals, site = given.rpartition("=")
        if not equals or not key or not site:
            print("error: --site takes KEY=SITE_ID (an API key, =, a site id)", file=sys.stderr)
            return 2
        sites.setdefault(key, []).append(site)
    return _run(
        args,
        lambda: create_sender_app(
            args.profile,
            db_path=args.db,
            allow_private_targets=args.allow_private_targets,
            api_keys=args.api_key,
            sites=sites,
        ),
        lambda app: app.state.sender.outbox,
    )


def _run(
    args: argparse.Namespace, make: Callable[[], Starlette], storage: Callable[[Starlette], Any]
) -> int:
    """Build the app, open its SQLite file once (so a bad --db is one line, not a start-up
    traceback), then serve it under uvicorn."""
    import uvicorn

    try:
        app = make()
    except (ConformanceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        store = storage(app)
        store.open()
        store.close()
    except (OSError, sqlite3.Error) as exc:
        print(f"error: --db {args.db!r} cannot be used: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, ws="none")
    return 0
