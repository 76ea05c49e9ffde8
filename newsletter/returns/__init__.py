"""What comes back: bounces, complaints, mailto unsubscribes and replies turned into states.

parse   bytes -> Returned (pure; email + flufl.bounce)
decide  Returned + verified reader -> Decision (pure, table-driven)
apply   one message's effects in the database, once
sources stdin, Maildir, IMAP
stats   per-issue figures and the inbound report
doctor  the deliverability check (`jeudis check`)
"""

from newsletter.returns.apply import Outcome, take_in
from newsletter.returns.sources import Summary, poll, read_imap, read_maildir, read_one
from newsletter.returns.stats import IssueStats, inbound_report, issue_stats

__all__ = [
    "IssueStats",
    "Outcome",
    "Summary",
    "inbound_report",
    "issue_stats",
    "poll",
    "read_imap",
    "read_maildir",
    "read_one",
    "take_in",
]
