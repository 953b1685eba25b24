"""Zero Trust Analytics' Python sample (seed 001_696827f4ccd808d2.txt, "Verification Code"),
runnable.

The document's code is kept as written inside ``create_app``; only the secret changes: the
document hard-codes ``'whsec_xyz789'``, the factory takes it as an argument.
"""

import hashlib
import hmac

from flask import Flask, request


def create_app(webhook_secret: str) -> Flask:
    app = Flask(__name__)

    # ---- the document's code --------------------------------------------------------------
    def verify_webhook(payload, signature, secret):
        expected_signature = (
            "sha256="
            + hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()
        )

        return hmac.compare_digest(signature, expected_signature)

    # Flask example
    @app.route("/webhook", methods=["POST"])
    def webhook():
        signature = request.headers.get("X-ZTA-Signature")
        secret = webhook_secret  # the document: 'whsec_xyz789'  # Your webhook secret

        if not verify_webhook(request.data.decode(), signature, secret):
            return "Invalid signature", 401

        # Process the webhook
        data = request.json
        print(f"Event: {data['event']}")
        return "OK", 200

    # ---- end of the document's code -------------------------------------------------------
    return app
