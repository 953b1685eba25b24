"""Bearer API keys: each configured key is one tenant.

A request names its key in ``Authorization: Bearer KEY`` (RFC 6750). The SHA-256 of the key
it sends is compared with that of **every** configured key by ``hmac.compare_digest``,
without stopping at the first match: digests are all of one length (``compare_digest`` is
constant-time only between equal lengths), so the time an answer takes says nothing about
which key, how long a key, or how much of one was right. Rows are stored under the tenant's
id, the hex SHA-256 of its key, never the key itself: restarting with the same keys finds the
same endpoints.

A site-scoped API (ZTA's ``siteId``) gives each tenant its sites (``--site KEY=SITE_ID``);
a site has one owner.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ApiKeys", "Tenant"]

#: RFC 6750's b64token: what a bearer token may consist of.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+) *")


@dataclass(frozen=True)
class Tenant:
    """Who a request is made for: ``id`` keys the stored rows; ``sites`` are the sites it
    owns (empty unless the API is site-scoped)."""

    id: str
    sites: frozenset[str] = frozenset()


class ApiKeys:
    """The configured keys and their tenants. ``ValueError`` for an unusable configuration:
    an empty, malformed or repeated key, a site given to no configured key, a site given to
    two keys."""

    def __init__(
        self, keys: Sequence[str], sites: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        sites = sites or {}
        if not keys:
            raise ValueError("the management API needs at least one API key")
        seen: set[str] = set()
        for key in keys:
            if not _TOKEN.fullmatch(key):
                raise ValueError(
                    "an API key must be a non-empty bearer token (letters, digits and -._~+/, "
                    "then any '=' padding)"
                )
            if key in seen:
                raise ValueError("an API key is given twice")
            seen.add(key)
        owners: dict[str, str] = {}
        for key, owned in sites.items():
            if key not in seen:
                raise ValueError("--site names a key that no --api-key gives")
            for site in owned:
                if owners.setdefault(site, key) != key:
                    raise ValueError(f"site {site!r} is given to two API keys")
        digests = [hashlib.sha256(key.encode("utf-8")) for key in keys]
        self._keys: tuple[tuple[bytes, Tenant], ...] = tuple(
            (
                digest.digest(),
                Tenant(id=digest.hexdigest(), sites=frozenset(sites.get(key, ()))),
            )
            for key, digest in zip(keys, digests, strict=True)
        )

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._keys)} keys)"

    @property
    def tenants(self) -> tuple[Tenant, ...]:
        return tuple(tenant for _, tenant in self._keys)

    def authenticate(self, authorization: str | None) -> Tenant | None:
        """The tenant whose key the ``Authorization`` header carries, or None."""
        if authorization is None:
            return None
        match = _BEARER.fullmatch(authorization)
        if match is None:
            return None
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes sent.
        sent = hashlib.sha256(match.group(1).encode("latin-1", "replace")).digest()
        found: Tenant | None = None
        for digest, tenant in self._keys:
            # Every key is compared, whatever the earlier ones gave: no early exit.
            if hmac.compare_digest(sent, digest):
                found = tenant
        return found
