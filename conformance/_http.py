"""Sending one delivery and telling what happened: the request sent, the answer (or why there
was none), a ``curl`` command that replays it, and the failure message built from them.

Lower-level exceptions stop here: every ``httpx.TransportError`` becomes an ``Exchange`` whose
``error`` says in words what went wrong (``NO_ANSWER`` lists the kinds), so a check never sees
an httpx exception and a report never shows a traceback for a refused connection.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import httpx

from conformance._engine.exhibits import Exhibit, Reproduction

__all__ = [
    "CURL_BODY_LIMIT",
    "NO_ANSWER",
    "Delivery",
    "Exchange",
    "NoAnswer",
    "excerpt",
    "probe",
    "render_curl",
    "send",
]

NoAnswer = Literal["timeout", "connect", "reset", "protocol", "transport"]
#: What each kind of missing answer means, in the words a failure message uses.
NO_ANSWER: Mapping[NoAnswer, str] = {
    "timeout": "no answer within the timeout",
    "connect": "the connection could not be opened",
    "reset": "the connection was closed or reset before an answer",
    "protocol": "the answer was not valid HTTP",
    "transport": "the request could not be sent",
}
#: Bodies larger than this are not written into a curl command line.
CURL_BODY_LIMIT = 16 * 1024
_EXCERPT = 300


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """A request as sent: header order and the body's bytes are kept exactly.

    ``note`` says in words what makes this request special (``"signature truncated by 2
    characters"``); failure messages print it.
    """

    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    method: str = "POST"
    note: str = ""

    @classmethod
    def of(cls, url: str, headers: Mapping[str, str], body: bytes, *, note: str = "") -> Delivery:
        return cls(url=url, headers=tuple(headers.items()), body=body, note=note)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True, kw_only=True)
class Exchange:
    """One delivery and its outcome: a status and body, or ``error`` when no answer came."""

    request: Delivery
    status: int | None = None
    reason: str = ""
    body: bytes = b""
    elapsed: float = 0.0
    error: NoAnswer | None = None
    error_detail: str = ""
    response_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def answered(self) -> bool:
        return self.status is not None

    def status_class(self) -> int | None:
        return None if self.status is None else self.status // 100

    def exhibit(self, *, replay_hint: str = "") -> Exhibit:
        """The exchange as a failure shows it (``Evidence``): the answer, the request sent,
        and a curl command that replays it byte for byte."""
        received = self.describe()
        if self.status is not None and self.status >= 500:
            received += " (a server error)"
        lines = [f"Received: {received} after {self.elapsed:.2f} s"]
        if self.body:
            lines.append(_indent(excerpt(self.body)))
        sent = self.request
        lines.append(f"Sent: {sent.method} {sent.url}" + (f" ({sent.note})" if sent.note else ""))
        if sent.headers:
            lines.append(_indent(_headers(sent.headers)))
        lines.append(f"  body ({len(sent.body)} bytes): {excerpt(sent.body)}")
        reproduction = Reproduction(command=render_curl(sent), hint=replay_hint)
        return Exhibit(lines=tuple(lines), reproduction=reproduction)

    def describe(self) -> str:
        """``200 OK`` / ``no answer within the timeout (ReadTimeout: timed out)``."""
        if self.status is not None:
            return f"{self.status} {self.reason}".rstrip()
        assert self.error is not None
        text = NO_ANSWER[self.error]
        return f"{text} ({self.error_detail})" if self.error_detail else text


def _kind(exc: Exception) -> NoAnswer:
    """The kind of missing answer an error raised while sending stands for."""
    if not isinstance(exc, httpx.TransportError) or isinstance(exc, httpx.LocalProtocolError):
        return "transport"  # the request itself could not be written, so nothing was sent
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, httpx.NetworkError):  # read, write and close errors
        return "reset"
    if isinstance(exc, httpx.RemoteProtocolError):
        # h11 reports a server that closed the connection mid-request this way.
        return "reset" if "disconnected" in str(exc).lower() else "protocol"
    if isinstance(exc, httpx.ProtocolError):
        return "protocol"
    return "transport"


def send(client: httpx.Client, delivery: Delivery, *, timeout: float) -> Exchange:
    """Send ``delivery`` once (never following a redirect) and record what happened."""
    started = time.monotonic()
    try:
        response = client.request(
            delivery.method,
            delivery.url,
            headers=list(delivery.headers),
            content=delivery.body,
            timeout=timeout,
            follow_redirects=False,
        )
    # httpx.InvalidURL and UnicodeEncodeError (a header value it cannot encode) are raised
    # before anything is sent; they are outcomes of the request, not failures of a check.
    except (httpx.TransportError, httpx.InvalidURL, UnicodeEncodeError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Exchange(
            request=delivery,
            elapsed=time.monotonic() - started,
            error=_kind(exc),
            error_detail=detail,
        )
    return Exchange(
        request=delivery,
        status=response.status_code,
        reason=response.reason_phrase,
        body=response.content,
        elapsed=time.monotonic() - started,
        response_headers=tuple(response.headers.items()),
    )


def probe(url: str, timeout: float) -> str | None:
    """Open (and close) a TCP connection to the URL's host and port: ``None`` when that
    works, else the reason in words."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return str(exc)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no connection to {host}:{port} within {timeout:g} s"
    except OSError as exc:
        return f"{exc.strerror or exc} ({host}:{port})"


# ---------------------------------------------------------------------------------------
# Rendering


def printable(text: str) -> str:
    """``text`` on one line with nothing a terminal acts on: line breaks (``\n``, U+2028 …),
    control and format characters written as Python escapes. The curl command, not this, is
    what replays the exact bytes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def excerpt(data: bytes, limit: int = _EXCERPT) -> str:
    """The body as readable text on one line: UTF-8, with escapes for other bytes and for
    anything unprintable, cut at ``limit``."""
    shown = printable(data[:limit].decode("utf-8", errors="backslashreplace"))
    if len(data) > limit:
        shown += f"… ({len(data)} bytes in all)"
    return shown


def _quote(text: str) -> str:
    """Single-quote for a POSIX shell: only ``'`` needs care inside single quotes.

    Only for text whose characters are all printable (``str.isprintable``): anything else
    goes through ``printf`` escapes instead (see ``_argument``)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _printable(body: bytes) -> bool:
    """Can the body go between single quotes on one command line, byte for byte?

    Only UTF-8 text all of whose characters are printable in ``str.isprintable``'s sense:
    no control characters (C0, DEL, C1 such as U+0085), no line or paragraph separators
    (U+2028, U+2029), no invisible format characters and no spaces other than U+0020. That
    covers every character ``str.splitlines`` breaks at, so indenting the command for a
    failure message never splits the quoted text, and what is shown is what is sent.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable()


_PRINTF_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _printf_escape(body: bytes, *, octal: str = "") -> str:
    """A ``printf`` format that writes exactly ``body``: ``\\n``, ``\\t`` and ``\\r`` for
    line breaks and tabs, octal escapes for other bytes outside printable ASCII (and for the
    characters in ``octal``), ``%`` and ``\\`` doubled. The format is printable ASCII, and
    POSIX ``printf`` reads at most three octal digits, so a digit after an escape is safe."""
    out: list[str] = []
    for byte in body:
        char = chr(byte)
        if char in _PRINTF_NAMED:
            out.append(_PRINTF_NAMED[char])
        elif char == "%":
            out.append("%%")
        elif char == "\\":
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F and char not in octal:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def _argument(text: str) -> str:
    """One shell word that passes ``text`` (UTF-8, no NUL or trailing line break) to curl.

    Printable text is single-quoted. Anything else is produced by ``"$(printf -- '...')"``:
    POSIX (``sh``, ``dash``, ``bash``, ``zsh``), unlike bash's ``$'...'``, and every byte
    appears as an escape, so the command stays one printable line. ``!`` is written ``\\041``
    there, since an interactive bash or zsh would history-expand it inside double quotes.
    """
    if text.isprintable():
        return _quote(text)
    data = text.encode("utf-8", "surrogatepass")
    return f'"$(printf -- {_quote(_printf_escape(data, octal="!"))})"'


def _comment(text: str) -> str:
    """``text`` for a comment line: characters that are not printable become escapes."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
#: A header value h11 (httpx's HTTP/1.1 layer) sends: no NUL, no whitespace other than runs
#: of spaces and tabs between other characters; empty is allowed.
_FIELD_VALUE = re.compile(r"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?", re.ASCII)
_BARE_METHOD = re.compile(r"[A-Za-z0-9_.-]+")


def _header_problem(name: str, value: str) -> str | None:
    """Why httpx cannot send this header (and so there is nothing to replay), or ``None``."""
    if not (name.isascii() and _TOKEN.fullmatch(name)):
        return f"the header name {name!r} is not an HTTP token"
    if not value.isascii():
        return (
            f"the value of {name} is not ASCII, and httpx sends str header values as ASCII"
            " only (it raises UnicodeEncodeError)"
        )
    if any(char in value for char in "\r\n\x00"):
        return (
            f"the value of {name} contains CR, LF or NUL, which no HTTP/1.1 header line can carry"
        )
    if not _FIELD_VALUE.fullmatch(value):
        return (
            f"the value of {name} starts or ends with whitespace or holds a vertical tab or"
            " form feed, which httpx (h11) refuses to send"
        )
    return None


def _curl_url(raw: str) -> tuple[str, list[str], str | None]:
    """The URL as httpx sends it (path and query percent-encoded as on the wire, no
    fragment), the curl options that keep curl from changing it, and why it cannot be sent
    (or ``None``)."""
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        return raw, [], f"the URL is not valid ({exc})"
    if url.scheme not in ("http", "https") or not url.host:
        return raw, [], "the URL is not an absolute http or https URL"
    text = str(url.copy_with(fragment=None))
    options = []
    if any(char in text for char in "[]{}"):
        options.append("-g")  # curl would read [1-3] and {a,b} as globs
    path = url.raw_path.decode("ascii").partition("?")[0]
    if any(segment in (".", "..") for segment in path.split("/")):
        options.append("--path-as-is")  # curl would remove dot segments
    return text, options, None


def render_curl(delivery: Delivery, *, body_limit: int = CURL_BODY_LIMIT) -> str:
    """A shell command that sends the same request, byte for byte.

    The command is POSIX ``sh`` (bash, dash, zsh) and every line is printable, so it survives
    being shown indented. A one-line printable UTF-8 body goes in single quotes; any other
    (and one starting with ``@``, which curl would read as a file name) is piped in through
    ``printf`` with escapes, so raw bytes survive. Header values that are not printable are
    made by ``"$(printf ...)"``; an empty one is written ``Name;``, which curl sends empty.
    Bodies above ``body_limit`` are not inlined: the command reads them from a file and says
    so. A request httpx does not send (a header value with CR, LF or NUL or one that is not
    ASCII, an invalid URL, ...) has no replay: comments say why, and the command is shown
    commented out, so pasting it sends nothing rather than a different request.
    """
    problems: list[str] = []
    url, options, url_problem = _curl_url(delivery.url)
    if url_problem:
        problems.append(url_problem)
    method = delivery.method.upper()  # as httpx sends it
    if not (method.isascii() and _TOKEN.fullmatch(method)):
        problems.append(f"the method {delivery.method!r} is not an HTTP token")
    shown_method = method if _BARE_METHOD.fullmatch(method) else _argument(method)
    lines = [" ".join(["curl -sS -i", *options, "-X", shown_method, _argument(url)])]
    for name, value in delivery.headers:
        problem = _header_problem(name, value)
        if problem:
            problems.append(problem)
        # curl drops a header written "Name:" with nothing after it; "Name;" sends it empty.
        lines.append(f"-H {_argument(f'{name}: {value}' if value else f'{name};')}")
    if "content-type" not in {name.lower() for name, _ in delivery.headers}:
        lines.append("-H 'Content-Type:'")  # curl would otherwise add a form content type
    prefix = ""
    if len(delivery.body) > body_limit:
        lines.append("--data-binary @body.bin")
        prefix = (
            f"# the body ({len(delivery.body)} bytes) is too large to show here;"
            " save the exact bytes as body.bin first\n"
        )
    elif _printable(delivery.body) and not delivery.body.startswith(b"@"):
        lines.append(f"--data-binary {_quote(delivery.body.decode('utf-8'))}")
    else:
        prefix = f"printf -- {_quote(_printf_escape(delivery.body))} | "
        lines.append("--data-binary @-")
    command = prefix + " \\\n  ".join(lines)
    if not problems:
        return command
    notes = ["# not replayable: httpx does not send this request (the command is commented out):"]
    notes += [f"# - {_comment(problem)}" for problem in problems]
    return "\n".join(notes + [f"# {line}" for line in command.split("\n")])


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def _headers(pairs: Iterable[tuple[str, str]]) -> str:
    return "\n".join(f"{printable(name)}: {printable(value)}" for name, value in pairs)
