"""The Thursday build end to end on a real SQLite file: pick, record, render, publish, outbox."""

import email
import email.policy
import json
import threading
from datetime import UTC, datetime

import lxml.html
import pytest
from jeudis_cli import FIXTURES, REPO, run
from sqlmodel import select

from newsletter.build import build_issue
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.models import ContentItem, Delivery, Issue
from newsletter.render import issue_subject

FRIDAY = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # the coming Thursday is 2026-12-03
READERS = [
    ("camille.martin@example.org", "Camille Martin"),
    ("Noe.Leroy@Example.org", "Noé Leroy"),
]


def instance(home, content=REPO / "content"):
    assert run(home, "import", str(content)).exit_code == 0
    for address, name in READERS:
        assert run(home, "subscriber", "add", address, "--name", name).exit_code == 0
    return load_settings({"JEUDIS_HOME": str(home)})


def items(home):
    return json.loads(run(home, "item", "list", "--json").stdout)


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def ledger(settings):
    with open_session(settings) as session:
        rows = session.exec(select(Delivery).order_by(Delivery.id)).all()
        return [row.model_dump() for row in rows]


def test_build_writes_one_parsable_message_per_reader(tmp_path):
    settings = instance(tmp_path)
    result = run(tmp_path, "build")
    assert result.exit_code == 0, result.output
    assert "built 2026-W48 n°1 (2026-11-26)" in result.stdout
    assert not list(settings.home.rglob("*.eml"))  # the outbox is a ledger: no file at build
    outbox = tmp_path / "export"
    exported = run(tmp_path, "outbox", "export", str(outbox))
    assert exported.exit_code == 0, exported.output
    assert exported.stdout == f"2026-W48: 2 message(s) written to {outbox}\n"
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == len(READERS)
    (news,) = [i for i in items(tmp_path) if i["kind"] == "news" and i["status"] == "used"]
    issue_row_subject = issue_subject(news["title"])
    recipients = set()
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message.get_content_type() == "multipart/alternative"
        text, html = message.get_payload()
        assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
        assert "L’EXEMPLE INSPIRANT" in text.get_content().upper()
        assert "Se désinscrire" in text.get_content()
        assert message["Date"] and message["Message-ID"]
        assert len(html.get_content().encode()) < 102_400
        # The headline first; the sender's name is in From, the number in the preheader.
        assert message["Subject"] == issue_row_subject
        assert "Jeudis" not in message["Subject"] and len(message["Subject"]) <= 60
        recipients.add(message["To"].addresses[0].addr_spec.lower())
        doc = lxml.html.fromstring(html.get_content())
        assert doc.get("lang") == "fr"
    assert recipients == {a.lower() for a, _ in READERS}
    # The web copy is announced, not published: it goes public at the send time.
    assert (
        "web copy: http://127.0.0.1:8017/archive/2026-W48/ (public from 2026-11-26 08:00 CET)"
        in (result.stdout)
    )
    assert not settings.archive_dir.exists()


def test_building_twice_changes_nothing_and_says_so(tmp_path):
    settings = instance(tmp_path)
    assert run(tmp_path, "build").exit_code == 0
    before = ledger(settings)
    again = run(tmp_path, "build", "--date", "2026-11-24")  # any day of the same ISO week
    assert again.exit_code == 0
    assert "already built" in again.stdout and "nothing to do" in again.stdout
    assert ledger(settings) == before
    with open_session(settings) as session:
        assert len(session.exec(select(Issue)).all()) == 1
        assert len(session.exec(select(Delivery)).all()) == len(READERS)
        used = session.exec(select(ContentItem).where(ContentItem.status == "used")).all()
        assert len(used) == 3


def test_next_week_picks_new_items_and_numbers_on(tmp_path):
    instance(tmp_path)
    run(tmp_path, "build")
    result = run(tmp_path, "build", now=FRIDAY)
    assert "built 2026-W49 n°2 (2026-12-03)" in result.stdout
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    with open_session(settings) as session:
        first, second = session.exec(select(Issue).order_by(Issue.number)).all()
        assert {first.news_id, first.example_id, first.tool_id}.isdisjoint(
            {second.news_id, second.example_id, second.tool_id}
        )


def test_a_dry_kind_stops_the_build_before_anything_is_written(tmp_path):
    # The only example in these files is pinned to 2026-W49.
    settings = instance(tmp_path, content=FIXTURES / "content" / "good")
    result = run(tmp_path, "build")
    assert result.exit_code == 1
    assert "no inspiring example for 2026-11-26 (2026-W48)" in result.stderr
    assert "1 queued but none allowed that day (window or pin)" in result.stderr
    assert "Traceback" not in result.output
    assert not (settings.outbox_dir / "2026-W48").exists()
    with open_session(settings) as session:
        assert session.exec(select(Issue)).all() == []
        assert {i.status for i in session.exec(select(ContentItem))} == {"queued"}


def test_dry_message_says_since_when(tmp_path):
    instance(tmp_path, content=FIXTURES / "content" / "good")
    example = next(i for i in items(tmp_path) if i["kind"] == "example")
    run(tmp_path, "item", "edit", str(example["id"]), "--week", "2026-W48")
    assert run(tmp_path, "build").exit_code == 0
    run(tmp_path, "item", "add", "--kind", "news", "--title", "N", "--url", "https://a.example/")
    run(tmp_path, "item", "add", "--kind", "tool", "--title", "T", "--url", "https://a.example/")
    result = run(tmp_path, "build", "--date", "2026-12-03", now=FRIDAY)
    assert result.exit_code == 1
    assert "dry since the issue of 2026-11-26 (2026-W48) used the last one" in result.stderr


def test_preview_consumes_nothing_and_looks_ahead(tmp_path):
    settings = instance(tmp_path)
    out = tmp_path / "apercu.html"
    result = run(tmp_path, "preview", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "n°1 of 2026-11-26" in result.stdout
    assert "@@UNSUBSCRIBE_URL@@" not in out.read_text()
    later = run(tmp_path, "preview", "--date", "2026-12-10", "--out", str(tmp_path / "l.html"))
    assert "n°3 of 2026-12-10" in later.stdout
    with open_session(settings) as session:
        assert session.exec(select(Issue)).all() == []
        assert {i.status for i in session.exec(select(ContentItem))} == {"queued"}
    # What the preview showed is what the build sends.
    preview_title = lxml.html.parse(str(out)).find(".//title").text
    run(tmp_path, "build")
    with open_session(settings) as session:
        assert session.exec(select(Issue)).one().subject == preview_title


def test_an_interrupted_build_is_completed_not_repicked(tmp_path):
    settings = instance(tmp_path)
    assert run(tmp_path, "build").exit_code == 0
    with open_session(settings) as session:  # as if the machine died while writing the outbox
        issue = session.exec(select(Issue)).one()
        issue.outbox_done_at = None
        for delivery in session.exec(select(Delivery)).all()[1:]:
            session.delete(delivery)
        session.add(issue)
        session.commit()
    result = run(tmp_path, "build")
    assert "completed 2026-W48 n°1" in result.stdout
    assert "1 message(s) written" in result.stdout
    with open_session(settings) as session:
        assert len(session.exec(select(Delivery)).all()) == len(READERS)


def test_two_builds_at_once_make_one_issue(tmp_path):
    settings = instance(tmp_path)
    clock = lambda: datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # noqa: E731
    errors = []

    def worker():
        try:
            with open_session(settings) as session:
                build_issue(session, settings, datetime(2026, 11, 26).date(), clock)
        except Exception as exc:  # noqa: BLE001 — collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_session(settings) as session:
        assert len(session.exec(select(Issue)).all()) == 1
        assert len(session.exec(select(Delivery)).all()) == len(READERS)


@pytest.mark.sqlite_only("PRAGMA synchronous is a SQLite setting")
def test_the_build_leaves_sqlite_fully_synchronous(tmp_path):
    # The outbox relaxes fsyncs between its batches; later commits must be durable again.
    settings = instance(tmp_path)
    clock = lambda: datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # noqa: E731
    with open_session(settings) as session:
        build_issue(session, settings, datetime(2026, 11, 26).date(), clock)
        level = session.connection().exec_driver_sql("PRAGMA synchronous").scalar()
    assert level == 2  # FULL
