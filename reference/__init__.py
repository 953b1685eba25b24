"""Reference implementations judged by the conformance suite: the webhook receiver.

``reference`` uses the contract library in ``conformance``; never the other way round.
"""

from conformance._serving import serve_in_thread
from reference._store import EventStore, StoreClosed, StoredEvent, read_events
from reference.receiver import ACK, DUPLICATE_ACK, Handler, WebhookEndpoint, create_app

__all__ = [
    "ACK",
    "DUPLICATE_ACK",
    "EventStore",
    "Handler",
    "StoreClosed",
    "StoredEvent",
    "WebhookEndpoint",
    "create_app",
    "read_events",
    "serve_in_thread",
]
