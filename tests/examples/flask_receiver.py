"""Verify webhook deliveries in a Flask app with the contract library's ``Verifier``."""

import json
import os

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from conformance import VerificationError, Verifier, load_profile

PROFILE = load_profile("zaits")


def create_app(secret: str) -> Flask:
    verify = Verifier(PROFILE, secret)
    app = Flask(__name__)
    # Flask answers 413 on its own for a larger Content-Length, before reading the body.
    app.config["MAX_CONTENT_LENGTH"] = PROFILE.limits.payload_bytes

    @app.post("/webhooks/zaits")
    def zaits_webhook() -> ResponseReturnValue:
        body = request.get_data()  # the raw bytes: verify these, never re-serialized JSON
        try:
            verify(body, request.headers)
        except VerificationError as exc:  # names the header: missing, malformed, mismatch
            return jsonify(error=exc.reason, header=exc.header), 401
        try:
            event = json.loads(body)
        except ValueError:
            return jsonify(error="the body is not JSON"), 400
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return jsonify(error="the body has no event type"), 400
        app.logger.info("received %s %s", event["type"], event.get("id"))
        return jsonify(received=True)

    return app


if __name__ == "__main__":
    create_app(os.environ["WEBHOOK_SECRET"]).run(port=8000)
