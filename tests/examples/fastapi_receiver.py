"""Verify webhook deliveries in a FastAPI app with the contract library's ``Verifier``."""

import json
import os

from fastapi import FastAPI, HTTPException, Request

from conformance import VerificationError, Verifier, load_profile

PROFILE = load_profile("ztrace")


def create_app(secret: str) -> FastAPI:
    verify = Verifier(PROFILE, secret)  # also checks the signed timestamp: 300 s either way
    app = FastAPI()

    @app.post("/webhooks/ztrace")
    async def ztrace_webhook(request: Request) -> dict[str, bool]:
        body = bytearray()
        async for chunk in request.stream():  # stop reading as soon as the body is too large
            body += chunk
            if len(body) > PROFILE.limits.payload_bytes:
                raise HTTPException(413, "payload too large")
        try:
            verify(bytes(body), request.headers)
        except VerificationError as exc:
            raise HTTPException(401, {"error": exc.reason, "header": exc.header}) from exc
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise HTTPException(400, "the body is not JSON") from exc
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise HTTPException(400, "the body has no event type")
        print("received", event["event"])
        return {"received": True}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(os.environ["WEBHOOK_SECRET"]), port=8000)
