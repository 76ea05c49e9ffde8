"""The outbox: one complete .eml per recipient per issue, written atomically.

CONTRACT (the build relies on it):
    write_issue_outbox(session, settings, issue: Issue, rendered: RenderedIssue, clock)
        -> OutboxReport(written: int, existing: int, directory: Path)
Idempotent: a (issue, subscriber) pair that already has a Delivery row is not written again.
"""
