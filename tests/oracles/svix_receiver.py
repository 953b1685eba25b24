"""A Standard Webhooks receiver on the ``svix`` package: ``svix.webhooks.Webhook(secret)
.verify(body, headers)``, which reads svix-id/-timestamp/-signature and falls back to
webhook-id/-timestamp/-signature, then delegates to the ``standardwebhooks`` package."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import Response
from svix.webhooks import Webhook, WebhookVerificationError

from oracles._frame import Delivery, json_object, receiver, refuse

PROFILE = "standard-webhooks"


def create_app(secret: str) -> Starlette:
    webhook = Webhook(secret)

    def handle(body: bytes, headers: Headers) -> Delivery | Response:
        try:
            webhook.verify(body, dict(headers))  # returns None: it never parses the body
        except WebhookVerificationError:  # (standardwebhooks' class, re-exported by svix)
            return refuse(401, "signature verification failed")
        except ValueError:
            # The same leaks as standardwebhooks' (svix calls it): an item without exactly
            # one comma (ValueError from unpacking), bad base64 padding (binascii.Error),
            # non-ASCII base64 (ValueError), a body that is not UTF-8 (UnicodeDecodeError).
            return refuse(401, "signature verification failed")
        payload = json_object(body)
        if payload is None or not isinstance(payload.get("type"), str) or not payload["type"]:
            return refuse(400, "the body is not a JSON object with a type")
        # Deduplicate on the id svix verified: svix-id wins over webhook-id when both are
        # sent, so keying on webhook-id alone would let an unsigned webhook-id pick the key.
        key = headers.get("svix-id") or headers["webhook-id"]
        return Delivery(key=key, event_type=payload["type"])

    return receiver(PROFILE, handle)
