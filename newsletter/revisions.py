"""The schema's revision without Alembic: the head, read from the migration files themselves.

A command on an up-to-date database compares the one row of `alembic_version` with the head
and goes on; only a database that is absent or behind loads Alembic (a fifth of a second) to
be created or upgraded. The files are the source, so the head cannot drift from them; a test
checks that Alembic finds the same one.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSIONS = MIGRATIONS / "versions"
VERSION_TABLE = "alembic_version"
CURRENT_REVISIONS_SQL = f"SELECT version_num FROM {VERSION_TABLE}"

# `revision: str = "b_ledger"`, `down_revision = None`, at the start of a line (not the
# "Revision ID:" of the docstring).
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\b[^=\n]*=(.*)$", re.MULTILINE)


@cache
def head_revision(versions: Path = VERSIONS) -> str | None:
    """The one revision that no other revises; None when the files do not name exactly one
    (a merge still to write, a line this reader cannot parse): Alembic then decides."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"].strip())
            down = ast.literal_eval(found.get("down_revision", "None").strip())
        except (KeyError, ValueError, SyntaxError):
            return None
        downs = (down,) if isinstance(down, str) else down or ()
        if not isinstance(revision, str) or not isinstance(downs, tuple | list):
            return None
        revisions.add(revision)
        revised.update(downs)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None
