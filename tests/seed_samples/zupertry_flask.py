"""Zupertry's Python (Flask) sample (seed 003_c3a77671eb28c177.txt, "Signature verification"),
runnable.

The document's code is kept as written inside ``create_app``; only the secret changes: the
document reads ``os.environ['ZUPERTRY_WEBHOOK_SECRET']``, the factory takes it as an argument.
The document's Python sample has no duplicate check (only its Node sample does).
"""

import hashlib
import hmac

from flask import Flask, jsonify, request


def create_app(webhook_secret: str) -> Flask:
    # ---- the document's code --------------------------------------------------------------
    app = Flask(__name__)

    @app.route("/webhooks/zupertry", methods=["POST"])
    def webhook():
        sig = request.headers.get("X-Zupertry-Signature", "")
        # The document: secret = os.environ['ZUPERTRY_WEBHOOK_SECRET'].encode()
        secret = webhook_secret.encode()
        expected = hmac.new(secret, request.data, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, expected):
            return jsonify({"error": "Invalid signature"}), 401
        event = request.get_json(force=True)
        print(f"Event: {event['type']}", event["data"]["job_id"])
        return jsonify({"received": True})

    # ---- end of the document's code -------------------------------------------------------
    return app
