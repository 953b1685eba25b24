"""Mount the reference receiver inside an existing Starlette app."""

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from reference import StoredEvent, create_app


async def on_event(event: StoredEvent) -> None:
    """Called once per new event, after the sender got its 200."""
    print("processing", event.event_type, event.payload()["data"]["job_id"])


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("my site")


def create_site(secret: str, db_path: str = "webhooks.sqlite3") -> Starlette:
    webhooks = create_app("zupertry", secret, db_path=db_path, path="/zupertry", handler=on_event)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A mounted app gets no lifespan events of its own: run the receiver's here, so its
        # store and worker start with the site and stop cleanly with it.
        async with webhooks.router.lifespan_context(webhooks):
            yield

    return Starlette(
        routes=[Route("/", home), Mount("/webhooks", app=webhooks)],  # POST /webhooks/zupertry
        lifespan=lifespan,
    )


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_site(os.environ["WEBHOOK_SECRET"]), port=8000)
