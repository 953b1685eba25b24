"""A Stripe receiver on stripe-python: ``stripe.Webhook.construct_event(payload, sig_header,
secret)`` with its default tolerance (300 s), which verifies and then parses the event."""

from __future__ import annotations

import stripe
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import Response

from oracles._frame import Delivery, receiver, refuse

PROFILE = "stripe"


def create_app(secret: str) -> Starlette:
    def handle(body: bytes, headers: Headers) -> Delivery | Response:
        try:
            event = stripe.Webhook.construct_event(body, headers.get("stripe-signature"), secret)
        except stripe.SignatureVerificationError:
            # No or empty header, no t= or one that is not an integer, no v1= item, no v1
            # matching, a timestamp older than the tolerance. 400, as Stripe's docs answer.
            return refuse(400, "invalid signature")
        except ValueError:
            # Stripe's docs catch ValueError as "Invalid payload": a body that is not UTF-8
            # (UnicodeDecodeError, raised before the header is even looked at), a verified
            # body that is not JSON (json.JSONDecodeError), a thin event ({"object":
            # "v2.core.event"}: a plain ValueError).
            return refuse(400, "invalid payload")
        except AttributeError:
            # A verified body that is JSON but not an object ([...], "...", null):
            # build_v1_event calls values.get("object") on whatever json.loads returned.
            return refuse(400, "the body is not a JSON object")
        except TypeError:
            # Non-ASCII in a v1= item (a header byte above 0x7f, decoded as latin-1):
            # secure_compare is hmac.compare_digest on two str, which refuses non-ASCII.
            return refuse(400, "invalid signature")
        # A stripe.Event is a StripeObject, not a dict (no .get()); construct_event checks
        # neither field, so an event without an id or a type gets here.
        envelope = event.to_dict()
        event_id, event_type = envelope.get("id"), envelope.get("type")
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_type:
            return refuse(400, "the event has no id or no type")
        return Delivery(key=event_id, event_type=event_type)

    return receiver(PROFILE, handle)
