"""Delivery: the outbox ledger, the sender and the export.

message   compose an issue's message once (the spliceable template), personalize it
ledger    store it once per issue, one Delivery row per recipient (and one-off messages)
claims    senders claim rows (SKIP LOCKED and leases) and settle only the rows they hold
classify  what a relay's answer means (RFC 3463 codes, SMTP stage): pure, table-driven
relay     SMTP connections and DKIM signing
send      the runner: N connections, one rate limit, circuit breaker
export    .eml files or a Maildir from the ledger
"""

from newsletter.delivery.export import ExportReport, export_outbox
from newsletter.delivery.ledger import OutboxReport, queue_single, send_at, write_issue_outbox
from newsletter.delivery.message import compose_simple
from newsletter.delivery.send import RelayError, SendReport, send_outbox

__all__ = [
    "ExportReport",
    "OutboxReport",
    "RelayError",
    "SendReport",
    "compose_simple",
    "export_outbox",
    "queue_single",
    "send_at",
    "send_outbox",
    "write_issue_outbox",
]
