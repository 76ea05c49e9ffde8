"""One exception type per kind of failure; the CLI edge makes each one line and an exit code."""

from __future__ import annotations


class JeudisError(Exception):
    """Base class: a failure the user can read without a traceback."""

    exit_code = 1


class InputError(JeudisError):
    """Bad usage or bad input (a field, a file, an address): exit code 2."""

    exit_code = 2


class ContentError(InputError):
    """A content file is wrong: names the file, the field and what is wrong."""

    def __init__(self, path: str, field: str | None, reason: str, line: int | None = None):
        self.path, self.field, self.reason, self.line = path, field, reason, line
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")


class SettingsError(InputError):
    """A setting in jeudis.toml or the environment is wrong."""


class NotFoundError(InputError):
    """An ID or address given on the command line does not exist."""


class ConflictError(InputError):
    """The action would rewrite history (a used item, an issue already sent)."""


class DatabaseError(JeudisError):
    """The database cannot be reached or fails under us: exit 1."""


class QueueDryError(JeudisError):
    """A kind has nothing to give for a Thursday: the build stops before writing anything."""


class CalendarError(InputError):
    """A build asked for a week the calendar does not allow (past, too far ahead, out of order)."""
