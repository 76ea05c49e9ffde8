"""Subscribers on a real SQLite file: add, remove, list, CSV import, double opt-in."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from jeudis_cli import MONDAY, run
from sqlmodel import select

from newsletter import signup, subscribers
from newsletter.db import open_session
from newsletter.errors import ConflictError, NotFoundError
from newsletter.models import Delivery, Subscriber
from newsletter.subscribers import InvalidAddress, import_csv
from newsletter.typography import faults

CSV = Path(__file__).parent / "fixtures" / "subscribers"


def rows(home) -> dict[str, Subscriber]:
    with open_session(home.settings) as session:
        return {s.email: s for s in session.exec(select(Subscriber))}


def listing(home, *args) -> list[dict]:
    result = run(home.path, "subscriber", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------- add, remove, list


def test_add_normalises_and_stamps(home, clock):
    with open_session(home.settings) as session:
        change = subscribers.add(session, clock, "  Jean.Dupont@Example.ORG ", "Jean Dupont")
    assert change.outcome == "added"
    row = rows(home)["jean.dupont@example.org"]
    assert (row.name, row.status) == ("Jean Dupont", "active")
    assert row.created_at == row.status_changed_at == clock()
    assert row.created_at.tzinfo is not None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("jean@", "There must be something after the @-sign"),
        ("jean.example.org", "An email address must have an @-sign"),
        ("jean@localhost", "The part after the @-sign is not valid. It should have a period"),
        ("", "empty"),
    ],
)
def test_invalid_addresses_say_why(address, reason):
    with pytest.raises(InvalidAddress) as caught:
        subscribers.normalise_email(address)
    assert caught.value.reason == reason
    assert str(caught.value) == f"email: {address.strip()!r} is not a valid address ({reason})"


def test_cli_add_bad_address_is_one_line_and_exit_2(home):
    result = run(home.path, "subscriber", "add", "jean@")
    assert result.exit_code == 2
    assert result.output == (
        "error: email: 'jean@' is not a valid address (There must be something after the @-sign)\n"
    )
    assert rows(home) == {}


def test_add_twice_is_unchanged_and_updates_the_name(home):
    assert run(home.path, "subscriber", "add", "ada@example.org").output == (
        "added: ada@example.org\n"
    )
    assert run(home.path, "subscriber", "add", "ADA@example.org").output == (
        "unchanged: ada@example.org\n"
    )
    result = run(home.path, "subscriber", "add", "ada@example.org", "--name", "Ada")
    assert result.output == "updated: ada@example.org\n"
    assert rows(home)["ada@example.org"].name == "Ada"


def test_remove_keeps_history_and_add_does_not_undo_it(home, clock):
    with open_session(home.settings) as session:
        subscribers.add(session, clock, "ada@example.org")
    later = MONDAY + timedelta(hours=1)
    assert run(home.path, "subscriber", "remove", "Ada@Example.org", now=later).exit_code == 0
    row = rows(home)["ada@example.org"]
    assert (row.status, row.unsubscribed_at, row.status_changed_at) == (
        "unsubscribed",
        later,
        later,
    )
    assert row.created_at == clock()

    refused = run(home.path, "subscriber", "add", "ada@example.org")
    assert refused.exit_code == 2
    assert "unsubscribed" in refused.output and "--reactivate" in refused.output
    assert rows(home)["ada@example.org"].status == "unsubscribed"

    again = MONDAY + timedelta(days=2)
    result = run(home.path, "subscriber", "add", "ada@example.org", "--reactivate", now=again)
    assert result.exit_code == 0
    row = rows(home)["ada@example.org"]
    assert (row.status, row.status_changed_at, row.unsubscribed_at) == ("active", again, later)


def test_remove_unknown_address(home):
    result = run(home.path, "subscriber", "remove", "nobody@example.org")
    assert result.exit_code == 2
    assert result.output == "error: email: nobody@example.org is not a subscriber\n"


def test_list_by_status(home, clock):
    with open_session(home.settings) as session:
        for address in ("b@example.org", "a@example.org", "c@example.org"):
            subscribers.add(session, clock, address)
        subscribers.remove(session, clock, "c@example.org")
    assert [r["email"] for r in listing(home)] == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    gone = listing(home, "--status", "unsubscribed")
    assert [(r["email"], r["status"]) for r in gone] == [("c@example.org", "unsubscribed")]
    assert gone[0]["unsubscribed_at"] == clock().isoformat()
    assert run(home.path, "subscriber", "list", "--status", "gone").exit_code == 2


# ---------------------------------------------------------------- CSV import


def test_import_semicolons_bom_and_french_headers(home, clock):
    path = CSV / "semicolon_bom_prenom_nom_courriel.csv"
    with open_session(home.settings) as session:
        report = import_csv(session, clock, path)
    assert (report.added, report.duplicates) == (2, 1)
    assert [(b.line, b.address) for b in report.bad_rows] == [
        (3, "beatrice.martin@example"),
        (7, ""),
    ]
    found = {email: row.name for email, row in rows(home).items()}
    assert found == {"ada@example.org": "Ada Lovelace", "cyril@example.org": "Cyril"}


def test_import_commas_and_quoted_names(home, clock):
    with open_session(home.settings) as session:
        report = import_csv(session, clock, CSV / "comma_quoted_name.csv")
    assert (report.added, report.bad_rows) == (2, [])
    assert rows(home)["jean.dupont@example.org"].name == "Dupont, Jean"
    assert rows(home)["zoe@example.org"].name == "Zoé"


def test_cli_import_reports_bad_rows_and_keeps_good_ones(home, tmp_path):
    path = tmp_path / "liste.csv"
    shutil.copy(CSV / "semicolon_bom_prenom_nom_courriel.csv", path)
    result = run(home.path, "subscriber", "import", str(path))
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0] == (
        "added: 2, updated: 0, unchanged: 0, skipped-unsubscribed: 0, skipped-bounced: 0, "
        "duplicates merged: 1, bad rows: 2"
    )
    assert lines[1:] == [
        f"{path}:3: email: 'beatrice.martin@example' is not a valid address "
        "(The part after the @-sign is not valid. It should have a period)",
        f"{path}:7: email: missing",
    ]
    assert set(rows(home)) == {"ada@example.org", "cyril@example.org"}

    again = run(home.path, "subscriber", "import", str(path))
    assert again.output.startswith("added: 0, updated: 0, unchanged: 2,")


def test_import_never_reactivates_unless_told(home, clock):
    with open_session(home.settings) as session:
        subscribers.add(session, clock, "ada@example.org")
        subscribers.add(session, clock, "cyril@example.org")
        subscribers.remove(session, clock, "ada@example.org")
        cyril = subscribers.find(session, "cyril@example.org")
        subscribers.set_status(cyril, "bounced", clock(), "550 no such user")
        session.add(cyril)
        session.commit()
    path = str(CSV / "semicolon_bom_prenom_nom_courriel.csv")
    result = run(home.path, "subscriber", "import", path)
    assert "skipped-unsubscribed: 1, skipped-bounced: 1" in result.output
    assert {r.status for r in rows(home).values()} == {"unsubscribed", "bounced"}

    result = run(home.path, "subscriber", "import", path, "--reactivate")
    assert result.output.startswith("added: 0, updated: 2,")
    reactivated = rows(home)
    assert {r.status for r in reactivated.values()} == {"active"}
    assert reactivated["cyril@example.org"].last_error is None
    assert reactivated["cyril@example.org"].bounced_at == clock()  # history kept


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("latin1_not_utf8.csv", ":2: not UTF-8 text (byte 0xe9); save the file as UTF-8 CSV"),
        ("no_address_column.csv", ":1: no address column (expected one named email, e-mail, "),
        ("empty.csv", ": empty file"),
    ],
)
def test_unreadable_files_exit_2_and_write_nothing(home, fixture, reason):
    path = CSV / fixture
    result = run(home.path, "subscriber", "import", str(path))
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {path}{reason}")
    assert len(result.output.splitlines()) == 1
    assert rows(home) == {}


def test_header_only_file_adds_nothing(home):
    result = run(home.path, "subscriber", "import", str(CSV / "header_only.csv"))
    assert result.exit_code == 0
    assert result.output.startswith("added: 0,")


def test_missing_file_is_a_usage_error(home, tmp_path):
    result = run(home.path, "subscriber", "import", str(tmp_path / "absent.csv"))
    assert result.exit_code == 2
    assert "absent.csv: no such file" in result.output


# ---------------------------------------------------------------- double opt-in


def confirm_rows(home) -> list[Delivery]:
    with open_session(home.settings) as session:
        return list(session.exec(select(Delivery).where(Delivery.purpose == "confirm")))


def test_invite_queues_one_french_confirmation(home, clock):
    settings = home.settings
    result = run(home.path, "subscriber", "invite", "Zoe@Example.org", "--name", "Zoé")
    assert result.exit_code == 0
    assert result.output == "confirmation queued in the outbox: zoe@example.org\n"
    row = rows(home)["zoe@example.org"]
    assert (row.status, row.confirmed_at) == ("pending", None)
    [delivery] = confirm_rows(home)
    assert (delivery.recipient, delivery.status, delivery.subscriber_id) == (
        "zoe@example.org",
        "queued",
        row.id,
    )
    message = email.message_from_bytes(delivery.content, policy=email.policy.default)
    assert message["Message-ID"].strip() == delivery.message_id
    assert message["Date"] is None  # stamped by the sender when it leaves
    assert message["Feedback-ID"] == "confirm:jeudis-odd17:jeudis:lerameau.example.org"
    assert message["Subject"] == "Confirmez votre inscription aux Jeudis de l’ODD\u00a017"
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    body = message.get_content()
    assert body.startswith("Bonjour Zoé,")
    assert faults(body) == [] and "«\u00a0Confirmer mon inscription\u00a0»\u00a0:" in body
    [link] = re.findall(r"http\S+", body)
    token = link.rsplit("/confirm/", 1)[1]

    again = run(home.path, "subscriber", "invite", "zoe@example.org")
    assert again.output == "confirmation already waiting in the outbox: zoe@example.org\n"
    assert len(confirm_rows(home)) == 1

    with open_session(settings) as session:
        confirmed = subscribers.confirm(session, settings, clock, token)
    assert (confirmed.status, confirmed.confirmed_at, confirmed.status_changed_at) == (
        "active",
        clock(),
        clock(),
    )
    assert run(home.path, "subscriber", "invite", "zoe@example.org").output == (
        "already active: zoe@example.org\n"
    )


def test_invite_keeps_an_unsubscribed_reader_unsubscribed_until_they_confirm(home, clock):
    settings = home.settings
    with open_session(settings) as session:
        subscribers.add(session, clock, "ada@example.org")
        subscribers.remove(session, clock, "ada@example.org")
        invitation = signup.invite(session, settings, clock, "ada@example.org")
    assert invitation.delivery is not None
    assert rows(home)["ada@example.org"].status == "unsubscribed"
    token = signup.confirm_url(settings, invitation.subscriber).rsplit("/", 1)[1]
    with open_session(settings) as session:
        assert subscribers.confirm(session, settings, clock, token).status == "active"


def test_tokens_are_bound_to_purpose(home, clock):
    settings = home.settings
    with open_session(settings) as session:
        reader = subscribers.add(session, clock, "ada@example.org").subscriber
        confirm_token = signup.confirm_url(settings, reader).rsplit("/", 1)[1]
        with pytest.raises(subscribers.tokens.BadToken):
            subscribers.unsubscribe(session, settings, clock, confirm_token)
        with pytest.raises(subscribers.tokens.BadToken):
            subscribers.unsubscribe(session, settings, clock, "12345678901234567890123.x")
    assert rows(home)["ada@example.org"].status == "active"


def test_add_refuses_bounced_without_reactivate(home, clock):
    with open_session(home.settings) as session:
        reader = subscribers.add(session, clock, "ada@example.org").subscriber
        subscribers.set_status(reader, "bounced", clock(), "550")
        session.add(reader)
        session.commit()
        with pytest.raises(ConflictError):
            subscribers.add(session, clock, "ada@example.org")
        with pytest.raises(NotFoundError):
            subscribers.remove(session, clock, "nobody@example.org")
