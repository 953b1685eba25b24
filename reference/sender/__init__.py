"""The reference webhook sender: a trigger endpoint, a durable SQLite outbox and an asyncio
dispatcher that delivers every profile's webhooks as its delivery policy says.

``create_sender_app(profile, db_path=...)`` is the Starlette app; serve it with
``reference.serve_in_thread`` or ``webhook-conformance serve sender``. The pieces:
``_envelope`` (payloads from the envelope schema), ``_guard`` (the SSRF guard, enforced on
the resolved address at connect time), ``_dispatch`` (scheduler and attempts) and
``reference._outbox`` (the SQLite tables).
"""

from reference.sender._app import TRIGGER_PATH, SenderService, create_sender_app, delivery_view
from reference.sender._dispatch import EXCERPT_BYTES, Dispatcher
from reference.sender._envelope import EnvelopeBuilder, EnvelopeError, default_value
from reference.sender._guard import (
    BlockedTarget,
    GuardedBackend,
    GuardedTransport,
    blocked_reason,
    literal_block,
)

__all__ = [
    "EXCERPT_BYTES",
    "TRIGGER_PATH",
    "BlockedTarget",
    "Dispatcher",
    "EnvelopeBuilder",
    "EnvelopeError",
    "GuardedBackend",
    "GuardedTransport",
    "SenderService",
    "blocked_reason",
    "create_sender_app",
    "default_value",
    "delivery_view",
    "literal_block",
]
