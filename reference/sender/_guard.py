"""The SSRF guard: deliveries go only to HTTPS URLs on globally routable addresses.

The check is made on the address actually connected to, not only on the URL's text: the
connection pool's network backend resolves the host itself, refuses every resolved address
in a blocked range, and connects to one of the addresses it checked (never resolving
again, so a DNS answer that changes between check and connect, DNS rebinding, cannot slip
through). TLS still uses the URL's host name for SNI and certificate checks, and the
``Host`` header is the URL's: only the socket's address is pinned.

A refused target raises ``BlockedTarget``, which httpx passes through unchanged (it maps only
its own transport errors), so the dispatcher records it as ``blocked: <reason>``.
``allow_private_targets`` lifts the guard, for local testing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable

import httpcore
import httpx

__all__ = [
    "BlockedTarget",
    "GuardedBackend",
    "GuardedTransport",
    "IPAddress",
    "blocked_reason",
    "literal_block",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = tuple(
    (ipaddress.IPv4Network(net), what)
    for net, what in (
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (including broadcast)"),
    )
)
_V6 = tuple(
    (ipaddress.IPv6Network(net), what)
    for net, what in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6) SIDs"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)


class BlockedTarget(Exception):
    """A delivery target the SSRF guard refuses; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def blocked_reason(address: IPAddress | str) -> str | None:
    """Why the guard refuses to connect to ``address`` (``"127.0.0.1 is loopback
    (127.0.0.0/8)"``), or None for a globally routable address.

    IPv4-mapped addresses (::ffff:0:0/96) are refused outright, naming the IPv4 address they
    map. IPv6 addresses that embed an IPv4 one are refused when it is: 6to4 (2002::/16) and
    the NAT64 well-known prefix (64:ff9b::/96). Anything else Python does not count as
    global is refused as reserved.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    what = _range_of(ip)
    return None if what is None else f"{ip} is {what}"


def _range_of(ip: IPAddress) -> str | None:
    """What blocked range ``ip`` is in (``"loopback (127.0.0.0/8)"``), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inner = blocked_reason(ip.ipv4_mapped)
            tail = f", and {inner}" if inner else ""
            return f"IPv4-mapped (::ffff:0:0/96) for {ip.ipv4_mapped}{tail}"
        embedded = ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
        )
        if embedded is not None and (inner := blocked_reason(embedded)) is not None:
            return f"an address that embeds {embedded}, and {inner}"
        for network, what in _V6:
            if ip in network:
                return f"{what} ({network})"
    else:
        for network4, what in _V4:
            if ip in network4:
                return f"{what} ({network4})"
    if not ip.is_global:
        return "reserved (not globally routable)"
    return None


def literal_block(url: httpx.URL) -> str | None:
    """What the guard refuses about a URL without resolving anything: a scheme other than
    https, or a host that is a blocked IP literal. Names are checked when connecting."""
    if url.scheme != "https":
        return f"only https:// targets are allowed, not {url.scheme}://"
    try:
        ip = ipaddress.ip_address(url.host)
    except ValueError:
        return None
    return blocked_reason(ip)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves the host itself and connects only to
    addresses ``blocked_reason`` accepts."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        allowed: list[IPAddress] = []
        refused: list[str] = []
        for address in addresses:
            what = _range_of(address)
            if what is None:
                allowed.append(address)
            elif _is_literal(host):
                refused.append(f"{address} is {what}")
            else:
                refused.append(f"{host} resolves to {address}, which is {what}")
        if not allowed:
            raise BlockedTarget("; ".join(refused))
        last: Exception | None = None
        for address in allowed:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedTarget("Unix sockets are not delivery targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str, port: int, timeout: float | None) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout} s") from None
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise httpcore.ConnectError(f"{host} resolves to no address")
    return found


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the guard: https only, and every connection made through
    ``GuardedBackend``. With ``guard=False`` it is the plain transport (proxies from the
    environment are never used either way: a proxy would connect on the sender's behalf)."""

    def __init__(
        self,
        *,
        guard: bool = True,
        limits: httpx.Limits = _LIMITS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, limits=limits, trust_env=False, retries=0)
        self.guard = guard
        if guard:
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                retries=0,
                network_backend=GuardedBackend(),
            )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.guard and request.url.scheme != "https":
            raise BlockedTarget(f"only https:// targets are allowed, not {request.url.scheme}://")
        return await super().handle_async_request(request)
