"""A real SMTP server on 127.0.0.1 (aiosmtpd) whose answers a test can steer.

with SmtpServer() as server:          # or the `smtp_server` fixture in conftest
    server.handler.temp_fail["a@x.fr"] = 2     # answer 451 twice to RCPT a@x.fr
    server.handler.reject.add("b@x.fr")         # answer 550 to RCPT b@x.fr
    server.handler.drop_data = 1                # drop the connection in the next DATA
    server.handler.hold_after = 10              # after 10 messages, hold the 11th's reply
    server.handler.rcpt_answer = "421 4.3.2 Busy"   # answer every RCPT so (a relay deferring all)
    server.handler.data_answer = "554 5.7.1 Spam"   # answer every message's DATA so
    ... server.url, server.handler.messages ...
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)

    @property
    def message_id(self) -> str:
        return self.message["Message-ID"].strip()


@dataclass
class RecordingHandler:
    """Records what it accepts; answers 4xx/5xx or drops the line when told to."""

    messages: list[Received] = field(default_factory=list)
    temp_fail: dict[str, int] = field(default_factory=dict)  # address -> 451s left
    reject: set[str] = field(default_factory=set)  # addresses answered 550 5.1.1
    rcpt_answer: str | None = None  # given to every RCPT instead of accepting it
    data_answer: str | None = None  # given to every DATA after the message is read
    refused: list[str] = field(default_factory=list)  # RCPT/DATA answered with an error
    drop_data: int = 0  # DATA commands still to answer by closing the connection
    hold_after: int | None = None  # record message N+1, then wait for `release` to answer
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        address = address.lower()
        if self.rcpt_answer is not None:
            self.refused.append(address)
            return self.rcpt_answer
        if address in self.reject:
            self.refused.append(address)
            return "550 5.1.1 No such user here"
        if self.temp_fail.get(address, 0) > 0:
            self.temp_fail[address] -= 1
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop_data > 0:
            self.drop_data -= 1
            server.transport.close()
            return "421 closing"  # never reaches the client: the line is gone
        if self.data_answer is not None:
            self.refused.extend(envelope.rcpt_tos)
            return self.data_answer
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        with self.lock:
            self.messages.append(received)
            count = len(self.messages)
        if self.hold_after is not None and count == self.hold_after + 1:
            self.held.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return "250 2.0.0 Accepted"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m.message_id for m in self.messages]


class SmtpServer:
    """An aiosmtpd Controller on a free loopback port, optionally with TLS and AUTH."""

    def __init__(
        self,
        handler: RecordingHandler | None = None,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ):
        self.handler = handler or RecordingHandler()
        self.port = free_port()
        self.credentials = credentials
        kwargs = {}
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ssl_context=implicit_tls, **kwargs
        )
        self.scheme = "smtps" if implicit_tls else "smtp+starttls" if starttls else "smtp"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.handler.release.set()
        self.controller.stop()
