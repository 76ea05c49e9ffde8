"""Limits under `jeudis serve`'s uvicorn on 127.0.0.1: bodies, tokens, stalled connections.

Issue 10: a 100 MB body to /subscribe was accepted; 1,100 half-sent requests made the site
unreachable and logged 155 MB of tracebacks; a token id of `²` or 5,000 digits gave a 500.
Raw sockets play the attacker (loopback only, bounded in count and time).
"""

from __future__ import annotations

import logging
import select
import socket
from contextlib import ExitStack

import httpx
import lxml.html
import pytest
from web_server import LiveServer, eventually

from newsletter import subscribers
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.web import create_app

MB = 1024 * 1024


@pytest.fixture
def serve(home, clock):
    """`serve(**env)` starts the site: (server, settings); it is stopped after the test."""
    with ExitStack() as stack:

        def start(**env):
            settings = load_settings({**home.env, **env})
            server = LiveServer(create_app(settings, clock), settings)
            return stack.enter_context(server), settings

        yield start


def connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the timeout)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def answered(sock: socket.socket) -> bool:
    """The server has sent something (or closed): poll, as fds may pass select()'s 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def head(host_port: int, length: str, extra: str = "") -> bytes:
    return (
        f"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1:{host_port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n{extra}"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def french_page(raw: bytes, status: int, title: str) -> None:
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(f"HTTP/1.1 {status} ".encode()), status_line
    body = rest.partition(b"\r\n\r\n")[2]
    doc = lxml.html.fromstring(body.decode())
    assert doc.get("lang") == "fr"
    assert doc.xpath("string(//h1)") == title


def test_a_20_mb_body_gets_413_without_being_read(serve):
    server, settings = serve()
    with connect(server) as sock:
        sock.sendall(head(server.port, str(20 * MB)) + b"email=" + b"a" * 65536)
        french_page(read_response(sock), 413, "Envoi trop volumineux")
    with open_session(settings) as session:
        assert subscribers.list_subscribers(session) == []


def test_a_chunked_body_is_cut_at_the_limit(serve):
    server, _settings = serve(JEUDIS_WEB_MAX_BODY_BYTES="100000")
    sent = 0
    chunk = b"a" * 16384
    with connect(server) as sock:
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        # Send up to 20 MB, stopping as soon as the server has answered.
        while sent < 20 * MB and not answered(sock):
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        french_page(read_response(sock), 413, "Envoi trop volumineux")
    assert sent < 20 * MB


def test_a_small_form_still_passes(serve):
    server, _settings = serve()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post("/subscribe", data={"email": "eve@example.org", "name": "É" * 300})
        assert response.status_code == 200


@pytest.mark.parametrize(
    "token",
    ["²", "²." + "x" * 24, "9" * 5000 + ".abc", "٣.abc", "é", "%C3%A9.%FF", "", ".x", "1.", "-1.x"],
    ids=["sup2", "sup2-mac", "5000-digits", "arabic-digit", "accent", "bytes", "empty", "dot"]
    + ["no-mac", "negative"],
)
@pytest.mark.parametrize("purpose", ["confirm", "unsubscribe"])
def test_odd_tokens_get_the_invalid_link_page(serve, purpose, token):
    server, _settings = serve()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for method in ("GET", "POST"):
            response = client.request(method, f"/{purpose}/{token}")
            assert response.status_code == 400, (method, response.text[:200])
            doc = lxml.html.fromstring(response.text)
            assert doc.xpath("string(//h1)") == "Lien invalide"


def test_200_half_open_connections_leave_the_site_answering(serve, caplog):
    server, _settings = serve()
    with ExitStack() as stack, httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(200):
            sock = stack.enter_context(connect(server))
            sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stall: ")
        assert client.get("/subscribe").status_code == 200
    assert "Traceback" not in caplog.text


def test_stalled_connections_make_room_when_the_cap_is_reached(serve, caplog):
    server, _settings = serve(JEUDIS_WEB_MAX_CONNECTIONS="50")
    with caplog.at_level(logging.WARNING, logger="jeudis.web"), ExitStack() as stack:
        stalled = []
        for _ in range(200):
            sock = stack.enter_context(connect(server))
            sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            stalled.append(sock)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/subscribe").status_code == 200
        # The oldest stalled ones were closed to make room: they read end of file.
        stalled[0].settimeout(10)
        assert read_response(stalled[0]) == b""
    dropped = [r for r in caplog.records if "over 50 connections" in r.getMessage()]
    assert len(dropped) >= 150
    assert all(r.exc_info is None for r in caplog.records)


def test_a_request_head_that_never_ends_is_closed(serve, caplog):
    server, _settings = serve(JEUDIS_WEB_HEADER_TIMEOUT="0.3")
    with caplog.at_level(logging.WARNING, logger="jeudis.web"), connect(server) as sock:
        sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert read_response(sock) == b""  # closed by the server, within the socket timeout
    eventually(lambda: "no complete request within 0.3 s" in caplog.text)


def test_a_half_sent_body_is_one_log_line_not_a_traceback(serve, caplog):
    server, settings = serve(JEUDIS_WEB_BODY_TIMEOUT="0.3")
    with caplog.at_level(logging.INFO):
        with connect(server) as sock:  # hangs up halfway through its body
            sock.sendall(head(server.port, "1000") + b"email=a")
        with connect(server) as sock:  # stalls halfway through its body
            sock.sendall(head(server.port, "1000") + b"email=a")
            french_page(read_response(sock), 408, "Délai dépassé")
        eventually(lambda: "hung up POST" in caplog.text)
    lines = [r.getMessage() for r in caplog.records if r.name == "jeudis.web"]
    assert len(lines) == 2, lines
    assert "Traceback" not in caplog.text and "Exception in ASGI" not in caplog.text
    with open_session(settings) as session:
        assert subscribers.list_subscribers(session) == []
