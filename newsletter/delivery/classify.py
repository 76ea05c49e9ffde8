"""What a relay's answer means for the reader and for the run: pure and table-driven.

`classify(stage, code, text)` reads the SMTP stage the answer came at and its RFC 3463
enhanced status code (`5.1.1` in "550 5.1.1 No such user"), not just "5xx means the reader":
a content filter refusing every message at DATA must stop the run, not bounce the list.

    BOUNCE  the reader's mailbox is refused for good: mark that reader bounced
    STOP    the relay refuses us or the message (policy, size, DMARC, auth): stop the run,
            leave the row queued, bounce nobody
    DEFER   try this message later (4xx, a dropped connection, a timeout)
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
STAGES = ("connect", "mail", "rcpt", "data")  # connect covers greeting, EHLO, TLS and AUTH


class Verdict(Enum):
    SENT = "sent"
    BOUNCE = "bounce"
    STOP = "stop"
    DEFER = "defer"


@dataclass(frozen=True)
class Answer:
    """The relay's last word on one message: where it came, its code (0: the line broke)."""

    stage: str
    code: int
    text: str = ""

    def __str__(self) -> str:
        if self.code == 0:
            return f"{self.stage}: {self.text}"
        return f"{self.code} {self.text}".strip() + f" (at {self.stage.upper()})"


# First match wins. A rule is (stage or "*", class of the basic code "4"/"5"/"*",
# enhanced-code prefix or "" for any or None for "has none", verdict).
# Sender-address problems (5.1.7, 5.1.8) are ours, not the reader's: they stop the run.
RULES: tuple[tuple[str, str, str | None, Verdict], ...] = (
    ("*", "4", "", Verdict.DEFER),
    ("connect", "5", "", Verdict.STOP),  # refused login, banner 554: the relay refuses us
    ("mail", "5", "", Verdict.STOP),  # our envelope sender is refused
    ("*", "5", "5.1.7", Verdict.STOP),
    ("*", "5", "5.1.8", Verdict.STOP),
    ("*", "5", "5.1.", Verdict.BOUNCE),  # unknown mailbox, bad address, moved
    ("*", "5", "5.2.1", Verdict.BOUNCE),  # mailbox disabled
    ("*", "5", "5.2.2", Verdict.BOUNCE),  # mailbox full, for good
    ("*", "5", "5.7.", Verdict.STOP),  # policy, DMARC (5.7.26), spam, blocklists
    ("*", "5", "5.3.4", Verdict.STOP),  # message too big
    ("*", "5", "5.6.", Verdict.STOP),  # media or content the relay cannot take
    ("rcpt", "5", None, Verdict.BOUNCE),  # a bare 550/551/553 to RCPT names the mailbox
    ("*", "5", "", Verdict.STOP),  # anything else permanent, e.g. 552 or 554 at DATA
)


def enhanced_code(text: str) -> str | None:
    """The RFC 3463 status code that opens the relay's text, if any."""
    found = ENHANCED.match(text)
    return ".".join(found.groups()) if found else None


def classify(answer: Answer) -> Verdict:
    """The verdict for one answer (see RULES)."""
    if 200 <= answer.code < 300:
        return Verdict.SENT
    if answer.code == 0 or answer.code < 400:  # the line broke, or an answer that is no answer
        return Verdict.DEFER
    basic = str(answer.code)[0]
    enhanced = enhanced_code(answer.text)
    if enhanced and enhanced[0] != basic:  # contradictory: the basic code decides (RFC 3463)
        enhanced = None
    for stage, klass, prefix, verdict in RULES:
        if stage not in ("*", answer.stage) or klass not in ("*", basic):
            continue
        if prefix is None and enhanced is not None:
            continue
        if prefix and not (enhanced or "").startswith(prefix):
            continue
        return verdict
    return Verdict.STOP  # unreachable: the last rule matches every 5xx


@dataclass
class Breaker:
    """The circuit breaker: too many failures in a row, or too large a share of the recent
    ones, and the relay is in trouble (or refuses us): stop instead of hammering it."""

    in_a_row: int = 10
    window: int = 200
    share: float = 0.05
    consecutive: int = 0
    recent: deque[bool] = field(default_factory=deque)

    def record(self, failed: bool) -> bool:
        """Count one outcome (bounces are not failures); True when the run must stop."""
        self.consecutive = self.consecutive + 1 if failed else 0
        self.recent.append(failed)
        if len(self.recent) > self.window:
            self.recent.popleft()
        full = len(self.recent) == self.window
        return self.consecutive >= self.in_a_row or (
            full and sum(self.recent) > self.share * self.window
        )
