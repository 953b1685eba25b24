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

The transport's connections are kept by ``LeanPool``, which does a constant amount of work
per request (httpcore's own pool rescans every connection at every request and response),
and each connection holds what is written until the next read, so that a request's head and
body leave in one ``send`` (httpcore writes them separately).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import httpcore
import httpx

__all__ = [
    "BlockedTarget",
    "GuardedBackend",
    "GuardedTransport",
    "IPAddress",
    "LeanPool",
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
#: Writes held past this size are sent at once (a large body is not held whole).
_HOLD_BYTES = 64 * 1024


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
    addresses ``blocked_reason`` accepts (``guard=False``: to any, as resolved by the inner
    backend). Its streams hold what is written until the next read (``_Held``)."""

    def __init__(
        self, inner: httpcore.AsyncNetworkBackend | None = None, *, guard: bool = True
    ) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self.guard = guard

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not self.guard:
            stream = await self._inner.connect_tcp(
                host, port, timeout, local_address=local_address, socket_options=socket_options
            )
            return _Held(stream)
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
                stream = await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
            else:
                return _Held(stream)
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


class _Held(httpcore.AsyncNetworkStream):
    """A connection's stream that holds what is written until the next read (or until
    ``_HOLD_BYTES`` are held), then sends it in one write: one packet for a small request
    instead of one for its head and one for its body. HTTP/1.1 reads only after it has
    written the whole request, so nothing waits on a held write."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._held: list[bytes] = []
        self._size = 0

    async def _send_held(self, timeout: float | None) -> None:
        data = b"".join(self._held)
        self._held.clear()
        self._size = 0
        await self._inner.write(data, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        self._held.append(buffer)
        self._size += len(buffer)
        if self._size >= _HOLD_BYTES:
            await self._send_held(timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            await self._send_held(timeout)
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._held.clear()
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._held:
            await self._send_held(timeout)
        return _Held(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


#: An origin as a dictionary key (httpcore's ``Origin`` is not hashable).
_Key = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _Key:
    return origin.scheme, origin.host, origin.port


class LeanPool(httpcore.AsyncConnectionPool):
    """httpcore's connection pool, with a constant amount of work per request.

    httpcore 1.0's pool re-examines every connection whenever a request starts or a response
    closes (a readability check of each idle socket, and a count of all connections for each
    idle one), so with 64 keep-alive connections that bookkeeping is most of a request's cost.
    Here an idle connection waits in its origin's list: a request takes the most recently used
    one that is still usable (not expired, not closed by the server), or opens a new one, and
    the connection goes back to the list when its response is closed, if it can be reused and
    fewer than ``max_keepalive_connections`` are idle. At most ``max_connections`` are in use
    at once; further requests wait for one to be returned. Connections are httpcore's own
    (``create_connection``), so TLS, timeouts and the network backend are as in httpcore.
    asyncio only.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = 10,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            retries=0,
            network_backend=network_backend,
        )
        self._idle: dict[_Key, list[httpcore.AsyncConnectionInterface]] = {}
        self._idle_count = 0
        self._in_use = 0
        self._slots = asyncio.Semaphore(self._max_connections)

    def __repr__(self) -> str:
        return f"<LeanPool [{self._in_use} in use, {self._idle_count} idle]>"

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        await self._slots.acquire()
        self._in_use += 1
        connection: httpcore.AsyncConnectionInterface | None = None
        try:
            connection = await self._take(origin)
            response = await connection.handle_async_request(request)
        except BaseException:
            self._in_use -= 1
            self._slots.release()
            if connection is not None:
                await connection.aclose()
            raise
        assert isinstance(response.stream, AsyncIterable)
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_Returned(response.stream, self, origin, connection),
            extensions=response.extensions,
        )

    async def _take(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        """The origin's most recently returned usable connection, or a new one."""
        idle = self._idle.get(_key(origin))
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.is_available() and not connection.has_expired():
                return connection
            await connection.aclose()
        return self.create_connection(origin)

    def _give_back(
        self, origin: httpcore.Origin, connection: httpcore.AsyncConnectionInterface
    ) -> bool:
        """Free the connection's slot and keep it for the origin's next request; False
        when it is not reusable or enough are idle, and the caller closes it."""
        self._in_use -= 1
        self._slots.release()
        if not connection.is_idle() or self._idle_count >= self._max_keepalive_connections:
            return False
        self._idle.setdefault(_key(origin), []).append(connection)
        self._idle_count += 1
        return True

    async def aclose(self) -> None:
        """Close the idle connections; those in use close with their responses."""
        idle, self._idle, self._idle_count = self._idle, {}, 0
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()
        await super().aclose()


class _Returned:
    """A response body that returns its connection to the pool once it is closed."""

    def __init__(
        self,
        stream: AsyncIterable[bytes],
        pool: LeanPool,
        origin: httpcore.Origin,
        connection: httpcore.AsyncConnectionInterface,
    ) -> None:
        self._stream = stream
        self._pool = pool
        self._origin = origin
        self._connection = connection
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            if not self._pool._give_back(self._origin, self._connection):
                await self._connection.aclose()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the guard: https only, and every connection made through
    ``GuardedBackend`` and kept by a ``LeanPool``. With ``guard=False`` nothing is refused
    (proxies from the environment are never used either way: a proxy would connect on the
    sender's behalf)."""

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
        self._pool = LeanPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(guard=guard),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.guard and request.url.scheme != "https":
            raise BlockedTarget(f"only https:// targets are allowed, not {request.url.scheme}://")
        return await super().handle_async_request(request)
