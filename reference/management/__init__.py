"""The reference sender's management API: register endpoints, and have the sender deliver to
them, for the profiles whose documents describe one (``management:`` in the profile).

``ManagementAPI`` mounts the profile's routes beside the trigger (``create_sender_app(...,
api_keys=[...])``, or ``webhook-conformance serve sender --api-key KEY``). The pieces:
``_auth`` (bearer keys, one tenant each, compared in constant time), ``_dialects`` (the one
per-provider table: how each API words its answers), ``_requests`` (reading and refusing
bodies and queries), ``_store`` (the registry tables, in the sender's outbox file) and
``_api`` (the routes, keyed by operation).
"""

from reference.management._api import ManagementAPI, Operation
from reference.management._auth import ApiKeys, Tenant
from reference.management._dialects import DIALECTS, Dialect, ExtraRoute, Pagination, Slot
from reference.management._store import Endpoint, EndpointStore

__all__ = [
    "DIALECTS",
    "ApiKeys",
    "Dialect",
    "Endpoint",
    "EndpointStore",
    "ExtraRoute",
    "ManagementAPI",
    "Operation",
    "Pagination",
    "Slot",
    "Tenant",
]
