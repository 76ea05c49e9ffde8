"""Start-up: `jeudis item list` on an up-to-date instance reads the queue without the ORM or
Alembic; a database that is absent or behind is still created or upgraded by it, as before.
(How fast it starts is measured by bench/cli_startup.py, not here.)"""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa
from alembic import command
from engines import ENGINE
from jeudis_cli import REPO, run

from newsletter.db import alembic_config, make_engine
from newsletter.revisions import head_revision

NEVER_FOR_A_LIST = ("sqlmodel", "pydantic", "alembic")
PROBE = """\
import sys
from newsletter.cli import main
try:
    main(["item", "list"])
except SystemExit as exc:
    assert not exc.code, exc.code
print(" ".join(name for name in sys.argv[1:] if name in sys.modules))
"""


def list_in_a_process(home, *watched: str) -> tuple[list[str], set[str]]:
    """`jeudis item list` in a process of its own: its lines, and which of `watched` it loaded."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *watched],
        env={"PATH": os.environ["PATH"], **home.env},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    *lines, loaded = result.stdout.splitlines()
    return lines, set(loaded.split())


def recorded_revisions(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def test_item_list_on_an_up_to_date_instance_loads_neither_the_orm_nor_alembic(home):
    item = ["--kind", "news", "--title", "Une actualité", "--url", "https://a.example.org/"]
    assert run(home.path, "item", "add", *item, env=home.env).exit_code == 0
    # On a SQLite file the list does without SQLAlchemy too; PostgreSQL goes through its Core.
    never = (*NEVER_FOR_A_LIST, "sqlalchemy") if ENGINE == "sqlite" else NEVER_FOR_A_LIST
    lines, loaded = list_in_a_process(home, *never)
    assert lines[-1] == "1 item(s)"
    assert any("Une actualité" in line for line in lines)
    assert loaded == set(), f"`jeudis item list` imported {sorted(loaded)}"


def test_item_list_creates_a_missing_database_at_the_head_revision(home):
    lines, _ = list_in_a_process(home)
    assert lines[-1] == "0 item(s)"
    assert recorded_revisions(home.settings.db_url) == [head_revision()]


def test_item_list_upgrades_a_database_that_is_behind(home):
    settings = home.settings
    engine = make_engine(settings)
    command.upgrade(alembic_config(engine, home.path), "0001")
    engine.dispose()
    assert recorded_revisions(settings.db_url) == ["0001"]
    lines, loaded = list_in_a_process(home, "alembic")
    assert lines[-1] == "0 item(s)"
    assert loaded == {"alembic"}  # loaded only because there was a migration to run
    assert recorded_revisions(settings.db_url) == [head_revision()]
