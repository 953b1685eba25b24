"""A GitHub receiver following GitHub's documented verification ("Validating webhook
deliveries"): HMAC-SHA256 of the raw body keyed with the secret's UTF-8 bytes, hex, prefixed
``sha256=``, compared with X-Hub-Signature-256 by ``hmac.compare_digest``. GitHub publishes no
Python library; the documented procedure is the oracle."""

from __future__ import annotations

import hashlib
import hmac

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import Response

from oracles._frame import Delivery, json_object, receiver, refuse

PROFILE = "github"


def create_app(secret: str) -> Starlette:
    key = secret.encode("utf-8")

    def handle(body: bytes, headers: Headers) -> Delivery | Response:
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        received = headers.get("x-hub-signature-256", "")
        # Compared as bytes: the docs' compare_digest(str, str) raises TypeError when the
        # header holds a non-ASCII character (Starlette decodes header bytes as latin-1, so
        # encoding back to latin-1 gives the bytes that were sent).
        if not hmac.compare_digest(expected.encode("ascii"), received.encode("latin-1")):
            return refuse(401, "signature verification failed")
        event_type = headers.get("x-github-event", "")
        delivery = headers.get("x-github-delivery", "")
        if not event_type or not delivery:
            return refuse(400, "X-GitHub-Event or X-GitHub-Delivery is missing")
        if json_object(body) is None:
            return refuse(400, "the body is not a JSON object")
        return Delivery(key=delivery, event_type=event_type)

    return receiver(PROFILE, handle)
