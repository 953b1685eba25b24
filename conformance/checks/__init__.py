"""Black-box checks, one package per role, each with its registry of checks by requirement
key: ``receiver`` (a ``Target`` to send deliveries to), ``sender`` (a ``SenderRun``
that triggers the sender and captures what it delivers) and ``management`` (a
``ManagementApi``: a client for the API and a capture server for its test deliveries).
The role packages never import each other; what they share is ``checks._payloads``
(payloads drawn from the schemas) and ``checks._capture`` (the capture server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance._engine.registry import Registry
from conformance._roles import Role
from conformance.checks import management, receiver, sender

__all__ = ["REGISTRIES", "registry_for"]

#: Each implemented role's registry.
REGISTRIES: Mapping[Role, Registry[Any]] = {
    "receiver": receiver.CHECKS,
    "sender": sender.CHECKS,
    "management": management.CHECKS,
}


def registry_for(role: Role) -> Registry[Any]:
    """The role's registry (an empty one for a role without checks yet)."""
    return REGISTRIES.get(role) or Registry(role)
