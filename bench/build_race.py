"""Race builds against each other and print what the database holds after each run.

    python bench/build_race.py sqlite          # two weeks at once, one SQLite file
    python bench/build_race.py postgresql URL  # one week from two JEUDIS_HOMEs on one database
                                               # (URL: a server; a database is made per run)

Five runs of 200 readers each; prints the issues, the delivery rows, the .eml files found in
both homes and the errors raised. See docs/instances.md for the figures.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select

from newsletter import subscribers
from newsletter.build import build_issue
from newsletter.config import PROJECT_ROOT, load_settings
from newsletter.content import import_content
from newsletter.db import open_session
from newsletter.models import Delivery, Issue

READERS = 200
RUNS = 5
FRIDAY = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # W48 (late) and W49 (coming) are buildable


def clock() -> datetime:
    return FRIDAY


def instance(url: str | None):
    first, second = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    env = {"JEUDIS_HOME": str(first), **({"JEUDIS_DATABASE_URL": url} if url else {})}
    settings = load_settings(env)
    other = load_settings({"JEUDIS_HOME": str(second), "JEUDIS_DATABASE_URL": settings.db_url})
    with open_session(settings) as session:
        import_content(session, PROJECT_ROOT / "content", clock)
        for n in range(READERS):
            subscribers.add(session, clock, f"reader{n}@example.org")
    return settings, other


def race(jobs) -> list[str]:
    errors: list[str] = []
    barrier = threading.Barrier(len(jobs))

    def build(settings, day):
        try:
            with open_session(settings) as session:
                barrier.wait()
                build_issue(session, settings, day, clock)
        except Exception as exc:  # noqa: BLE001 — reported, that is the point
            errors.append(f"{type(exc).__name__}: {str(exc)[:80]}")

    threads = [threading.Thread(target=build, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def report(n: int, homes, errors: list[str]) -> None:
    with open_session(homes[0]) as session:
        issues = [(i.week_key, i.number) for i in session.exec(select(Issue).order_by(Issue.id))]
        rows = len(session.exec(select(Delivery)).all())
    files = sum(1 for home in homes for _ in home.outbox_dir.rglob("*.eml"))
    print(f"run {n}: issues={issues} rows={rows} eml files={files} errors={errors}")


def main(engine: str, server: str | None = None) -> None:
    for n in range(1, RUNS + 1):
        if engine == "sqlite":
            homes = instance(None)
            errors = race([(homes[0], date(2026, 11, 26)), (homes[0], date(2026, 12, 3))])
            report(n, homes, errors)
            continue
        name = f"jeudis_race_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        homes = instance(sa.make_url(server).set(database=name).render_as_string(False))
        report(n, homes, race([(homes[0], date(2026, 12, 3)), (homes[1], date(2026, 12, 3))]))
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main(*sys.argv[1:])
