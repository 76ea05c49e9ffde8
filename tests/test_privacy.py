"""Readers' data (RGPD) end to end: the record of consent, `subscriber export` (access) and
`subscriber forget` (erasure), with the real commands, a real SQLite file and the real
sign-up pages under uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import re

import httpx
import lxml.html
import pytest
import sqlalchemy as sa
from jeudis_cli import MONDAY, REPO, run
from sqlmodel import select
from web_server import eventually

from newsletter import privacy, subscribers
from newsletter.db import engine_for, open_session
from newsletter.models import Delivery, Subscriber, Suppression
from newsletter.web import create_app

CAMILLE, NOE = "camille.martin@example.org", "noe.leroy@example.org"


def cli(home, *args, ok=True):
    result = run(home.path, *args, env=home.env)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def reader(home, email: str) -> Subscriber | None:
    with open_session(home.settings) as session:
        return subscribers.find(session, email)


@pytest.fixture
def signup(home, live_app):
    """A client of the public site (sign-up and confirmation pages) on this instance."""
    base = live_app(create_app(home.settings, lambda: MONDAY))
    with httpx.Client(base_url=base, timeout=30) as client:
        yield client


def confirmations(home, email: str) -> list[Delivery]:
    with open_session(home.settings) as session:
        query = select(Delivery).where(Delivery.recipient == email, Delivery.purpose == "confirm")
        return list(session.exec(query.order_by(Delivery.id.desc())))


def sign_up_and_confirm(home, client: httpx.Client, email: str) -> None:
    """What the person does: the form, then the link in the confirmation message."""
    before = len(confirmations(home, email))
    answer = client.post("/subscribe", data={"email": email, "name": "Camille"})
    assert answer.status_code == 200
    # The sign-up is handled after the answer (the same answer for every address).
    delivery = eventually(
        lambda: len(confirmations(home, email)) > before and confirmations(home, email)[0]
    )
    message = delivery.content.decode()  # stored whole in the ledger
    [link] = re.findall(r"https?://\S+/confirm/\S+", message)
    assert client.post(re.sub(r"^https?://[^/]+", "", link)).status_code == 200


# ---- consent ----------------------------------------------------------------------------------


def test_each_way_in_records_its_consent(home, tmp_path, signup):
    cli(home, "subscriber", "add", NOE)
    csv = tmp_path / "adherents.csv"
    csv.write_text("email;nom\nclaire@example.org;Claire\n", encoding="utf-8")
    cli(home, "subscriber", "import", str(csv))
    cli(home, "subscriber", "invite", "dominique@example.org")
    sign_up_and_confirm(home, signup, CAMILLE)

    noe, claire = reader(home, NOE), reader(home, "claire@example.org")
    assert (noe.consent_source, noe.consent_at) == ("cli", MONDAY)
    assert claire.consent_source == "import" and "adherents.csv" in claire.consent_text
    invited = reader(home, "dominique@example.org")
    assert invited.consent_source == "invitation" and invited.consent_at is None  # not yet
    camille = reader(home, CAMILLE)
    assert (camille.consent_source, camille.consent_at) == ("form", camille.confirmed_at)
    # The wording kept is the wording the form shows.
    form = lxml.html.fromstring(signup.get("/subscribe").text)
    shown = " ".join(form.xpath("string(//form)").split())
    button = form.xpath("string(//form//button)").strip()
    quoted = re.findall(r"« ([^»]+) »", camille.consent_text)
    assert quoted[0] == "S’inscrire aux Jeudis de l’ODD 17" == form.xpath("string(//h1)")
    assert quoted[1] == button
    assert quoted[2] in shown


# ---- access -------------------------------------------------------------------------------------


def test_export_gives_everything_held_about_one_address(home, tmp_path, signup):
    cli(home, "import", str(REPO / "content"))
    sign_up_and_confirm(home, signup, CAMILLE)
    cli(home, "subscriber", "add", NOE)
    cli(home, "build", "--date", "2026-11-26")
    out = tmp_path / "camille.json"
    cli(home, "subscriber", "export", "Camille.Martin@Example.org", "-o", str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    data = json.loads(out.read_text())
    assert data["email"] == CAMILLE and data["forgotten_at"] is None
    assert data["subscriber"]["status"] == "active" and data["subscriber"]["name"] == "Camille"
    assert data["consent"]["source"] == "form" and data["consent"]["at"]
    assert data["consent"]["wording"] == privacy.CONSENT_TEXTS["form"]
    assert [(d["purpose"], d["issue"]) for d in data["deliveries"]] == [
        ("confirm", None),
        ("issue", "2026-W48"),
    ]
    assert all(d["recipient"] == CAMILLE for d in data["deliveries"])
    assert [(h["actor"], h["action"]) for h in data["history"]] == [
        ("reader", "subscriber.confirm")
    ]
    assert NOE not in out.read_text()  # only this reader
    # Printed on stdout when no file is given; and the access itself is logged.
    again = json.loads(cli(home, "subscriber", "export", CAMILLE).stdout)
    assert again["deliveries"] == data["deliveries"]
    assert [(h["action"], h["actor"][:4]) for h in again["history"]] == [
        ("subscriber.confirm", "read"),
        ("subscriber.export", "cli:"),
    ]


def test_export_of_an_unknown_address_says_nothing_is_held(home):
    data = json.loads(cli(home, "subscriber", "export", "inconnu@example.org").stdout)
    assert data["subscriber"] is None and data["deliveries"] == []
    bad = cli(home, "subscriber", "export", "pas-une-adresse", ok=False)
    assert bad.exit_code == 2 and "pas-une-adresse" in bad.output and "Traceback" not in bad.output


# ---- erasure ------------------------------------------------------------------------------------


def database_bytes(home) -> bytes:
    """All the database holds: the SQLite files' bytes, or every row of every table."""
    settings = home.settings
    if settings.db_url.startswith("sqlite"):
        return b"".join(p.read_bytes() for p in home.path.glob("jeudis.db*") if p.is_file())
    with engine_for(settings).connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        rows = [row for t in tables for row in conn.execute(sa.text(f'SELECT * FROM "{t}"'))]
    return repr(rows).encode()


def test_forget_erases_the_reader_and_no_import_brings_them_back(home, tmp_path):
    cli(home, "import", str(REPO / "content"))
    cli(home, "subscriber", "add", CAMILLE, "--name", "Camille Martin")
    cli(home, "subscriber", "add", NOE)
    cli(home, "build", "--date", "2026-11-26")
    with open_session(home.settings) as session:
        assert len(session.exec(select(Delivery)).all()) == 2  # rows in the ledger, no file
    assert CAMILLE.encode() in database_bytes(home)

    done = cli(home, "subscriber", "forget", CAMILLE)
    assert done.stdout.strip() == f"forgotten: {CAMILLE} (1 deliveries blanked)"
    assert reader(home, CAMILLE) is None and reader(home, NOE) is not None
    with open_session(home.settings) as session:
        rows = {d.recipient: d for d in session.exec(select(Delivery))}
        assert len(session.exec(select(Suppression)).all()) == 1
    assert set(rows) == {privacy.FORGOTTEN, NOE}
    forgotten = rows[privacy.FORGOTTEN]
    assert forgotten.subscriber_id is None and forgotten.status == "skipped"  # never sent now
    assert forgotten.content is None and rows[NOE].status == "queued"
    # Nothing of the address or the name is left in the database files.
    held = database_bytes(home)
    assert CAMILLE.encode() not in held and b"Camille Martin" not in held
    assert NOE.encode() in held

    # A later import, add or invitation does not bring the address back.
    csv = tmp_path / "liste.csv"
    csv.write_text(f"email\n{CAMILLE.upper()}\nnouvelle@example.org\n", encoding="utf-8")
    imported = cli(home, "subscriber", "import", str(csv))
    assert "added: 1," in imported.stdout and "skipped-forgotten: 1" in imported.stdout
    assert reader(home, CAMILLE) is None
    for args in (("add", CAMILLE), ("add", CAMILLE, "--reactivate"), ("invite", CAMILLE)):
        refused = cli(home, "subscriber", *args, ok=False)
        assert refused.exit_code == 2 and "forgotten at the reader's request" in refused.output
    assert reader(home, CAMILLE) is None
    # Pressed twice: nothing more to do, and it says so.
    assert (
        cli(home, "subscriber", "forget", CAMILLE).stdout.strip() == f"already forgotten: {CAMILLE}"
    )
    data = json.loads(cli(home, "subscriber", "export", CAMILLE).stdout)
    assert data["subscriber"] is None and data["forgotten_at"]


def test_the_persons_own_sign_up_brings_a_forgotten_address_back(home, tmp_path, signup):
    cli(home, "subscriber", "add", CAMILLE)
    cli(home, "subscriber", "forget", CAMILLE)
    sign_up_and_confirm(home, signup, CAMILLE)
    camille = reader(home, CAMILLE)
    assert camille.status == "active" and camille.consent_source == "form"
    with open_session(home.settings) as session:
        assert session.exec(select(Suppression)).all() == []
    csv = tmp_path / "liste.csv"
    csv.write_text(f"email\n{CAMILLE}\n", encoding="utf-8")
    assert "unchanged: 1" in cli(home, "subscriber", "import", str(csv)).stdout


def test_a_pending_sign_up_of_a_forgotten_address_is_not_activated_by_an_import(
    home, tmp_path, signup
):
    cli(home, "subscriber", "forget", CAMILLE)  # never held: suppressed all the same
    answer = signup.post("/subscribe", data={"email": CAMILLE})
    assert answer.status_code == 200
    assert eventually(lambda: reader(home, CAMILLE)).status == "pending"
    csv = tmp_path / "liste.csv"
    csv.write_text(f"email\n{CAMILLE}\n", encoding="utf-8")
    assert "skipped-forgotten: 1" in cli(home, "subscriber", "import", str(csv)).stdout
    assert reader(home, CAMILLE).status == "pending"  # only the person's confirmation
