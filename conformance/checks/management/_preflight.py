"""One call before the checks: a run in which every check fails for one reason (a wrong
key, a wrong base path), or in which a family of checks cannot run (no second tenant),
says so once, up front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance._engine.config import API_KEY, API_KEY_ENV, OTHER_API_KEY, TARGET_URL
from conformance._http import excerpt
from conformance.checks.management._api import ApiExchange, ManagementApi

__all__ = ["ManagementDiagnosis", "preflight"]


@dataclass(frozen=True, kw_only=True)
class ManagementDiagnosis:
    headline: str
    advice: str
    exchange: ApiExchange | None = None

    def lines(self) -> list[str]:
        out = [f"DIAGNOSIS: {self.headline}", f"  {self.advice}"]
        if self.exchange is not None:
            out += ["  " + line for line in self.exchange.exhibit().render()]
        return out

    def as_dict(self) -> dict[str, Any]:
        exchange = self.exchange
        return {
            "headline": self.headline,
            "advice": self.advice,
            "status": None if exchange is None else exchange.status,
            "answer": "" if exchange is None else excerpt(exchange.exchange.body, 200),
        }


def preflight(api: ManagementApi) -> ManagementDiagnosis | None:
    """List (or, without a list route, nothing) with the key, and say what went wrong."""
    first = next(op for op in ("list", "events", "create") if api.has(op))
    body = api.create_body() if first == "create" else None
    exchange = api.call(first, body=body, note="the preflight call")
    if first == "create" and exchange.status is not None and exchange.status // 100 == 2:
        endpoint = api.endpoint_in("create", exchange)
        if endpoint is not None:
            api.created.append(("main", api.id_of(endpoint)))
    if exchange.status in (401, 403):
        return ManagementDiagnosis(
            headline=f"the API refused {API_KEY} ({exchange.exchange.describe()})",
            advice=f"check {API_KEY} (or ${API_KEY_ENV}): it must be a key the API accepts "
            "as Authorization: Bearer KEY",
            exchange=exchange,
        )
    if exchange.status in (404, 405) or exchange.status is None:
        return ManagementDiagnosis(
            headline=f"{first} at {api.api_base} was answered {exchange.exchange.describe()}",
            advice=f"check {TARGET_URL}: give the API's server root or the root plus the "
            f"profile's base path ({api.management.base_path})",
            exchange=exchange,
        )
    if api.keys.get("other") is None:
        return ManagementDiagnosis(
            headline="the cross-tenant checks are skipped: no second tenant",
            advice=f"give {OTHER_API_KEY} (and, for site-scoped APIs, --other-site-id) to "
            "check that one tenant cannot see or change another's endpoints",
        )
    return None
