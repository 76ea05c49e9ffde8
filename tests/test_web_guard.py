"""Hosts, origins and who is local: the whole site under `jeudis serve`'s uvicorn on 127.0.0.1.

The attacks of issue 10: a DNS-rebinding page (its own host name resolving to 127.0.0.1)
reached the desk and queued an item; a proxy that sends no X-Forwarded-For opened the desk
without login.
"""

from __future__ import annotations

import logging

import httpx
import lxml.html
import pytest
from jeudis_cli import FIXTURES, run
from sqlmodel import select
from web_server import LiveServer

from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.models import ContentItem
from newsletter.web import create_app, guard
from newsletter.web.auth import hash_password

PUBLIC = "https://jeudis.example.org"
ITEM = {"kind": "tool", "title": "Un outil piégé", "url": "https://evil.example/outil/"}


def instance(home, clock, **env):
    """A served instance with the sample content: (server, settings)."""
    assert run(home.path, "import", str(FIXTURES / "content" / "good")).exit_code == 0
    settings = load_settings({**home.env, **env})
    return LiveServer(create_app(settings, clock), settings), settings


def titles(settings) -> list[str]:
    with open_session(settings) as session:
        return list(session.exec(select(ContentItem.title)))


def csrf(client: httpx.Client, headers=None) -> str:
    response = client.get("/desk/items/new", headers=headers)
    assert response.status_code == 200, response.text[:300]
    return lxml.html.fromstring(response.text).xpath('//input[@name="csrf_token"]/@value')[0]


def refused_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    doc = lxml.html.fromstring(response.text)
    assert doc.get("lang") == "fr"
    assert doc.xpath("string(//h1)") == "Requête refusée"


@pytest.mark.parametrize("path", ["/desk/", "/subscribe", "/", "/desk/live"])
def test_a_foreign_host_is_refused_everywhere(home, clock, path, caplog):
    server, _settings = instance(home, clock)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        with caplog.at_level(logging.WARNING, logger="jeudis.web"):
            response = client.get(path, headers={"Host": f"rebind.evil.example:{server.port}"})
        refused_page(response, 400)
        assert "rebind.evil.example" not in response.text
        [line] = [r.getMessage() for r in caplog.records if r.name == "jeudis.web"]
        assert line.startswith("refused 400 GET") and "rebind.evil.example" in line
        assert all(r.exc_info is None for r in caplog.records)


def test_dns_rebinding_cannot_queue_an_item(home, clock):
    """The attacker's page and its host name agree (Host and Origin both say evil)."""
    server, settings = instance(home, clock)
    evil = f"rebind.evil.example:{server.port}"
    before = titles(settings)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        token = csrf(client)  # even with a real token of this session
        response = client.post(
            "/desk/items/new",
            data={**ITEM, "csrf_token": token},
            headers={"Host": evil, "Origin": f"http://{evil}"},
        )
        refused_page(response, 400)
    assert titles(settings) == before


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
def test_loopback_names_and_the_public_host_are_answered(home, clock, host):
    server, _settings = instance(home, clock, JEUDIS_BASE_URL=PUBLIC)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        named = {"Host": f"{host}:{server.port}"}
        assert client.get("/subscribe", headers=named).status_code == 200
        assert client.get("/subscribe", headers={"Host": "jeudis.example.org"}).status_code == 200


def test_a_foreign_origin_is_refused_even_when_host_matches_it(home, clock):
    server, settings = instance(home, clock)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        local = f"127.0.0.1:{server.port}"
        for origin, host in [
            ("https://evil.example", local),
            (f"http://127.0.0.1:{server.port + 1}", f"127.0.0.1:{server.port + 1}"),
            (f"http://localhost:{server.port + 1}", f"localhost:{server.port + 1}"),
            ("null", local),
        ]:
            response = client.post(
                "/desk/items/new",
                data={**ITEM, "csrf_token": csrf(client)},
                headers={"Host": host, "Origin": origin},
            )
            refused_page(response, 403)
        referer = client.post(
            "/desk/items/new",
            data={**ITEM, "csrf_token": csrf(client)},
            headers={"Referer": "https://evil.example/page"},
        )
        refused_page(referer, 403)
        assert ITEM["title"] not in titles(settings)
        # This server's own loopback origin, under any loopback name, is the desk itself.
        own = client.post(
            "/desk/items/new",
            data={**ITEM, "csrf_token": csrf(client)},
            headers={
                "Host": f"localhost:{server.port}",
                "Origin": f"http://localhost:{server.port}",
            },
        )
        assert own.status_code == 303
    assert ITEM["title"] in titles(settings)


def test_behind_a_proxy_only_the_public_origin_may_post(home, clock):
    hashed = hash_password("trois petits chats")
    server, settings = instance(
        home,
        clock,
        JEUDIS_BASE_URL=PUBLIC,
        JEUDIS_DESK_PASSWORD_HASH=hashed,
        JEUDIS_TRUSTED_PROXIES="127.0.0.1",
    )
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        public = {"Host": "jeudis.example.org", "X-Forwarded-For": "198.51.100.7"}
        token = lxml.html.fromstring(client.get("/desk/login", headers=public).text).xpath(
            '//input[@name="csrf_token"]/@value'
        )[0]
        form = {"csrf_token": token, "password": "trois petits chats", "next": "/"}
        loopback = {**public, "Origin": f"http://127.0.0.1:{server.port}"}
        # Relayed by the proxy, so a loopback origin is not the desk's: only base_url's is.
        assert client.post("/desk/login", data=form, headers=loopback).status_code == 403
        ok = client.post("/desk/login", data=form, headers={**public, "Origin": PUBLIC})
        assert ok.status_code == 303


@pytest.mark.parametrize(
    ("env", "headers"),
    [
        ({}, {"X-Forwarded-For": "203.0.113.9"}),
        ({}, {"Forwarded": "for=203.0.113.9"}),
        ({}, {"X-Real-IP": "203.0.113.9"}),
        ({}, {"X-Forwarded-For": "127.0.0.1"}),
        ({"JEUDIS_TRUSTED_PROXIES": "127.0.0.1"}, {}),
        ({"JEUDIS_TRUSTED_PROXIES": "127.0.0.0/8, ::1"}, {"X-Forwarded-For": "127.0.0.1"}),
        # nginx's default proxy_pass sends no forwarding header at all: the published
        # base_url is what says that a loopback peer may be relaying the internet.
        ({"JEUDIS_BASE_URL": PUBLIC}, {}),
        ({"JEUDIS_BASE_URL": PUBLIC}, {"Host": "jeudis.example.org"}),
    ],
    ids=["xff", "forwarded", "x-real-ip", "xff-loopback", "proxy", "proxy-net", "pub", "pub-host"],
)
def test_a_relayed_request_is_not_local_and_must_log_in(home, clock, env, headers):
    server, _settings = instance(home, clock, **env)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get("/desk/queue", headers=headers)
        assert response.status_code == 303
        assert response.headers["location"].endswith("/desk/login?next=%2Fqueue")


def test_a_direct_loopback_request_opens_the_local_desk(home, clock):
    server, _settings = instance(home, clock)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/desk/queue").status_code == 200


def gate(tmp_path, **env):
    return guard.Gate(load_settings({"JEUDIS_HOME": str(tmp_path), **env}))


def scope(peer: str, *headers: tuple[str, str], port: int = 8017) -> dict:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return {"type": "http", "client": (peer, 50000), "server": ("127.0.0.1", port), "headers": raw}


def test_the_client_behind_trusted_proxies_is_the_last_untrusted_address(tmp_path):
    proxies = gate(tmp_path, JEUDIS_TRUSTED_PROXIES="127.0.0.1,10.0.0.0/8")
    # A visitor may write anything leftmost; the proxy appends the address it saw.
    forged = scope("127.0.0.1", ("X-Forwarded-For", "127.0.0.1, 198.51.100.7, 10.1.2.3"))
    assert proxies.client_address(forged) == "198.51.100.7"
    assert not proxies.is_local(forged)
    # Without trusted proxies, forwarding headers are nobody's word: the peer is the client.
    plain = gate(tmp_path)
    assert plain.client_address(forged) == "127.0.0.1"
    assert not plain.is_local(forged)
    assert plain.is_local(scope("127.0.0.1"))
    assert not plain.is_local(scope("192.0.2.1"))


def test_bad_trusted_proxies_are_named(tmp_path):
    from newsletter.errors import SettingsError

    with pytest.raises(SettingsError, match="trusted_proxies: 'nginx' is not an IP"):
        gate(tmp_path, JEUDIS_TRUSTED_PROXIES="127.0.0.1, nginx")
    (tmp_path / "jeudis.toml").write_text('trusted_proxies = ["10.0.0.1", "fd00::/8"]\n')
    assert gate(tmp_path).settings.trusted_proxies == ("10.0.0.1", "fd00::/8")
