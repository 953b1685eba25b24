"""Zaits' Python sample (seed 002_e138d80be09ef19b.txt, "Verifying Webhook Signatures"),
runnable.

The document's code is kept as written inside ``create_app``; only the secret changes (the
document hard-codes ``'whsec_1234567890abcdef'``, the factory takes it as an argument) and the
handler the document leaves undefined is a no-op.
"""

import hashlib
import hmac

from flask import Flask, abort, request


def handle_document_signed(data):
    """Not defined in the document."""


def create_app(webhook_secret: str) -> Flask:
    # ---- the document's code --------------------------------------------------------------
    app = Flask(__name__)

    def verify_webhook_signature(payload, signature, secret):
        expected_signature = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()

        return f"sha256={expected_signature}" == signature

    @app.route("/webhooks/zaits", methods=["POST"])
    def webhook():
        signature = request.headers.get("X-Zaits-Signature")
        secret = webhook_secret  # the document: 'whsec_1234567890abcdef'  # Your webhook secret

        if not verify_webhook_signature(request.data, signature, secret):
            abort(401)

        event = request.json

        # Process the event
        if event["type"] == "document.signed":
            handle_document_signed(event["data"])
        # ... handle other events

        return "OK", 200

    # ---- end of the document's code -------------------------------------------------------
    return app
