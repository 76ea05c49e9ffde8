"""The relay: URLs and credentials, TLS, and DKIM on the bytes the relay received."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess

import dkim
import pytest
from delivery_helpers import ADDRESSES, deliveries, queue, send, subscriber
from smtp_server import SmtpServer

from newsletter.db import open_session
from newsletter.delivery import RelayError, send_outbox
from newsletter.delivery.relay import Relay, parse_smtp_url
from newsletter.errors import SettingsError


def test_smtp_url_parsing():
    assert parse_smtp_url("smtp://relay.example.org") == parse_smtp_url(
        "smtp://relay.example.org:25"
    )
    assert parse_smtp_url("smtp+starttls://relay.example.org").port == 587
    assert parse_smtp_url("smtps://relay.example.org").port == 465
    target = parse_smtp_url("smtps://jeudis%40lerameau.fr:p%40ss%3Aw%2Frd@mail.example.org:2465")
    assert (target.scheme, target.host, target.port) == ("smtps", "mail.example.org", 2465)
    assert (target.username, target.password) == ("jeudis@lerameau.fr", "p@ss:w/rd")
    assert "p@ss" not in str(target) and "p@ss" not in repr(target)
    for bad in ("http://relay", "smtp://", "smtp://relay:notaport"):
        with pytest.raises(SettingsError, match="smtp_url"):
            parse_smtp_url(bad)
    with pytest.raises(SettingsError) as caught:
        parse_smtp_url("ftp://user:secret@relay")
    assert "secret" not in str(caught.value)


def test_credentials_from_the_url_are_decoded(home, clock):
    queue(home, clock, ADDRESSES[:1])
    with SmtpServer(credentials=("jeudis@lerameau.fr", "p@ss:w/rd")) as server:
        url = f"smtp://jeudis%40lerameau.fr:p%40ss%3Aw%2Frd@127.0.0.1:{server.port}"
        settings = home.with_env(JEUDIS_SMTP_URL=url).settings
        with open_session(settings) as session:
            assert send_outbox(session, settings, clock, rate=0).sent == 1
        assert len(server.handler.messages) == 1


def test_wrong_password_stops_without_bouncing(home, clock):
    queue(home, clock, ADDRESSES)
    with SmtpServer(credentials=("jeudis", "right")) as server:
        settings = home.with_env(JEUDIS_SMTP_URL=f"smtp://jeudis:wrong@127.0.0.1:{server.port}")
        with open_session(settings.settings) as session, pytest.raises(RelayError, match="535"):
            send_outbox(session, settings.settings, clock, rate=0)
        assert server.handler.messages == []
    assert {r.status for r in deliveries(home).values()} == {"queued"}
    assert subscriber(home, "ada@example.org").status == "active"


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, trusted by the client through SSL_CERT_FILE."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("mode", ["starttls", "implicit_tls"])
def test_tls_relays(home, clock, certificate, mode):
    queue(home, clock, ADDRESSES[:2])
    with SmtpServer(**{mode: certificate}) as server:
        assert server.url.startswith("smtp+starttls://" if mode == "starttls" else "smtps://")
        assert send(home, clock, server, rate=0).sent == 2
        assert len(server.handler.messages) == 2


def test_untrusted_certificate_stops_the_run(home, clock, certificate, monkeypatch):
    queue(home, clock, ADDRESSES[:1])
    monkeypatch.delenv("SSL_CERT_FILE")
    with SmtpServer(starttls=certificate) as server, pytest.raises(RelayError, match="CERT"):
        send(home, clock, server, rate=0)
    assert deliveries(home)["ada@example.org"].status == "queued"


# ---------------------------------------------------------------- DKIM


@pytest.fixture
def dkim_key(tmp_path):
    """An RSA key and the DNS TXT record that publishes it."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command")
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_verifies_on_the_received_bytes_and_covers_list_unsubscribe(
    home, clock, smtp_server, dkim_key
):
    key, record = dkim_key
    queue(home, clock, ADDRESSES[:2])
    env = {
        "JEUDIS_SMTP_URL": smtp_server.url,
        "JEUDIS_DKIM_KEY_FILE": str(key),
        "JEUDIS_DKIM_SELECTOR": "jeudis2026",
        "JEUDIS_DKIM_DOMAIN": "lerameau.example.org",
    }
    settings = home.with_env(**env).settings
    with open_session(settings) as session:
        assert send_outbox(session, settings, clock, rate=0).sent == 2

    def dns(name, timeout=5):
        assert name == b"jeudis2026._domainkey.lerameau.example.org."
        return record

    for received in smtp_server.handler.messages:
        data = received.data
        assert dkim.verify(data, dnsfunc=dns)
        signed = received.message["DKIM-Signature"]
        tags = dict(part.strip().split("=", 1) for part in signed.split(";"))
        signed_headers = "".join(tags["h"].split()).lower().split(":")
        assert {"from", "date", "list-unsubscribe", "list-unsubscribe-post", "feedback-id"} <= set(
            signed_headers
        )
        assert not dkim.verify(data.replace(b"One-Click", b"One-click"), dnsfunc=dns)


def test_partial_dkim_settings_are_refused(home, clock, smtp_server):
    queue(home, clock, ADDRESSES[:1])
    settings = home.with_env(JEUDIS_DKIM_SELECTOR="jeudis2026").settings
    with open_session(settings) as session, pytest.raises(SettingsError, match="dkim_key_file"):
        send_outbox(session, settings, clock)
    assert deliveries(home)["ada@example.org"].attempts == 0


@pytest.mark.parametrize("ending", [b"\r\n", b""])
def test_lines_starting_with_a_dot_arrive_as_they_left(smtp_server, ending):
    """DATA's dot-stuffing (done by the relay module, not smtplib): a line that is a single
    dot or starts with dots must not end the message early or lose a dot."""
    data = b"Subject: points\r\n\r\n.une ligne\r\n.\r\n..deux\r\nfin\r\n.\r\n\r\n.derniere" + ending
    relay = Relay(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), 10)
    try:
        answer = relay.send("bounces@lerameau.example.org", "ada@example.org", data)
        again = relay.send("bounces@lerameau.example.org", "ada@example.org", b".\r\n" + data)
    finally:
        relay.close()
    assert (answer.code, again.code) == (250, 250)
    [first, second] = smtp_server.handler.messages
    assert first.data == data if ending else first.data == data + b"\r\n"
    assert second.data == b".\r\n" + first.data
