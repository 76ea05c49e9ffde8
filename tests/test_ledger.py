"""The outbox ledger: real SQLite (or PostgreSQL) rows, the issue's message stored once."""

from __future__ import annotations

import email
import email.policy
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import lxml.html
import pytest
from sqlmodel import select
from test_message import realistic_issue

from newsletter import tokens
from newsletter.config import load_settings
from newsletter.db import instance_secret, open_session
from newsletter.delivery import export_outbox, queue_single, send_at, write_issue_outbox
from newsletter.delivery.ledger import BATCH, top_up
from newsletter.delivery.message import compose_simple
from newsletter.models import ContentItem, Delivery, Issue, IssueMessage, Subscriber

NOW = datetime(2026, 11, 26, 6, 55, tzinfo=UTC)
READERS = [
    ("zoe@example.org", "Zoé Lefèvre-Dupont", "active"),
    ("jean@example.org", "Jean Dupont", "active"),
    ("gone@example.org", "Parti", "unsubscribed"),
    ("bounce@example.org", "Rebond", "bounced"),
    ("wait@example.org", "En attente", "pending"),
    ("helene@example.fr", "Hélène Çelik", "active"),
]


def clock() -> datetime:
    return NOW


@pytest.fixture
def home(tmp_path: Path):
    env = {"JEUDIS_HOME": str(tmp_path), "JEUDIS_BASE_URL": "https://jeudis.example.org"}
    settings = load_settings(env)
    with open_session(settings) as session:
        issue = make_issue(session)
        for address, name, status in READERS:
            session.add(
                Subscriber(
                    email=address, name=name, status=status, created_at=NOW, status_changed_at=NOW
                )
            )
        session.commit()
        yield settings, session, issue


def make_issue(session, week="2026-W48", thursday=date(2026, 11, 26), number=48) -> Issue:
    ids = []
    for kind in ("news", "example", "tool"):
        item = ContentItem(
            kind=kind,
            title=f"Titre {kind}",
            url="https://www.lerameau.fr/",
            created_at=NOW,
            updated_at=NOW,
            status="used",
        )
        session.add(item)
        session.flush()
        ids.append(item.id)
    issue = Issue(
        week_key=week,
        number=number,
        thursday=thursday,
        subject="Sujet",
        news_id=ids[0],
        example_id=ids[1],
        tool_id=ids[2],
        built_at=NOW,
    )
    session.add(issue)
    session.commit()
    return issue


def exported(settings, session, tmp_path, **kwargs) -> dict[str, email.message.EmailMessage]:
    """The ledger's messages as a mail tool would see them, by recipient."""
    report = export_outbox(session, settings, clock, tmp_path / "export", **kwargs)
    out = {}
    for path in report.directory.rglob("*"):
        if path.is_file():
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            out[msg["To"].addresses[0].addr_spec] = msg
    return out


def rows(session) -> list[dict]:
    return [d.model_dump() for d in session.exec(select(Delivery).order_by(Delivery.id))]


def test_one_row_per_active_subscriber_and_the_message_stored_once(home, tmp_path):
    settings, session, issue = home
    seen = []
    report = write_issue_outbox(session, settings, issue, realistic_issue(), clock, seen.append)
    assert (report.written, report.existing, report.skipped) == (3, 0, 3)
    assert seen == [3]
    assert not list(settings.home.rglob("*.eml"))  # nothing written to files at build time
    assert len(session.exec(select(IssueMessage)).all()) == 1
    secret = instance_secret(settings)
    messages = exported(settings, session, tmp_path)
    for row in session.exec(select(Delivery)):
        msg = messages[row.recipient]
        assert (row.issue_id, row.purpose, row.status, row.attempts) == (
            issue.id,
            "issue",
            "queued",
            0,
        )
        assert msg["Message-ID"] == row.message_id
        (https,) = [
            link.strip("<> ")
            for link in str(msg["List-Unsubscribe"]).split(",")
            if link.strip().startswith("<https:")
        ]
        token = https.rsplit("/", 1)[1]
        assert tokens.verify(secret, "unsubscribe", token, row.recipient) == row.subscriber_id
        text, page = (part.get_content() for part in msg.iter_parts())
        assert https in text.splitlines()
        hrefs = [a.get("href") for a in lxml.html.fromstring(page).iter("a")
                 if a.text_content() == "Se désinscrire"]  # fmt: skip
        assert hrefs == [https]
        assert msg["Feedback-ID"] == "2026-W48:jeudis-odd17:jeudis:lerameau.example.org"
    assert set(messages) == {"zoe@example.org", "jean@example.org", "helene@example.fr"}
    zoe = messages["zoe@example.org"]["To"].addresses[0]
    assert zoe.display_name == "Zoé Lefèvre-Dupont"


def test_building_twice_adds_nothing_and_changes_nothing(home):
    settings, session, issue = home
    write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    before = rows(session), session.exec(select(IssueMessage)).one().template
    second = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    assert (second.written, second.existing) == (0, 3)
    assert (rows(session), session.exec(select(IssueMessage)).one().template) == before


def test_two_builders_at_once_make_one_row_per_reader(home):
    settings, session, issue = home
    instance_secret(settings)  # the instance exists already (its secret is not what is tested)
    errors = []

    def build():
        try:
            with open_session(settings) as own:
                write_issue_outbox(own, settings, issue, realistic_issue(), clock)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r["recipient"] for r in rows(session)) == [
        "helene@example.fr", "jean@example.org", "zoe@example.org"
    ]  # fmt: skip


def test_a_newcomer_gets_the_issue_while_it_is_being_sent_not_after(home):
    settings, session, issue = home
    write_issue_outbox(session, settings, issue, realistic_issue(), clock)

    def join(address):
        session.add(Subscriber(email=address, created_at=NOW, status_changed_at=NOW))
        session.commit()

    join("tard@example.org")
    assert top_up(session, settings, clock) == 1  # rows still queued: the issue is going out
    assert "tard@example.org" in {r["recipient"] for r in rows(session)}
    for delivery in session.exec(select(Delivery)):
        delivery.status = "sent"
        session.add(delivery)
    session.commit()
    join("trop-tard@example.org")
    assert top_up(session, settings, clock) == 0  # every row settled: the issue is finished
    assert "trop-tard@example.org" not in {r["recipient"] for r in rows(session)}


def test_many_subscribers_span_several_batches(home):
    settings, session, issue = home
    session.add_all(
        Subscriber(email=f"l{n}@example.org", name=f"Lecteur {n}", created_at=NOW,
                   status_changed_at=NOW)
        for n in range(BATCH + 5)
    )  # fmt: skip
    session.commit()
    seen = []
    report = write_issue_outbox(session, settings, issue, realistic_issue(1), clock, seen.append)
    assert report.written == BATCH + 8
    assert seen == [BATCH, BATCH + 8]
    assert len({r["message_id"] for r in rows(session)}) == BATCH + 8


def test_a_row_another_writer_added_during_a_first_build_is_kept_once(home):
    """A first build writes its batches fast (COPY on PostgreSQL, which cannot skip
    duplicates); a row added meanwhile by another writer must neither fail the build nor
    appear twice."""
    settings, session, issue = home
    session.add_all(
        Subscriber(email=f"l{n}@example.org", created_at=NOW, status_changed_at=NOW)
        for n in range(BATCH + 5)
    )
    session.commit()
    late = session.exec(select(Subscriber).where(Subscriber.email == "l1002@example.org")).one()

    added = []

    def other_writer(done: int) -> None:
        # Between the first batch and the second, which holds `late` (once: a build that
        # starts a batch again reports the same count again).
        if done == BATCH and not added:
            added.append(late.id)
            with open_session(settings) as other:
                other.add(Delivery(issue_id=issue.id, subscriber_id=late.id, purpose="issue",
                                   recipient=late.email, message_id="<other@writer>",
                                   created_at=NOW))  # fmt: skip
                other.commit()

    report = write_issue_outbox(session, settings, issue, realistic_issue(), clock, other_writer)
    assert report.written == BATCH + 8 - 1
    assert len(rows(session)) == BATCH + 8
    mine = [r for r in rows(session) if r["recipient"] == late.email]
    assert [r["message_id"] for r in mine] == ["<other@writer>"]
    assert added == [late.id]


def test_send_at_is_the_scheduled_time_unless_the_build_was_late(home):
    settings, session, issue = home
    write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    stored = session.exec(select(IssueMessage)).one()
    assert stored.send_at == datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    issue.built_at = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert send_at(settings, issue) == issue.built_at


def test_export_writes_eml_files_or_a_maildir_and_twice_is_the_same(home, tmp_path):
    settings, session, issue = home
    write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    first = export_outbox(session, settings, clock, tmp_path / "eml", "2026-W48")
    again = export_outbox(session, settings, clock, tmp_path / "eml", "2026-W48")
    files = sorted(p.name for p in first.directory.iterdir())
    assert (first.written, again.written, len(files)) == (3, 3, 3)
    assert files == sorted(p.name for p in again.directory.iterdir())
    for path in first.directory.iterdir():
        data = path.read_bytes()
        assert b"\n" not in data.replace(b"\r\n", b"")
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        assert path.stat().st_mode & 0o077 == 0
    box = export_outbox(session, settings, clock, tmp_path / "box", maildir=True)
    assert {p.name for p in box.directory.iterdir()} == {"cur", "new", "tmp"}
    assert len(list((box.directory / "new").iterdir())) == 3
    with pytest.raises(Exception, match="2026-W01"):
        export_outbox(session, settings, clock, tmp_path / "none", "2026-W01")


def test_queue_single_stores_a_one_off_once_without_its_date(home):
    settings, session, _ = home
    data = compose_simple(
        settings=settings,
        to_email="zoe@example.org",
        to_name="Zoé",
        subject="Envoi de test",
        text="Ceci est un test.\n",
        html_body=None,
        date=NOW,
        message_id="<t1@lerameau.example.org>",
    )
    args = (session, settings, "test", "zoe@example.org", None, data, "<t1@lerameau.example.org>")
    first, again = queue_single(*args, clock=clock), queue_single(*args, clock=clock)
    assert first.id == again.id
    msg = email.message_from_bytes(first.content, policy=email.policy.default)
    assert msg["Date"] is None and msg["Subject"] == "Envoi de test"
    assert msg["Feedback-ID"] == "test:jeudis-odd17:jeudis:lerameau.example.org"
    assert msg.get_content().strip() == "Ceci est un test."
    assert len(session.exec(select(Delivery).where(Delivery.purpose == "test")).all()) == 1
    with pytest.raises(ValueError, match="purpose"):
        queue_single(session, settings, "../issue", "x@example.org", None, data, "<t2@x>")
