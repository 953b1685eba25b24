"""The three roles a conformance run can judge, named once for the whole package."""

from __future__ import annotations

from typing import Literal

__all__ = ["IMPLEMENTED_ROLES", "ROLES", "Role"]

#: A receiver takes deliveries; a sender makes them; a management API registers endpoints.
Role = Literal["receiver", "sender", "management"]
ROLES: tuple[Role, ...] = ("receiver", "sender", "management")
#: The roles the bundled suite has checks for.
IMPLEMENTED_ROLES: tuple[Role, ...] = ("receiver", "sender", "management")
