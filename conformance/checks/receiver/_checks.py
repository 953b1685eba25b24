"""The receiver role's check registry; its check modules register into it on import."""

from __future__ import annotations

from conformance._engine.registry import Registry
from conformance.checks.receiver._target import Target

__all__ = ["CHECKS"]

CHECKS: Registry[Target] = Registry("receiver")
