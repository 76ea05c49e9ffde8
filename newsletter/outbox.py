"""The outbox: one complete .eml per recipient per issue, written atomically.

CONTRACT (the build relies on it):
    write_issue_outbox(session, settings, issue: Issue, rendered: RenderedIssue, clock,
                       progress=None) -> OutboxReport(written, existing, skipped, directory)
Idempotent: a (issue, subscriber) pair that already has a Delivery row is not written again.

Durability: each file is written to a temp name in the same folder then renamed over its final
name, so a reader never sees half a message. Files are not fsynced one by one (that would cost
more than everything else together); the folder is fsynced once at the end. A process crash
loses nothing (the rows of a batch are committed only after its files are renamed, and a re-run
rewrites the same bytes for any file without a row); only a power loss in the last seconds of a
build can leave a file whose row says "queued" empty, which the sender reports as a failure.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.message import compose, for_subscriber
from newsletter.models import Delivery, Issue, Subscriber
from newsletter.render import RenderedIssue
from newsletter.weeks import Clock, system_clock

BATCH = 1000
PURPOSE_ISSUE = "issue"
SINGLE_PURPOSES = ("confirm", "test", "goodbye")  # goodbye: a mailto unsubscribe confirmed
_FILE_MODE = 0o600  # messages carry personal addresses and unsubscribe tokens


@dataclass(frozen=True)
class OutboxReport:
    """What one run did: files written now, rows already there, subscribers not active."""

    written: int
    existing: int
    skipped: int
    directory: Path


def message_date(settings: Settings, issue: Issue) -> datetime:
    """The Date header: the scheduled send time, or the build time if the build was late.

    Both are stored facts, so a rebuild produces the same bytes.
    """
    hour, minute = (int(part) for part in settings.send_time.split(":"))
    scheduled = datetime.combine(issue.thursday, time(hour, minute), tzinfo=settings.tz)
    return max(scheduled, issue.built_at).astimezone(settings.tz)


def write_issue_outbox(
    session: Session,
    settings: Settings,
    issue: Issue,
    rendered: RenderedIssue,
    clock: Clock,
    progress: Callable[[int], None] | None = None,
) -> OutboxReport:
    """Write one .eml and one queued Delivery per active subscriber who has none for this issue.

    Subscribers are read in id order, BATCH at a time (keyset pagination), so memory does not
    grow with the list; each batch's files are renamed into place before its rows commit.
    """
    template = compose(
        rendered, settings=settings, issue_week=issue.week_key, date=message_date(settings, issue)
    )
    secret = settings.secret_key()
    directory = settings.outbox_dir / issue.week_key
    directory.mkdir(parents=True, exist_ok=True)
    relative = directory.relative_to(settings.home).as_posix()
    existing, skipped = _counts(session, issue.id)
    now = clock()
    written, last_id = 0, 0
    with _Writer(directory) as writer:
        while batch := session.execute(_pending(issue.id, last_id)).all():
            rows = []
            for subscriber_id, email, name in batch:
                message_id, data = for_subscriber(
                    template,
                    settings=settings,
                    secret=secret,
                    issue_week=issue.week_key,
                    subscriber_id=subscriber_id,
                    email=email,
                    name=name,
                )
                filename = f"{subscriber_id}.eml"
                writer.add(filename, data)
                rows.append(_delivery_row(issue.id, subscriber_id, email, message_id, now))
                rows[-1]["path"] = f"{relative}/{filename}"
            writer.drain()  # this batch's files are in place before its rows commit
            session.execute(sa.insert(Delivery.__table__), rows)
            session.commit()
            written += len(batch)
            last_id = batch[-1][0]
            if progress is not None:
                progress(written)
    _fsync_dir(directory)
    return OutboxReport(written, existing, skipped, directory)


class _Writer:
    """Writes files on a worker thread while the caller builds the next messages.

    File system calls release the GIL, so the disk work overlaps the Python work; at most
    MAX_CHUNKS chunks of CHUNK messages are in flight, which bounds the memory held. One
    writer: a second one, in the same folder, spent twice the CPU in the kernel for no gain.
    """

    THREADS = 1
    CHUNK = 16
    MAX_CHUNKS = 4

    def __init__(self, directory: Path):
        self.directory = directory
        self.pool = ThreadPoolExecutor(self.THREADS, thread_name_prefix="outbox-writer")
        self.chunk: list[tuple[str, list[bytes]]] = []
        self.futures: deque[Future] = deque()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if exc_info[0] is None:
                self.drain()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def add(self, filename: str, data: list[bytes]) -> None:
        self.chunk.append((filename, data))
        if len(self.chunk) >= self.CHUNK:
            self._submit()
            while len(self.futures) > self.MAX_CHUNKS:
                self.futures.popleft().result()  # re-raises a write error here

    def drain(self) -> None:
        """Wait until every file added so far is renamed into place."""
        if self.chunk:
            self._submit()
        while self.futures:
            self.futures.popleft().result()

    def _submit(self) -> None:
        self.futures.append(self.pool.submit(_write_files, self.directory, self.chunk))
        self.chunk = []


def _write_files(directory: Path, files: list[tuple[str, list[bytes]]]) -> None:
    for filename, data in files:
        _write_atomic(directory, filename, data)


def _pending(issue_id: int, after_id: int) -> sa.Select:
    """The next batch of active subscribers without a Delivery for this issue."""
    already = sa.exists().where(
        Delivery.issue_id == issue_id,
        Delivery.subscriber_id == Subscriber.id,
        Delivery.purpose == PURPOSE_ISSUE,
    )
    return (
        sa.select(Subscriber.id, Subscriber.email, Subscriber.name)
        .where(Subscriber.status == "active", Subscriber.id > after_id, ~already)
        .order_by(Subscriber.id)
        .limit(BATCH)
    )


def _counts(session: Session, issue_id: int) -> tuple[int, int]:
    existing = session.scalar(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(Delivery.issue_id == issue_id, Delivery.purpose == PURPOSE_ISSUE)
    )
    skipped = session.scalar(
        sa.select(sa.func.count()).select_from(Subscriber).where(Subscriber.status != "active")
    )
    return existing or 0, skipped or 0


def _delivery_row(
    issue_id: int | None, subscriber_id: int | None, email: str, message_id: str, now: datetime
) -> dict:
    return {
        "issue_id": issue_id,
        "subscriber_id": subscriber_id,
        "purpose": PURPOSE_ISSUE,
        "recipient": email,
        "message_id": message_id,
        "status": "queued",
        "attempts": 0,
        "created_at": now,
    }


def _write_atomic(directory: Path, filename: str, data: bytes | list[bytes]) -> None:
    # A fixed temp name per file: a leftover from a crash is simply overwritten next time, and
    # the leading dot keeps it out of any `*.eml` glob. Chunks go out with one writev.
    chunks = [data] if isinstance(data, bytes) else data
    tmp = os.path.join(directory, f".{filename}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        left = sum(map(len, chunks))
        written = os.writev(fd, chunks)
        if written < left:  # a short write (rare): finish it the plain way
            rest = memoryview(b"".join(chunks))[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]
    finally:
        os.close(fd)
    os.replace(tmp, os.path.join(directory, filename))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_single(
    session: Session,
    settings: Settings,
    purpose: str,
    recipient: str,
    subscriber_id: int | None,
    message_bytes: bytes,
    message_id: str,
    *,
    issue_id: int | None = None,
    clock: Clock = system_clock,
) -> Delivery:
    """Queue a one-off message (confirmation, test send) under outbox/<purpose>/.

    Idempotent on message_id: the same message queued twice is one file and one row.
    """
    if purpose not in SINGLE_PURPOSES:
        raise ValueError(f"purpose: {purpose!r} is not one of {', '.join(SINGLE_PURPOSES)}")
    directory = settings.outbox_dir / purpose
    directory.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^0-9A-Za-z]", "", str(subscriber_id or "x"))
    filename = f"{stem}-{hashlib.sha256(message_id.encode()).hexdigest()[:16]}.eml"
    found = session.exec(select(Delivery).where(Delivery.message_id == message_id)).first()
    _write_atomic(directory, filename, message_bytes)
    fd = os.open(directory / filename, os.O_RDONLY)
    try:
        os.fsync(fd)  # one file: durability costs nothing here
    finally:
        os.close(fd)
    _fsync_dir(directory)
    if found is not None:
        return found
    delivery = Delivery(
        issue_id=issue_id,
        subscriber_id=subscriber_id,
        purpose=purpose,
        recipient=recipient,
        path=(directory / filename).relative_to(settings.home).as_posix(),
        message_id=message_id,
        status="queued",
        created_at=clock(),
    )
    session.add(delivery)
    session.commit()
    return delivery
