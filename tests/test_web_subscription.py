"""Subscription pages under a real uvicorn on 127.0.0.1, driven with httpx over a socket."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import lxml.html
import pytest
from smtp_server import free_port
from sqlmodel import select
from web_server import LiveServer, eventually

from newsletter import signup, subscribers, tokens
from newsletter.config import Settings, load_settings
from newsletter.db import instance_secret, open_session
from newsletter.models import Delivery, Subscriber
from newsletter.web import create_app

REPO = Path(__file__).parent.parent
ADDRESS = "camille@example.org"


@dataclass
class Served:
    client: httpx.Client
    settings: Settings
    server: LiveServer


@pytest.fixture
def served(home, clock):
    """The site under `jeudis serve`'s uvicorn, with one active subscriber."""
    settings = home.settings
    with open_session(settings) as session:
        subscribers.add(session, clock, ADDRESS, "Camille")
    server = LiveServer(create_app(settings, clock), settings)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield Served(client, settings, server)


@pytest.fixture
def site(served):
    """(httpx client on the live app, settings)."""
    return served.client, served.settings


def reader(settings) -> Subscriber:
    with open_session(settings) as session:
        return subscribers.find(session, ADDRESS)


def token(settings, purpose="unsubscribe", email=ADDRESS, secret=None) -> str:
    row = reader(settings)
    return tokens.sign(secret or instance_secret(settings), purpose, row.id, email)


def page(response: httpx.Response):
    doc = lxml.html.fromstring(response.text)
    assert doc.get("lang") == "fr"
    return doc


def text(doc) -> str:
    return " ".join(doc.xpath("string(//main)").split())


def buttons(doc) -> list[tuple[str, str]]:
    return [(f.get("method"), " ".join(f.text_content().split())) for f in doc.xpath("//form")]


def test_get_unsubscribe_shows_a_button_and_changes_nothing(site):
    client, settings = site
    response = client.get(f"/unsubscribe/{token(settings)}")
    assert response.status_code == 200
    doc = page(response)
    assert buttons(doc) == [("post", "Me désinscrire")]
    assert ADDRESS in text(doc)
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert reader(settings).status == "active"


def test_post_unsubscribes_once(site, clock):
    client, settings = site
    url = f"/unsubscribe/{token(settings)}"
    response = client.post(url)
    assert response.status_code == 200
    assert "ne recevra plus" in text(page(response))
    row = reader(settings)
    assert (row.status, row.unsubscribed_at, row.status_changed_at) == (
        "unsubscribed",
        clock(),
        clock(),
    )
    clock.now += timedelta(days=1)
    assert client.post(url).status_code == 200  # pressed twice: same answer, same history
    assert reader(settings).unsubscribed_at == row.unsubscribed_at
    assert "déjà désinscrite" in text(page(client.get(url)))


def test_one_click_post_from_a_mailbox_provider(site):
    client, settings = site
    response = client.post(
        f"/unsubscribe/{token(settings)}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert reader(settings).status == "unsubscribed"


@pytest.mark.parametrize(
    "forge",
    [
        lambda s: token(s, secret=b"another instance's secret"),
        lambda s: token(s, purpose="confirm"),
        lambda s: token(s, email="someone.else@example.org"),
        lambda s: token(s)[:-2],
        lambda s: "not-a-token",
        lambda s: "99." + token(s).split(".")[1],
        lambda s: "9" * 40 + "." + token(s).split(".")[1],
    ],
    ids=["foreign", "wrong-purpose", "other-address", "cut", "malformed", "unknown", "huge"],
)
def test_forged_tokens_are_refused_and_change_nothing(site, forge):
    client, settings = site
    url = f"/unsubscribe/{forge(settings)}"
    for response in (client.get(url), client.post(url, data={"List-Unsubscribe": "One-Click"})):
        assert response.status_code == 400
        doc = page(response)
        assert doc.xpath("string(//h1)") == "Lien invalide"
        assert buttons(doc) == []
    assert reader(settings).status == "active"


def test_confirm_flow(site, clock):
    client, settings = site
    with open_session(settings) as session:
        invited = signup.invite(session, settings, clock, "dominique@example.org").subscriber
    link = signup.confirm_url(settings, invited).replace(settings.base_url, "")
    doc = page(client.get(link))
    assert buttons(doc) == [("post", "Confirmer mon inscription")]
    with open_session(settings) as session:
        assert subscribers.find(session, "dominique@example.org").status == "pending"
    assert "Inscription confirmée" in text(page(client.post(link)))
    with open_session(settings) as session:
        row = subscribers.find(session, "dominique@example.org")
    assert (row.status, row.confirmed_at) == ("active", clock())
    assert client.get(f"/unsubscribe/{link.rsplit('/', 1)[1]}").status_code == 400


def confirm_deliveries(settings) -> list[Delivery]:
    with open_session(settings) as session:
        query = select(Delivery).where(Delivery.purpose == "confirm").order_by(Delivery.id)
        return list(session.exec(query))


def test_sign_up_queues_a_confirmation_whose_link_confirms(site):
    client, settings = site
    form = page(client.get("/subscribe")).xpath("//form")[0]
    assert form.get("method") == "post"
    assert {i.get("name") for i in form.xpath(".//input")} >= {"email", "name"}
    assert all(form.xpath(f"//label[@for='{n}']") for n in ("email", "name"))

    response = client.post("/subscribe", data={"email": " Eve.Martin@Example.ORG ", "name": "Ève"})
    assert response.status_code == 200
    assert page(response).xpath("string(//h1)") == "Vérifiez votre boîte"
    [delivery] = eventually(lambda: confirm_deliveries(settings))  # done after the answer
    assert (delivery.recipient, delivery.status) == ("eve.martin@example.org", "queued")
    message = delivery.content  # stored whole in the ledger, dated when it leaves
    assert b"Subject: Confirmez votre inscription" in message
    import email
    import email.policy

    body = email.message_from_bytes(message, policy=email.policy.default).get_content()
    assert "Bonjour Ève," in body
    [link] = re.findall(r"https?://\S+/confirm/\S+", body)
    assert link.startswith(settings.base_url + "/confirm/")
    path = link.removeprefix(settings.base_url)
    client.post(path)
    with open_session(settings) as session:
        assert subscribers.find(session, "eve.martin@example.org").status == "active"


def test_sign_up_does_not_reveal_who_is_subscribed(served):
    client, settings = served.client, served.settings
    known = client.post("/subscribe", data={"email": ADDRESS})
    new = client.post("/subscribe", data={"email": "new.reader@example.org"})
    again = client.post("/subscribe", data={"email": "new.reader@example.org"})
    assert known.status_code == new.status_code == again.status_code == 200
    assert known.text == new.text == again.text
    served.server.stop()  # the work done after the answers is finished
    assert [d.recipient for d in confirm_deliveries(settings)] == ["new.reader@example.org"]
    assert reader(settings).status == "active"


def test_sign_up_with_a_bad_address_says_so_and_writes_nothing(site):
    client, settings = site
    response = client.post("/subscribe", data={"email": "camille@", "name": "Camille"})
    assert response.status_code == 400
    doc = page(response)
    assert doc.xpath("//*[@role='alert']")
    assert doc.xpath("//input[@name='email']/@value") == ["camille@"]
    assert doc.xpath("//input[@name='email']/@aria-invalid") == ["true"]
    assert confirm_deliveries(settings) == []


def test_robots_filling_the_hidden_field_get_nothing(site):
    client, settings = site
    response = client.post("/subscribe", data={"email": "bot@example.org", "website": "x"})
    assert page(response).xpath("string(//h1)") == "Vérifiez votre boîte"
    with open_session(settings) as session:
        assert subscribers.find(session, "bot@example.org") is None


def test_archive_is_served_at_the_root(home, clock, live_app):
    settings = home.settings
    app = create_app(settings, clock)
    assert settings.archive_dir.is_dir()
    (settings.archive_dir / "index.html").write_text("<h1>Les numéros</h1>", encoding="utf-8")
    with httpx.Client(base_url=live_app(app), timeout=10) as client:
        assert client.get("/").text == "<h1>Les numéros</h1>"
        assert client.get("/_assets/jeudis.css").status_code == 200
        assert client.get("/nothing-here").status_code == 404


def test_serve_command_listens_on_loopback(home):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
        env=home.env,
        cwd=REPO,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=5)
                break
            except httpx.ConnectError:
                assert process.poll() is None, process.stderr.read()
                time.sleep(0.05)
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---- sign-up abuse (issue 10) ----------------------------------------------------------


def confirmations_to(settings, address: str) -> int:
    """How many confirmation messages the ledger holds for `address`."""
    return sum(d.recipient == address for d in confirm_deliveries(settings))


def serve_signups(home, clock, **env):
    settings = load_settings({**home.env, **env})
    return LiveServer(create_app(settings, clock), settings), settings


def test_fifty_sign_ups_for_one_address_give_one_confirmation(home, clock):
    server, settings = serve_signups(home, clock, JEUDIS_SIGNUP_PER_CLIENT_PER_HOUR="0")
    victim = "victime@example.org"
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        answers = {client.post("/subscribe", data={"email": victim}).text for _ in range(50)}
    assert len(answers) == 1
    assert confirmations_to(settings, victim) == 1
    # A send cycle later (the message left the outbox), a new sign-up still sends nothing.
    with open_session(settings) as session:
        for delivery in session.exec(select(Delivery).where(Delivery.recipient == victim)):
            delivery.status = "sent"
            session.add(delivery)
        session.commit()
    clock.now += timedelta(hours=23)
    with open_session(settings) as session:
        assert signup.invite(session, settings, clock, victim).held == "recent"
    assert confirmations_to(settings, victim) == 1
    clock.now += timedelta(hours=2)  # the next day: one more, for a person who lost the first
    with open_session(settings) as session:
        assert signup.invite(session, settings, clock, victim).delivery is not None
    assert confirmations_to(settings, victim) == 2


def test_one_client_gets_a_limited_number_of_sign_ups(home, clock, caplog):
    server, settings = serve_signups(home, clock)  # default: 10 per client per hour
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        codes = []
        for n in range(15):
            # Forwarding headers from an untrusted peer change nothing: still one client.
            headers = {"X-Forwarded-For": f"198.51.100.{n}"}
            response = client.post(
                "/subscribe", data={"email": f"lecteur{n}@example.org"}, headers=headers
            )
            codes.append(response.status_code)
        assert codes == [200] * 10 + [429] * 5
        assert page(response).xpath("string(//h1)") == "Trop de demandes"
        clock.now += timedelta(minutes=61)
        assert client.post("/subscribe", data={"email": "tard@example.org"}).status_code == 200
    assert len(confirm_deliveries(settings)) == 11
    refused = [r.getMessage() for r in caplog.records if r.name == "jeudis.web"]
    assert len(refused) == 5 and all(line.startswith("refused 429 POST") for line in refused)


def test_clients_behind_a_trusted_proxy_are_counted_apart(home, clock):
    server, settings = serve_signups(
        home, clock, JEUDIS_TRUSTED_PROXIES="127.0.0.1", JEUDIS_SIGNUP_PER_CLIENT_PER_HOUR="1"
    )
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        for n, expected in [(1, 200), (2, 200), (1, 429)]:
            response = client.post(
                "/subscribe",
                data={"email": f"n{n}@example.org"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            assert response.status_code == expected
    with open_session(settings) as session:
        from newsletter.models import RateHit

        keys = [hit.key for hit in session.exec(select(RateHit))]
    assert len(keys) == 2 and not any("198.51" in key for key in keys)  # no address stored


class GatedClock:
    """A clock that makes its callers wait until the test opens the gate (10 s at most)."""

    def __init__(self, now):
        self.now, self.gate = now, threading.Event()

    def __call__(self):
        assert self.gate.wait(10), "the gate was never opened"
        return self.now


def test_the_answer_is_sent_before_any_work_on_the_address(home, clock):
    """New, waiting and active addresses: one answer, given while the work that tells them
    apart has not even started (it waits on the clock, which only the test can release)."""
    settings = load_settings({**home.env, "JEUDIS_SIGNUP_PER_CLIENT_PER_HOUR": "0"})
    with open_session(settings) as session:
        subscribers.add(session, clock, ADDRESS)
        signup.invite(session, settings, clock, "attente@example.org")
    gated = GatedClock(clock.now)
    server = LiveServer(create_app(settings, gated), settings)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        addresses = ["nouveau@example.org", "attente@example.org", ADDRESS]
        answers = [client.post("/subscribe", data={"email": a}) for a in addresses]
        assert {(r.status_code, r.text) for r in answers} == {(200, answers[0].text)}
        with open_session(settings) as session:
            assert subscribers.find(session, "nouveau@example.org") is None  # not yet
        gated.gate.set()
        server.stop()
    assert [d.recipient for d in confirm_deliveries(settings)] == [
        "attente@example.org",
        "nouveau@example.org",
    ]


def test_unconfirmed_sign_ups_expire_and_are_purged(home, clock):
    settings = home.settings
    with open_session(settings) as session:
        old = signup.invite(session, settings, clock, "ancien@example.org").subscriber
    link = signup.confirm_url(settings, old).replace(settings.base_url, "")
    clock.now += timedelta(days=7, minutes=1)
    server = LiveServer(create_app(settings, clock), settings)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post(link).status_code == 400  # expired, even before the purge
        assert client.post("/subscribe", data={"email": "nouveau@example.org"}).status_code == 200
        server.stop()
    with open_session(settings) as session:
        assert subscribers.find(session, "ancien@example.org") is None
        assert subscribers.find(session, "nouveau@example.org").status == "pending"
    assert [d.recipient for d in confirm_deliveries(settings)] == ["nouveau@example.org"]


def test_the_client_limit_holds_for_concurrent_sign_ups(home, clock):
    server, settings = serve_signups(home, clock)  # 10 per client per hour
    with server:

        def sign_up(n: int) -> int:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                return client.post("/subscribe", data={"email": f"l{n}@example.org"}).status_code

        with ThreadPoolExecutor(max_workers=15) as pool:
            codes = sorted(pool.map(sign_up, range(30)))
        server.stop()
    assert codes == [200] * 10 + [429] * 20
    assert len(confirm_deliveries(settings)) == 10


def test_a_form_the_sign_up_cannot_read_gets_the_form_again(site):
    client, settings = site
    response = client.post(
        "/subscribe",
        data={"email": "eve@example.org"},
        files={"website": ("x.txt", b"x" * 100)},
    )
    assert response.status_code == 400
    assert page(response).xpath("//input[@name='email']")
    assert confirm_deliveries(settings) == []


def test_the_purge_keeps_a_bounced_confirmation_counted_but_detached(home, clock):
    from newsletter.models import InboundMessage

    settings = home.settings
    with open_session(settings) as session:
        old = signup.invite(session, settings, clock, "rebond@example.org").subscriber
        session.add(
            InboundMessage(
                digest="d1",
                received_at=clock(),
                kind="hard-bounce",
                action="bounced",
                subscriber_id=old.id,
                detail="550 5.1.1 rebond@example.org: no such user",
                raw=b"To: rebond@example.org",
            )
        )
        session.commit()
    clock.now += timedelta(days=8)
    with open_session(settings) as session:
        assert signup.purge_expired(session, settings, clock()) == 1
        session.commit()
        [kept] = session.exec(select(InboundMessage))
        assert (kept.kind, kept.subscriber_id, kept.raw, kept.detail) == (
            "hard-bounce",
            None,
            None,
            "",
        )
        assert subscribers.find(session, "rebond@example.org") is None
