"""Editors' accounts over real HTTP (uvicorn on 127.0.0.1): named logins and roles, login
throttling with a clock the test moves (no sleeping), sessions revoked on the server, and
every change written to the audit log with its author."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import lxml.html
import pytest
from jeudis_cli import MONDAY, REPO, run
from sqlmodel import select
from starlette.applications import Starlette
from starlette.routing import Mount

from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.models import Delivery, DeskSession, Editor, Subscriber
from newsletter.queue import ItemFields, add_item
from newsletter.web import auth
from newsletter.web.desk import desk_app

ALICE, BOB = ("alice", "alice a un long mot de passe"), ("bob", "bob a aussi un mot de passe")


class MovingClock:
    """Stands still until the test moves it."""

    def __init__(self):
        self.now = MONDAY

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


class Browserless:
    """One visitor of the desk: keeps its cookie, reads CSRF tokens from the pages."""

    def __init__(self, base: str, cookies: dict | None = None):
        self.http = httpx.Client(
            base_url=f"{base}/desk", timeout=60, follow_redirects=False, cookies=cookies
        )

    def token(self, path: str) -> str:
        response = self.http.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return lxml.html.fromstring(response.text).xpath('//input[@name="csrf_token"]/@value')[0]

    def post(self, path: str, data: dict, page: str) -> httpx.Response:
        return self.http.post(path, data={"csrf_token": self.token(page), **data})

    def login(self, name: str, password: str) -> httpx.Response:
        return self.post("/login", {"name": name, "password": password, "next": "/"}, "/login")

    def status(self, path: str = "/queue") -> int:
        return self.http.get(path).status_code


@pytest.fixture
def desk(live_app, tmp_path):
    """Start the desk on a fresh instance with an admin (alice) and an editor (bob)."""

    class Started:
        def __init__(self, **env):
            self.home = tmp_path / "home"
            self.home.mkdir()
            self.env = env
            assert self.cli("import", str(REPO / "content")).exit_code == 0
            for (name, password), role in ((ALICE, "admin"), (BOB, "editor")):
                added = self.cli(
                    "editor", "add", name, "--role", role, "--password-stdin", input=password
                )
                assert added.exit_code == 0, added.output
            self.settings = load_settings({"JEUDIS_HOME": str(self.home), **env})
            self.clock = MovingClock()
            app = desk_app(self.settings, self.clock, retry_sleep=lambda s: None)
            self.base = live_app(Starlette(routes=[Mount("/desk", app=app)]))

        def cli(self, *args, input=None):
            return run(self.home, *args, env=self.env, input=input)

        def visitor(self, cookies=None) -> Browserless:
            return Browserless(self.base, cookies)

        def log(self) -> list[dict]:
            result = self.cli("log", "--json", "--limit", "1000")
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

    return Started


def french_error(response: httpx.Response) -> str:
    return lxml.html.fromstring(response.text).xpath('string(//*[@role="alert"])').strip()


# ---- login and throttling ------------------------------------------------------------------


def test_once_an_account_exists_the_desk_asks_for_a_name_and_password(desk):
    started = desk()
    visitor = started.visitor()
    assert visitor.status("/queue") == 303  # loopback, but accounts exist
    wrong = visitor.login("alice", "pas le bon mot de passe")
    assert wrong.status_code == 401 and french_error(wrong) == "Nom ou mot de passe incorrect."
    unknown = visitor.login("personne", ALICE[1])
    assert unknown.status_code == 401 and french_error(unknown) == french_error(wrong)
    right = visitor.login(*ALICE)
    assert right.status_code == 303 and right.headers["location"] == "/desk/"
    page = lxml.html.fromstring(visitor.http.get("/").text)
    assert "alice (administrateur)" in page.text_content()


def test_login_backs_off_then_locks_the_account(desk):
    started = desk()
    visitor, clock = started.visitor(), started.clock
    for _ in range(3):  # three free mistakes
        assert visitor.login("alice", "mauvais mot de passe").status_code == 401
    # From now on each failure makes the account wait, twice as long each time; even the
    # right password is refused while it waits (without being checked).
    waiting = visitor.login(*ALICE)
    assert waiting.status_code == 429
    assert french_error(waiting) == (
        "Trop de tentatives de connexion : patientez 2 secondes avant de réessayer."
    )
    waits = [2]
    for _failures in range(4, 11):
        clock.advance(seconds=waits[-1])
        assert visitor.login("alice", "mauvais mot de passe").status_code == 401
        refused = visitor.login(*ALICE)
        assert refused.status_code == 429
        waits.append(2 * waits[-1])
    assert waits[:7] == [2, 4, 8, 16, 32, 64, 128]
    # The tenth failure locks the account for 15 minutes.
    assert "bloqué" in french_error(refused) and "15 minutes" in french_error(refused)
    clock.advance(minutes=14)
    assert visitor.login(*ALICE).status_code == 429
    clock.advance(minutes=1, seconds=1)
    assert visitor.login(*ALICE).status_code == 303


def test_one_client_trying_many_accounts_is_slowed_down_too(desk):
    started = desk()
    visitor = started.visitor()
    for n in range(10):  # one wrong try per name: no account reaches its limit
        assert visitor.login(f"nom{n}", "mauvais mot de passe").status_code == 401
    refused = visitor.login(*BOB)
    assert refused.status_code == 429 and "patientez 2 secondes" in french_error(refused)
    started.clock.advance(seconds=2)
    assert visitor.login(*BOB).status_code == 303


# ---- sessions kept on the server ------------------------------------------------------------


def test_a_cookie_replayed_after_logout_is_refused(desk):
    started = desk()
    visitor = started.visitor()
    assert visitor.login(*ALICE).status_code == 303
    cookie = visitor.http.cookies["jeudis_desk"]
    assert started.visitor({"jeudis_desk": cookie}).status() == 200  # the replay works…
    assert visitor.post("/logout", {}, "/queue").status_code == 303
    assert visitor.status() == 303
    assert started.visitor({"jeudis_desk": cookie}).status() == 303  # …and not after logout
    with open_session(started.settings) as session:
        assert session.exec(select(DeskSession)).all() == []


def test_a_new_password_ends_every_session_of_the_account(desk):
    started = desk()
    laptop, phone, other = started.visitor(), started.visitor(), started.visitor()
    for visitor, who in ((laptop, ALICE), (phone, ALICE), (other, BOB)):
        assert visitor.login(*who).status_code == 303
    changed = started.cli(
        "editor", "password", "alice", "--password-stdin", input="un tout nouveau mot de passe"
    )
    assert changed.exit_code == 0 and "2 session(s) ended" in changed.output
    assert laptop.status() == 303 and phone.status() == 303
    assert other.status() == 200  # bob's session is his own
    assert laptop.login(*ALICE).status_code == 401
    assert laptop.login("alice", "un tout nouveau mot de passe").status_code == 303


def test_removing_an_account_ends_its_sessions(desk):
    started = desk()
    visitor = started.visitor()
    assert visitor.login(*BOB).status_code == 303
    assert started.cli("editor", "remove", "bob").exit_code == 0
    assert visitor.status() == 303


def test_a_session_ends_after_30_idle_minutes_and_after_its_lifetime(desk):
    started = desk(JEUDIS_DESK_SESSION_HOURS="1")
    visitor, clock = started.visitor(), started.clock
    assert visitor.login(*ALICE).status_code == 303
    for _ in range(2):  # in use: it lives on
        clock.advance(minutes=29)
        assert visitor.status() == 200
    clock.advance(minutes=3)  # 61 minutes after login: past its lifetime
    assert visitor.status() == 303
    assert visitor.login(*ALICE).status_code == 303
    clock.advance(minutes=31)
    assert visitor.status() == 303


# ---- roles ---------------------------------------------------------------------------------


def test_an_editor_cannot_do_an_admins_action(desk, smtp_server):
    started = desk(JEUDIS_SMTP_URL=smtp_server.url)
    bob = started.visitor()
    assert bob.login(*BOB).status_code == 303
    assert started.cli("subscriber", "add", "camille@example.org").exit_code == 0
    for path in ("/readers", "/readers/export?email=camille@example.org"):
        refused = bob.http.get(path)
        assert refused.status_code == 403
        assert "Réservé aux administrateurs" in lxml.html.fromstring(refused.text).text_content()
    test = bob.post(
        "/preview/test",
        {"date": "2026-11-26", "send_key": "k" * 24, "address": "bob@example.org"},
        "/preview",
    )
    forget = bob.post(
        "/readers/forget",
        {"email": "camille@example.org", "confirm": "camille@example.org"},
        "/queue",
    )
    assert test.status_code == forget.status_code == 403
    preview = lxml.html.fromstring(bob.http.get("/preview").text)
    assert not preview.xpath('//form[contains(@action, "/preview/test")]')
    with open_session(started.settings) as session:
        assert session.exec(select(Delivery)).all() == []
        assert session.exec(select(Subscriber)).one().email == "camille@example.org"
    # What an editor may do, they can.
    added = bob.post(
        "/items/new",
        {"kind": "tool", "title": "Un outil", "url": "https://example.org/outil"},
        "/items/new",
    )
    assert added.status_code == 303
    alice = started.visitor()
    assert alice.login(*ALICE).status_code == 303
    assert alice.http.get("/readers?email=camille@example.org").status_code == 200
    sent = alice.post(
        "/preview/test",
        {"date": "2026-12-03", "send_key": "k" * 24, "address": "alice@example.org"},
        "/preview",
    )
    assert sent.status_code == 303
    flash = lxml.html.fromstring(alice.http.get(str(sent.url.join(sent.headers["location"]))).text)
    assert "Test envoyé" in flash.text_content(), flash.xpath("string(//main)")[:800]
    with open_session(started.settings) as session:
        assert session.exec(select(Delivery.recipient)).all() == ["alice@example.org"]
    assert [m.recipients for m in smtp_server.handler.messages] == [["alice@example.org"]]


# ---- the audit log -------------------------------------------------------------------------


def proposed(settings, title: str) -> int:
    fields = ItemFields(kind="news", title=title, url=f"https://example.org/{len(title)}")
    with open_session(settings) as session:
        return add_item(session, fields, lambda: MONDAY, status="proposed", source="feed").id


def test_every_desk_change_is_in_the_log_with_its_author(desk):
    started = desk()
    one, two = proposed(started.settings, "Une proposition"), proposed(started.settings, "Autre")
    assert started.cli("subscriber", "add", "camille@example.org").exit_code == 0
    bob, alice = started.visitor(), started.visitor()
    assert bob.login(*BOB).status_code == 303 and alice.login(*ALICE).status_code == 303
    new = {"kind": "tool", "title": "Un outil", "url": "https://example.org/outil"}
    added = bob.post("/items/new", new, "/items/new")
    item_id = int(added.headers["location"].split("added=")[1].split("#")[0])
    edited = bob.post(f"/items/{item_id}", {**new, "title": "Un outil utile"}, f"/items/{item_id}")
    assert edited.status_code == 303
    subject = {"date": "2026-12-03", "subject": "Un objet choisi"}
    assert bob.post("/preview/subject", subject, "/preview").status_code == 303
    for item, action in ((one, "approve"), (two, "reject")):
        reviewed = alice.post(f"/items/{item}/review", {"action": action}, "/queue")
        assert reviewed.status_code == 303
    forget = {"email": "camille@example.org", "confirm": "camille@example.org"}
    assert alice.post("/readers/forget", forget, "/readers").status_code == 303
    assert started.cli("item", "drop", str(item_id)).exit_code == 0
    assert alice.post("/logout", {}, "/queue").status_code == 303

    log = [(e["actor"], e["action"], e["target"]) for e in reversed(started.log())]
    cli = [actor for actor, action, _ in log if action == "item.drop"]
    assert len(cli) == 1 and cli[0].startswith("cli:")
    assert [entry for entry in log if not entry[0].startswith(("cli:", "migration"))] == [
        ("bob", "editor.login", "editor:bob"),
        ("alice", "editor.login", "editor:alice"),
        ("bob", "item.add", f"item:{item_id}"),
        ("bob", "item.edit", f"item:{item_id}"),
        ("bob", "issue.subject", "issue:2026-W49"),
        ("alice", "item.approve", f"item:{one}"),
        ("alice", "item.reject", f"item:{two}"),
        ("alice", "subscriber.forget", "subscriber:1"),
        ("alice", "editor.logout", "editor:alice"),
    ]
    assert not any("camille" in json.dumps(e) for e in started.log())  # no address in the log
    # The item's page tells its story, newest first.
    page = lxml.html.fromstring(bob.http.get(f"/items/{item_id}").text)
    rows = [
        (row.xpath('string(td[@class="log-actor"])'), row.xpath('string(td[@class="log-action"])'))
        for row in page.xpath('//tr[@class="log-entry"]')
    ]
    assert rows[1:] == [("bob", "modification"), ("bob", "ajout")]
    assert rows[0][0].startswith("cli:") and rows[0][1] == "retrait"


def test_jeudis_log_lists_the_newest_first_and_limits(desk):
    started = desk()
    text = started.cli("log", "--limit", "1")
    assert text.exit_code == 0
    [line] = text.stdout.splitlines()
    assert "\teditor.add\teditor:bob\trole editor" in line and "\tcli:" in line
    actions = [e["action"] for e in started.log()]
    assert actions[:3] == ["editor.add", "editor.add", "item.import"]


# ---- accounts from the command line, and the old shared password ----------------------------


def test_the_old_shared_password_becomes_the_admin_account(live_app, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    hashed = auth.hash_password("trois petits chats")
    env = {"JEUDIS_DESK_PASSWORD_HASH": hashed, "JEUDIS_WEB_HOST": "0.0.0.0"}
    settings = load_settings({"JEUDIS_HOME": str(home), **env})
    auth.check_desk_settings(settings)  # `jeudis serve` starts
    app = desk_app(settings, MovingClock())
    visitor = Browserless(live_app(Starlette(routes=[Mount("/desk", app=app)])))
    assert visitor.login("admin", "pas le bon").status_code == 401
    assert visitor.login("admin", "trois petits chats").status_code == 303
    assert visitor.status() == 200
    with open_session(settings) as session:
        [editor] = session.exec(select(Editor)).all()
    assert (editor.name, editor.role, editor.password_hash) == ("admin", "admin", hashed)
    listed = run(home, "editor", "list", env=env)
    assert listed.stdout.startswith("admin\tadmin\t")
    assert visitor.login("admin", "trois petits chats").status_code == 303  # again: same row


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("editor", "add", "Élise"), "un mot de passe assez long", "name: 'Élise' is not"),
        (("editor", "add", "alice"), "un mot de passe assez long", "alice already has"),
        (("editor", "add", "carole"), "court", "password: at least 10 characters"),
        (("editor", "add", "carole", "--role", "chef"), "", "Invalid value for '--role'"),
        (("editor", "remove", "zoe"), "", "name: zoe has no account"),
        (("editor", "password", "zoe"), "un mot de passe assez long", "zoe has no account"),
    ],
)
def test_editor_commands_refuse_bad_input_in_one_line(desk, args, stdin, message):
    started = desk()
    before = started.cli("editor", "list").stdout
    result = started.cli(*args, "--password-stdin", input=stdin) if stdin else started.cli(*args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output
    assert started.cli("editor", "list").stdout == before


def test_editor_list_json(desk):
    started = desk()
    listed = json.loads(started.cli("editor", "list", "--json").stdout)
    assert [(e["name"], e["role"]) for e in listed] == [("alice", "admin"), ("bob", "editor")]


def test_changing_ones_own_password_ends_ones_other_sessions(desk):
    started = desk()
    laptop, phone, bob = started.visitor(), started.visitor(), started.visitor()
    for visitor, who in ((laptop, ALICE), (phone, ALICE), (bob, BOB)):
        assert visitor.login(*who).status_code == 303
    new = "un nouveau mot de passe pour alice"

    def change(current: str, fresh: str, again: str) -> httpx.Response:
        data = {"current": current, "new": fresh, "again": again}
        return laptop.post("/account", data, "/account")

    def error(response: httpx.Response) -> str:
        return lxml.html.fromstring(response.text).xpath('string(//*[@class="error-text"])')

    refusals = [
        (change("pas le mien du tout", new, new), 401, "Ce n’est pas votre mot de passe actuel."),
        (change(ALICE[1], "court", "court"), 422, "Au moins 10 caractères."),
        (
            change(ALICE[1], new, new + "!"),
            422,
            "Les deux saisies du nouveau mot de passe diffèrent.",
        ),
    ]
    for response, status, message in refusals:
        assert (response.status_code, error(response)) == (status, message)
    assert phone.status() == 200  # nothing changed yet
    assert change(ALICE[1], new, new).status_code == 303
    assert laptop.status() == 200  # this session stays…
    assert phone.status() == 303  # …the other one is over
    assert bob.status() == 200  # and other accounts are not touched
    assert phone.login(*ALICE).status_code == 401 and phone.login("alice", new).status_code == 303
    changes = [e for e in started.log() if e["action"] == "editor.password"]
    assert [(e["actor"], e["detail"]) for e in changes] == [("alice", "1 session(s) ended")]
