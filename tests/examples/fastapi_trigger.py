"""The trigger of spec/trigger.openapi.yaml in front of your own sender, in FastAPI."""

import json
import time
import uuid

import httpx
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from conformance import delivery_headers, load_profile

PROFILE = load_profile("zaits")
app = FastAPI()  # serve it only where the suite runs: it posts signed requests to any URL


class Trigger(BaseModel, strict=True):  # strict: "1" is no number, nor is true
    webhook_url: str
    secret: str
    event_type: str
    data: dict[str, object]
    time_scale: float = Field(1.0, gt=0, allow_inf_nan=False)


async def dispatch(event_id: str, t: Trigger) -> None:
    """A stand-in for your dispatcher: one attempt (yours retries, delays times time_scale)."""
    payload = {"id": event_id, "type": t.event_type, "created": int(time.time()), "data": t.data}
    body = json.dumps(payload).encode()
    headers = delivery_headers(PROFILE, t.secret, body, payload)  # signed over these bytes
    async with httpx.AsyncClient(timeout=PROFILE.delivery.timeout_seconds) as client:
        await client.post(t.webhook_url, content=body, headers=headers)


@app.post("/conformance/trigger")
async def trigger(request: Request, tasks: BackgroundTasks) -> JSONResponse:
    try:
        t = Trigger.model_validate_json(await request.body())
    except ValidationError as exc:  # not JSON, not an object, a member missing or mistyped
        why = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"error": "invalid trigger", "message": why}, status_code=400)
    event_id = f"evt_{uuid.uuid4().hex}"
    tasks.add_task(dispatch, event_id, t)  # runs once the 202 is sent
    return JSONResponse({"event_id": event_id}, status_code=202)
