"""A Standard Webhooks receiver on the ``standardwebhooks`` package (the specification's own
Python library): ``Webhook(secret).verify(body, headers)``."""

from __future__ import annotations

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import Response

from oracles._frame import Delivery, json_object, receiver, refuse

PROFILE = "standard-webhooks"


def create_app(secret: str) -> Starlette:
    webhook = Webhook(secret)  # strips whsec_ and base64-decodes the rest itself

    def handle(body: bytes, headers: Headers) -> Delivery | Response:
        try:
            # json_parse=False: the library would parse after verifying and raise
            # json.JSONDecodeError, a ValueError like the ones below; parsing is done apart.
            webhook.verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError:  # missing or empty header, bad or stale timestamp,
            return refuse(401, "signature verification failed")  # no matching signature
        except ValueError:
            # What verify() lets out of its own parsing instead of WebhookVerificationError
            # (all ValueError or subclasses): an item without a comma ("garbage": not enough
            # values to unpack) or with two ("v1,a,b"); base64 with bad padding
            # (binascii.Error); non-ASCII in the base64 ("string argument should contain only
            # ASCII characters"); a body that is not UTF-8 (UnicodeDecodeError).
            return refuse(401, "signature verification failed")
        payload = json_object(body)
        if payload is None or not isinstance(payload.get("type"), str) or not payload["type"]:
            return refuse(400, "the body is not a JSON object with a type")
        # verify() succeeded, so webhook-id is present and it is the id that was signed.
        return Delivery(key=headers["webhook-id"], event_type=payload["type"])

    return receiver(PROFILE, handle)
