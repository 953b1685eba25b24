"""Receivers built on each provider's official verification library (or, for GitHub, its
documented procedure), the way a careful team would: the oracles the conformance suite must
pass. See tests/test_oracles.py.

``ORACLES`` maps an oracle's name to an ``Oracle``: its profile, a fresh secret of the kind the
provider issues, and ``create_app(secret)``, a Starlette app receiving at ``_frame.PATH``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette

from oracles import github_receiver, standardwebhooks_receiver, stripe_receiver, svix_receiver
from oracles._frame import PATH

__all__ = ["ORACLES", "PATH", "Oracle"]


@dataclass(frozen=True)
class Oracle:
    profile: str
    create_app: Callable[[str], Starlette]
    new_secret: Callable[[], str]


def _standard_webhooks_secret() -> str:
    """whsec_ and the base64 of 24 random bytes, the specification's minimum key size."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _stripe_secret() -> str:
    """whsec_ and text: Stripe's HMAC key is the whole string, prefix included."""
    return "whsec_" + secrets.token_urlsafe(24)


def _github_secret() -> str:
    return secrets.token_urlsafe(24)


ORACLES: dict[str, Oracle] = {
    "standardwebhooks": Oracle(
        standardwebhooks_receiver.PROFILE,
        standardwebhooks_receiver.create_app,
        _standard_webhooks_secret,
    ),
    "svix": Oracle(svix_receiver.PROFILE, svix_receiver.create_app, _standard_webhooks_secret),
    "stripe": Oracle(stripe_receiver.PROFILE, stripe_receiver.create_app, _stripe_secret),
    "github": Oracle(github_receiver.PROFILE, github_receiver.create_app, _github_secret),
}
