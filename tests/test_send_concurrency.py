"""Senders at once and senders that die: every reader gets one copy, but the one in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from delivery_helpers import ADDRESSES, deliveries, queue, send
from engines import ENGINE
from smtp_server import RecordingHandler, SmtpServer

from newsletter.db import open_session
from newsletter.delivery.claims import LEASE, ClaimFilter, claim

REPO = Path(__file__).parent.parent


@pytest.mark.sqlite_only(
    "on PostgreSQL a dead sender's rows wait for its lease to end (tested with a fake clock "
    "in test_a_dead_senders_rows_are_taken_over_after_its_lease)"
)
def test_killed_mid_run_then_resumed_sends_each_message_once_but_the_one_in_flight(home, clock):
    """SIGKILL while the relay holds message 31 (received, not yet acknowledged).

    The documented side is at-least-once: that one message is sent again by the next run;
    every other message arrives exactly once, and none is lost.
    """
    addresses = [f"lecteur{n:03d}@example.org" for n in range(200)]
    ids = queue(home, clock, addresses)
    handler = RecordingHandler(hold_after=30)
    with SmtpServer(handler) as server:
        env = {**os.environ, **home.env, "JEUDIS_SMTP_URL": server.url}
        command = [sys.executable, "-m", "newsletter", "send", "--rate", "50"]
        process = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.PIPE)
        try:
            assert handler.held.wait(timeout=120), "the sender never reached message 31"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert process.returncode == -signal.SIGKILL
        handler.release.set()

        in_flight = deliveries(home)[addresses[30]]
        assert (in_flight.status, in_flight.attempts) == ("queued", 0)
        assert in_flight.claimed_by is not None  # held by the dead run
        assert sum(r.status == "sent" for r in deliveries(home).values()) == 30

        resumed = subprocess.run(
            [*command[:-1], "200"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.startswith(
            "sent: 170, deferred: 0, bounced: 0, expired: 0, skipped: 0, remaining: 0 ("
        )

    counts = Counter(handler.message_ids())
    assert set(counts) == set(ids)  # nothing lost
    assert {mid: n for mid, n in counts.items() if n > 1} == {ids[30]: 2}
    assert {r.status for r in deliveries(home).values()} == {"sent"}


def test_a_dead_senders_rows_are_taken_over_after_its_lease(home, clock, smtp_server):
    queue(home, clock, ADDRESSES)
    with open_session(home.settings) as session:  # a sender claims two rows, then dies
        held = claim(session, "dead-run", ClaimFilter(clock()), 2)
    assert [row.recipient for row in held] == ADDRESSES[:2]
    report = send(home, clock, smtp_server, rate=0)
    if ENGINE == "sqlite":  # one sender at a time: a claim found is a dead sender's
        assert report.sent == 3
    else:  # PostgreSQL: the holder may be alive; its rows wait for the lease to end
        assert (report.sent, report.remaining) == (1, 2)
        clock.now += LEASE + timedelta(seconds=1)
        assert send(home, clock, smtp_server, rate=0).sent == 2
    assert sorted(smtp_server.handler.message_ids()) == sorted(
        r.message_id for r in deliveries(home).values()
    )
    assert {r.status for r in deliveries(home).values()} == {"sent"}
