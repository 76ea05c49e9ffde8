"""The outbox: real SQLite file, real .eml files, one per active subscriber, idempotent."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime
from pathlib import Path

import lxml.html
import pytest
from sqlmodel import select
from test_message import realistic_issue

from newsletter import tokens
from newsletter.config import load_settings
from newsletter.db import instance_secret, open_session
from newsletter.message import compose_simple
from newsletter.models import ContentItem, Delivery, Issue, Subscriber
from newsletter.outbox import BATCH, message_date, write_issue_outbox, write_single

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


def make_issue(session) -> Issue:
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
        week_key="2026-W48",
        number=48,
        thursday=date(2026, 11, 26),
        subject="Sujet",
        news_id=ids[0],
        example_id=ids[1],
        tool_id=ids[2],
        built_at=NOW,
    )
    session.add(issue)
    session.commit()
    return issue


def parse(path: Path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def active(session) -> list[Subscriber]:
    return list(session.exec(select(Subscriber).where(Subscriber.status == "active")))


def test_one_message_per_active_subscriber_with_its_own_links(home):
    settings, session, issue = home
    seen = []
    report = write_issue_outbox(session, settings, issue, realistic_issue(), clock, seen.append)
    assert (report.written, report.existing, report.skipped) == (3, 0, 3)
    assert report.directory == settings.home / "outbox" / "2026-W48"
    assert seen == [3]
    secret = instance_secret(settings)
    message_ids = set()
    for subscriber in active(session):
        path = report.directory / f"{subscriber.id}.eml"
        msg = parse(path)
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["To"].addresses[0].display_name == subscriber.name
        assert msg["To"].addresses[0].addr_spec == subscriber.email
        (https,) = [
            link.strip("<> ")
            for link in str(msg["List-Unsubscribe"]).split(",")
            if link.strip().startswith("<https:")
        ]
        token = https.rsplit("/", 1)[1]
        assert tokens.verify(secret, "unsubscribe", token, subscriber.email) == subscriber.id
        others = [s for s in active(session) if s.id != subscriber.id]
        for other in others:
            with pytest.raises(tokens.BadToken):
                tokens.verify(secret, "unsubscribe", token, other.email)
        assert f"mailto:desinscription@lerameau.example.org?subject=unsubscribe-{token}" in str(
            msg["List-Unsubscribe"]
        )
        text, page = (part.get_content() for part in msg.iter_parts())
        assert https in text.splitlines()
        hrefs = [
            a.get("href")
            for a in lxml.html.fromstring(page).iter("a")
            if a.text_content() == "Se désinscrire"
        ]
        assert hrefs == [https]
        message_ids.add(msg["Message-ID"])
        row = session.exec(select(Delivery).where(Delivery.subscriber_id == subscriber.id)).one()
        assert (row.issue_id, row.purpose, row.status) == (issue.id, "issue", "queued")
        assert (row.recipient, row.message_id) == (subscriber.email, msg["Message-ID"])
        assert settings.home / row.path == path
        assert row.created_at == NOW
    assert len(message_ids) == 3


def test_only_active_subscribers_get_a_message(home):
    settings, session, issue = home
    report = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    recipients = {d.recipient for d in session.exec(select(Delivery))}
    assert recipients == {"zoe@example.org", "jean@example.org", "helene@example.fr"}
    assert len(list(report.directory.glob("*.eml"))) == 3
    assert not list(report.directory.glob(".*"))  # no temp file left behind


def test_second_run_writes_nothing_and_changes_nothing(home):
    settings, session, issue = home
    first = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.directory.iterdir()}
    second = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    assert (second.written, second.existing) == (0, 3)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.directory.iterdir()}
    assert after == before
    assert len(list(session.exec(select(Delivery)))) == 3


def test_a_file_without_its_row_is_rewritten_with_the_same_bytes(home):
    settings, session, issue = home
    report = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    zoe = session.exec(select(Subscriber).where(Subscriber.email == "zoe@example.org")).one()
    path = report.directory / f"{zoe.id}.eml"
    original = path.read_bytes()
    # As after a crash between the rename and the commit: the file is there, the row is not.
    session.delete(session.exec(select(Delivery).where(Delivery.subscriber_id == zoe.id)).one())
    session.commit()
    path.write_bytes(b"half a mess")
    again = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    assert (again.written, again.existing) == (1, 2)
    assert path.read_bytes() == original


def test_a_new_subscriber_after_the_build_gets_the_issue_on_the_next_run(home):
    settings, session, issue = home
    write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    late = Subscriber(
        email="tard@example.org", name="Tardif", created_at=NOW, status_changed_at=NOW
    )
    session.add(late)
    session.commit()
    report = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    assert (report.written, report.existing) == (1, 3)
    assert parse(report.directory / f"{late.id}.eml")["To"].addresses[0].addr_spec == late.email


def test_messages_are_crlf_and_lines_fit_in_998_octets(home):
    settings, session, issue = home
    report = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    for path in report.directory.glob("*.eml"):
        data = path.read_bytes()
        assert b"\n" not in data.replace(b"\r\n", b"")
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        msg = parse(path)
        assert msg["Date"].datetime == message_date(settings, issue)
        assert msg["List-Id"] == "Les Jeudis de l'ODD 17 <jeudis-odd17.lerameau.example.org>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_date_is_the_scheduled_send_time_unless_the_build_was_late(home):
    settings, _, issue = home
    assert message_date(settings, issue) == datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 08:00 Paris
    issue.built_at = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert message_date(settings, issue) == issue.built_at


def test_many_subscribers_span_several_batches(home):
    settings, session, issue = home
    session.add_all(
        Subscriber(
            email=f"l{n}@example.org", name=f"Lecteur {n}", created_at=NOW, status_changed_at=NOW
        )
        for n in range(BATCH + 5)
    )
    session.commit()
    seen = []
    report = write_issue_outbox(session, settings, issue, realistic_issue(1), clock, seen.append)
    assert report.written == BATCH + 8
    assert seen == [BATCH, BATCH + 8]
    ids = {d.message_id for d in session.exec(select(Delivery))}
    assert len(ids) == BATCH + 8
    assert len(list(report.directory.glob("*.eml"))) == BATCH + 8


def test_write_single_queues_a_one_off_message_once(home):
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
    first = write_single(
        session,
        settings,
        "test",
        "zoe@example.org",
        None,
        data,
        "<t1@lerameau.example.org>",
        clock=clock,
    )
    again = write_single(
        session,
        settings,
        "test",
        "zoe@example.org",
        None,
        data,
        "<t1@lerameau.example.org>",
        clock=clock,
    )
    assert first.id == again.id
    assert first.path.startswith("outbox/test/") and first.path.endswith(".eml")
    assert (settings.home / first.path).read_bytes() == data
    assert len(list(session.exec(select(Delivery).where(Delivery.purpose == "test")))) == 1
    with pytest.raises(ValueError, match="purpose"):
        write_single(session, settings, "../issue", "x@example.org", None, data, "<t2@x>")


def test_a_failed_write_commits_no_row_for_its_batch(home):
    settings, session, issue = home
    jean = session.exec(select(Subscriber).where(Subscriber.email == "jean@example.org")).one()
    blocker = settings.outbox_dir / "2026-W48" / f"{jean.id}.eml"
    blocker.mkdir(parents=True)  # a folder where the message should go: the rename fails
    with pytest.raises(IsADirectoryError):
        write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    session.rollback()
    assert list(session.exec(select(Delivery))) == []
    blocker.rmdir()
    report = write_issue_outbox(session, settings, issue, realistic_issue(), clock)
    assert (report.written, report.existing) == (3, 0)
