"""The tables: content items, issues, subscribers, deliveries, feeds, the instance secret."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# The items' kinds and statuses live in items_table, with the table read without the ORM.
SUBSCRIBER_STATUSES = ("pending", "active", "unsubscribed", "bounced")
# queued/deferred wait for a sender; sent, bounced, expired, skipped, failed are final
# ("failed": a message that cannot be made, e.g. a legacy .eml file gone missing).
DELIVERY_STATUSES = ("queued", "deferred", "sent", "bounced", "expired", "skipped", "failed")
EDITOR_ROLES = ("editor", "admin")
CONSENT_SOURCES = ("form", "invitation", "import", "cli")


class AwareDateTime(TypeDecorator):
    """Stores UTC, returns timezone-aware datetimes (SQLite keeps no offset of its own)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to an aware column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


def aware(**kwargs) -> Field:
    return Field(sa_type=AwareDateTime, **kwargs)


class ContentItem(SQLModel, table=True):
    """One news, inspiring example or tool, from an editor, a content file or a feed."""

    __tablename__ = "content_item"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    status: str = Field(default="queued", index=True)
    title: str
    url: str
    summary: str = ""
    body: str = ""  # Markdown as the editor wrote it; sanitized at render time
    image_url: str | None = None
    image_alt: str | None = None
    available_from: date | None = None
    available_until: date | None = None
    pinned_week: str | None = Field(default=None, index=True)
    priority: int = 0
    # Where it came from: "cli", "import", "feed"; source_key makes re-imports and
    # re-fetches update instead of duplicate (file path, or feed entry guid/link).
    source: str = "cli"
    source_key: str | None = Field(default=None, unique=True)
    source_name: str | None = None
    content_hash: str | None = None
    feed_id: int | None = Field(default=None, foreign_key="feed.id", index=True)
    published_at: datetime | None = aware(default=None)
    created_at: datetime = aware()
    queued_at: datetime | None = aware(default=None)
    updated_at: datetime = aware()
    # The issue that used it. No foreign key: issue -> item already points the other way,
    # and a cycle of constraints would not create on PostgreSQL.
    issue_id: int | None = Field(default=None, index=True)


class Issue(SQLModel, table=True):
    """One Thursday's issue; one per ISO week, which is what makes builds idempotent."""

    id: int | None = Field(default=None, primary_key=True)
    week_key: str = Field(unique=True)
    number: int = Field(unique=True)
    thursday: date
    subject: str = ""
    news_id: int = Field(foreign_key="content_item.id")
    example_id: int = Field(foreign_key="content_item.id")
    tool_id: int = Field(foreign_key="content_item.id")
    built_at: datetime = aware()
    outbox_done_at: datetime | None = aware(default=None)
    sent_at: datetime | None = aware(default=None)


class Subscriber(SQLModel, table=True):
    """A reader; the address is stored normalised (lower-case domain and local part)."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)
    name: str = ""
    status: str = Field(default="active", index=True)
    created_at: datetime = aware()
    status_changed_at: datetime = aware()
    confirmed_at: datetime | None = aware(default=None)
    unsubscribed_at: datetime | None = aware(default=None)
    bounced_at: datetime | None = aware(default=None)
    last_error: str | None = None
    # When the last confirmation message was queued: at most one per signup_confirm_interval.
    confirm_sent_at: datetime | None = aware(default=None)
    # The record of consent (RGPD): how it was given (CONSENT_SOURCES), the wording shown,
    # and when (for the form and the invitation: when the person confirmed).
    consent_source: str | None = None
    consent_text: str | None = None
    consent_at: datetime | None = aware(default=None)
    # Why the status last changed, in words an operator reads ("hard bounce: 550 5.1.1 ...",
    # "complaint (abuse) on 2026-W48", "mailto unsubscribe").
    status_reason: str | None = None


class IssueMessage(SQLModel, table=True):
    """An issue's message composed once (the spliceable template), shared by its deliveries."""

    __tablename__ = "issue_message"

    issue_id: int = Field(
        foreign_key="issue.id", primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    template: bytes = Field(sa_type=sa.LargeBinary)  # delivery.message.dump_template
    send_at: datetime = aware()  # not sent before (unless `send --now`); max_defer counts from it
    created_at: datetime = aware()


class Delivery(SQLModel, table=True):
    """One message for one recipient: the ledger row a sender claims, sends and settles."""

    __table_args__ = (
        sa.UniqueConstraint("issue_id", "subscriber_id", "purpose"),
        sa.Index("ix_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # issue_id and status: no index of their own, the unique key and ix_delivery_due lead
    # with them (migration delivery_indexes).
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id", index=True)
    purpose: str = "issue"  # issue | confirm | test
    recipient: str
    # A one-off message (confirm, test) is stored whole, without its Date; an issue's rows
    # share their IssueMessage. `path`: a .eml file queued before the ledger (legacy rows).
    content: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    path: str | None = None
    message_id: str = Field(unique=True)
    status: str = "queued"
    attempts: int = 0
    next_attempt_at: datetime | None = aware(default=None)
    claimed_by: str | None = None
    lease_until: datetime | None = aware(default=None)
    last_error: str | None = None
    created_at: datetime = aware()
    sent_at: datetime | None = aware(default=None)


class InboundMessage(SQLModel, table=True):
    """One message that came back (bounce, complaint, unsubscribe mail, reply), read once.

    `digest` (SHA-256 of the raw bytes) makes reading the same message twice change nothing.
    Messages kept for a person carry their raw bytes: nothing that comes back is dropped.
    """

    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(unique=True)
    message_id: str = Field(default="", index=True)
    received_at: datetime = aware()
    kind: str = Field(index=True)  # see newsletter.returns.decide.KINDS
    action: str  # what was done: bounced, counted, unsubscribed, ignored, kept, none
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id", index=True)
    week_key: str | None = Field(default=None, index=True)
    detail: str = ""
    source: str = ""  # stdin, maildir:<path>, imap:<host>
    raw: bytes | None = Field(default=None, sa_type=sa.LargeBinary)


class Feed(SQLModel, table=True):
    """A followed RSS/Atom source and its health."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(unique=True)
    name: str = ""
    auto: bool = False
    etag: str | None = None
    last_modified: str | None = None
    created_at: datetime = aware()
    last_fetched_at: datetime | None = aware(default=None)
    last_ok_at: datetime | None = aware(default=None)
    last_error: str | None = None
    last_error_at: datetime | None = aware(default=None)
    entries_seen: int = 0


class RateHit(SQLModel, table=True):
    """One counted request for a rate limit (a sign-up from one client), kept one window.

    `key` is a keyed hash of the client's address: no IP address is stored.
    """

    __tablename__ = "rate_hit"
    __table_args__ = (sa.Index("ix_rate_hit_bucket_key_at", "bucket", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    bucket: str
    key: str
    at: datetime = aware()


class Editor(SQLModel, table=True):
    """A named account of the desk; `role` is one of EDITOR_ROLES."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    role: str = "editor"
    password_hash: str
    created_at: datetime = aware()
    password_changed_at: datetime = aware()


class DeskSession(SQLModel, table=True):
    """A signed-in desk session; the cookie holds a random id, this row its SHA-256."""

    __tablename__ = "desk_session"

    id: str = Field(primary_key=True)
    editor_id: int = Field(foreign_key="editor.id", index=True)
    created_at: datetime = aware()
    last_seen_at: datetime = aware()


class LoginThrottle(SQLModel, table=True):
    """Failed logins for one account (`account:NAME`) or one client (`client:ADDRESS`)."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True)
    failures: int = 0
    last_failure_at: datetime = aware()
    blocked_until: datetime | None = aware(default=None)


class AuditEntry(SQLModel, table=True):
    """Who changed what and when: the desk's editors, the CLI's OS user, the readers."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = aware(index=True)
    actor: str
    action: str = Field(index=True)
    target: str = Field(default="", index=True)
    detail: str = ""


class Suppression(SQLModel, table=True):
    """An address forgotten on request, kept only as a hash so that no import adds it back."""

    email_hash: str = Field(primary_key=True)
    created_at: datetime = aware()
    reason: str = "forget"


class IssueSubject(SQLModel, table=True):
    """An editor's own subject for a week's issue, set before it is built (or never)."""

    __tablename__ = "issue_subject"

    week_key: str = Field(primary_key=True)
    subject: str
    updated_at: datetime = aware()


class InstanceSecret(SQLModel, table=True):
    """The one key that signs tokens, sessions and Message-IDs, shared by every machine."""

    __tablename__ = "instance_secret"

    id: int = Field(default=1, primary_key=True)
    value: str  # hex
