"""The relay-answer table, with plain values: stage and RFC 3463 code decide, not "5xx"."""

from __future__ import annotations

import pytest

from newsletter.delivery.classify import Answer, Breaker, Verdict, classify, enhanced_code

BOUNCE, STOP, DEFER, SENT = Verdict.BOUNCE, Verdict.STOP, Verdict.DEFER, Verdict.SENT


@pytest.mark.parametrize(
    ("stage", "code", "text", "verdict"),
    [
        ("data", 250, "2.0.0 Ok: queued", SENT),
        # The reader's mailbox: bounce that reader.
        ("rcpt", 550, "5.1.1 <bea@example.org>: Recipient address rejected", BOUNCE),
        ("rcpt", 550, "No such user here", BOUNCE),  # bare 550 at RCPT names the mailbox
        ("rcpt", 553, "sorry, that domain isn't in my list", BOUNCE),
        ("rcpt", 550, "5.2.1 The email account that you tried to reach is disabled", BOUNCE),
        ("data", 550, "5.1.1 user unknown", BOUNCE),  # some relays say it after DATA
        # The message or us: stop the run, bounce nobody.
        ("data", 554, "5.7.1 Message rejected: spam content", STOP),
        ("data", 550, "5.7.26 Unauthenticated email is not accepted (DMARC)", STOP),
        ("rcpt", 550, "5.7.1 Client host blocked using Spamhaus", STOP),
        ("data", 552, "5.3.4 Message size exceeds fixed maximum message size", STOP),
        ("data", 552, "Message too big", STOP),
        ("data", 554, "Transaction failed", STOP),
        ("mail", 553, "5.1.8 Sender address rejected: Domain not found", STOP),
        ("mail", 550, "Sender refused", STOP),
        ("rcpt", 550, "5.1.7 Bad sender's mailbox address syntax", STOP),
        ("connect", 554, "No SMTP service here", STOP),
        ("connect", 535, "5.7.8 Authentication credentials invalid", STOP),
        # Later.
        ("rcpt", 421, "4.3.2 System busy", DEFER),
        ("rcpt", 451, "4.7.1 Greylisted, try again later", DEFER),
        ("data", 452, "4.3.1 Insufficient system storage", DEFER),
        ("data", 0, "SMTPServerDisconnected: Connection unexpectedly closed", DEFER),
        # A 4xx with a 5.x.x text: the basic code wins (RFC 3463 section 2).
        ("rcpt", 450, "5.1.1 looks permanent but is not", DEFER),
    ],
)
def test_the_table(stage, code, text, verdict):
    assert classify(Answer(stage, code, text)) is verdict


def test_enhanced_codes_are_read_only_at_the_start():
    assert enhanced_code("5.7.26 DMARC") == "5.7.26"
    assert enhanced_code("  4.2.2 full") == "4.2.2"
    assert enhanced_code("see RFC 5.1.1") is None
    assert enhanced_code("5.1.1000") is None


def test_an_answer_reads_as_one_line_naming_the_stage():
    assert str(Answer("data", 554, "5.7.1 spam")) == "554 5.7.1 spam (at DATA)"
    assert str(Answer("rcpt", 0, "TimeoutError")) == "rcpt: TimeoutError"


def test_the_breaker_trips_on_ten_in_a_row():
    breaker = Breaker()
    assert not any(breaker.record(True) for _ in range(9))
    assert breaker.record(True)
    breaker = Breaker()
    for _ in range(9):
        breaker.record(True)
    assert not breaker.record(False) and breaker.consecutive == 0


def test_the_breaker_trips_on_more_than_5_percent_of_the_last_200():
    breaker = Breaker()
    outcomes = ([False] * 19 + [True]) * 10  # 10 failures in 200: 5 %, not more
    assert not any(breaker.record(failed) for failed in outcomes)
    assert breaker.record(True)  # now 11 of the last 200
