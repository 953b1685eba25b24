"""The curl command in a failure message replays the request byte for byte (``_http``).

Each case sends a ``Delivery`` with the suite's own ``send`` to a local capture server, builds
the failure message with ``format_failure``, takes the command exactly as the message prints
it (the lines after "Reproduce:", two-space indentation removed), runs it with ``bash -c`` and
``sh -c`` (the command is POSIX: ``printf`` pipes and ``"$(printf ...)"``, no ``$'...'``), and
compares what the server received from curl with what it received from httpx and with what
the delivery holds: method, path and query, the delivery's header values, and the body bytes.

A delivery httpx refuses to send (a header value with CR, LF or NUL, non-ASCII, ...) has no
replay: the message must say so in comments and the command must send nothing.
"""

from __future__ import annotations

import os
import queue
import shutil
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from conformance import load_profile
from conformance._engine.runner import format_failure
from conformance._http import CURL_BODY_LIMIT, Delivery, Exchange, send

CURL = shutil.which("curl")
SHELLS = ["bash", "sh"]

pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")

REQUIREMENT = load_profile("zaits").requirement("zaits.receiver.rejects-bad-signature")
#: Characters ``str.splitlines`` breaks at besides "\n" and "\r".
LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


# -- a server that records requests as raw bytes ---------------------------------------


@dataclass(frozen=True)
class Captured:
    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def values(self, names: set[bytes]) -> list[tuple[bytes, bytes]]:
        """The headers with these (lower-case) names, in order, values without OWS."""
        return [(name, value) for name, value in self.headers if name.lower() in names]


class _Handler(socketserver.StreamRequestHandler):
    timeout = 10

    def handle(self) -> None:
        line = self.rfile.readline(65537)
        if not line.strip():  # a connection closed before a request (httpx refusing one)
            return
        headers = []
        while (raw := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.removesuffix(b"\n").removesuffix(b"\r").partition(b":")
            headers.append((name, value.strip(b" \t")))
        fields = {name.lower(): value for name, value in headers}
        if fields.get(b"expect", b"").lower() == b"100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        length = int(fields.get(b"content-length", b"0"))
        body = self.rfile.read(length)
        method, target, _ = line.split(b" ", 2)
        self.server.captured.put(Captured(method, target, tuple(headers), body))
        self.wfile.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.captured: queue.Queue[Captured] = queue.Queue()

    def take(self) -> list[Captured]:
        """Every request recorded since the last call."""
        found = []
        while True:
            try:
                found.append(self.captured.get_nowait())
            except queue.Empty:
                return found


@dataclass(frozen=True)
class Rig:
    server: _Server
    base: str
    client: httpx.Client
    env: dict[str, str]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    home = tmp_path_factory.mktemp("home")  # no ~/.curlrc, and no proxy variables
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    with httpx.Client(trust_env=False) as client:
        yield Rig(server, f"http://127.0.0.1:{server.server_address[1]}", client, env)
    server.shutdown()
    server.server_close()
    thread.join()


# -- running a delivery both ways ------------------------------------------------------


def _command(message: str) -> str:
    """The command as the message prints it: the lines after the (last) "Reproduce:" line,
    each indented by two spaces, with that indentation removed."""
    _, found, tail = message.rpartition("\nReproduce:")
    assert found, message
    lines = tail.split("\n")[1:]
    assert lines, message
    # Every line is printable, so no reader, terminal or splitlines() breaks it elsewhere.
    assert all(line.startswith("  ") and line.isprintable() for line in lines), lines
    assert tail.splitlines() == tail.split("\n")
    return "\n".join(line[2:] for line in lines)


def _send(rig: Rig, delivery: Delivery) -> tuple[Exchange, Captured | None]:
    """Send with the suite's own ``send``: the exchange and what the server got, if anything."""
    try:
        exchange = send(rig.client, delivery, timeout=10)
    except (UnicodeEncodeError, httpx.InvalidURL) as exc:  # httpx refuses before sending
        exchange = Exchange(request=delivery, error="transport", error_detail=repr(exc))
    captured = rig.server.take()
    assert len(captured) == (1 if exchange.answered else 0), (exchange, captured)
    return exchange, captured[0] if captured else None


def _run(rig: Rig, command: str, shell: str) -> list[Captured]:
    done = subprocess.run(
        [shell, "-c", command.encode("utf-8")],  # as pasted from a UTF-8 terminal
        capture_output=True,
        env=rig.env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, (shell, command, done.stderr.decode(errors="replace"))
    return rig.server.take()


def check_replay(rig: Rig, delivery: Delivery) -> str:
    """Send ``delivery``, replay the failure message's command, compare; return the command."""
    exchange, by_httpx = _send(rig, delivery)
    message = format_failure(
        requirement=REQUIREMENT,
        case_id="c",
        headline="h",
        expected="4xx",
        exhibit=exchange.exhibit(replay_hint="fresh for 300 s"),
    )
    command = _command(message)
    for shell in SHELLS:
        by_curl = _run(rig, command, shell)
        if by_httpx is None:
            # Nothing was sent, so there is nothing to replay: the message says so, and the
            # command (commented out) sends nothing.
            assert command.startswith("# not replayable: httpx does not send this request"), command
            assert all(line.startswith("#") for line in command.split("\n")), command
            assert by_curl == [], (shell, command)
            continue
        assert len(by_curl) == 1, (shell, command, by_curl)
        got = by_curl[0]
        names = {name.lower().encode() for name, _ in delivery.headers}
        expected_headers = [(n.encode(), v.encode("ascii")) for n, v in delivery.headers]
        assert got.method == by_httpx.method == delivery.method.upper().encode(), (shell, command)
        assert got.target == by_httpx.target == httpx.URL(delivery.url).raw_path, (shell, command)
        assert got.values(names) == by_httpx.values(names) == expected_headers, (shell, command)
        assert got.body == by_httpx.body == delivery.body, (shell, command)
        if "content-type" not in {name.lower() for name, _ in delivery.headers}:
            assert got.values({b"content-type"}) == [], (shell, command)
    return command


# -- generated deliveries --------------------------------------------------------------

TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Names whose meaning changes how the request is framed or routed; a check does not send
#: them as data, and curl and httpx would treat them differently.
FRAMING = {"host", "content-length", "transfer-encoding", "expect", "connection", "te", "upgrade"}
SPECIAL = "\x00\t\n\r'\"\\%@-!$`(){}[]*?~#;&| é\u00a0\ufeff\u200d𝄞" + LINE_BREAKS

names = st.one_of(
    st.sampled_from(["Content-Type", "X-Sig", "webhook-signature", "-Dash", "A'b", "X!`$"]),
    st.text(alphabet=TOKEN, min_size=1, max_size=12),
).filter(lambda name: name.lower() not in FRAMING)
# What h11 sends: ASCII without NUL, CR, LF, VT or FF, no whitespace at either end.
sendable_values = st.one_of(
    st.sampled_from(["", "-", "-v", "--data x", "a\tb", "'", '"', "x\x1cy\x1d\x1e", "\x7f"]),
    st.text(
        alphabet=st.characters(codec="ascii", exclude_characters="\x00\r\n\x0b\x0c"),
        max_size=30,
    ).map(lambda value: value.strip(" \t")),
)
# Mostly values httpx sends; now and then any text (one makes the whole delivery unsendable).
values = st.one_of(
    *[sendable_values] * 8,
    st.text(alphabet=st.sampled_from(SPECIAL) | st.characters(), max_size=10),
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=80).map(str.encode),
    st.text(alphabet=SPECIAL, max_size=40).map(str.encode),
    st.text(alphabet=SPECIAL + "ab{}:,", max_size=40).map(lambda text: ("-" + text).encode()),
    st.text(max_size=40).map(lambda text: ("@" + text).encode()),
    st.just(b""),
)
path_chars = st.sampled_from("/-._~!$&'()*+,;=:@%[]{}|^`\"<> ?#\\é\u2028") | st.characters(
    codec="ascii", exclude_categories=["Cc"]
)
methods = st.one_of(
    st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET", "OPTIONS", "post", "Patch"]),
    st.text(alphabet=TOKEN, min_size=1, max_size=8),
).filter(lambda method: method.upper() not in {"HEAD", "CONNECT"})


@st.composite
def deliveries(draw: st.DrawFn, base: str) -> Delivery:
    path = draw(st.text(alphabet=path_chars, max_size=20))
    query = draw(st.text(alphabet=path_chars, max_size=20))
    headers = draw(st.lists(st.tuples(names, values), max_size=4))
    return Delivery(
        url=f"{base}/{path}?{query}",
        headers=tuple(headers),
        body=draw(bodies),
        method=draw(methods),
        note=draw(st.text(max_size=20)),
    )


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_the_printed_command_replays_the_request(rig: Rig, data: st.DataObject) -> None:
    """Any delivery: the command as the failure message prints it sends what httpx sent."""
    command = check_replay(rig, data.draw(deliveries(rig.base)))
    event("not sendable" if command.startswith("# not replayable") else "replayed")
    event("body through printf" if "--data-binary @-" in command else "body quoted")
    event("header through printf" if '-H "$(printf' in command else "headers quoted")


# -- examples --------------------------------------------------------------------------


def _delivery(
    rig: Rig, body: bytes = b"{}", headers: tuple[tuple[str, str], ...] = (), path: str = "/hook"
) -> Delivery:
    base = (("Content-Type", "application/json"), ("X-Sig", "sha256=ab"))
    return Delivery(url=rig.base + path, headers=base + headers, body=body, note="n")


@pytest.mark.parametrize(
    "body",
    [
        "\x85".encode(),
        "\u2028".encode(),
        "\u2029".encode(),
        '{"text":"a\u2028b\u2029c\x85d"}'.encode(),
        *(f"x{char}y".encode() for char in LINE_BREAKS),
        b"-",
        b"-d @/etc/passwd",
        b"--data-binary x",
        b"",
        b"@/etc/hostname",
        b"@-",
        "\ufeff{}".encode(),
        b'it\'s "quoted" $HOME `id` !!',
    ],
    ids=repr,
)
def test_bodies(rig: Rig, body: bytes) -> None:
    command = check_replay(rig, _delivery(rig, body))
    assert not set(command) & set(LINE_BREAKS), command


@pytest.mark.parametrize(
    "value",
    ["", "-", "-H x", "a\tb", "a \t b", "'", "it's", '"$(id)"', "!!", "x\x1c\x1d\x1ey", "\x7f\x01"],
    ids=repr,
)
def test_header_values(rig: Rig, value: str) -> None:
    """Values httpx can send (ASCII, no CR, LF or NUL) arrive exactly as sent, empty ones
    included (sent empty, not dropped)."""
    command = check_replay(rig, _delivery(rig, headers=(("X-Value", value),)))
    if value == "":
        assert "-H 'X-Value;'" in command


@pytest.mark.parametrize(
    "value", ["\x85", "\u2028", "\u2029", "a\u2028b", "é", "a\nb", "a\r\nX-Injected: 1", "a\x00b"]
)
def test_header_values_httpx_cannot_send(rig: Rig, value: str) -> None:
    """httpx sends str header values as ASCII only and h11 refuses CR, LF and NUL: there is
    no request to replay, and the message says so instead of printing a different one."""
    command = check_replay(rig, _delivery(rig, headers=(("X-Value", value),)))
    assert command.split("\n")[1].startswith("# - the value of X-Value ")
    assert all(char not in command for char in LINE_BREAKS + "\r\x00")


def test_header_names_and_missing_content_type(rig: Rig) -> None:
    """A name starting with '-' or holding shell characters is sent as it is; without a
    Content-Type curl adds none."""
    delivery = Delivery(
        url=rig.base + "/hook",
        headers=(("-Dash", "-v"), ("A'b", "c"), ("X!`$", "$(id)"), ("X-Sig", "")),
        body=b"{}",
    )
    check_replay(rig, delivery)


@pytest.mark.parametrize(
    "path",
    [
        "/hooks/[1-2]/{a,b}?x=[0]&y={z}",
        "/a b/é?q=a b&r=\u2028",
        "/p?a=1&b=%zz&c=%41&d='\"",
        "/a/../b/./c?x=..",
        "//double?",
        "/p#fragment",
    ],
)
def test_paths_and_queries(rig: Rig, path: str) -> None:
    """Globbing characters, dot segments and percent escapes reach the server as httpx sent
    them."""
    check_replay(rig, _delivery(rig, path=path))


@pytest.mark.parametrize("method", ["put", "X-CUSTOM", "-X", "A'B|C"])
def test_methods(rig: Rig, method: str) -> None:
    delivery = _delivery(rig)
    check_replay(rig, Delivery(url=delivery.url, headers=delivery.headers, body=b"", method=method))


def test_a_body_at_the_limit(rig: Rig) -> None:
    """The largest inlined body, every byte value, fits on curl's command line."""
    body = bytes(range(256)) * (CURL_BODY_LIMIT // 256)
    assert len(body) == CURL_BODY_LIMIT
    command = check_replay(rig, _delivery(rig, body))
    assert command.startswith("printf -- ")


def test_a_large_body_is_read_from_a_file(rig: Rig, tmp_path: Path) -> None:
    """Above the limit the command reads body.bin, saved beside it, and says so first."""
    body = bytes(range(256)) * (CURL_BODY_LIMIT // 128)
    delivery = _delivery(rig, body)
    exchange, _ = _send(rig, delivery)
    message = format_failure(
        requirement=REQUIREMENT, case_id="c", headline="h", expected="e", exhibit=exchange.exhibit()
    )
    command = _command(message)
    assert command.startswith("# the body (")
    (tmp_path / "body.bin").write_bytes(body)
    done = subprocess.run(
        ["sh", "-c", command], cwd=tmp_path, env=rig.env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    (got,) = rig.server.take()
    assert got.body == body
