"""`jeudis send` against a real aiosmtpd server on 127.0.0.1: what the relay answers decides.

Each case of the issue « One database, many machines » is here: a refusal at DATA (554,
5.7.26, 552) stops the run and bounces nobody; 550 5.1.1 bounces only that reader; 421
forever stops the run quickly and the messages expire after max_defer (fake clock);
a dropped connection is re-opened; Date is stamped at delivery.
"""

from __future__ import annotations

from datetime import timedelta
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime

import pytest
from delivery_helpers import (
    ADDRESSES,
    THURSDAY_8AM,
    FakeTime,
    deliveries,
    queue,
    send,
    subscriber,
)
from jeudis_cli import run
from smtp_server import free_port

from newsletter import signup, subscribers
from newsletter.db import instance_secret, open_session
from newsletter.delivery import RelayError, send_outbox
from newsletter.delivery.locks import sender_lock
from newsletter.errors import JeudisError
from newsletter.models import Delivery
from newsletter.returnpath import read_return_path


def test_sends_each_message_once_dated_at_delivery_from_its_verp_address(home, clock, smtp_server):
    ids = queue(home, clock, ADDRESSES)
    clock.now = THURSDAY_8AM + timedelta(hours=3, minutes=7)  # sent late: Date says when
    report = send(home, clock, smtp_server)
    assert (report.sent, report.deferred, report.bounced, report.remaining) == (3, 0, 0, 0)
    assert report.ok
    received = smtp_server.handler.messages
    assert [m.message_id for m in received] == ids  # oldest first
    assert [m.recipients for m in received] == [[a] for a in ADDRESSES]
    secret = instance_secret(home.settings)
    rows = deliveries(home)
    for message in received:
        date = parsedate_to_datetime(message.message["Date"])
        assert abs(date - clock()) < timedelta(minutes=1)
        who = read_return_path(secret, message.sender)
        assert who is not None and who.week == "2026-W48"
        assert who.subscriber_id == rows[message.recipients[0]].subscriber_id
        assert message.sender.endswith("@lerameau.example.org")
        assert message.sender.startswith("bounces+2026-w48.")
        sender = str(make_header(decode_header(message.message["From"])))
        assert sender == "Les Jeudis de l’ODD 17 <jeudis@lerameau.example.org>"
        assert message.message["Feedback-ID"] == (
            "2026-W48:jeudis-odd17:jeudis:lerameau.example.org"
        )
    assert smtp_server.handler.connections == 1
    assert {(r.status, r.attempts, r.sent_at, r.claimed_by) for r in rows.values()} == {
        ("sent", 1, clock(), None)
    }
    again = send(home, clock, smtp_server)
    assert (again.sent, again.remaining) == (0, 0)
    assert len(smtp_server.handler.messages) == 3


@pytest.mark.parametrize(
    "answer",
    [
        "554 5.7.1 Message rejected by content filter",
        "550 5.7.26 Unauthenticated email is not accepted due to DMARC policy",
        "552 5.3.4 Message size exceeds fixed limit",
        "552 Message too big",
        "554 Transaction failed",
    ],
)
def test_a_refusal_of_the_message_stops_the_run_and_bounces_nobody(
    home, clock, smtp_server, answer
):
    ids = queue(home, clock, ADDRESSES)
    smtp_server.handler.data_answer = answer
    with pytest.raises(RelayError) as caught:
        send(home, clock, smtp_server, rate=0)
    assert answer in str(caught.value) and "(at DATA)" in str(caught.value)
    report = caught.value.report
    assert (report.sent, report.bounced, report.remaining) == (0, 0, 3)
    assert len(smtp_server.handler.refused) == 1  # stopped at the first refusal
    rows = deliveries(home)
    assert {(r.status, r.attempts, r.claimed_by) for r in rows.values()} == {("queued", 0, None)}
    assert {subscriber(home, a).status for a in ADDRESSES} == {"active"}

    smtp_server.handler.data_answer = None  # the operator fixed it: the next run resumes
    assert send(home, clock, smtp_server, rate=0).sent == 3
    assert sorted(smtp_server.handler.message_ids()) == sorted(ids)


def test_an_unknown_mailbox_bounces_that_reader_only(home, clock, smtp_server):
    queue(home, clock, ADDRESSES)
    smtp_server.handler.reject.add("bea@example.org")
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.bounced, report.remaining) == (2, 1, 0)
    assert report.ok  # a bounce is the reader's news, not a failure of the run
    row = deliveries(home)["bea@example.org"]
    assert (row.status, row.attempts) == ("bounced", 1)
    assert row.last_error == "550 5.1.1 No such user here (at RCPT)"
    bounced = subscriber(home, "bea@example.org")
    assert bounced.status == "bounced"
    assert bounced.bounced_at == bounced.status_changed_at == clock()
    assert bounced.last_error == "550 5.1.1 No such user here (at RCPT)"
    assert [m.recipients for m in smtp_server.handler.messages] == [
        ["ada@example.org"],
        ["cyril@example.org"],
    ]


def test_a_relay_deferring_everything_stops_quickly_then_the_messages_expire(
    home, clock, smtp_server
):
    addresses = [f"lecteur{n:02d}@example.org" for n in range(30)]
    queue(home, clock, addresses)
    smtp_server.handler.rcpt_answer = "421 4.3.2 System busy, try again later"
    time = FakeTime()
    with pytest.raises(RelayError, match=r"10 in a row\), last: 421 4\.3\.2 System busy") as caught:
        send(home, clock, smtp_server, time=time, rate=0)
    report = caught.value.report
    assert (report.sent, report.deferred, report.remaining) == (0, 10, 30)
    assert len(smtp_server.handler.refused) == 10  # stopped after 10, not 30
    assert sum(time.sleeps) < 15  # the run backs off, but gives up within seconds
    rows = deliveries(home)
    deferred = [r for r in rows.values() if r.status == "deferred"]
    assert len(deferred) == 10
    assert {r.next_attempt_at for r in deferred} == {clock() + timedelta(minutes=5)}
    assert {subscriber(home, a).status for a in addresses} == {"active"}

    # Before their next attempt the deferred ones wait; the others are tried (and stop again).
    with pytest.raises(RelayError):
        send(home, clock, smtp_server, rate=0)
    assert len(smtp_server.handler.refused) == 20
    assert set(smtp_server.handler.refused[10:]).isdisjoint(r.recipient for r in deferred)

    clock.now += timedelta(hours=72, minutes=1)  # max_defer after the send time: given up
    report = send(home, clock, smtp_server, rate=0)
    assert (report.expired, report.sent, report.remaining) == (30, 0, 0)
    assert not report.ok
    assert {r.status for r in deliveries(home).values()} == {"expired"}
    smtp_server.handler.rcpt_answer = None
    assert send(home, clock, smtp_server, rate=0).sent == 0  # never retried
    assert len(smtp_server.handler.refused) == 20


def test_a_few_deferred_messages_end_the_run_in_error_and_are_retried_later(
    home, clock, smtp_server
):
    queue(home, clock, ADDRESSES)
    smtp_server.handler.temp_fail["bea@example.org"] = 1
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.deferred, report.remaining) == (2, 1, 1)
    assert not report.ok
    row = deliveries(home)["bea@example.org"]
    assert (row.status, row.attempts) == ("deferred", 1)
    assert row.last_error == "451 4.7.1 Greylisted, try again later (at RCPT)"
    assert send(home, clock, smtp_server, rate=0).sent == 0  # not before its next attempt
    clock.now += timedelta(minutes=5)
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.remaining) == (1, 0) and report.ok
    assert deliveries(home)["bea@example.org"].attempts == 2


def test_a_dropped_connection_is_reopened_and_the_message_sent(home, clock, smtp_server):
    ids = queue(home, clock, ADDRESSES)
    smtp_server.handler.drop_data = 1  # the first DATA loses the line
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.deferred) == (3, 0)
    assert sorted(smtp_server.handler.message_ids()) == sorted(ids)
    assert smtp_server.handler.connections == 2


def test_a_connection_that_keeps_dropping_defers_the_message(home, clock, smtp_server):
    queue(home, clock, ADDRESSES[:1])
    smtp_server.handler.drop_data = 2
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.deferred) == (0, 1)
    assert deliveries(home)["ada@example.org"].last_error.startswith("data: ")


def test_the_reader_is_checked_again_when_the_row_is_claimed(home, clock, smtp_server):
    queue(home, clock, ADDRESSES)
    with open_session(home.settings) as session:
        subscribers.remove(session, clock, "bea@example.org")
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.skipped) == (2, 1)
    row = deliveries(home)["bea@example.org"]
    assert (row.status, row.attempts, row.last_error) == (
        "skipped",
        0,
        "subscriber is unsubscribed",
    )
    assert all(m.recipients != ["bea@example.org"] for m in smtp_server.handler.messages)


def test_an_issue_is_not_sent_before_its_time_unless_now(home, clock, smtp_server):
    queue(home, clock, ADDRESSES)
    clock.now = THURSDAY_8AM - timedelta(minutes=1)
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.remaining) == (0, 3) and report.ok
    assert smtp_server.handler.connections == 0
    assert send(home, clock, smtp_server, rate=0, send_now=True).sent == 3


def test_parallel_connections_share_one_rate_and_send_each_message_once(home, clock, smtp_server):
    addresses = [f"lecteur{n:02d}@example.org" for n in range(80)]
    ids = queue(home, clock, addresses)
    time = FakeTime()
    report = send(home, clock, smtp_server, time=time, rate=0, connections=4)
    assert report.sent == 80
    assert sorted(smtp_server.handler.message_ids()) == sorted(ids)
    assert smtp_server.handler.connections == 4


def test_rate_limit_spaces_the_sends(home, clock, smtp_server):
    queue(home, clock, ADDRESSES)
    time = FakeTime()
    send(home, clock, smtp_server, time=time, rate=4)
    assert time.sleeps == [0.25, 0.25]


def test_limit_sends_the_oldest_first(home, clock, smtp_server):
    ids = queue(home, clock, ADDRESSES)
    report = send(home, clock, smtp_server, limit=2, rate=0)
    assert (report.sent, report.remaining) == (2, 1)
    assert smtp_server.handler.message_ids() == ids[:2]


def test_relay_down_stops_the_run_and_keeps_the_queue(home, clock):
    queue(home, clock, ADDRESSES)
    settings = home.with_env(JEUDIS_SMTP_URL=f"smtp://127.0.0.1:{free_port()}").settings
    time = FakeTime()
    with open_session(settings) as session, pytest.raises(RelayError) as caught:
        send_outbox(session, settings, clock, sleep=time.sleep, monotonic=time.monotonic)
    assert "connect" in str(caught.value) and "ConnectionRefusedError" in str(caught.value)
    assert caught.value.report.remaining == 3
    rows = deliveries(home)
    assert {(r.status, r.attempts, r.claimed_by) for r in rows.values()} == {("queued", 0, None)}
    assert subscriber(home, "ada@example.org").status == "active"


@pytest.mark.sqlite_only("SQLite takes one sender at a time; PostgreSQL runs many at once")
def test_only_one_sender_at_a_time_on_sqlite(home, clock, smtp_server):
    queue(home, clock, ADDRESSES)
    with sender_lock(home.settings), pytest.raises(JeudisError, match="another"):
        send(home, clock, smtp_server)
    assert smtp_server.handler.messages == []


def test_rows_queued_before_the_ledger_are_sent_from_their_file(home, clock, smtp_server):
    queue(home, clock, [])
    legacy = home.path / "outbox" / "2026-W47" / "1.eml"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(
        b"From: jeudis@lerameau.example.org\nTo: old@example.org\nSubject: ancien\n"
        b"Date: Thu, 19 Nov 2026 08:00:00 +0100\nMessage-ID: <old@example.org>\n\nBonjour\n"
    )
    with open_session(home.settings) as session:
        for n, address in enumerate(("old@example.org", "gone@example.org"), 1):
            path, message_id = f"outbox/2026-W47/{n}.eml", f"<{address}>"
            session.add(Delivery(recipient=address, path=path, message_id=message_id,
                                 purpose="test", created_at=clock()))  # fmt: skip
        session.commit()
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.failed) == (1, 1)
    (message,) = smtp_server.handler.messages
    assert parsedate_to_datetime(message.message["Date"]) == clock()  # re-dated when sent
    assert message.message.get_payload().strip() == "Bonjour"
    assert deliveries(home)["gone@example.org"].status == "failed"


def test_cli_prints_one_summary_line_and_exits_0_only_when_all_went(home, smtp_server, clock):
    queue(home, clock, ADDRESSES)
    env = {"JEUDIS_SMTP_URL": smtp_server.url}
    smtp_server.handler.temp_fail["bea@example.org"] = 1
    result = run(home.path, "send", "--rate", "0", "--connections", "2", env=env, now=clock())
    assert result.exit_code == 1
    assert (
        result.stdout.strip()
        .splitlines()[-1]
        .startswith("sent: 2, deferred: 1, bounced: 0, expired: 0, skipped: 0, remaining: 1 (")
    )
    assert "left undelivered" in result.stderr
    again = run(home.path, "send", env=env, now=clock())  # bea's next attempt is not due yet
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("sent: 0, deferred: 0, bounced: 0, expired: 0")


def test_dry_run_connects_to_nothing(home, clock, smtp_server):
    queue(home, clock, ADDRESSES)
    env = {"JEUDIS_SMTP_URL": smtp_server.url}
    early = run(home.path, "send", "--dry-run", env=env)  # Monday: the issue is not due
    assert early.stdout.strip() == "would send: 0, waiting: 3"
    result = run(home.path, "send", "--dry-run", env=env, now=clock())
    assert result.exit_code == 0, result.output
    for address in ADDRESSES:
        assert address in result.output
    assert "would send: 3" in result.output
    assert smtp_server.handler.connections == 0
    assert {r.attempts for r in deliveries(home).values()} == {0}


def test_confirmations_go_to_readers_who_have_not_confirmed_yet(home, clock, smtp_server):
    settings = home.settings
    with open_session(settings) as session:
        subscribers.add(session, clock, "ada@example.org")
        subscribers.remove(session, clock, "ada@example.org")
        for address in ("ada@example.org", "bea@example.org", "cyril@example.org"):
            signup.invite(session, settings, clock, address)
        cyril = subscribers.find(session, "cyril@example.org")
        token = signup.confirm_url(settings, cyril).rsplit("/", 1)[1]
        subscribers.confirm(session, settings, clock, token)  # confirmed before the send
    report = send(home, clock, smtp_server, rate=0)
    assert (report.sent, report.skipped) == (2, 1)
    received = smtp_server.handler.messages
    assert [m.recipients for m in received] == [["ada@example.org"], ["bea@example.org"]]
    assert all(m.sender.startswith("bounces+confirm.") for m in received)
    assert all(parsedate_to_datetime(m.message["Date"]) == clock() for m in received)
    assert deliveries(home)["cyril@example.org"].last_error == "subscriber already confirmed"
