"""The pure core of the feedback loop: parse and decide, with plain values (no database)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from returns_helpers import RETURNS

from newsletter import tokens
from newsletter.returnpath import return_path
from newsletter.returns.decide import RULES, Who, consecutive, decide, identify
from newsletter.returns.parse import Complaint, Failure, Returned, read

SECRET = b"s" * 32
BOUNCES = "bounces@lerameau.example.org"


@dataclass
class Reader:
    id: int
    email: str
    status: str = "active"


class Readers:
    def __init__(self, *readers: Reader):
        self.readers = {r.id: r for r in readers}

    def by_id(self, subscriber_id):
        return self.readers.get(subscriber_id)

    def by_email(self, email):
        return next((r for r in self.readers.values() if r.email == email), None)


ALICE = Reader(7, "alice@example.net")
READERS = Readers(ALICE, Reader(8, "bob@example.org"))
VERP = return_path(SECRET, BOUNCES, "2026-w48", 7)


def returned(**fields) -> Returned:
    base = dict(message_id="<m@x>", subject="", sender="", recipients=())
    return Returned(**{**base, **fields})


HARD = Failure("alice@example.net", True, "5.1.1", "smtp; 550 5.1.1 unknown")
SOFT = Failure("alice@example.net", False, "4.2.2", "smtp; 452 4.2.2 full")


@pytest.mark.parametrize(
    ("message", "kind", "action"),
    [
        (returned(is_bounce=True, failures=(HARD,), recipients=(VERP,)), "hard_bounce", "bounce"),
        (returned(is_bounce=True, failures=(SOFT,), recipients=(VERP,)), "soft_bounce", "count"),
        (returned(is_bounce=True, failures=(SOFT, HARD)), "hard_bounce", "bounce"),
        (returned(is_bounce=True, recipients=(VERP,)), "notice", "ignore"),
        (
            returned(complaint=Complaint("abuse", VERP), returned_paths=(VERP,)),
            "complaint",
            "unsubscribe",
        ),
        (returned(auto_reply=True, recipients=(VERP,)), "auto_reply", "ignore"),
        (returned(subject="bonjour"), "other", "keep"),
        # Nobody identified: a bounce about a stranger is kept for a person.
        (returned(is_bounce=True, failures=(Failure("x@y.org", True),)), "hard_bounce", "keep"),
    ],
)
def test_rules(message, kind, action):
    decision = decide(message, identify(message, SECRET, READERS, BOUNCES))
    assert (decision.kind, decision.action) == (kind, action)
    assert RULES[kind][0 if decision.subscriber_id else 1] == action


def test_the_verp_address_wins_and_names_the_issue():
    message = returned(is_bounce=True, failures=(HARD,), recipients=(VERP,))
    who = identify(message, SECRET, READERS, BOUNCES)
    assert (who.reader, who.week, who.how) == (ALICE, "2026-W48", "verp")


def test_a_tampered_verp_address_is_forged_even_when_the_report_names_a_reader():
    mac = VERP.partition("@")[0].rpartition(".")[2]
    forged = VERP.replace(mac, "0" * 16)
    message = returned(is_bounce=True, failures=(HARD,), recipients=(forged,))
    assert identify(message, SECRET, READERS, BOUNCES) == Who(forged=True)
    assert decide(message, Who(forged=True)).action == "keep"


def test_an_unsubscribe_token_is_verified_against_the_readers_address():
    token = tokens.sign(SECRET, "unsubscribe", 7, "alice@example.net")
    good = returned(subject_tokens=(token,))
    assert identify(good, SECRET, READERS, BOUNCES).reader == ALICE
    # The same token claimed for bob (id 8): its signature names alice's address.
    other = returned(subject_tokens=("8." + token.split(".")[1],))
    assert identify(other, SECRET, READERS, BOUNCES).forged


def test_the_verp_address_is_found_in_postfix_dsn_fields_when_the_headers_lost_it():
    raw = (RETURNS / "postfix_hard_dsn.eml").read_text()
    raw = raw.replace("{{VERP alice@example.net 2026-w48}}", VERP)
    raw = raw.replace("{{TOKEN alice@example.net}}", "1.x")
    # A relay rewrote every header that carried it; only the DSN's own fields still do.
    raw = re.sub(r"(?m)^(X-Original-To|Delivered-To|To): .*$", r"\1: " + BOUNCES, raw)
    message = read(raw.replace(f"Return-Path: <{VERP}>\n", "").encode())
    assert VERP not in message.recipients
    assert VERP in message.returned_paths
    assert identify(message, SECRET, READERS, BOUNCES).how == "verp"


def test_consecutive_counts_the_latest_issues_only():
    assert consecutive(["W48", "W47", "W46"], {"W48", "W47", "W46"}) == 3
    assert consecutive(["W48", "W47", "W46"], {"W48", "W46"}) == 1
    assert consecutive(["W48"], set()) == 0
