"""Writing a worker's rows beside its SMTP connection, and SQLite's commit level meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import sqlalchemy as sa

from newsletter.delivery.claims import Claimed


class Settler:
    """Writes a worker's "sent" and "deferred" rows on a thread of its own, with its own
    database connection, while the worker starts the next message: the write overlaps the
    next MAIL and RCPT round trips. The worker waits for it before the next DATA, so a row
    is always written before another message is handed over on that connection."""

    def __init__(self, bind: sa.Engine, write: Callable[..., None]):
        self.write, self.pending = write, None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="settle")
        self.stack = ExitStack()
        # A Connection, not an ORM Session: the same UPDATE costs a third less CPU.
        self.connection = self.stack.enter_context(bind.connect())
        self.stack.enter_context(synchronous(self.connection, "NORMAL"))

    def later(self, row: Claimed, status: str, **values) -> None:
        self.wait()
        self.pending: Future | None = self.pool.submit(
            self.write, self.connection, row, status, **values
        )

    def wait(self) -> None:
        """Until the last row handed over is written (re-raises its error)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)
            self.stack.close()


@contextmanager
def synchronous(connection, level: str) -> Iterator[None]:
    """SQLite: WAL commits without an fsync each while sending (then FULL again).

    A process crash still loses nothing; a power loss may forget the last few "sent" marks,
    and those messages go again: the at-least-once side, as for a message in flight."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql(f"PRAGMA synchronous={level}")
        connection.commit()
    try:
        yield
    finally:
        if sqlite:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA synchronous=FULL")
            connection.commit()
