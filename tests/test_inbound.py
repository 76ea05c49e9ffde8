"""`jeudis inbound` on real sample messages: each does exactly what it should, once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy

import pytest
from click.testing import CliRunner
from jeudis_cli import run
from returns_helpers import RETURNS, add_readers, inbound, issues_sent, render
from sqlmodel import select

from newsletter.cli import App, main
from newsletter.db import open_session
from newsletter.models import Delivery, InboundMessage, Subscriber
from newsletter.returns import apply as apply_module
from newsletter.returns import take_in
from newsletter.typography import faults
from scheduler import make_scheduler

# fixture -> (kind, {reader: new status}); every other reader must stay as it was.
CASES = {
    "postfix_hard_dsn.eml": ("hard_bounce", {"alice@example.net": "bounced"}),
    "gmail_hard_dsn.eml": ("hard_bounce", {"bob@example.org": "bounced"}),
    "outlook_hard_dsn_mangled_verp.eml": ("hard_bounce", {"carol@example.com": "bounced"}),
    "qmail_hard_bounce_nonstandard.eml": ("hard_bounce", {"carol@example.com": "bounced"}),
    "postfix_soft_dsn_mailbox_full.eml": ("soft_bounce", {}),
    "gmail_soft_dsn_delay.eml": ("soft_bounce", {}),
    "yahoo_arf_complaint.eml": ("complaint", {"erin@example.net": "unsubscribed"}),
    "outlook_arf_complaint_redacted.eml": ("complaint", {"alice@example.net": "unsubscribed"}),
    "gmail_mailto_unsubscribe.eml": ("unsubscribe", {"bob@example.org": "unsubscribed"}),
    "outlook_mailto_unsubscribe_plus_address.eml": (
        "unsubscribe",
        {"carol@example.com": "unsubscribed"},
    ),
    "gmail_vacation_reply.eml": ("auto_reply", {}),
    "outlook_automatic_reply.eml": ("auto_reply", {}),
    "garbage.eml": ("unreadable", {}),
    "broken_report_no_boundary.eml": ("unreadable", {}),
    "forged_token_unsubscribe.eml": ("forged", {}),
    "forged_verp_dsn.eml": ("forged", {}),
    "human_reply.eml": ("other", {}),
    "no_from_header.eml": ("hard_bounce", {"erin@example.net": "bounced"}),
}
KEPT = {"unreadable", "forged", "other"}


@pytest.fixture
def ids(home, clock) -> dict[str, int]:
    return add_readers(home.settings, clock)


def states(home) -> dict[str, tuple[str, str | None]]:
    with open_session(home.settings) as session:
        rows = session.exec(select(Subscriber))
        return {row.email: (row.status, row.status_reason) for row in rows}


def test_every_sample_is_covered():
    assert sorted(p.name for p in RETURNS.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_sample_does_exactly_what_it_should(home, ids, name):
    kind, expected = CASES[name]
    raw = render(name, home.settings, ids)
    before = states(home)

    result = inbound(home.path, stdin=raw)
    assert result.exit_code == 0, result.output
    after = states(home)
    changed = {email: after[email][0] for email in after if after[email] != before[email]}
    assert changed == expected
    for email in expected:
        assert after[email][1], f"{email}: no reason recorded"
    with open_session(home.settings) as session:
        (row,) = session.exec(select(InboundMessage)).all()
    assert row.kind == kind
    assert (row.raw == raw) == (kind in KEPT), "kept messages keep their bytes, others do not"

    again = inbound(home.path, stdin=raw)
    assert again.exit_code == 0 and "already read: 1" in again.output
    assert states(home) == after
    with open_session(home.settings) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 1


def test_a_hard_bounce_names_the_diagnostic_and_the_list_shows_why(home, ids):
    inbound(home.path, stdin=render("gmail_hard_dsn.eml", home.settings, ids))
    status, reason = states(home)["bob@example.org"]
    assert status == "bounced"
    assert "5.1.1" in reason and "does not exist" in reason
    with open_session(home.settings) as session:
        assert session.get(Subscriber, ids["bob@example.org"]).bounced_at is not None


def test_a_mailto_unsubscribe_queues_one_french_confirmation(home, ids):
    raw = render("gmail_mailto_unsubscribe.eml", home.settings, ids)
    inbound(home.path, stdin=raw)
    inbound(home.path, stdin=raw)
    with open_session(home.settings) as session:
        (goodbye,) = session.exec(select(Delivery).where(Delivery.purpose == "goodbye")).all()
    assert goodbye.recipient == "bob@example.org" and goodbye.status == "queued"
    message = message_from_bytes(goodbye.content, policy=email_policy.default)  # in the ledger
    assert message["Auto-Submitted"] == "auto-replied"
    assert "désinscription" in message["Subject"]
    body = message.get_content()
    assert "vous ne recevrez plus" in body and "«\u00a0Les Jeudis" in body
    assert faults(message["Subject"]) == [] and faults(body) == []


def test_a_complaint_is_recorded_and_gets_no_mail(home, ids):
    inbound(home.path, stdin=render("yahoo_arf_complaint.eml", home.settings, ids))
    with open_session(home.settings) as session:
        assert session.exec(select(Delivery)).all() == []
        (row,) = session.exec(select(InboundMessage)).all()
    assert (row.kind, row.subscriber_id, row.week_key) == (
        "complaint",
        ids["erin@example.net"],
        "2026-W48",
    )
    assert "complaint (abuse) on 2026-W48" in states(home)["erin@example.net"][1]


def test_a_forged_token_changes_nobody_even_when_the_report_names_a_reader(home, ids):
    # The forged DSN's Final-Recipient is alice: the VERP signature that fails wins.
    for name in ("forged_verp_dsn.eml", "forged_token_unsubscribe.eml"):
        inbound(home.path, stdin=render(name, home.settings, ids))
    assert {status for status, _ in states(home).values()} == {"active"}


def test_unreadable_messages_are_reported_by_message_id_and_kept(home, ids):
    for name in ("broken_report_no_boundary.eml", "garbage.eml", "human_reply.eml"):
        result = inbound(home.path, stdin=render(name, home.settings, ids))
        assert result.exit_code == 0
    report = inbound(home.path, "--report")
    assert report.exit_code == 0
    assert "kept for a person: 3" in report.output
    assert "<broken-report-1@mx.example.com>" in report.output
    assert "(no Message-ID)" in report.output  # the garbage
    assert "<human-reply-1@example.net>" in report.output


def test_an_empty_stdin_is_bad_input(home):
    result = inbound(home.path, stdin=b"")
    assert result.exit_code == 2
    assert "standard input is empty" in result.output


def test_a_maildir_is_read_and_its_messages_moved(home, ids, tmp_path):
    box = tmp_path / "returns"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    names = ["postfix_hard_dsn.eml", "gmail_vacation_reply.eml", "human_reply.eml"]
    for n, name in enumerate(names):
        (box / "new" / f"17000000{n}.M1P1.host").write_bytes(render(name, home.settings, ids))

    result = inbound(home.path, "--maildir", str(box))
    assert result.exit_code == 0, result.output
    assert list((box / "new").iterdir()) == []
    flags = sorted(p.name.rpartition(",")[2] for p in (box / "cur").iterdir())
    assert flags == ["F", "S", "S"]  # the one kept for a person stays unread, flagged
    assert states(home)["alice@example.net"][0] == "bounced"

    # A copy delivered again (new bytes, same Message-ID) changes nothing.
    again = b"Delivered-To: other@example.org\n" + render(names[0], home.settings, ids)
    (box / "new" / "1800000000.M1P1.host").write_bytes(again)
    result = inbound(home.path, "--maildir", str(box))
    assert "already read: 1" in result.output


def test_not_a_maildir_is_bad_input(home, tmp_path):
    result = inbound(home.path, "--maildir", str(tmp_path))
    assert result.exit_code == 2
    assert "not a Maildir" in result.output


def test_soft_bounces_on_three_consecutive_issues_bounce_the_reader(home, ids):
    weeks = ["2026-w46", "2026-w47", "2026-w48"]
    issues_sent(home, weeks, ids)
    dave, erin = "dave@example.fr", "erin@example.net"
    for week in weeks:
        inbound(
            home.path, stdin=render("postfix_soft_dsn_mailbox_full.eml", home.settings, ids, week)
        )
    for week in ("2026-w46", "2026-w48"):  # a gap: erin's W47 arrived
        inbound(home.path, stdin=render("gmail_soft_dsn_delay.eml", home.settings, ids, week))
    after = states(home)
    assert after[dave][0] == "bounced" and "3 consecutive issues" in after[dave][1]
    assert after[erin][0] == "active"


def test_the_subscriber_list_says_why_and_when(home, ids):
    inbound(home.path, stdin=render("postfix_hard_dsn.eml", home.settings, ids))
    inbound(home.path, stdin=render("gmail_mailto_unsubscribe.eml", home.settings, ids))
    bounced = run(home.path, "subscriber", "list", "--status", "bounced").output.splitlines()
    assert len(bounced) == 1
    email, status, _name, when, why = bounced[0].split("\t")
    assert (email, status, when) == ("alice@example.net", "bounced", "2026-11-23 09:00")
    assert why.startswith("hard bounce: 5.1.1 smtp; 550 5.1.1")
    gone = run(home.path, "subscriber", "list", "--status", "unsubscribed").output
    assert gone.split("\t")[-1].strip() == "unsubscribe request by mail"


def test_stats_per_issue_with_rates_and_warnings(home, ids):
    issues_sent(home, ["2026-w46", "2026-w47", "2026-w48"], ids)
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # the day after W48 left
    for name in (
        "postfix_hard_dsn.eml",
        "postfix_soft_dsn_mailbox_full.eml",
        "yahoo_arf_complaint.eml",
        "gmail_mailto_unsubscribe.eml",
        "gmail_vacation_reply.eml",
    ):
        inbound(home.path, stdin=render(name, home.settings, ids), now=friday)
    rows = json.loads(run(home.path, "stats", "--json").output)
    figures = {
        row["week"]: (
            row["recipients"],
            row["sent"],
            row["hard_bounces"],
            row["soft_bounces"],
            row["complaints"],
            row["unsubscribes"],
        )
        for row in rows
    }
    assert figures == {
        "2026-W46": (5, 5, 0, 0, 0, 0),
        "2026-W47": (5, 5, 0, 0, 0, 0),
        "2026-W48": (5, 5, 1, 1, 1, 2),  # unsubscribed: erin (complaint), bob (mailto)
    }
    w48 = rows[-1]
    assert (w48["bounce_rate"], w48["complaint_rate"]) == (0.4, 0.2)
    result = run(home.path, "stats", "--week", "2026-W48")
    assert result.exit_code == 0
    assert "complaint rate 20.00% is above 0.1 %" in result.output
    assert "bounce rate 40.00% is above 2 %" in result.output
    quiet = run(home.path, "stats", "--week", "2026-W47")
    assert "warning" not in quiet.output
    assert run(home.path, "stats", "--week", "2026-W12").exit_code == 2


def test_the_scheduler_polls_the_configured_maildir(home, ids, tmp_path, clock):
    box = tmp_path / "returns"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.M1P1.host").write_bytes(render("gmail_hard_dsn.eml", home.settings, ids))
    settings = home.with_env(JEUDIS_INBOUND_MAILDIR=str(box), JEUDIS_INBOUND_POLL_MINUTES="3")
    settings = settings.settings
    job = make_scheduler(settings, clock).get_job("read-returns")
    assert job.trigger.interval.total_seconds() == 180
    job.func(*job.args)  # what the scheduler runs every 3 minutes
    assert states(home)["bob@example.org"][0] == "bounced"
    assert make_scheduler(home.settings, clock).get_job("read-returns") is None


def test_two_readers_of_the_same_message_at_once_act_once(home, ids, clock):
    raw = render("postfix_hard_dsn.eml", home.settings, ids)
    settings = home.settings
    start = threading.Barrier(4)
    outcomes = []

    def read_it():
        with open_session(settings) as session:
            start.wait()
            outcomes.append(take_in(session, settings, clock, raw, "test"))

    threads = [threading.Thread(target=read_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.duplicate for o in outcomes) == [False, True, True, True]
    assert [o.changed for o in outcomes if not o.duplicate] == ["bounced"]
    with open_session(settings) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 1


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BOUNCE_ADDRESS", "bounces+x@example.org", "bounce_address: 'bounces+x@example.org'"),
        ("BOUNCE_ADDRESS", "bounces", "is not a plain address"),
        ("SOFT_BOUNCE_LIMIT", "0", "soft_bounce_limit: 0 must be at least 1"),
        ("INBOUND_POLL_MINUTES", "0", "inbound_poll_minutes: 0 must be at least 1"),
    ],
)
def test_bad_return_settings_are_one_line_and_exit_2(home, clock, name, value, message):
    env = {"JEUDIS_HOME": str(home.path), f"JEUDIS_{name}": value}
    result = CliRunner().invoke(main, ["stats"], obj=App(clock=clock), env=env)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_parser_crash_keeps_the_message_and_the_run_goes_on(home, ids, tmp_path, monkeypatch):
    box = tmp_path / "returns"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.M1P1.host").write_bytes(b"From: a@example.org\nSubject: x\n\nboom\n")
    (box / "new" / "2.M1P1.host").write_bytes(render("gmail_hard_dsn.eml", home.settings, ids))
    real_read = apply_module.read

    def fragile_read(raw):  # stands for a parser bug met on one odd message
        if b"boom" in raw:
            raise RecursionError("maximum recursion depth exceeded")
        return real_read(raw)

    monkeypatch.setattr(apply_module, "read", fragile_read)
    result = inbound(home.path, "--maildir", str(box))
    assert result.exit_code == 0, result.output
    assert "unreadable: 1" in result.output and "hard_bounce: 1" in result.output
    assert states(home)["bob@example.org"][0] == "bounced"
    with open_session(home.settings) as session:
        kept = session.exec(select(InboundMessage).where(InboundMessage.kind == "unreadable")).one()
    assert kept.raw.endswith(b"boom\n") and "RecursionError" in kept.detail


def test_a_reader_who_came_back_can_be_exported_and_forgotten(home, ids):
    issues_sent(home, ["2026-w48"], ids)
    alice = "alice@example.net"
    inbound(home.path, stdin=render("postfix_hard_dsn.eml", home.settings, ids))
    reply = b"From: Alice <alice@example.net>\nTo: desinscription@lerameau.example.org\n"
    inbound(home.path, stdin=reply + b"Subject: merci\nMessage-ID: <a1@x>\n\nBonjour\n")
    exported = json.loads(run(home.path, "subscriber", "export", alice).output)
    assert [r["kind"] for r in exported["returns"]] == ["hard_bounce"]

    result = run(home.path, "subscriber", "forget", alice)
    assert result.exit_code == 0, result.output
    with open_session(home.settings) as session:
        rows = session.exec(select(InboundMessage).order_by(InboundMessage.id)).all()
    assert [(r.kind, r.subscriber_id, r.raw, r.week_key) for r in rows] == [
        ("hard_bounce", None, None, "2026-W48"),
        ("other", None, None, None),
    ]
    assert all(alice not in r.detail for r in rows)
    assert run(home.path, "stats").exit_code == 0
