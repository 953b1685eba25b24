"""The management role's check registry."""

from __future__ import annotations

from conformance._engine.registry import Registry
from conformance.checks.management._api import ManagementApi

__all__ = ["CHECKS"]

CHECKS: Registry[ManagementApi] = Registry("management")
